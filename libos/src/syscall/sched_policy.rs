//! Scheduling policies: `sched_getscheduler`, `sched_setscheduler`,
//! `sched_getparam`, `sched_setparam`, `sched_get_priority_min`/`max`,
//! `sched_rr_get_interval`.
//!
//! Cloister runs every thread alike, under what Linux calls `SCHED_OTHER`
//! with static priority 0: that is what the getters report. Setting
//! `SCHED_OTHER` (priority 0) is a no-op that succeeds; `SCHED_BATCH` and
//! `SCHED_IDLE` (also priority 0) and the real-time policies `SCHED_FIFO`
//! and `SCHED_RR` are refused with `EPERM`, as for a Linux process without
//! `CAP_SYS_NICE`, since nothing would honour them. Arguments are checked
//! as Linux does (`EINVAL` for a negative pid, an unknown policy or a
//! priority out of the policy's range; `ESRCH` for no such process).

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::process::Process;
use crate::return_errno;
use crate::user::{UserPtr, UserSliceWrite};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (142, "sched_setparam", sys_sched_setparam),
    (143, "sched_getparam", sys_sched_getparam),
    (144, "sched_setscheduler", sys_sched_setscheduler),
    (145, "sched_getscheduler", sys_sched_getscheduler),
    (146, "sched_get_priority_max", sys_sched_get_priority_max),
    (147, "sched_get_priority_min", sys_sched_get_priority_min),
    (148, "sched_rr_get_interval", sys_sched_rr_get_interval),
];

/// `SCHED_OTHER`
pub const SCHED_OTHER: u32 = 0;
/// `SCHED_FIFO`
pub const SCHED_FIFO: u32 = 1;
/// `SCHED_RR`
pub const SCHED_RR: u32 = 2;
/// `SCHED_BATCH`
pub const SCHED_BATCH: u32 = 3;
/// `SCHED_IDLE`
pub const SCHED_IDLE: u32 = 5;
/// `SCHED_DEADLINE` (set only through `sched_setattr`).
pub const SCHED_DEADLINE: u32 = 6;
/// `SCHED_RESET_ON_FORK`, or-ed into a policy.
pub const SCHED_RESET_ON_FORK: u32 = 0x4000_0000;

/// The real-time priority range of `policy`: `Some((min, max))`, `None`
/// for an unknown policy.
fn priority_range(policy: u32) -> Option<(i32, i32)> {
    match policy {
        SCHED_FIFO | SCHED_RR => Some((1, 99)),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Some((0, 0)),
        _ => None,
    }
}

/// Checks that `pid` (0: the caller) names a live process or one of the
/// caller's threads: `EINVAL` if negative, `ESRCH` if unknown.
fn check_target(p: &Process, pid: i32) -> Result<()> {
    if pid < 0 {
        return_errno!(Errno::EINVAL);
    }
    let pid = pid as u32;
    let known = pid == 0
        || pid == p.pid
        || pid == p.platform.current_tid()
        || p.processes.process(pid).is_some();
    if !known {
        return_errno!(Errno::ESRCH);
    }
    Ok(())
}

/// Reads `struct sched_param` (one `int`): `EINVAL` for NULL.
fn read_param(p: &Process, addr: u64) -> Result<i32> {
    if addr == 0 {
        return_errno!(Errno::EINVAL);
    }
    UserPtr::<i32>::new(addr).read(&*p.platform)
}

/// Checks `policy` and `priority` and applies them: only `SCHED_OTHER`
/// with priority 0 is taken (it is what every thread has).
fn set_policy(policy: u32, priority: i32) -> Result<usize> {
    let Some((min, max)) = priority_range(policy) else {
        return_errno!(Errno::EINVAL);
    };
    if policy == SCHED_DEADLINE || priority < min || priority > max {
        return_errno!(Errno::EINVAL);
    }
    if policy != SCHED_OTHER {
        return_errno!(Errno::EPERM);
    }
    Ok(0)
}

/// `sched_getscheduler(pid)`: `SCHED_OTHER`.
pub fn sys_sched_getscheduler(p: &Process, a: &SyscallArgs) -> Result<usize> {
    check_target(p, a.i32(0))?;
    Ok(SCHED_OTHER as usize)
}

/// `sched_getparam(pid, param)`: priority 0.
pub fn sys_sched_getparam(p: &Process, a: &SyscallArgs) -> Result<usize> {
    if a.u64(1) == 0 || a.i32(0) < 0 {
        return_errno!(Errno::EINVAL);
    }
    check_target(p, a.i32(0))?;
    UserSliceWrite::new(a.u64(1), 4)?.write(&*p.platform, &0i32.to_le_bytes())?;
    Ok(0)
}

/// `sched_setscheduler(pid, policy, param)`
pub fn sys_sched_setscheduler(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let policy = a.i32(1);
    if policy < 0 || a.u64(2) == 0 || a.i32(0) < 0 {
        return_errno!(Errno::EINVAL);
    }
    let priority = read_param(p, a.u64(2))?;
    check_target(p, a.i32(0))?;
    set_policy(policy as u32 & !SCHED_RESET_ON_FORK, priority)
}

/// `sched_setparam(pid, param)`: the priority for the current policy,
/// `SCHED_OTHER`, so 0.
pub fn sys_sched_setparam(p: &Process, a: &SyscallArgs) -> Result<usize> {
    if a.u64(1) == 0 || a.i32(0) < 0 {
        return_errno!(Errno::EINVAL);
    }
    let priority = read_param(p, a.u64(1))?;
    check_target(p, a.i32(0))?;
    set_policy(SCHED_OTHER, priority)
}

