//! The interval-timer calls over [`crate::itimer::IntervalTimers`]:
//! `setitimer`, `getitimer` and `alarm`. The kernel raises the signals of
//! expired timers ([`Process::raise_expired_timers`]) at every return to
//! user mode and while threads wait.

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::itimer::{TimerValue, Which};
use crate::process::Process;
use crate::return_errno;
use crate::user::{UserSliceRead, UserSliceWrite};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (36, "getitimer", sys_getitimer),
    (37, "alarm", sys_alarm),
    (38, "setitimer", sys_setitimer),
];

const NS_PER_SEC: u64 = 1_000_000_000;

/// A `struct itimerval` (interval, then value; each `timeval`) in ns;
/// `EINVAL` for a negative time or microseconds out of range.
fn read_itimerval(p: &Process, addr: u64) -> Result<TimerValue> {
    let bytes = UserSliceRead::new(addr, 32)?.read_to_vec(&*p.platform)?;
    let word = |i: usize| i64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let ns = |sec: i64, usec: i64| -> Result<u64> {
        if sec < 0 || !(0..1_000_000).contains(&usec) {
            return_errno!(Errno::EINVAL);
        }
        Ok((sec as u64)
            .saturating_mul(NS_PER_SEC)
            .saturating_add(usec as u64 * 1000))
    };
    Ok(TimerValue {
        interval_ns: ns(word(0), word(1))?,
        value_ns: ns(word(2), word(3))?,
    })
}

/// Writes `v` as a `struct itimerval`, rounding up to whole microseconds
/// (a running timer never reads as disarmed).
fn write_itimerval(p: &Process, addr: u64, v: TimerValue) -> Result<()> {
    let mut b = [0u8; 32];
    for (i, ns) in [v.interval_ns, v.value_ns].into_iter().enumerate() {
        let us = ns.div_ceil(1000);
        b[16 * i..16 * i + 8].copy_from_slice(&(us / 1_000_000).to_le_bytes());
        b[16 * i + 8..16 * i + 16].copy_from_slice(&(us % 1_000_000).to_le_bytes());
    }
    UserSliceWrite::new(addr, 32)?.write(&*p.platform, &b)?;
    Ok(())
}

/// `setitimer(which, new, old)`: a NULL `new` disarms, as Linux.
pub fn sys_setitimer(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let which = Which::from_raw(a.i32(0))?;
    let new = if a.u64(1) == 0 {
        TimerValue::default()
    } else {
        read_itimerval(p, a.u64(1))?
    };
    if a.u64(2) != 0 {
        // Checked before anything changes.
        UserSliceWrite::new(a.u64(2), 32)?;
    }
    let old = p.itimers.set(which, new, &*p.platform);
    if a.u64(2) != 0 {
        write_itimerval(p, a.u64(2), old)?;
    }
    Ok(0)
}

/// `getitimer(which, value)`
pub fn sys_getitimer(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let which = Which::from_raw(a.i32(0))?;
    write_itimerval(p, a.u64(1), p.itimers.get(which, &*p.platform))?;
    Ok(0)
}

/// `alarm(seconds)`: `ITIMER_REAL` one-shot; returns the whole seconds
/// that were left on the previous alarm, rounded to nearest as Linux
/// (at least 1 if one was pending).
pub fn sys_alarm(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let new = TimerValue {
        value_ns: u64::from(a.u32(0)) * NS_PER_SEC,
        interval_ns: 0,
    };
    let old = p.itimers.set(Which::Real, new, &*p.platform);
    if old.value_ns == 0 {
        return Ok(0);
    }
    let secs = (old.value_ns + NS_PER_SEC / 2) / NS_PER_SEC;
    Ok(secs.max(1) as usize)
}

#[cfg(test)]
mod tests {
    use crate::error::Errno;
    use crate::syscall::testing::{Sys, err};
    use crate::user::UserMemory;

    const BUF: u64 = 0x20_0000;

