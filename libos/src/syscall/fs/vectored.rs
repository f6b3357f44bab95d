//! Positioned vectored transfers: `preadv`, `pwritev`, `preadv2` and
//! `pwritev2` over the same per-buffer transfers as `readv`/`writev`
//! ([`super::io`]).
//!
//! On x86-64 the offset is one register (`pos_l`); `pos_h` is ignored, as
//! Linux does for 64-bit callers. The `*2` forms take an offset of -1 for
//! "the file offset" and `RWF_*` flags: `RWF_HIPRI` (a polling hint),
//! `RWF_DSYNC` and `RWF_SYNC` (the in-memory file system has nothing to
//! flush) are accepted; `RWF_APPEND` writes at the end of the file;
//! `RWF_NOWAIT` and unknown flags give `EOPNOTSUPP`.

use super::io::{Transfer, file, positioned, read_to_user, vectored_at, write_from_user};
use crate::error::{Errno, Result};
use crate::process::Process;
use crate::return_errno;
use crate::syscall::SyscallArgs;
use crate::syscall::signal::sigpipe_on_epipe;

/// `RWF_HIPRI`
pub const RWF_HIPRI: u32 = 0x1;
/// `RWF_DSYNC`
pub const RWF_DSYNC: u32 = 0x2;
/// `RWF_SYNC`
pub const RWF_SYNC: u32 = 0x4;
/// `RWF_NOWAIT`
pub const RWF_NOWAIT: u32 = 0x8;
/// `RWF_APPEND`
pub const RWF_APPEND: u32 = 0x10;

/// The total length of the iovecs (`EINVAL` past `isize::MAX`, checked by
/// `iovecs`); only for the offset check.
fn total_len(p: &Process, a: &SyscallArgs) -> Result<usize> {
    Ok(super::io::iovecs(p, a.u64(1), a.usize(2))?
        .iter()
        .map(|&(_, len)| len)
        .sum())
}

/// One positioned vectored call: `pos` from argument 3 (-1 means the file
/// offset when `current_ok`).
fn transfer_at(
    p: &Process,
    a: &SyscallArgs,
    transfer: Transfer,
    current_ok: bool,
    append: bool,
) -> Result<usize> {
    let f = file(p, a.i32(0))?;
    if current_ok && a.i64(3) == -1 {
        return vectored_at(p, &*f, a, transfer, None);
    }
    let count = total_len(p, a)?;
    let mut off = positioned(&*f, a, 3, count)?;
    if append && let Some(inode) = f.inode() {
        off = inode.metadata().size;
    }
    vectored_at(p, &*f, a, transfer, Some(off))
}

/// Checks the `RWF_*` flags of argument 5; returns whether `RWF_APPEND`
/// is set.
fn rwf_flags(a: &SyscallArgs) -> Result<bool> {
    let flags = a.u32(5);
    if flags & RWF_NOWAIT != 0 || flags & !(RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_APPEND) != 0 {
        return_errno!(Errno::EOPNOTSUPP);
    }
    Ok(flags & RWF_APPEND != 0)
}

/// `preadv(fd, iov, iovcnt, pos_l, pos_h)`
pub fn sys_preadv(p: &Process, a: &SyscallArgs) -> Result<usize> {
    transfer_at(p, a, read_to_user, false, false)
}

/// `pwritev(fd, iov, iovcnt, pos_l, pos_h)`
pub fn sys_pwritev(p: &Process, a: &SyscallArgs) -> Result<usize> {
    sigpipe_on_epipe(p, transfer_at(p, a, write_from_user, false, false))
}

/// `preadv2(fd, iov, iovcnt, pos_l, pos_h, flags)`
pub fn sys_preadv2(p: &Process, a: &SyscallArgs) -> Result<usize> {
    if rwf_flags(a)? {
        return_errno!(Errno::EOPNOTSUPP);
    }
    transfer_at(p, a, read_to_user, true, false)
}

/// `pwritev2(fd, iov, iovcnt, pos_l, pos_h, flags)`
pub fn sys_pwritev2(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let append = rwf_flags(a)?;
    sigpipe_on_epipe(p, transfer_at(p, a, write_from_user, true, append))
}