/// `sched_get_priority_max(policy)`
pub fn sys_sched_get_priority_max(_p: &Process, a: &SyscallArgs) -> Result<usize> {
    match priority_range(a.u32(0)) {
        Some((_, max)) if a.i32(0) >= 0 => Ok(max as usize),
        _ => return_errno!(Errno::EINVAL),
    }
}

/// `sched_get_priority_min(policy)`
pub fn sys_sched_get_priority_min(_p: &Process, a: &SyscallArgs) -> Result<usize> {
    match priority_range(a.u32(0)) {
        Some((min, _)) if a.i32(0) >= 0 => Ok(min as usize),
        _ => return_errno!(Errno::EINVAL),
    }
}

/// `sched_rr_get_interval(pid, tp)`: 0 s, as Linux reports for a policy
/// without a round-robin slice (Cloister has none to report).
pub fn sys_sched_rr_get_interval(p: &Process, a: &SyscallArgs) -> Result<usize> {
    check_target(p, a.i32(0))?;
    UserSliceWrite::new(a.u64(1), 16)?.write(&*p.platform, &[0u8; 16])?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use crate::error::Errno;
    use crate::syscall::testing::{Sys, err};
    use crate::user::UserMemory;

    const BUF: u64 = 0x40_0000;

    fn param(s: &Sys, priority: i32) -> u64 {
        s.m.write_user(BUF, &priority.to_le_bytes()).unwrap();
        BUF
    }

    #[test]
    fn every_thread_is_sched_other_with_priority_zero() {
        let s = Sys::new(BUF, 0x1000);
        assert_eq!(s.call("sched_getscheduler", &[0]), 0);
        assert_eq!(
            s.call("sched_getscheduler", &[-1i64 as u64]),
            err(Errno::EINVAL)
        );
        assert_eq!(s.call("sched_getscheduler", &[4242]), err(Errno::ESRCH));
        s.m.write_user(BUF + 8, &[0xff; 4]).unwrap();
        assert_eq!(s.call("sched_getparam", &[0, BUF + 8]), 0);
        let mut b = [0u8; 4];
        s.m.read_user(BUF + 8, &mut b).unwrap();
        assert_eq!(i32::from_le_bytes(b), 0);
        assert_eq!(s.call("sched_getparam", &[0, 0]), err(Errno::EINVAL));
        assert_eq!(
            s.call("sched_getparam", &[0, 0xdead_0000]),
            err(Errno::EFAULT)
        );
        s.m.write_user(BUF + 16, &[0xff; 16]).unwrap();
        assert_eq!(s.call("sched_rr_get_interval", &[0, BUF + 16]), 0);
        let mut ts = [0xffu8; 16];
        s.m.read_user(BUF + 16, &mut ts).unwrap();
        assert_eq!(ts, [0; 16]);
    }

    #[test]
    fn setting_keeps_sched_other_and_refuses_the_rest() {
        let s = Sys::new(BUF, 0x1000);
        assert_eq!(s.call("sched_setscheduler", &[0, 0, param(&s, 0)]), 0);
        assert_eq!(s.call("sched_setparam", &[0, param(&s, 0)]), 0);
        assert_eq!(
            s.call("sched_setparam", &[0, param(&s, 1)]),
            err(Errno::EINVAL)
        );
        assert_eq!(
            s.call("sched_setscheduler", &[0, 0, param(&s, 5)]),
            err(Errno::EINVAL)
        );
        assert_eq!(
            s.call("sched_setscheduler", &[0, 1, param(&s, 10)]),
            err(Errno::EPERM)
        );
        assert_eq!(
            s.call("sched_setscheduler", &[0, 1, param(&s, 0)]),
            err(Errno::EINVAL)
        );
        assert_eq!(
            s.call("sched_setscheduler", &[0, 3, param(&s, 0)]),
            err(Errno::EPERM)
        );
        assert_eq!(
            s.call("sched_setscheduler", &[0, 4, param(&s, 0)]),
            err(Errno::EINVAL)
        );
        assert_eq!(
            s.call("sched_setscheduler", &[0, -1i64 as u64, param(&s, 0)]),
            err(Errno::EINVAL)
        );
        assert_eq!(s.call("sched_setscheduler", &[0, 0, 0]), err(Errno::EINVAL));
        assert_eq!(
            s.call("sched_setscheduler", &[0, 0x4000_0000, param(&s, 0)]),
            0,
            "SCHED_RESET_ON_FORK with SCHED_OTHER"
        );
    }

    #[test]
    fn priority_ranges_are_linuxs() {
        let s = Sys::new(BUF, 0x1000);
        for (policy, min, max) in [(0, 0, 0), (1, 1, 99), (2, 1, 99), (3, 0, 0), (5, 0, 0)] {
            assert_eq!(s.call("sched_get_priority_min", &[policy]), min);
            assert_eq!(s.call("sched_get_priority_max", &[policy]), max);
        }
        assert_eq!(s.call("sched_get_priority_max", &[4]), err(Errno::EINVAL));
        assert_eq!(
            s.call("sched_get_priority_min", &[-1i64 as u64]),
            err(Errno::EINVAL)
        );
    }
}
