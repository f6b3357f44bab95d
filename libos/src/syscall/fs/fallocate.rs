//! `fallocate` and `fadvise64` on the in-memory file system.
//!
//! `fallocate` mode 0 and `FALLOC_FL_KEEP_SIZE` allocate the range's
//! pages, charged to the file system's size limit
//! (`crate::fs::Inode::allocate`); the other modes (punching holes,
//! collapsing or inserting ranges, zeroing) give `EOPNOTSUPP`.
//! `fadvise64` checks its arguments as Linux does and has nothing to act
//! on: every file's data is in memory.

use super::io::file;
use crate::error::{Errno, Result};
use crate::fs::InodeType;
use crate::fs::file::open_flags::{O_ACCMODE, O_RDONLY};
use crate::process::Process;
use crate::return_errno;
use crate::syscall::SyscallArgs;

/// `FALLOC_FL_KEEP_SIZE`
pub const FALLOC_FL_KEEP_SIZE: u32 = 0x1;

/// `fallocate(fd, mode, offset, len)`
pub fn sys_fallocate(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let f = file(p, a.i32(0))?;
    let mode = a.u32(1);
    let (offset, len) = (a.i64(2), a.i64(3));
    if offset < 0 || len <= 0 {
        return_errno!(Errno::EINVAL);
    }
    if mode & !FALLOC_FL_KEEP_SIZE != 0 {
        return_errno!(Errno::EOPNOTSUPP);
    }
    if f.status_flags() & O_ACCMODE == O_RDONLY {
        return_errno!(Errno::EBADF);
    }
    let Some(inode) = f.inode().filter(|i| i.file_type() != InodeType::Fifo) else {
        // Pipes and sockets.
        return_errno!(Errno::ESPIPE);
    };
    inode.allocate(
        offset as u64,
        len as u64,
        mode & FALLOC_FL_KEEP_SIZE != 0,
        p.vfs.now(),
    )?;
    Ok(0)
}

/// `POSIX_FADV_NOREUSE`, the largest advice.
const POSIX_FADV_NOREUSE: u32 = 5;

/// `fadvise64(fd, offset, len, advice)`: `EBADF`, `ESPIPE` for a pipe or
/// socket, `EINVAL` for an unknown advice; otherwise 0.
pub fn sys_fadvise64(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let f = file(p, a.i32(0))?;
    let pipe_like = f.inode().is_none_or(|i| i.file_type() == InodeType::Fifo);
    if pipe_like || f.as_socket().is_some() {
        return_errno!(Errno::ESPIPE);
    }
    if a.u32(3) > POSIX_FADV_NOREUSE {
        return_errno!(Errno::EINVAL);
    }
    Ok(0)
}
