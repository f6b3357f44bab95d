//! The POSIX timer calls over [`crate::ptimer::PosixTimers`]:
//! `timer_create`, `timer_settime`, `timer_gettime`, `timer_getoverrun`,
//! `timer_delete`. The kernel raises the signals of expired timers
//! ([`Process::raise_expired_timers`]) at every return to user mode and
//! while threads wait; a handler's `siginfo` has `si_code` `SI_TIMER`
//! with the timer id, overrun count and `sigev_value`.

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::process::Process;
use crate::ptimer::{Notify, TimerClock, TimerSpec};
use crate::user::{UserPtr, UserSliceRead, UserSliceWrite};
use crate::{return_errno, return_errno_with_message};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (222, "timer_create", sys_timer_create),
    (223, "timer_settime", sys_timer_settime),
    (224, "timer_gettime", sys_timer_gettime),
    (225, "timer_getoverrun", sys_timer_getoverrun),
    (226, "timer_delete", sys_timer_delete),
];

const NS_PER_SEC: u64 = 1_000_000_000;
const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD_ID: i32 = 4;
const TIMER_ABSTIME: u32 = 1;

/// `struct sigevent`'s fields the kernel reads: value, signal, notify,
/// and the thread of `SIGEV_THREAD_ID` (20 bytes of its 64).
fn read_sigevent(p: &Process, addr: u64) -> Result<Notify> {
    let b = UserSliceRead::new(addr, 20)?.read_to_vec(&*p.platform)?;
    let int = |at: usize| i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let value = u64::from_le_bytes(b[0..8].try_into().unwrap_or([0; 8]));
    let (signo, notify, tid) = (int(8), int(12), int(16));
    let valid_signal = (1..=64).contains(&signo);
    match notify {
        SIGEV_NONE => Ok(Notify::None),
        SIGEV_SIGNAL if valid_signal => Ok(Notify::Signal {
            signo: signo as u32,
            value,
            tid: None,
        }),
        SIGEV_THREAD_ID if valid_signal => {
            // Only a thread of the calling process.
            let known =
                tid > 0 && (tid as u32 == p.pid || p.signals.lock().knows_thread(tid as u32));
            if !known {
                return_errno_with_message!(
                    Errno::EINVAL,
                    "SIGEV_THREAD_ID names no thread of the process"
                );
            }
            Ok(Notify::Signal {
                signo: signo as u32,
                value,
                tid: Some(tid as u32),
            })
        }
        // SIGEV_THREAD is the C library's (it creates a thread and asks
        // for SIGEV_THREAD_ID), as on Linux; anything else is invalid.
        _ => return_errno!(Errno::EINVAL),
    }
}

/// `timer_create(clockid, sevp, timerid)`: a null `sevp` sends `SIGALRM`
/// with the timer id as value. `EINVAL` for a clock other than realtime,
/// monotonic, boottime (and their alarm forms) and the process's CPU
/// time; `EAGAIN` past [`crate::ptimer::MAX_TIMERS`].
pub fn sys_timer_create(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let clock = TimerClock::from_id(a.i32(0))?;
    let out = UserPtr::<i32>::new(a.u64(2));
    UserSliceWrite::new(a.u64(2), 4)?;
    let id = match a.u64(1) {
        0 => p.ptimers.create_default(clock)?,
        sevp => p.ptimers.create(clock, read_sigevent(p, sevp)?)?,
    };
    if let Err(e) = out.write(&*p.platform, id) {
        // Linux creates nothing when it cannot tell the id.
        let _ = p.ptimers.delete(id);
        return Err(e);
    }
    Ok(0)
}

/// A `struct itimerspec` (interval, then value; each `timespec`) in ns;
/// `EINVAL` for a negative time or nanoseconds out of range.
fn read_itimerspec(p: &Process, addr: u64) -> Result<TimerSpec> {
    let b = UserSliceRead::new(addr, 32)?.read_to_vec(&*p.platform)?;
    let word = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let ns = |sec: i64, nsec: i64| -> Result<u64> {
        if sec < 0 || !(0..NS_PER_SEC as i64).contains(&nsec) {
            return_errno!(Errno::EINVAL);
        }
        Ok((sec as u64)
            .saturating_mul(NS_PER_SEC)
            .saturating_add(nsec as u64))
    };
    Ok(TimerSpec {
        interval_ns: ns(word(0), word(1))?,
        value_ns: ns(word(2), word(3))?,
    })
}

fn write_itimerspec(p: &Process, addr: u64, v: TimerSpec) -> Result<()> {
    let mut b = [0u8; 32];
    for (i, ns) in [v.interval_ns, v.value_ns].into_iter().enumerate() {
        b[16 * i..16 * i + 8].copy_from_slice(&(ns / NS_PER_SEC).to_le_bytes());
        b[16 * i + 8..16 * i + 16].copy_from_slice(&(ns % NS_PER_SEC).to_le_bytes());
    }
    UserSliceWrite::new(addr, 32)?.write(&*p.platform, &b)?;
    Ok(())
}

/// `timer_settime(id, flags, new, old)`: `TIMER_ABSTIME` takes `new`'s
/// value as a time on the timer's clock.
pub fn sys_timer_settime(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let id = a.i32(0);
    let flags = a.u32(1);
    if flags & !TIMER_ABSTIME != 0 {
        return_errno!(Errno::EINVAL);
    }
    let new = read_itimerspec(p, a.u64(2))?;
    if a.u64(3) != 0 {
        UserSliceWrite::new(a.u64(3), 32)?;
    }
    let old = p
        .ptimers
        .set(id, new, flags & TIMER_ABSTIME != 0, &*p.platform)?;
    if a.u64(3) != 0 {
        write_itimerspec(p, a.u64(3), old)?;
    }
    Ok(0)
}

/// `timer_gettime(id, curr)`.
pub fn sys_timer_gettime(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let v = p.ptimers.get(a.i32(0), &*p.platform)?;
    write_itimerspec(p, a.u64(1), v)?;
    Ok(0)
}

/// `timer_getoverrun(id)`: the overrun count of its last signal.
pub fn sys_timer_getoverrun(p: &Process, a: &SyscallArgs) -> Result<usize> {
    Ok(p.ptimers.overrun(a.i32(0))? as usize)
}

/// `timer_delete(id)`: a signal of it still pending arrives without its
/// details.
pub fn sys_timer_delete(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let id = a.i32(0);
    p.ptimers.delete(id)?;
    p.signals.lock().forget_timer(id);
    Ok(0)
}

#[cfg(test)]
mod tests;
