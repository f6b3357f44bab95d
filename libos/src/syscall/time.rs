//! Time syscalls over the platform [`Clock`](crate::platform::Clock):
//! `clock_gettime`, `clock_getres`, `gettimeofday`, `time`, and
//! `clock_settime`/`settimeofday`, which a program may not use: the wall
//! clock is the host's (kept to it by the kernel), so setting it is
//! `EPERM`, as for a process without `CAP_SYS_TIME`. (Sleeping is in
//! `syscall::sched`.)

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::process::Process;
use crate::return_errno;
use crate::user::{UserPtr, UserSliceWrite};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (96, "gettimeofday", sys_gettimeofday),
    (164, "settimeofday", sys_settimeofday),
    (201, "time", sys_time),
    (227, "clock_settime", sys_clock_settime),
    (228, "clock_gettime", sys_clock_gettime),
    (229, "clock_getres", sys_clock_getres),
];

/// Clock ids (`linux/time.h`).
#[allow(missing_docs, reason = "the names are Linux's; see clock_gettime(2)")]
pub mod clock_id {
    pub const CLOCK_REALTIME: i32 = 0;
    pub const CLOCK_MONOTONIC: i32 = 1;
    pub const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    pub const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    pub const CLOCK_MONOTONIC_RAW: i32 = 4;
    pub const CLOCK_REALTIME_COARSE: i32 = 5;
    pub const CLOCK_MONOTONIC_COARSE: i32 = 6;
    pub const CLOCK_BOOTTIME: i32 = 7;
    pub const CLOCK_TAI: i32 = 11;
}
use clock_id::*;

/// Resolution reported for the coarse clocks (a 250 Hz tick).
const COARSE_RESOLUTION_NS: u64 = 4_000_000;

/// The time of clock `id` in nanoseconds. The CPU-time clocks report the
/// CPU time the platform accounts (the kernel's scheduler, per thread).
fn clock_ns(p: &Process, id: i32) -> Result<u64> {
    match id {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_TAI => Ok(p.platform.realtime_ns()),
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_MONOTONIC_COARSE | CLOCK_BOOTTIME => {
            Ok(p.platform.monotonic_ns())
        }
        CLOCK_PROCESS_CPUTIME_ID => Ok(p.platform.process_cpu_ns()),
        CLOCK_THREAD_CPUTIME_ID => Ok(p.platform.thread_cpu_ns()),
        id if id < 0 => cpu_clock_ns(p, id),
        _ => return_errno!(Errno::EINVAL),
    }
}

/// A CPU-time clock id made by `clock_getcpuclockid` or
/// `pthread_getcpuclockid`: `(~pid << 3) | kind`, bit 2 set for a thread,
/// kind 0 (`PROF`), 1 (`VIRT`) or 2 (`SCHED`). Cloister accounts CPU time
/// for the calling thread and the calling process (all the same kinds):
/// those clocks are read; any other pid or tid is `EINVAL`, what Linux
/// answers for one that does not exist.
fn cpu_clock_ns(p: &Process, id: i32) -> Result<u64> {
    const PER_THREAD: i32 = 4;
    if id & 3 == 3 {
        return_errno!(Errno::EINVAL);
    }
    let who = !(id >> 3) as u32;
    if id & PER_THREAD != 0 {
        if who == p.platform.current_tid() {
            return Ok(p.platform.thread_cpu_ns());
        }
    } else if who == 0 || who == p.pid {
        return Ok(p.platform.process_cpu_ns());
    }
    return_errno!(Errno::EINVAL)
}

/// Writes a `struct timespec` (or `timeval` when `unit_ns` is 1000).
fn write_time(p: &Process, addr: u64, ns: u64, unit_ns: u64) -> Result<()> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    b[8..].copy_from_slice(&((ns % 1_000_000_000) / unit_ns).to_le_bytes());
    UserSliceWrite::new(addr, 16)?.write(&*p.platform, &b)?;
    Ok(())
}

/// `clock_gettime(clockid, tp)`
pub fn sys_clock_gettime(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let ns = clock_ns(p, a.i32(0))?;
    write_time(p, a.u64(1), ns, 1)?;
    Ok(0)
}

/// `clock_getres(clockid, res)`: `res` may be NULL.
pub fn sys_clock_getres(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let id = a.i32(0);
    clock_ns(p, id)?;
    let res = if matches!(id, CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE) {
        COARSE_RESOLUTION_NS
    } else {
        1
    };
    if a.u64(1) != 0 {
        write_time(p, a.u64(1), res, 1)?;
    }
    Ok(0)
}

/// `gettimeofday(tv, tz)`: either may be NULL; the time zone is UTC.
pub fn sys_gettimeofday(p: &Process, a: &SyscallArgs) -> Result<usize> {
    if a.u64(0) != 0 {
        write_time(p, a.u64(0), p.platform.realtime_ns(), 1000)?;
    }
    if a.u64(1) != 0 {
        UserSliceWrite::new(a.u64(1), 8)?.write(&*p.platform, &[0; 8])?;
    }
    Ok(0)
}

/// `time(tloc)`: seconds since the epoch, also stored at `tloc` if set.
pub fn sys_time(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let secs = p.platform.realtime_ns() / 1_000_000_000;
    if a.u64(0) != 0 {
        UserPtr::<u64>::new(a.u64(0)).write(&*p.platform, secs)?;
    }
    Ok(secs as usize)
}

/// `clock_settime(id, tp)`: the time is checked as Linux does (`EFAULT`,
/// `EINVAL` for a bad time or a clock that cannot be set), then refused.
pub fn sys_clock_settime(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let id = a.i32(0);
    crate::syscall::futex::read_timespec_ns(p, a.u64(1))?;
    match id {
        CLOCK_REALTIME => return_errno!(Errno::EPERM),
        _ => return_errno!(Errno::EINVAL),
    }
}

/// `settimeofday(tv, tz)`: nothing to set is success; anything else is
/// checked, then refused.
pub fn sys_settimeofday(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (tv, tz) = (a.u64(0), a.u64(1));
    if tv != 0 {
        let usec = UserPtr::<i64>::new(tv + 8).read(&*p.platform)?;
        let sec = UserPtr::<i64>::new(tv).read(&*p.platform)?;
        if sec < 0 || !(0..1_000_000).contains(&usec) {
            return_errno!(Errno::EINVAL);
        }
    }
    if tz != 0 {
        UserPtr::<u64>::new(tz).read(&*p.platform)?;
    }
    if tv == 0 && tz == 0 {
        return Ok(0);
    }
    return_errno!(Errno::EPERM)
}
