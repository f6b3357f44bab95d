//! Process identity, limits and accounting: `getpid`, the process-group
//! and session calls over `crate::ptable` (pid 1 leads its group and
//! session, as a container's init; `getppid` is in `super::wait`), `getrlimit`, `setrlimit`,
//! `prlimit64`, `getrusage`, `times`, `sysinfo`, `pidfd_open`
//! (the `pidfd` module).
//!
//! CPU time comes from the platform (`Clock::process_cpu_ns`,
//! `thread_cpu_ns`; the kernel's scheduler accounts it per thread) and is
//! reported as user time; system time is 0.

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::process::Process;
use crate::return_errno;
use crate::rlimit::{RLIMIT_NOFILE, Rlimit};
use crate::user::{UserPtr, UserSliceWrite};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (39, "getpid", sys_getpid),
    (97, "getrlimit", sys_getrlimit),
    (98, "getrusage", sys_getrusage),
    (99, "sysinfo", sys_sysinfo),
    (100, "times", sys_times),
    (109, "setpgid", sys_setpgid),
    (111, "getpgrp", sys_getpgrp),
    (112, "setsid", sys_setsid),
    (121, "getpgid", sys_getpgid),
    (124, "getsid", sys_getsid),
    (160, "setrlimit", sys_setrlimit),
    (157, "prctl", sys_prctl),
    (302, "prlimit64", sys_prlimit64),
    (434, "pidfd_open", pidfd::sys_pidfd_open),
];

mod pidfd;

const PR_SET_PDEATHSIG: i32 = 1;
const PR_GET_PDEATHSIG: i32 = 2;
const PR_GET_DUMPABLE: i32 = 3;
const PR_SET_DUMPABLE: i32 = 4;
const PR_SET_NAME: i32 = 15;
const PR_GET_NAME: i32 = 16;

/// `prctl(option, …)`: the thread name (`PR_SET_NAME`/`PR_GET_NAME`, 16
/// bytes with the NUL), the dumpable flag (always 1; setting 0/1 is
/// accepted) and the parent-death signal (sent when the parent process
/// exits: `crate::ptable::ProcessTable::exit`). Every other option is `EINVAL`, as Linux answers for options it
/// does not know.
pub fn sys_prctl(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let tid = p.platform.current_tid();
    match a.i32(0) {
        PR_SET_NAME => {
            let name = crate::user::read_cstring(&*p.platform, a.u64(1), 4096)?;
            let mut buf = [0u8; 16];
            let n = name.len().min(15);
            buf[..n].copy_from_slice(&name[..n]);
            p.thread_names.lock().insert(tid, buf);
            Ok(0)
        }
        PR_GET_NAME => {
            let buf = p.thread_names.lock().get(&tid).copied().unwrap_or_else(|| {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(b"cloister");
                b
            });
            UserSliceWrite::new(a.u64(1), 16)?.write(&*p.platform, &buf)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_DUMPABLE if a.u64(1) <= 1 => Ok(0),
        PR_SET_PDEATHSIG if a.u64(1) < 65 => {
            p.death_signal
                .store(a.u32(1), core::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            let sig = p.death_signal.load(core::sync::atomic::Ordering::Relaxed);
            UserPtr::<i32>::new(a.u64(1)).write(&*p.platform, sig as i32)?;
            Ok(0)
        }
        _ => return_errno!(Errno::EINVAL),
    }
}

/// `getpid()` (and `getpgrp()`: the process leads its group).
pub fn sys_getpid(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    Ok(p.pid as usize)
}

/// `getpgrp()`: the caller's process group (forked children stay in
/// their parent's).
pub fn sys_getpgrp(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    Ok(p.processes.pgid_of(p.pid).unwrap_or(p.pid) as usize)
}

/// Whether `pid` names this process (0 means the caller).
fn is_self(p: &Process, pid: i32) -> Result<()> {
    if pid < 0 || (pid != 0 && pid as u32 != p.pid) {
        return_errno!(Errno::ESRCH);
    }
    Ok(())
}

/// `pid` of a call where 0 means the caller (`ESRCH` if negative).
fn target(p: &Process, pid: i32) -> Result<u32> {
    match pid {
        0 => Ok(p.pid),
        n if n < 0 => return_errno!(Errno::ESRCH),
        n => Ok(n as u32),
    }
}

/// `getpgid(pid)`: the group of the caller (0) or of any process.
pub fn sys_getpgid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let pid = target(p, a.i32(0))?;
    match p.processes.pgid_of(pid) {
        Some(g) => Ok(g as usize),
        // A process outside any table (host tests): itself only.
        None if pid == p.pid => Ok(p.pid as usize),
        None => return_errno!(Errno::ESRCH),
    }
}

/// `getsid(pid)`: the session of the caller (0) or of any process.
pub fn sys_getsid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let pid = target(p, a.i32(0))?;
    match p.processes.sid_of(pid) {
        Some(s) => Ok(s as usize),
        None if pid == p.pid => Ok(p.pid as usize),
        None => return_errno!(Errno::ESRCH),
    }
}

/// `setsid()`: a new session and group led by the caller; `EPERM` for a
/// group leader (init is one).
pub fn sys_setsid(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    match p.processes.set_sid(p.pid) {
        Ok(sid) => Ok(sid as usize),
        Err(e) if e.errno() == Errno::ESRCH => return_errno!(Errno::EPERM),
        Err(e) => Err(e),
    }
}

