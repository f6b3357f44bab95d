//! Extended attributes and file-system statistics.
//!
//! Extended attributes live on the inode (`crate::fs::xattr`: the
//! `user.`, `trusted.` and `security.` namespaces, as tmpfs); a size of 0
//! asks for the length and a buffer too small is `ERANGE`. Pipes and
//! sockets have no inode here: `EOPNOTSUPP`. `statfs`/`fstatfs` describe
//! the file system as a tmpfs.

use super::{AT_FDCWD, AT_SYMLINK_NOFOLLOW, lookup_at, path_arg};
use crate::error::{Errno, Result};
use crate::fs::InodeRef;
use crate::fs::xattr::{XATTR_NAME_MAX, XATTR_SIZE_MAX, check_name};
use crate::process::Process;
use crate::return_errno;
use crate::syscall::SyscallArgs;
use crate::user::{UserSliceRead, UserSliceWrite, read_cstring};

/// The inode the path (argument 0, following symlinks if `follow`) or
/// the fd names; `EOPNOTSUPP` for a pipe or socket, which has none here.
fn target(p: &Process, a: &SyscallArgs, follow: bool, by_fd: bool) -> Result<InodeRef> {
    if by_fd {
        let f = p.fds.lock().get(a.i32(0))?;
        return f.inode().cloned().ok_or(Errno::EOPNOTSUPP.into());
    }
    let path = path_arg(p, a.u64(0))?;
    let flags = if follow { 0 } else { AT_SYMLINK_NOFOLLOW };
    lookup_at(p, AT_FDCWD, &path, flags)
}

/// The attribute name (argument 1): `ERANGE` past 255 bytes, as Linux.
fn name_arg(p: &Process, a: &SyscallArgs) -> Result<alloc::vec::Vec<u8>> {
    match read_cstring(&*p.platform, a.u64(1), XATTR_NAME_MAX) {
        Err(e) if e.errno() == Errno::ENAMETOOLONG => return_errno!(Errno::ERANGE),
        other => other,
    }
}

/// Copies `bytes` to the buffer at argument `i` of `size` (argument
/// `i + 1`): 0 asks for the length; a smaller buffer is `ERANGE`.
fn reply(p: &Process, a: &SyscallArgs, i: usize, bytes: &[u8]) -> Result<usize> {
    let size = a.usize(i + 1);
    if size == 0 {
        return Ok(bytes.len());
    }
    if size < bytes.len() {
        return_errno!(Errno::ERANGE);
    }
    UserSliceWrite::new(a.u64(i), bytes.len())?.write(&*p.platform, bytes)?;
    Ok(bytes.len())
}

fn get(p: &Process, a: &SyscallArgs, follow: bool, by_fd: bool) -> Result<usize> {
    let inode = target(p, a, follow, by_fd)?;
    let name = name_arg(p, a)?;
    let value = inode.with_xattrs(None, |x, regular_or_dir| {
        check_name(&name, regular_or_dir)?;
        let v = x.get(&name)?;
        let mut out = crate::fallible::with_capacity(v.len())?;
        out.extend_from_slice(v);
        Ok(out)
    })?;
    reply(p, a, 2, &value)
}

fn list(p: &Process, a: &SyscallArgs, follow: bool, by_fd: bool) -> Result<usize> {
    let inode = target(p, a, follow, by_fd)?;
    let names = inode.with_xattrs(None, |x, _| x.list())?;
    reply(p, a, 1, &names)
}

fn set(p: &Process, a: &SyscallArgs, follow: bool, by_fd: bool) -> Result<usize> {
    let inode = target(p, a, follow, by_fd)?;
    let name = name_arg(p, a)?;
    let len = a.usize(3);
    if len > XATTR_SIZE_MAX {
        return_errno!(Errno::E2BIG);
    }
    let value = if len == 0 {
        alloc::vec::Vec::new()
    } else {
        UserSliceRead::new(a.u64(2), len)?.read_to_vec(&*p.platform)?
    };
    let flags = a.u32(4);
    inode.with_xattrs(Some(p.vfs.now()), |x, regular_or_dir| {
        check_name(&name, regular_or_dir)?;
        x.set(&name, &value, flags)
    })?;
    Ok(0)
}

fn remove(p: &Process, a: &SyscallArgs, follow: bool, by_fd: bool) -> Result<usize> {
    let inode = target(p, a, follow, by_fd)?;
    let name = name_arg(p, a)?;
    inode.with_xattrs(Some(p.vfs.now()), |x, regular_or_dir| {
        check_name(&name, regular_or_dir)?;
        x.remove(&name)
    })?;
    Ok(0)
}

/// `getxattr(path, name, value, size)`
pub fn sys_getxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    get(p, a, true, false)
}
/// `lgetxattr(path, name, value, size)`
pub fn sys_lgetxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    get(p, a, false, false)
}
/// `fgetxattr(fd, name, value, size)`
pub fn sys_fgetxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    get(p, a, true, true)
}
/// `listxattr(path, list, size)`
pub fn sys_listxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    list(p, a, true, false)
}
/// `llistxattr(path, list, size)`
pub fn sys_llistxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    list(p, a, false, false)
}
/// `flistxattr(fd, list, size)`
pub fn sys_flistxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    list(p, a, true, true)
}
/// `setxattr(path, name, value, size, flags)`
pub fn sys_setxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    set(p, a, true, false)
}
/// `lsetxattr(path, name, value, size, flags)`
pub fn sys_lsetxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    set(p, a, false, false)
}
/// `fsetxattr(fd, name, value, size, flags)`
pub fn sys_fsetxattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    set(p, a, true, true)
}
/// `removexattr(path, name)`
pub fn sys_removexattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    remove(p, a, true, false)
}
/// `lremovexattr(path, name)`
pub fn sys_lremovexattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    remove(p, a, false, false)
}
/// `fremovexattr(fd, name)`
pub fn sys_fremovexattr(p: &Process, a: &SyscallArgs) -> Result<usize> {
    remove(p, a, true, true)
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
