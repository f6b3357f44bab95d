//! Extended attributes and file-system statistics.
//!
//! The in-memory file system stores no extended attributes: every `get`
//! answers `ENODATA` and every `list` is empty, exactly what Linux says for
//! a file without attributes; `set`/`remove` answer `EOPNOTSUPP` (`ENOTSUP`: the file
//! system does not support them), which is what `ls`, `cp -a` and Python
//! expect from such a file system. `statfs`/`fstatfs` describe it as a
//! tmpfs.

use super::{AT_FDCWD, AT_SYMLINK_NOFOLLOW, lookup_at, path_arg};
use crate::error::{Errno, Result};
use crate::process::Process;
use crate::return_errno;
use crate::syscall::SyscallArgs;
use crate::user::UserSliceWrite;

/// Checks the path (or fd) names a file, so errors match Linux's.
fn target(p: &Process, a: &SyscallArgs, follow: bool, by_fd: bool) -> Result<()> {
    if by_fd {
        p.fds.lock().get(a.i32(0))?;
    } else {
        let path = path_arg(p, a.u64(0))?;
        let flags = if follow { 0 } else { AT_SYMLINK_NOFOLLOW };
        lookup_at(p, AT_FDCWD, &path, flags)?;
    }
    Ok(())
}

fn get(p: &Process, a: &SyscallArgs, follow: bool, by_fd: bool) -> Result<usize> {
    target(p, a, follow, by_fd)?;
    path_arg(p, a.u64(1))?;
    return_errno!(Errno::ENODATA)
}

fn list(p: &Process, a: &SyscallArgs, follow: bool, by_fd: bool) -> Result<usize> {
    target(p, a, follow, by_fd)?;
    Ok(0)
}

fn set(p: &Process, a: &SyscallArgs, follow: bool, by_fd: bool) -> Result<usize> {
    target(p, a, follow, by_fd)?;
    return_errno!(Errno::EOPNOTSUPP)
}

/// `getxattr(path, name, value, size)`: `ENODATA`.
pub fn sys_getxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    get(p, a, true, false)
}
/// `lgetxattr`: `ENODATA`.
pub fn sys_lgetxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    get(p, a, false, false)
}
/// `fgetxattr`: `ENODATA`.
pub fn sys_fgetxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    get(p, a, true, true)
}
/// `listxattr(path, list, size)`: an empty list.
pub fn sys_listxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    list(p, a, true, false)
}
/// `llistxattr`: an empty list.
pub fn sys_llistxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    list(p, a, false, false)
}
/// `flistxattr`: an empty list.
pub fn sys_flistxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    list(p, a, true, true)
}
/// `setxattr`, `removexattr` and their `l`/`f` forms: `ENOTSUP`.
pub fn sys_setxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    set(p, a, true, false)
}
/// `lsetxattr`/`lremovexattr`: `ENOTSUP`.
pub fn sys_lsetxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    set(p, a, false, false)
}
/// `fsetxattr`/`fremovexattr`: `ENOTSUP`.
pub fn sys_fsetxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    set(p, a, true, true)
}

/// `TMPFS_MAGIC`
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// `struct statfs` (120 bytes) for the in-memory file system: 4 KiB
/// blocks, its size limit (`Space`) as the total, free pages as what the
/// limit leaves — or free memory, if that is less — its inode limit and
/// what that leaves (`df -i`), and 255-byte names. An unlimited budget
/// (host tests) shows as what memory could hold.
fn encode_statfs(p: &Process) -> [u8; 120] {
    let (total_mem, free_mem) = p.platform.memory_bytes();
    let (limit, used) = p.vfs.space().pages();
    let blocks = limit.min(used.saturating_add(total_mem / 4096));
    let free = blocks.saturating_sub(used).min(free_mem / 4096);
    let (inode_limit, inodes_used) = p.vfs.space().inodes();
    let files = inode_limit.min(inodes_used.saturating_add(total_mem / 4096));
    let words: [u64; 15] = [
        TMPFS_MAGIC,
        4096,
        blocks,
        free,
        free,
        files,
        files.saturating_sub(inodes_used),
        0,   // f_fsid
        255, // f_namelen
        4096,
        0x1020, // f_flags: ST_VALID (0x20) | ST_RELATIME (0x1000), as tmpfs
        0,
        0,
        0,
        0,
    ];
    let mut out = [0u8; 120];
    for (i, w) in words.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// `statfs(path, buf)`
pub fn sys_statfs(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let path = path_arg(p, a.u64(0))?;
    lookup_at(p, AT_FDCWD, &path, 0)?;
    UserSliceWrite::new(a.u64(1), 120)?.write(&*p.platform, &encode_statfs(p))?;
    Ok(0)
}

/// `fstatfs(fd, buf)`
pub fn sys_fstatfs(p: &Process, a: &SyscallArgs) -> Result<usize> {
    p.fds.lock().get(a.i32(0))?;
    UserSliceWrite::new(a.u64(1), 120)?.write(&*p.platform, &encode_statfs(p))?;
    Ok(0)
}
