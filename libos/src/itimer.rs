//! [`IntervalTimers`]: the three interval timers of `setitimer(2)`, each a
//! next expiry and a reload interval on its own clock — `ITIMER_REAL` on
//! the monotonic clock (`SIGALRM`), `ITIMER_VIRTUAL` (`SIGVTALRM`) and
//! `ITIMER_PROF` (`SIGPROF`) on the program's CPU time
//! ([`Clock::process_cpu_ns`]).
//!
//! CPU time is not split into user and system time here (`getrusage`
//! reports all of it as user time), so `ITIMER_VIRTUAL` counts the same
//! time as `ITIMER_PROF`. As Linux, a CPU-time timer is set one tick later
//! than asked ([`CPU_TIMER_SLACK_NS`]). The kernel checks [`IntervalTimers::due`]
//! whenever a thread returns to user mode and while threads wait, so a
//! timer fires within a tick of its expiry.

use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

use crate::error::{Errno, Result};
use crate::platform::Clock;
use crate::return_errno;

/// `SIGALRM`, `SIGVTALRM`, `SIGPROF`.
const SIGNALS: [u32; 3] = [14, 26, 27];
/// What Linux adds to a CPU-time timer's first expiry: one tick (here
/// the kernel's 10 ms timer tick).
pub const CPU_TIMER_SLACK_NS: u64 = 10_000_000;

/// Which timer (`which` of `setitimer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `ITIMER_REAL` (0): wall time, `SIGALRM`.
    Real = 0,
    /// `ITIMER_VIRTUAL` (1): CPU time, `SIGVTALRM`.
    Virtual = 1,
    /// `ITIMER_PROF` (2): CPU time, `SIGPROF`.
    Prof = 2,
}

impl Which {
    /// The timer `which` names (`EINVAL` for any other value).
    pub fn from_raw(which: i32) -> Result<Self> {
        Ok(match which {
            0 => Self::Real,
            1 => Self::Virtual,
            2 => Self::Prof,
            _ => return_errno!(Errno::EINVAL),
        })
    }

    fn now(self, clock: &dyn Clock) -> u64 {
        match self {
            Self::Real => clock.monotonic_ns(),
            Self::Virtual | Self::Prof => clock.process_cpu_ns(),
        }
    }
}

/// One timer: the expiry on its clock (`None`: disarmed) and the interval.
#[derive(Debug, Clone, Copy, Default)]
struct Timer {
    at_ns: Option<u64>,
    interval_ns: u64,
}

/// A timer's state as `getitimer` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimerValue {
    /// Time to the next expiry (0: disarmed).
    pub value_ns: u64,
    /// The reload interval (0: one-shot).
    pub interval_ns: u64,
}

/// The process's three interval timers.
#[derive(Debug, Default)]
pub struct IntervalTimers {
    timers: Mutex<[Timer; 3]>,
    /// Whether a CPU-time timer is armed: reading CPU time costs a walk
    /// over the threads, so [`IntervalTimers::due`] skips it otherwise.
    cpu_armed: AtomicBool,
    /// Whether any timer is armed: [`IntervalTimers::due`], called on every
    /// return to user mode, then reads no clock and takes no lock.
    armed: AtomicBool,
}

impl IntervalTimers {
    fn value_of(t: &Timer, now: u64) -> TimerValue {
        TimerValue {
            // An expired but not yet delivered timer reports the smallest
            // time left, as Linux, rather than "disarmed".
            value_ns: t.at_ns.map_or(0, |at| at.saturating_sub(now).max(1)),
            interval_ns: t.interval_ns,
        }
    }

    /// Whether any timer is armed (one atomic load).
    pub fn is_armed(&self) -> bool {
        self.armed.load(Ordering::Acquire)
    }

    /// `getitimer(which)`.
    pub fn get(&self, which: Which, clock: &dyn Clock) -> TimerValue {
        let now = which.now(clock);
        Self::value_of(&self.timers.lock()[which as usize], now)
    }

    /// `setitimer(which, new)`: arms the timer to expire `new.value_ns`
    /// from now (0 disarms it), reloading with `new.interval_ns`; returns
    /// the old state.
    pub fn set(&self, which: Which, new: TimerValue, clock: &dyn Clock) -> TimerValue {
        let now = which.now(clock);
        let mut timers = self.timers.lock();
        let slot = &mut timers[which as usize];
        let old = Self::value_of(slot, now);
        let slack = if which == Which::Real {
            0
        } else {
            CPU_TIMER_SLACK_NS
        };
        *slot = Timer {
            at_ns: (new.value_ns != 0)
                .then(|| now.saturating_add(new.value_ns.saturating_add(slack))),
            interval_ns: new.interval_ns,
        };
        self.note_armed(&timers);
        old
    }

