//! [`PosixTimers`]: a process's `timer_create(2)` timers. Each runs on one
//! clock (wall, monotonic, or the process's CPU time), expires once or
//! every interval, and on expiry sends a signal to the process or to one of
//! its threads (`SIGEV_SIGNAL`, `SIGEV_THREAD_ID`) carrying `SI_TIMER`
//! details ([`crate::signal::TimerSignal`]), or nothing (`SIGEV_NONE`).
//!
//! As Linux, an expiry that finds the timer's previous signal still
//! pending sends no second one: the pending signal's overrun count grows
//! (`timer_getoverrun`). The kernel checks [`PosixTimers::due`] where it
//! checks the interval timers (`crate::itimer`): on every return to user
//! mode and while threads wait, so a timer fires within a tick of its
//! expiry. Timers are not inherited by `fork` and are deleted by `execve`.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

use crate::error::{Errno, Result};
use crate::platform::Clock;
use crate::return_errno;

/// Most timers one process may hold (Linux bounds them by
/// `RLIMIT_SIGPENDING`; `EAGAIN` past it).
pub const MAX_TIMERS: usize = 4096;

/// The clock a timer runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerClock {
    /// `CLOCK_REALTIME` (and `CLOCK_REALTIME_ALARM`).
    Realtime,
    /// `CLOCK_MONOTONIC`, `CLOCK_BOOTTIME` (and `CLOCK_BOOTTIME_ALARM`):
    /// the guest never suspends, so they are the same clock.
    Monotonic,
    /// `CLOCK_PROCESS_CPUTIME_ID`: the process's CPU time.
    ProcessCpu,
}

impl TimerClock {
    /// The clock `clockid` names (`EINVAL` for others: thread CPU-time
    /// clocks and other processes' CPU clocks are not supported).
    pub fn from_id(clockid: i32) -> Result<Self> {
        Ok(match clockid {
            0 | 8 => Self::Realtime,
            1 | 7 | 9 => Self::Monotonic,
            2 => Self::ProcessCpu,
            _ => return_errno!(Errno::EINVAL),
        })
    }

    /// Now on this clock.
    pub fn now(self, clock: &dyn Clock) -> u64 {
        match self {
            Self::Realtime => clock.realtime_ns(),
            Self::Monotonic => clock.monotonic_ns(),
            Self::ProcessCpu => clock.process_cpu_ns(),
        }
    }
}

/// What an expiry does (`struct sigevent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// `SIGEV_NONE`: nothing; the timer is only read.
    None,
    /// `SIGEV_SIGNAL` (`tid: None`) or `SIGEV_THREAD_ID`.
    Signal {
        /// The signal.
        signo: u32,
        /// `sigev_value`.
        value: u64,
        /// The thread, for `SIGEV_THREAD_ID`.
        tid: Option<u32>,
    },
}

/// `struct itimerspec` in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimerSpec {
    /// Time to the next expiry (0: disarmed).
    pub value_ns: u64,
    /// The reload interval (0: one-shot).
    pub interval_ns: u64,
}

#[derive(Debug, Clone, Copy)]
struct Timer {
    clock: TimerClock,
    notify: Notify,
    /// Next expiry on `clock` (`None`: disarmed).
    at_ns: Option<u64>,
    interval_ns: u64,
    /// Overrun count of the last signal sent (`timer_getoverrun`).
    overrun: u32,
}

/// An expiry to send: the kernel makes it pending with
/// [`crate::signal::SignalState::send_timer_signal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fired {
    /// The timer.
    pub timer_id: i32,
    /// The signal.
    pub signo: u32,
    /// `sigev_value`.
    pub value: u64,
    /// The thread (`SIGEV_THREAD_ID`), else the process.
    pub tid: Option<u32>,
    /// Periods missed before this check (beyond the one that fired).
    pub missed: u32,
}

#[derive(Debug, Default)]
struct Inner {
    timers: BTreeMap<i32, Timer>,
    next_id: i32,
}

/// A process's POSIX timers.
#[derive(Debug, Default)]
pub struct PosixTimers {
    inner: Mutex<Inner>,
    /// Whether any timer is armed: [`PosixTimers::due`], called on every
    /// return to user mode, then reads no clock and takes no lock.
    armed: AtomicBool,
}

impl PosixTimers {
    /// Whether any timer is armed (one atomic load).
    pub fn is_armed(&self) -> bool {
        self.armed.load(Ordering::Acquire)
    }

    /// `timer_create`: a new disarmed timer; its id. `EAGAIN` past
    /// [`MAX_TIMERS`]. `notify` of `None` from the caller means Linux's
    /// default, `SIGALRM` with the id as value ([`Self::create_default`]).
    pub fn create(&self, clock: TimerClock, notify: Notify) -> Result<i32> {
        let mut inner = self.inner.lock();
        if inner.timers.len() >= MAX_TIMERS {
            return_errno!(Errno::EAGAIN);
        }
        // Ids count up from 0 and skip ones in use, as Linux's.
        let mut id = inner.next_id;
        while inner.timers.contains_key(&id) {
            id = id.checked_add(1).unwrap_or(0);
        }
        inner.next_id = id.checked_add(1).unwrap_or(0);
        inner.timers.insert(
            id,
            Timer {
                clock,
                notify,
                at_ns: None,
                interval_ns: 0,
                overrun: 0,
            },
        );
        Ok(id)
    }

