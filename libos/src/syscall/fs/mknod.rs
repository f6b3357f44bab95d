//! `mknod` and `mknodat`: regular files, FIFOs (`mkfifo`), socket nodes
//! and character-device nodes, with Linux's checks and errors.
//!
//! A character-device node for a device Cloister has (`/dev/null`'s 1:3,
//! …) is that device; any other number makes a node that exists but
//! gives `ENXIO` when opened, as Linux for a number no driver claims.
//! Block devices do not exist here: `S_IFBLK` gives `EPERM`, as in a
//! container that may not make device nodes.

use super::{AT_FDCWD, base_dir, path_arg};
use crate::error::{Errno, Result};
use crate::process::Process;
use crate::return_errno_with_message;
use crate::syscall::SyscallArgs;

/// `S_IFMT` and the types `mknod` accepts.
const S_IFMT: u32 = 0o170000;
const S_IFSOCK: u32 = 0o140000;
const S_IFREG: u32 = 0o100000;
const S_IFBLK: u32 = 0o060000;
const S_IFDIR: u32 = 0o040000;
const S_IFCHR: u32 = 0o020000;
const S_IFIFO: u32 = 0o010000;

/// The kernel's `new_decode_dev`: the 32-bit `dev_t` of the syscall.
pub const fn decode_dev(dev: u32) -> (u32, u32) {
    ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00))
}

fn mknod_at(p: &Process, dirfd: i32, path_addr: u64, mode: u32, dev: u32) -> Result<usize> {
    // Checked before the path, as Linux's may_mknod runs first.
    let kind = match mode & S_IFMT {
        0 | S_IFREG => S_IFREG,
        k @ (S_IFIFO | S_IFSOCK | S_IFCHR) => k,
        S_IFBLK => {
            return_errno_with_message!(Errno::EPERM, "there are no block devices")
        }
        S_IFDIR => return_errno_with_message!(Errno::EPERM, "mknod makes no directories"),
        _ => return_errno_with_message!(Errno::EINVAL, "unknown file type"),
    };
    let path = path_arg(p, path_addr)?;
    let base = base_dir(p, dirfd, &path)?;
    let perm = mode & 0o7777 & !p.umask();
    match kind {
        S_IFREG => p.vfs.create_file(&base, &path, perm).map(drop),
        S_IFIFO => p.vfs.mkfifo(&base, &path, perm).map(drop),
        S_IFSOCK => p.vfs.mksock(&base, &path, perm).map(drop),
        _ => p
            .vfs
            .mknod_char(&base, &path, perm, decode_dev(dev))
            .map(drop),
    }?;
    Ok(0)
}

/// `mknodat(dirfd, path, mode, dev)`
pub fn sys_mknodat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    mknod_at(p, a.i32(0), a.u64(1), a.u32(2), a.u32(3))
}

/// `mknod(path, mode, dev)`
pub fn sys_mknod(p: &Process, a: &SyscallArgs) -> Result<usize> {
    mknod_at(p, AT_FDCWD, a.u64(0), a.u32(1), a.u32(2))
}

#[cfg(test)]
#[path = "mknod_tests.rs"]
mod tests;
