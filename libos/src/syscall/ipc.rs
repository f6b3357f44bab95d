//! `pipe`, `pipe2`, `eventfd`, `eventfd2`: create the objects of
//! `crate::ipc` and install them as fds.

use alloc::sync::Arc;

use super::SyscallArgs;
use super::table::Handler;
use crate::error::{Errno, Result};
use crate::fs::file::open_flags::{O_CLOEXEC, O_DIRECT, O_NONBLOCK};
use crate::ipc::eventfd::EFD_SEMAPHORE;
use crate::ipc::{EventFd, new_pipe};
use crate::process::Process;
use crate::return_errno;
use crate::user::UserSliceWrite;

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (22, "pipe", sys_pipe),
    (284, "eventfd", sys_eventfd),
    (290, "eventfd2", sys_eventfd2),
    (293, "pipe2", sys_pipe2),
];

fn pipe_with_flags(p: &Process, fds_addr: u64, flags: u32) -> Result<usize> {
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT) != 0 {
        return_errno!(Errno::EINVAL);
    }
    let out = UserSliceWrite::new(fds_addr, 8)?;
    let (r, w) = new_pipe(flags);
    let cloexec = flags & O_CLOEXEC != 0;
    let (rfd, wfd) = {
        let mut fds = p.fds.lock();
        let rfd = fds.insert(r, cloexec)?;
        match fds.insert(w, cloexec) {
            Ok(wfd) => (rfd, wfd),
            Err(e) => {
                let _ = fds.close(rfd);
                return Err(e);
            }
        }
    };
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&rfd.to_le_bytes());
    bytes[4..].copy_from_slice(&wfd.to_le_bytes());
    if let Err(e) = out.write(&*p.platform, &bytes) {
        let mut fds = p.fds.lock();
        let _ = fds.close(rfd);
        let _ = fds.close(wfd);
        return Err(e);
    }
    Ok(0)
}

/// `pipe2(fds, flags)`: `O_CLOEXEC`, `O_NONBLOCK` (`O_DIRECT` is accepted
/// but packet mode is not implemented).
pub fn sys_pipe2(p: &Process, a: &SyscallArgs) -> Result<usize> {
    pipe_with_flags(p, a.u64(0), a.u32(1))
}

/// `pipe(fds)`
pub fn sys_pipe(p: &Process, a: &SyscallArgs) -> Result<usize> {
    pipe_with_flags(p, a.u64(0), 0)
}

fn new_eventfd(p: &Process, initial: u32, flags: u32) -> Result<usize> {
    if flags & !(EFD_SEMAPHORE | O_NONBLOCK | O_CLOEXEC) != 0 {
        return_errno!(Errno::EINVAL);
    }
    let file = Arc::new(EventFd::new(initial, flags));
    Ok(p.fds.lock().insert(file, flags & O_CLOEXEC != 0)? as usize)
}

/// `eventfd2(initval, flags)`: `EFD_SEMAPHORE`, `EFD_NONBLOCK`, `EFD_CLOEXEC`.
pub fn sys_eventfd2(p: &Process, a: &SyscallArgs) -> Result<usize> {
    new_eventfd(p, a.u32(0), a.u32(1))
}

/// `eventfd(initval)`
pub fn sys_eventfd(p: &Process, a: &SyscallArgs) -> Result<usize> {
    new_eventfd(p, a.u32(0), 0)
}