    fn put(h: &Sys, at: u64, words: [i64; 4]) -> u64 {
        let b: alloc::vec::Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        h.m.write_user(at, &b).unwrap();
        at
    }

    fn get(h: &Sys, at: u64) -> [i64; 4] {
        let mut b = [0u8; 32];
        h.m.read_user(at, &mut b).unwrap();
        core::array::from_fn(|i| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap()))
    }

    fn pending(h: &Sys) -> u64 {
        assert_eq!(h.call("rt_sigpending", &[BUF + 0x100, 8]), 0);
        let mut b = [0u8; 8];
        h.m.read_user(BUF + 0x100, &mut b).unwrap();
        u64::from_le_bytes(b)
    }

    #[test]
    fn prof_and_virtual_timers_run_on_cpu_time() {
        let h = Sys::new(BUF, 0x1000);
        // ITIMER_VIRTUAL: 0.3 s, then every 0.2 s.
        let new = put(&h, BUF, [0, 200_000, 0, 300_000]);
        assert_eq!(h.call("setitimer", &[1, new, 0]), 0);
        assert_eq!(h.call("getitimer", &[1, BUF + 0x40]), 0);
        assert_eq!(
            get(&h, BUF + 0x40),
            [0, 200_000, 0, 310_000],
            "one tick later"
        );
        // A second of waiting is no CPU time.
        h.m.advance_ns(1_000_000_000);
        h.p.raise_expired_timers();
        assert_eq!(pending(&h), 0);
        h.m.advance_cpu_ns(310_000_000);
        h.p.raise_expired_timers();
        assert_eq!(pending(&h), 1 << 25, "SIGVTALRM (26)");
        assert_eq!(h.call("getitimer", &[1, BUF + 0x40]), 0);
        assert_eq!(get(&h, BUF + 0x40), [0, 200_000, 0, 200_000]);
        // ITIMER_PROF, replaced: the old value comes back; NULL disarms.
        let new = put(&h, BUF, [0, 0, 1, 0]);
        assert_eq!(h.call("setitimer", &[2, new, 0]), 0);
        assert_eq!(h.call("setitimer", &[2, 0, BUF + 0x40]), 0);
        assert_eq!(get(&h, BUF + 0x40), [0, 0, 1, 10_000]);
        assert_eq!(h.call("getitimer", &[2, BUF + 0x40]), 0);
        assert_eq!(get(&h, BUF + 0x40), [0; 4], "disarmed");
    }

    #[test]
    fn bad_arguments_and_alarm() {
        let h = Sys::new(BUF, 0x1000);
        let ok = put(&h, BUF, [0, 0, 1, 0]);
        assert_eq!(h.call("setitimer", &[3, ok, 0]), err(Errno::EINVAL));
        assert_eq!(
            h.call("getitimer", &[-1i64 as u64, BUF]),
            err(Errno::EINVAL)
        );
        let bad = put(&h, BUF + 0x40, [0, 0, 0, 1_000_000]);
        assert_eq!(h.call("setitimer", &[0, bad, 0]), err(Errno::EINVAL));
        let neg = put(&h, BUF + 0x40, [0, 0, -1, 0]);
        assert_eq!(h.call("setitimer", &[0, neg, 0]), err(Errno::EINVAL));
        assert_eq!(
            h.call("setitimer", &[0, 0xdead_0000, 0]),
            err(Errno::EFAULT)
        );
        assert_eq!(h.call("getitimer", &[0, 0xdead_0000]), err(Errno::EFAULT));
        // alarm: seconds left on the old one, rounded; SIGALRM on wall time.
        assert_eq!(h.call("alarm", &[10]), 0);
        h.m.advance_ns(2_400_000_000);
        assert_eq!(h.call("alarm", &[1]), 8);
        h.m.advance_ns(1_000_000_000);
        h.p.raise_expired_timers();
        assert_eq!(pending(&h), 1 << 13, "SIGALRM (14)");
        assert_eq!(h.call("alarm", &[0]), 0, "nothing was pending");
    }
}
