//! The file-system syscall family over the VFS (`crate::fs`) and the fd
//! table (`crate::fd`).
//!
//! - [`io`]: `open`/`openat`/`creat`, `close`, `read`/`write`,
//!   `pread64`/`pwrite64`, `readv`/`writev`, `lseek`, `dup`/`dup2`/`dup3`,
//!   `fcntl`, `ioctl`.
//! - [`stat`]: `stat`/`lstat`/`fstat`/`newfstatat`/`statx`, `getdents64`.
//! - [`copy`]: `sendfile`, `copy_file_range`; [`splice`]: `splice`.
//! - [`attr`]: extended attributes (`user.`, `trusted.`, `security.`),
//!   `statfs`/`fstatfs` (a tmpfs).
//! - [`namei`]: path operations: `getcwd`, `chdir`/`fchdir`,
//!   `mkdir(at)`, `unlink(at)`, `rmdir`, `rename(at/at2)`, `link(at)`,
//!   `access`/`faccessat(2)`, `readlink(at)`, `symlink(at)`, `umask`,
//!   `chmod` family, `truncate`/`ftruncate`.
//! - [`mknod`]: `mknod`/`mknodat` (regular files, FIFOs, socket and
//!   character-device nodes).
//! - [`times`]: `utimensat`, `futimesat`, `utimes`, `utime`.
//! - [`vectored`]: `preadv`/`pwritev`, `preadv2`/`pwritev2`.
//! - [`fallocate`]: `fallocate` (allocating modes), `fadvise64`.
//! - [`flock`]: the `flock` call.
//!
//! Processes run as root: permission bits are reported but not enforced
//! (except that `X_OK` needs an execute bit), as for root on Linux.

pub mod attr;
pub mod copy;
pub mod fallocate;
pub mod flock;
pub mod io;
pub mod locks;
pub mod mknod;
pub mod namei;
pub mod splice;
pub mod stat;
pub mod times;
pub mod vectored;

use alloc::vec::Vec;

use super::table::Handler;
use crate::error::{Errno, Result};
use crate::fs::{InodeRef, PATH_MAX};
use crate::process::Process;
use crate::user::read_cstring;
use crate::{return_errno, return_errno_with_message};

/// `AT_FDCWD`: resolve relative paths from the working directory.
pub const AT_FDCWD: i32 = -100;
/// `AT_SYMLINK_NOFOLLOW`
pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
/// `AT_REMOVEDIR`
pub const AT_REMOVEDIR: u32 = 0x200;
/// `AT_EACCESS`
pub const AT_EACCESS: u32 = 0x200;
/// `AT_NO_AUTOMOUNT`
pub const AT_NO_AUTOMOUNT: u32 = 0x800;
/// `AT_EMPTY_PATH`
pub const AT_EMPTY_PATH: u32 = 0x1000;

