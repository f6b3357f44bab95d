//! Scheduling and sleeping: `sched_yield`, `sched_getaffinity` (the CPUs
//! that run the program's threads), `sched_setaffinity` (checked, not
//! enforced: every thread may run on every CPU), `getcpu`, `nanosleep` and
//! `clock_nanosleep`
//! through the platform's `Blocker` (a signal ends a sleep with `EINTR`
//! and the time left).

use super::SyscallArgs;
use super::futex::read_timespec_ns;
use super::table::Handler;
use super::time::clock_id::*;
use crate::error::{Errno, Result};
use crate::process::Process;
use crate::return_errno;
use crate::user::UserSliceWrite;

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (24, "sched_yield", sys_sched_yield),
    (35, "nanosleep", sys_nanosleep),
    (203, "sched_setaffinity", sys_sched_setaffinity),
    (204, "sched_getaffinity", sys_sched_getaffinity),
    (230, "clock_nanosleep", sys_clock_nanosleep),
    (309, "getcpu", sys_getcpu),
];

/// Bytes of the kernel's CPU mask (one `unsigned long`: up to 64 CPUs;
/// the kernel uses at most 16).
const CPUMASK_BYTES: usize = 8;

/// The mask of the CPUs that run the program's threads.
fn online_mask(p: &Process) -> u64 {
    match p.platform.cpu_count() {
        0 => 1,
        n if n >= 64 => u64::MAX,
        n => (1u64 << n) - 1,
    }
}

/// `sched_yield()`
pub fn sys_sched_yield(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    p.platform.yield_now();
    Ok(0)
}

/// Whether `pid` is this process or one of its threads (0 = caller):
/// `ESRCH` otherwise, a negative pid included (Linux finds no task for
/// it; glibc and CPython grow the mask on `EINVAL`, so that error would
/// make them loop).
fn check_pid(p: &Process, pid: i32) -> Result<()> {
    if pid < 0 {
        return_errno!(Errno::ESRCH);
    }
    let pid = pid as u32;
    if pid != 0 && pid != p.pid && pid != p.platform.current_tid() {
        return_errno!(Errno::ESRCH);
    }
    Ok(())
}

/// `sched_getaffinity(pid, len, mask)`: every CPU that runs threads;
/// returns the mask size.
pub fn sys_sched_getaffinity(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let len = a.usize(1);
    if len < CPUMASK_BYTES || !len.is_multiple_of(CPUMASK_BYTES) {
        return_errno!(Errno::EINVAL);
    }
    check_pid(p, a.i32(0))?;
    UserSliceWrite::new(a.u64(2), CPUMASK_BYTES)?
        .write(&*p.platform, &online_mask(p).to_le_bytes())?;
    Ok(CPUMASK_BYTES)
}

/// `sched_setaffinity(pid, len, mask)`: `EINVAL` unless a CPU that runs
/// threads is in it (as Linux). The mask is not enforced: threads keep
/// running on every CPU (docs/LINUX_ABI.md).
pub fn sys_sched_setaffinity(p: &Process, a: &SyscallArgs) -> Result<usize> {
    check_pid(p, a.i32(0))?;
    let n = a.usize(1).min(CPUMASK_BYTES);
    let mut mask = [0u8; CPUMASK_BYTES];
    if n > 0 {
        crate::user::UserSliceRead::new(a.u64(2), n)?;
        p.platform.read_user(a.u64(2), &mut mask[..n])?;
    }
    if u64::from_le_bytes(mask) & online_mask(p) == 0 {
        return_errno!(Errno::EINVAL);
    }
    Ok(0)
}

/// `getcpu(cpu, node, tcache)`: the caller's CPU, node 0 (either pointer
/// may be NULL; `tcache` is ignored, as since Linux 2.6.24).
pub fn sys_getcpu(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let cpu = p.platform.current_cpu();
    for (ptr, value) in [(a.u64(0), cpu), (a.u64(1), 0)] {
        if ptr != 0 {
            UserSliceWrite::new(ptr, 4)?.write(&*p.platform, &value.to_le_bytes())?;
        }
    }
    Ok(0)
}