    /// Updates the armed summaries (called with the timers locked).
    fn note_armed(&self, timers: &[Timer; 3]) {
        let cpu = timers[1].at_ns.is_some() || timers[2].at_ns.is_some();
        self.cpu_armed.store(cpu, Ordering::Relaxed);
        self.armed
            .store(cpu || timers[0].at_ns.is_some(), Ordering::Release);
    }

    /// The signals of the timers that have expired by now, each once
    /// (`SIGALRM` = bit 14, …); an interval timer is re-armed, a one-shot
    /// one disarmed.
    pub fn due(&self, clock: &dyn Clock) -> u64 {
        if !self.armed.load(Ordering::Acquire) {
            return 0;
        }
        let real_now = clock.monotonic_ns();
        let cpu_now = if self.cpu_armed.load(Ordering::Relaxed) {
            clock.process_cpu_ns()
        } else {
            0
        };
        let mut timers = self.timers.lock();
        let mut fired = 0u64;
        for (i, t) in timers.iter_mut().enumerate() {
            let now = if i == 0 { real_now } else { cpu_now };
            let Some(at) = t.at_ns else { continue };
            if now < at {
                continue;
            }
            fired |= 1 << SIGNALS[i];
            t.at_ns = if t.interval_ns == 0 {
                None
            } else {
                // Missed periods are not queued: one signal, the next
                // expiry an interval after this one (or after now, if
                // that is already past).
                let next = at.saturating_add(t.interval_ns);
                Some(if next <= now {
                    now.saturating_add(t.interval_ns)
                } else {
                    next
                })
            };
        }
        self.note_armed(&timers);
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::mock::MockPlatform;

    fn v(value_ns: u64, interval_ns: u64) -> TimerValue {
        TimerValue {
            value_ns,
            interval_ns,
        }
    }

    #[test]
    fn real_timer_fires_once_or_reloads() {
        let m = MockPlatform::new();
        let t = IntervalTimers::default();
        assert_eq!(t.set(Which::Real, v(1_000, 0), &m), v(0, 0));
        assert_eq!(t.get(Which::Real, &m), v(1_000, 0));
        assert_eq!(t.due(&m), 0);
        m.advance_ns(1_000);
        assert_eq!(t.due(&m), 1 << 14, "SIGALRM");
        assert_eq!(t.due(&m), 0, "once");
        assert_eq!(t.get(Which::Real, &m), v(0, 0), "disarmed");
        t.set(Which::Real, v(500, 300), &m);
        m.advance_ns(2_000);
        assert_eq!(t.due(&m), 1 << 14);
        assert_eq!(t.get(Which::Real, &m), v(300, 300), "reloaded");
        assert_eq!(t.set(Which::Real, v(0, 0), &m), v(300, 300));
        m.advance_ns(10_000);
        assert_eq!(t.due(&m), 0);
    }

    #[test]
    fn cpu_timers_follow_cpu_time_not_wall_time() {
        let m = MockPlatform::new();
        let t = IntervalTimers::default();
        t.set(Which::Virtual, v(300, 200), &m);
        t.set(Which::Prof, v(1_000, 0), &m);
        let slack = CPU_TIMER_SLACK_NS;
        assert_eq!(t.get(Which::Prof, &m), v(1_000 + slack, 0));
        // Waiting (wall time passes, no CPU time): nothing.
        m.advance_ns(1 << 40);
        assert_eq!(t.due(&m), 0);
        m.advance_cpu_ns(slack + 300);
        assert_eq!(t.due(&m), 1 << 26, "SIGVTALRM");
        assert_eq!(t.get(Which::Virtual, &m), v(200, 200));
        m.advance_cpu_ns(700);
        assert_eq!(t.due(&m), (1 << 26) | (1 << 27), "both");
        assert_eq!(t.get(Which::Prof, &m), v(0, 0));
        t.set(Which::Virtual, v(0, 0), &m);
        m.advance_cpu_ns(1 << 40);
        assert_eq!(t.due(&m), 0);
        assert_eq!(Which::from_raw(3).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(Which::from_raw(-1).unwrap_err().errno(), Errno::EINVAL);
    }
}