/// `(number, name, handler)` for every syscall of the family; the
/// dispatch table is built from this list.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (0, "read", io::sys_read),
    (1, "write", io::sys_write),
    (2, "open", io::sys_open),
    (3, "close", io::sys_close),
    (4, "stat", stat::sys_stat),
    (5, "fstat", stat::sys_fstat),
    (6, "lstat", stat::sys_lstat),
    (8, "lseek", io::sys_lseek),
    (16, "ioctl", io::sys_ioctl),
    (17, "pread64", io::sys_pread64),
    (18, "pwrite64", io::sys_pwrite64),
    (19, "readv", io::sys_readv),
    (20, "writev", io::sys_writev),
    (21, "access", namei::sys_access),
    (32, "dup", io::sys_dup),
    (33, "dup2", io::sys_dup2),
    (40, "sendfile", copy::sys_sendfile),
    (72, "fcntl", io::sys_fcntl),
    (73, "flock", flock::sys_flock),
    (74, "fsync", namei::sys_fsync),
    (75, "fdatasync", namei::sys_fsync),
    (76, "truncate", namei::sys_truncate),
    (77, "ftruncate", namei::sys_ftruncate),
    (79, "getcwd", namei::sys_getcwd),
    (80, "chdir", namei::sys_chdir),
    (81, "fchdir", namei::sys_fchdir),
    (82, "rename", namei::sys_rename),
    (83, "mkdir", namei::sys_mkdir),
    (84, "rmdir", namei::sys_rmdir),
    (85, "creat", io::sys_creat),
    (86, "link", namei::sys_link),
    (87, "unlink", namei::sys_unlink),
    (88, "symlink", namei::sys_symlink),
    (89, "readlink", namei::sys_readlink),
    (90, "chmod", namei::sys_chmod),
    (91, "fchmod", namei::sys_fchmod),
    (92, "chown", namei::sys_chown),
    (93, "fchown", namei::sys_fchown),
    (94, "lchown", namei::sys_lchown),
    (95, "umask", namei::sys_umask),
    (133, "mknod", mknod::sys_mknod),
    (137, "statfs", attr::sys_statfs),
    (138, "fstatfs", attr::sys_fstatfs),
    (162, "sync", namei::sys_sync),
    (188, "setxattr", attr::sys_setxattr),
    (189, "lsetxattr", attr::sys_lsetxattr),
    (190, "fsetxattr", attr::sys_fsetxattr),
    (191, "getxattr", attr::sys_getxattr),
    (192, "lgetxattr", attr::sys_lgetxattr),
    (193, "fgetxattr", attr::sys_fgetxattr),
    (194, "listxattr", attr::sys_listxattr),
    (195, "llistxattr", attr::sys_llistxattr),
    (196, "flistxattr", attr::sys_flistxattr),
    (197, "removexattr", attr::sys_removexattr),
    (198, "lremovexattr", attr::sys_lremovexattr),
    (199, "fremovexattr", attr::sys_fremovexattr),
    (217, "getdents64", stat::sys_getdents64),
    (221, "fadvise64", fallocate::sys_fadvise64),
    (275, "splice", splice::sys_splice),
    (285, "fallocate", fallocate::sys_fallocate),
    (295, "preadv", vectored::sys_preadv),
    (296, "pwritev", vectored::sys_pwritev),
    (327, "preadv2", vectored::sys_preadv2),
    (328, "pwritev2", vectored::sys_pwritev2),
    (257, "openat", io::sys_openat),
    (258, "mkdirat", namei::sys_mkdirat),
    (259, "mknodat", mknod::sys_mknodat),
    (262, "newfstatat", stat::sys_newfstatat),
    (263, "unlinkat", namei::sys_unlinkat),
    (264, "renameat", namei::sys_renameat),
    (265, "linkat", namei::sys_linkat),
    (266, "symlinkat", namei::sys_symlinkat),
    (267, "readlinkat", namei::sys_readlinkat),
    (260, "fchownat", namei::sys_fchownat),
    (268, "fchmodat", namei::sys_fchmodat),
    (269, "faccessat", namei::sys_faccessat),
    (292, "dup3", io::sys_dup3),
    (306, "syncfs", namei::sys_fsync),
    (316, "renameat2", namei::sys_renameat2),
    (326, "copy_file_range", copy::sys_copy_file_range),
    (332, "statx", stat::sys_statx),
    (132, "utime", times::sys_utime),
    (235, "utimes", times::sys_utimes),
    (261, "futimesat", times::sys_futimesat),
    (280, "utimensat", times::sys_utimensat),
    (439, "faccessat2", namei::sys_faccessat2),
];

/// Reads a path argument (`EFAULT`, `ENAMETOOLONG`).
pub(crate) fn path_arg(p: &Process, addr: u64) -> Result<Vec<u8>> {
    let path = read_cstring(&*p.platform, addr, PATH_MAX - 1)?;
    Ok(crate::fs::procpid::on_lookup(p, path))
}

/// The directory relative paths start from: the working directory for
/// `AT_FDCWD`, else the directory open as `dirfd`.
pub(crate) fn base_dir(p: &Process, dirfd: i32, path: &[u8]) -> Result<InodeRef> {
    if path.starts_with(b"/") || dirfd == AT_FDCWD {
        return Ok(p.cwd());
    }
    let file = p.fds.lock().get(dirfd)?;
    let Some(inode) = file.inode() else {
        return_errno_with_message!(Errno::ENOTDIR, "dirfd is not a directory");
    };
    if !inode.is_dir() {
        return_errno!(Errno::ENOTDIR);
    }
    Ok(inode.clone())
}

/// Resolves `path` relative to `dirfd`. With `AT_EMPTY_PATH` in `flags`
/// an empty path names `dirfd` itself.
pub(crate) fn lookup_at(p: &Process, dirfd: i32, path: &[u8], flags: u32) -> Result<InodeRef> {
    if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return_errno!(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD {
            return Ok(p.cwd());
        }
        let file = p.fds.lock().get(dirfd)?;
        return file.inode().cloned().ok_or(Errno::EBADF.into());
    }
    let base = base_dir(p, dirfd, path)?;
    p.vfs.resolve(&base, path, flags & AT_SYMLINK_NOFOLLOW == 0)
}

#[cfg(test)]
mod direct_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectored_tests;