/// Sleeps until the monotonic `deadline`; on `EINTR` writes the time left
/// to `rem` (if not NULL).
fn sleep_until(p: &Process, deadline: u64, rem: u64) -> Result<usize> {
    match p.platform.block_until(&mut || false, Some(deadline)) {
        Ok(_) => Ok(0),
        Err(e) => {
            if e.errno() == Errno::EINTR && rem != 0 {
                let left = deadline.saturating_sub(p.platform.monotonic_ns());
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&(left / 1_000_000_000).to_le_bytes());
                b[8..].copy_from_slice(&(left % 1_000_000_000).to_le_bytes());
                UserSliceWrite::new(rem, 16)?.write(&*p.platform, &b)?;
            }
            Err(e)
        }
    }
}

/// `nanosleep(req, rem)`
pub fn sys_nanosleep(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let t = read_timespec_ns(p, a.u64(0))?;
    let deadline = p.platform.monotonic_ns().saturating_add(t);
    sleep_until(p, deadline, a.u64(1))
}

/// `TIMER_ABSTIME`
const TIMER_ABSTIME: i32 = 1;

/// Sleeps until the program's CPU time reaches `target` (other threads
/// must run for it to move); on `EINTR` writes the CPU time left to `rem`
/// (if not NULL).
fn sleep_until_cpu(p: &Process, target: u64, rem: u64) -> Result<usize> {
    let platform = &*p.platform;
    match platform.block_until(&mut || platform.process_cpu_ns() >= target, None) {
        Ok(_) => Ok(0),
        Err(e) => {
            if e.errno() == Errno::EINTR && rem != 0 {
                let left = target.saturating_sub(platform.process_cpu_ns());
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&(left / 1_000_000_000).to_le_bytes());
                b[8..].copy_from_slice(&(left % 1_000_000_000).to_le_bytes());
                UserSliceWrite::new(rem, 16)?.write(platform, &b)?;
            }
            Err(e)
        }
    }
}

/// `clock_nanosleep(clock, flags, req, rem)`: `REALTIME` (and `TAI`),
/// `MONOTONIC`, `BOOTTIME`, `PROCESS_CPUTIME_ID` (until the program's CPU
/// time, which the other threads' work moves, reaches the time);
/// `EINVAL` for the thread CPU clock and unknown ids, `EOPNOTSUPP` for the
/// raw and coarse clocks, as Linux. `rem` is written only for a relative
/// sleep.
pub fn sys_clock_nanosleep(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (clock, flags) = (a.i32(0), a.i32(1));
    if clock == CLOCK_PROCESS_CPUTIME_ID {
        let t = read_timespec_ns(p, a.u64(2))?;
        if flags & TIMER_ABSTIME != 0 {
            return sleep_until_cpu(p, t, 0);
        }
        let target = p.platform.process_cpu_ns().saturating_add(t);
        return sleep_until_cpu(p, target, a.u64(3));
    }
    let realtime = match clock {
        CLOCK_REALTIME | CLOCK_TAI => true,
        CLOCK_MONOTONIC | CLOCK_BOOTTIME => false,
        CLOCK_MONOTONIC_RAW | CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE => {
            return_errno!(Errno::EOPNOTSUPP)
        }
        _ => return_errno!(Errno::EINVAL),
    };
    let t = read_timespec_ns(p, a.u64(2))?;
    let now = p.platform.monotonic_ns();
    if flags & TIMER_ABSTIME == 0 {
        return sleep_until(p, now.saturating_add(t), a.u64(3));
    }
    let deadline = if realtime {
        now.saturating_add(t.saturating_sub(p.platform.realtime_ns()))
    } else {
        t
    };
    sleep_until(p, deadline, 0)
}