/// `setpgid(pid, pgid)`: moves the caller or one of its children to
/// another group of its session (`crate::ptable::ProcessTable::set_pgid`).
pub fn sys_setpgid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    if a.i32(1) < 0 {
        return_errno!(Errno::EINVAL);
    }
    let pid = target(p, a.i32(0))?;
    let pgid = if a.i32(1) == 0 { pid } else { a.u32(1) };
    if p.processes.pgid_of(p.pid).is_none() {
        // A process outside any table (host tests): it leads its session.
        is_self(p, a.i32(0))?;
        return_errno!(Errno::EPERM);
    }
    p.processes.set_pgid(p.pid, pid, pgid)?;
    Ok(0)
}

fn read_rlimit(p: &Process, addr: u64) -> Result<Rlimit> {
    Ok(Rlimit {
        soft: UserPtr::<u64>::new(addr).read(&*p.platform)?,
        hard: UserPtr::<u64>::new(addr + 8).read(&*p.platform)?,
    })
}

fn write_rlimit(p: &Process, addr: u64, l: Rlimit) -> Result<()> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&l.soft.to_le_bytes());
    b[8..].copy_from_slice(&l.hard.to_le_bytes());
    UserSliceWrite::new(addr, 16)?.write(&*p.platform, &b)?;
    Ok(())
}

/// Sets a limit and applies `RLIMIT_NOFILE` to the fd table.
fn set_limit(p: &Process, resource: u32, new: Rlimit) -> Result<()> {
    p.rlimits.lock().set(resource, new)?;
    if resource as usize == RLIMIT_NOFILE {
        p.fds.lock().set_limit(new.soft as usize);
    }
    Ok(())
}

/// `getrlimit(resource, rlim)`
pub fn sys_getrlimit(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let l = p.rlimits.lock().get(a.u32(0))?;
    write_rlimit(p, a.u64(1), l)?;
    Ok(0)
}

/// `setrlimit(resource, rlim)`
pub fn sys_setrlimit(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let new = read_rlimit(p, a.u64(1))?;
    set_limit(p, a.u32(0), new)?;
    Ok(0)
}

/// `prlimit64(pid, resource, new, old)`: either pointer may be NULL; the
/// old value is read before the new one is set.
pub fn sys_prlimit64(p: &Process, a: &SyscallArgs) -> Result<usize> {
    is_self(p, a.i32(0))?;
    let resource = a.u32(1);
    let new = if a.u64(2) != 0 {
        Some(read_rlimit(p, a.u64(2))?)
    } else {
        None
    };
    let old = p.rlimits.lock().get(resource)?;
    if let Some(new) = new {
        set_limit(p, resource, new)?;
    }
    if a.u64(3) != 0 {
        write_rlimit(p, a.u64(3), old)?;
    }
    Ok(0)
}

/// Bytes of present pages in the address space (the resident set).
fn resident_bytes(p: &Process) -> u64 {
    let vm = p.vm.lock();
    let mapped: u64 = vm.areas().map(|v| v.len()).sum();
    let absent: u64 = vm
        .areas()
        .flat_map(|v| vm.unpopulated_in(v.start, v.end))
        .map(|r| r.end - r.start)
        .sum();
    mapped.saturating_sub(absent)
}

/// `getrusage(who, usage)`: `RUSAGE_SELF` (all threads) and `RUSAGE_THREAD`
/// report their CPU time as user time and the resident size as `ru_maxrss`;
/// `RUSAGE_CHILDREN` is all zero (no children).
pub fn sys_getrusage(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let mut b = [0u8; 144];
    match a.i32(0) {
        0 | 1 => {
            // User time: all of it (the split from system time is not kept).
            let ns = if a.i32(0) == 0 {
                p.platform.process_cpu_ns()
            } else {
                p.platform.thread_cpu_ns()
            };
            b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
            b[8..16].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
            b[32..40].copy_from_slice(&(resident_bytes(p) / 1024).to_le_bytes());
        }
        -1 => {}
        _ => return_errno!(Errno::EINVAL),
    }
    UserSliceWrite::new(a.u64(1), b.len())?.write(&*p.platform, &b)?;
    Ok(0)
}

/// Clock ticks per second (`AT_CLKTCK`, `USER_HZ`).
const TICKS_PER_SEC: u64 = 100;

/// `times(buf)`: ticks since boot; `tms_utime` the program's CPU time, the
/// rest 0. `buf` may be NULL.
pub fn sys_times(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let tick_ns = 1_000_000_000 / TICKS_PER_SEC;
    let ticks = p.platform.monotonic_ns() / tick_ns;
    if a.u64(0) != 0 {
        // tms_utime: the program's CPU time; the return value is elapsed
        // time, as Linux.
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&(p.platform.process_cpu_ns() / tick_ns).to_le_bytes());
        UserSliceWrite::new(a.u64(0), b.len())?.write(&*p.platform, &b)?;
    }
    Ok(ticks as usize)
}

/// `sysinfo(info)`: uptime from the monotonic clock (rounded up, as
/// Linux), memory from the platform's `MemoryStats`, no swap, load 0, one
/// process.
pub fn sys_sysinfo(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let ns = p.platform.monotonic_ns();
    let uptime = ns.div_ceil(1_000_000_000);
    let (total, free) = p.platform.memory_bytes();
    let mut b = [0u8; 112];
    b[..8].copy_from_slice(&uptime.to_le_bytes());
    b[32..40].copy_from_slice(&total.to_le_bytes());
    b[40..48].copy_from_slice(&free.to_le_bytes());
    // `procs`: the processes (at least the caller, which a host test may
    // run outside any table).
    let procs = u16::try_from(p.processes.count().max(1)).unwrap_or(u16::MAX);
    b[80..82].copy_from_slice(&procs.to_le_bytes());
    b[104..108].copy_from_slice(&1u32.to_le_bytes());
    UserSliceWrite::new(a.u64(0), b.len())?.write(&*p.platform, &b)?;
    Ok(0)
}

#[cfg(test)]
mod tests;