    /// `timer_create` with a null `sigevent`: `SIGALRM` to the process,
    /// the timer id as `sigev_value`.
    pub fn create_default(&self, clock: TimerClock) -> Result<i32> {
        let id = self.create(clock, Notify::None)?;
        if let Some(t) = self.inner.lock().timers.get_mut(&id) {
            t.notify = Notify::Signal {
                signo: 14,
                value: id as u64,
                tid: None,
            };
        }
        Ok(id)
    }

    fn value_of(t: &Timer, now: u64) -> TimerSpec {
        TimerSpec {
            // An expired but not yet handled timer reports the smallest
            // time left rather than "disarmed".
            value_ns: t.at_ns.map_or(0, |at| at.saturating_sub(now).max(1)),
            interval_ns: t.interval_ns,
        }
    }

    /// `timer_settime(id, flags, new)`: arms the timer at `new.value_ns`
    /// from now, or at that time on its clock with `absolute`
    /// (`TIMER_ABSTIME`), reloading every `new.interval_ns`; a zero value
    /// disarms it. Returns the old setting. `EINVAL` for an unknown id.
    pub fn set(
        &self,
        id: i32,
        new: TimerSpec,
        absolute: bool,
        clock: &dyn Clock,
    ) -> Result<TimerSpec> {
        let mut inner = self.inner.lock();
        let Some(t) = inner.timers.get_mut(&id) else {
            return_errno!(Errno::EINVAL);
        };
        let now = t.clock.now(clock);
        let old = Self::value_of(t, now);
        t.interval_ns = new.interval_ns;
        t.at_ns = match (new.value_ns, absolute) {
            (0, _) => None,
            // A time already past expires at the next check.
            (at, true) => Some(at.max(1)),
            (after, false) => Some(now.saturating_add(after)),
        };
        self.note_armed(&inner);
        Ok(old)
    }

    /// `timer_gettime(id)`.
    pub fn get(&self, id: i32, clock: &dyn Clock) -> Result<TimerSpec> {
        let inner = self.inner.lock();
        let Some(t) = inner.timers.get(&id) else {
            return_errno!(Errno::EINVAL);
        };
        Ok(Self::value_of(t, t.clock.now(clock)))
    }

    /// `timer_getoverrun(id)`: the overrun count of its last signal.
    pub fn overrun(&self, id: i32) -> Result<u32> {
        match self.inner.lock().timers.get(&id) {
            Some(t) => Ok(t.overrun),
            None => return_errno!(Errno::EINVAL),
        }
    }

    /// Records the overrun count timer `id`'s pending signal now carries.
    pub fn note_overrun(&self, id: i32, overrun: u32) {
        if let Some(t) = self.inner.lock().timers.get_mut(&id) {
            t.overrun = overrun.min(i32::MAX as u32);
        }
    }

    /// `timer_delete(id)`.
    pub fn delete(&self, id: i32) -> Result<()> {
        let mut inner = self.inner.lock();
        if inner.timers.remove(&id).is_none() {
            return_errno!(Errno::EINVAL);
        }
        self.note_armed(&inner);
        Ok(())
    }

    /// Deletes every timer (`execve`).
    pub fn clear(&self) {
        let mut inner = self.inner.lock();
        inner.timers.clear();
        self.note_armed(&inner);
    }

    fn note_armed(&self, inner: &Inner) {
        let armed = inner.timers.values().any(|t| t.at_ns.is_some());
        self.armed.store(armed, Ordering::Release);
    }

    /// The timers that have expired by now and send a signal; an interval
    /// timer is re-armed past now (missed periods counted), a one-shot one
    /// disarmed. `SIGEV_NONE` timers advance the same way, silently.
    pub fn due(&self, clock: &dyn Clock) -> Vec<Fired> {
        let mut fired = Vec::new();
        if !self.armed.load(Ordering::Acquire) {
            return fired;
        }
        let mut inner = self.inner.lock();
        let mut nows: [Option<u64>; 3] = [None; 3];
        for (&id, t) in inner.timers.iter_mut() {
            let Some(at) = t.at_ns else { continue };
            let slot = &mut nows[t.clock as usize];
            let now = *slot.get_or_insert_with(|| t.clock.now(clock));
            if now < at {
                continue;
            }
            // Periods past beyond the one that expired (a one-shot timer
            // has none and is disarmed).
            let missed = match (now - at).checked_div(t.interval_ns) {
                Some(periods) => {
                    let next = (periods + 1).saturating_mul(t.interval_ns);
                    t.at_ns = Some(at.saturating_add(next));
                    periods
                }
                None => {
                    t.at_ns = None;
                    0
                }
            };
            if let Notify::Signal { signo, value, tid } = t.notify {
                fired.push(Fired {
                    timer_id: id,
                    signo,
                    value,
                    tid,
                    missed: missed.min(u64::from(u32::MAX)) as u32,
                });
            }
        }
        self.note_armed(&inner);
        fired
    }
}

#[cfg(test)]
mod tests;
