//! `flock(fd, operation)` over `crate::fs::flock`.
//!
//! A lock belongs to the open file description (`crate::fs::InodeFile`)
//! of `fd`. Pipes, sockets and other files without one here can be
//! reached through no other open file description, so no lock on them
//! can conflict: those calls succeed after the argument checks.

use super::io::file;
use crate::error::{Errno, Result};
use crate::fs::InodeFile;
use crate::process::Process;
use crate::return_errno;
use crate::syscall::SyscallArgs;

/// `LOCK_SH`
pub const LOCK_SH: u32 = 1;
/// `LOCK_EX`
pub const LOCK_EX: u32 = 2;
/// `LOCK_NB`
pub const LOCK_NB: u32 = 4;
/// `LOCK_UN`
pub const LOCK_UN: u32 = 8;

/// `flock(fd, operation)`: `EINVAL` for an unknown operation,
/// `EWOULDBLOCK` with `LOCK_NB` while another description's lock
/// conflicts; otherwise waits (a signal ends the wait with `EINTR`).
pub fn sys_flock(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let f = file(p, a.i32(0))?;
    let op = a.u32(1);
    let exclusive = match op & !LOCK_NB {
        LOCK_SH => Some(false),
        LOCK_EX => Some(true),
        LOCK_UN => None,
        _ => return_errno!(Errno::EINVAL),
    };
    let Some(open) = f.as_any().downcast_ref::<InodeFile>() else {
        return Ok(0);
    };
    let inode = open.inode_ref();
    let owner = open.flock_owner();
    match inode.flock(owner, exclusive) {
        Err(e) if e.errno() == Errno::EAGAIN && op & LOCK_NB == 0 => {
            p.platform
                .block_until(&mut || inode.flock(owner, exclusive).is_ok(), None)?;
            Ok(0)
        }
        other => other.map(|()| 0),
    }
}
