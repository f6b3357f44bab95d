//! Waiting for children and family relations: `wait4`, `waitid`,
//! `getppid`, over the [`ProcessTable`](crate::ptable::ProcessTable).
//!
//! A wait that finds matching children but no zombie blocks through the
//! platform (`Blocker::block_until`) until one exits, unless `WNOHANG`;
//! a signal for the caller ends it with `EINTR`. Stopped and continued
//! children do not exist (there is no job control), so `WUNTRACED`,
//! `WSTOPPED` and `WCONTINUED` are accepted and never report anything.

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::process::Process;
use crate::ptable::{ExitStatus, SIGCHLD, WaitFor};
use crate::return_errno;
use crate::return_errno_with_message;
use crate::user::{UserPtr, UserSliceWrite};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (61, "wait4", sys_wait4),
    (110, "getppid", sys_getppid),
    (247, "waitid", sys_waitid),
];

const WNOHANG: u32 = 1;
const WUNTRACED: u32 = 2;
const WEXITED: u32 = 4;
const WCONTINUED: u32 = 8;
const WNOWAIT: u32 = 0x0100_0000;
const WNOTHREAD: u32 = 0x2000_0000;
const WALL: u32 = 0x4000_0000;
const WCLONE: u32 = 0x8000_0000;
/// `sizeof(struct rusage)`.
const RUSAGE_BYTES: usize = 144;
/// `sizeof(siginfo_t)`.
const SIGINFO_BYTES: usize = 128;

/// `getppid()`: the parent's pid (0 for init).
pub fn sys_getppid(p: &Process, _a: &SyscallArgs) -> Result<usize> {
    Ok(p.processes.parent_of(p.pid) as usize)
}

/// Waits for a child of `p` matching `target`: `Ok(None)` only with
/// `nohang` and no zombie yet.
fn wait_child(
    p: &Process,
    target: WaitFor,
    nohang: bool,
    reap: bool,
) -> Result<Option<(u32, ExitStatus)>> {
    loop {
        if let Some(found) = p.processes.try_wait(p.pid, target, reap)? {
            return Ok(Some(found));
        }
        if nohang {
            return Ok(None);
        }
        // Ready once a matching child is a zombie, or none is left.
        p.platform.block_until(
            &mut || !matches!(p.processes.try_wait(p.pid, target, false), Ok(None)),
            None,
        )?;
    }
}

/// Zeroes a `struct rusage` (no per-child accounting yet).
fn clear_rusage(p: &Process, addr: u64) -> Result<()> {
    if addr != 0 {
        UserSliceWrite::new(addr, RUSAGE_BYTES)?.write(&*p.platform, &[0; RUSAGE_BYTES])?;
    }
    Ok(())
}

/// `wait4(pid, wstatus, options, rusage)`
pub fn sys_wait4(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let options = a.u32(2);
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return_errno!(Errno::EINVAL);
    }
    let pid = a.i32(0);
    if pid == i32::MIN {
        return_errno!(Errno::ESRCH);
    }
    let pgid = p.processes.pgid_of(p.pid).unwrap_or(p.pid);
    let target = WaitFor::from_wait4(pid, pgid);
    let Some((child, status)) = wait_child(p, target, options & WNOHANG != 0, true)? else {
        return Ok(0);
    };
    if a.u64(1) != 0 {
        UserPtr::<u32>::new(a.u64(1)).write(&*p.platform, status.wait_status())?;
    }
    clear_rusage(p, a.u64(3))?;
    Ok(child as usize)
}

const P_ALL: u32 = 0;
const P_PID: u32 = 1;
const P_PGID: u32 = 2;

/// `waitid(idtype, id, infop, options, rusage)`: `P_ALL`, `P_PID`,
/// `P_PGID` (0: the caller's group); `WEXITED` is required (no stopped or
/// continued children exist to report), `WNOWAIT` leaves the zombie.
pub fn sys_waitid(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let options = a.u32(3);
    let known = WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE;
    if options & !known != 0 || options & (WEXITED | WUNTRACED | WCONTINUED) == 0 {
        return_errno!(Errno::EINVAL);
    }
    let id = a.u32(1);
    let target = match a.u32(0) {
        P_ALL => WaitFor::Any,
        P_PID => WaitFor::Pid(id),
        P_PGID if id == 0 => WaitFor::Group(p.processes.pgid_of(p.pid).unwrap_or(p.pid)),
        P_PGID => WaitFor::Group(id),
        _ => return_errno_with_message!(Errno::EINVAL, "waitid: unsupported idtype"),
    };
    if options & WEXITED == 0 {
        // Only stopped or continued children asked for: there are none.
        if options & WNOHANG != 0 {
            p.processes.try_wait(p.pid, target, false)?;
            return Ok(0);
        }
        return_errno_with_message!(Errno::ECHILD, "no stopped or continued children");
    }
    let found = wait_child(p, target, options & WNOHANG != 0, options & WNOWAIT == 0)?;
    let mut info = [0u8; SIGINFO_BYTES];
    if let Some((child, status)) = found {
        let (code, value) = status.code_and_status();
        info[0..4].copy_from_slice(&(SIGCHLD as i32).to_le_bytes());
        info[8..12].copy_from_slice(&code.to_le_bytes());
        info[16..20].copy_from_slice(&(child as i32).to_le_bytes());
        info[24..28].copy_from_slice(&value.to_le_bytes());
    }
    if a.u64(2) != 0 {
        UserSliceWrite::new(a.u64(2), SIGINFO_BYTES)?.write(&*p.platform, &info)?;
    }
    clear_rusage(p, a.u64(4))?;
    Ok(0)
}

#[cfg(test)]
mod tests;
