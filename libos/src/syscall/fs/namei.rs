//! Path operations: working directory, creating, removing, renaming,
//! checking and reading links, permissions and truncation.

use super::{AT_EACCESS, AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW};
use super::{base_dir, lookup_at, path_arg};
use crate::error::{Errno, Result};
use crate::fs::InodeType;
use crate::process::Process;
use crate::syscall::SyscallArgs;
use crate::user::UserSliceWrite;
use crate::{return_errno, return_errno_with_message};

/// `getcwd(buf, size)`: returns the length including the NUL; `ERANGE`
/// if it does not fit.
pub fn sys_getcwd(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let mut path = p.vfs.path_of(&p.cwd())?;
    path.push(0);
    if a.usize(1) < path.len() {
        return_errno!(Errno::ERANGE);
    }
    UserSliceWrite::new(a.u64(0), path.len())?.write(&*p.platform, &path)
}

/// `chdir(path)`
pub fn sys_chdir(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let path = path_arg(p, a.u64(0))?;
    let dir = lookup_at(p, AT_FDCWD, &path, 0)?;
    if !dir.is_dir() {
        return_errno!(Errno::ENOTDIR);
    }
    *p.cwd.lock() = dir;
    Ok(0)
}

/// `fchdir(fd)`
pub fn sys_fchdir(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = p.fds.lock().get(a.i32(0))?;
    let dir = file.inode().cloned().ok_or(Errno::ENOTDIR)?;
    if !dir.is_dir() {
        return_errno!(Errno::ENOTDIR);
    }
    *p.cwd.lock() = dir;
    Ok(0)
}

fn mkdir_at(p: &Process, dirfd: i32, path_addr: u64, mode: u32) -> Result<usize> {
    let path = path_arg(p, path_addr)?;
    let base = base_dir(p, dirfd, &path)?;
    let perm = (mode & 0o777 & !p.umask()) | (mode & 0o1000);
    p.vfs.mkdir(&base, &path, perm)?;
    Ok(0)
}

/// `mkdirat(dirfd, path, mode)`
pub fn sys_mkdirat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    mkdir_at(p, a.i32(0), a.u64(1), a.u32(2))
}

/// `mkdir(path, mode)`
pub fn sys_mkdir(p: &Process, a: &SyscallArgs) -> Result<usize> {
    mkdir_at(p, AT_FDCWD, a.u64(0), a.u32(1))
}

fn unlink_at(p: &Process, dirfd: i32, path_addr: u64, flags: u32) -> Result<usize> {
    if flags & !AT_REMOVEDIR != 0 {
        return_errno!(Errno::EINVAL);
    }
    let path = path_arg(p, path_addr)?;
    let base = base_dir(p, dirfd, &path)?;
    if flags & AT_REMOVEDIR != 0 {
        p.vfs.rmdir(&base, &path)?;
    } else {
        p.vfs.unlink(&base, &path)?;
    }
    Ok(0)
}

/// `unlinkat(dirfd, path, flags)`: `AT_REMOVEDIR` makes it `rmdir`.
pub fn sys_unlinkat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    unlink_at(p, a.i32(0), a.u64(1), a.u32(2))
}

/// `unlink(path)`
pub fn sys_unlink(p: &Process, a: &SyscallArgs) -> Result<usize> {
    unlink_at(p, AT_FDCWD, a.u64(0), 0)
}

/// `rmdir(path)`
pub fn sys_rmdir(p: &Process, a: &SyscallArgs) -> Result<usize> {
    unlink_at(p, AT_FDCWD, a.u64(0), AT_REMOVEDIR)
}

const RENAME_NOREPLACE: u32 = 1;

fn rename_at(
    p: &Process,
    olddirfd: i32,
    old: u64,
    newdirfd: i32,
    new: u64,
    flags: u32,
) -> Result<usize> {
    if flags & !RENAME_NOREPLACE != 0 {
        return_errno_with_message!(
            Errno::EINVAL,
            "RENAME_EXCHANGE and RENAME_WHITEOUT are not supported"
        );
    }
    let old = path_arg(p, old)?;
    let new = path_arg(p, new)?;
    let old_base = base_dir(p, olddirfd, &old)?;
    let new_base = base_dir(p, newdirfd, &new)?;
    if flags & RENAME_NOREPLACE != 0 && p.vfs.resolve(&new_base, &new, false).is_ok() {
        return_errno!(Errno::EEXIST);
    }
    p.vfs.rename(&old_base, &old, &new_base, &new)?;
    Ok(0)
}

/// `renameat(olddirfd, old, newdirfd, new)`
pub fn sys_renameat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    rename_at(p, a.i32(0), a.u64(1), a.i32(2), a.u64(3), 0)
}

/// `renameat2(olddirfd, old, newdirfd, new, flags)`: `RENAME_NOREPLACE`
/// only.
pub fn sys_renameat2(p: &Process, a: &SyscallArgs) -> Result<usize> {
    rename_at(p, a.i32(0), a.u64(1), a.i32(2), a.u64(3), a.u32(4))
}

/// `rename(old, new)`
pub fn sys_rename(p: &Process, a: &SyscallArgs) -> Result<usize> {
    rename_at(p, AT_FDCWD, a.u64(0), AT_FDCWD, a.u64(1), 0)
}

fn access_at(p: &Process, dirfd: i32, path_addr: u64, mode: u32, flags: u32) -> Result<usize> {
    const X_OK: u32 = 1;
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return_errno!(Errno::EINVAL);
    }
    let path = path_arg(p, path_addr)?;
    let inode = lookup_at(p, dirfd, &path, flags)?;
    // Root may read and write anything; executing needs an x bit on a file.
    let md = inode.metadata();
    if mode & X_OK != 0 && inode.file_type() != InodeType::Directory && md.mode & 0o111 == 0 {
        return_errno!(Errno::EACCES);
    }
    Ok(0)
}

/// `faccessat(dirfd, path, mode)`
pub fn sys_faccessat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    access_at(p, a.i32(0), a.u64(1), a.u32(2), 0)
}

/// `faccessat2(dirfd, path, mode, flags)`
pub fn sys_faccessat2(p: &Process, a: &SyscallArgs) -> Result<usize> {
    access_at(p, a.i32(0), a.u64(1), a.u32(2), a.u32(3))
}

/// `access(path, mode)`
pub fn sys_access(p: &Process, a: &SyscallArgs) -> Result<usize> {
    access_at(p, AT_FDCWD, a.u64(0), a.u32(1), 0)
}

fn readlink_at(p: &Process, dirfd: i32, path_addr: u64, buf: u64, size: i32) -> Result<usize> {
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .ok_or(Errno::EINVAL)?;
    let raw = crate::user::read_cstring(&*p.platform, path_addr, super::PATH_MAX - 1)?;
    // `/proc/self` names the caller's pid (see `fs::procpid`).
    let target = if raw == b"/proc/self" {
        alloc::format!("{}", p.pid).into_bytes()
    } else {
        let path = crate::fs::procpid::on_lookup(p, raw);
        lookup_at(p, dirfd, &path, AT_SYMLINK_NOFOLLOW)?.read_link()?
    };
    let n = target.len().min(size);
    UserSliceWrite::new(buf, n)?.write(&*p.platform, &target[..n])
}

/// `readlinkat(dirfd, path, buf, bufsiz)`: truncates silently, no NUL.
pub fn sys_readlinkat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    readlink_at(p, a.i32(0), a.u64(1), a.u64(2), a.i32(3))
}

/// `readlink(path, buf, bufsiz)`
pub fn sys_readlink(p: &Process, a: &SyscallArgs) -> Result<usize> {
    readlink_at(p, AT_FDCWD, a.u64(0), a.u64(1), a.i32(2))
}

/// `AT_SYMLINK_FOLLOW`
const AT_SYMLINK_FOLLOW: u32 = 0x400;

fn link_at(
    p: &Process,
    olddirfd: i32,
    old: u64,
    newdirfd: i32,
    new: u64,
    flags: u32,
) -> Result<usize> {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return_errno!(Errno::EINVAL);
    }
    let old = path_arg(p, old)?;
    let new = path_arg(p, new)?;
    let new_base = base_dir(p, newdirfd, &new)?;
    if old.is_empty() && flags & AT_EMPTY_PATH != 0 {
        let inode = lookup_at(p, olddirfd, &old, AT_EMPTY_PATH)?;
        let (dir, name) = p.vfs.resolve_parent(&new_base, &new)?;
        p.vfs.insert_link(&dir, &name, &inode)?;
        return Ok(0);
    }
    let old_base = base_dir(p, olddirfd, &old)?;
    p.vfs.link(
        &old_base,
        &old,
        &new_base,
        &new,
        flags & AT_SYMLINK_FOLLOW != 0,
    )?;
    Ok(0)
}

/// `linkat(olddirfd, old, newdirfd, new, flags)`: `AT_SYMLINK_FOLLOW`,
/// `AT_EMPTY_PATH`.
pub fn sys_linkat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    link_at(p, a.i32(0), a.u64(1), a.i32(2), a.u64(3), a.u32(4))
}

/// `link(old, new)` (does not follow a symlink `old`, as Linux).
pub fn sys_link(p: &Process, a: &SyscallArgs) -> Result<usize> {
    link_at(p, AT_FDCWD, a.u64(0), AT_FDCWD, a.u64(1), 0)
}

fn symlink_at(p: &Process, target: u64, dirfd: i32, path: u64) -> Result<usize> {
    let target = path_arg(p, target)?;
    let path = path_arg(p, path)?;
    let base = base_dir(p, dirfd, &path)?;
    p.vfs.symlink(&base, &target, &path)?;
    Ok(0)
}

/// `symlinkat(target, newdirfd, linkpath)`
pub fn sys_symlinkat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    symlink_at(p, a.u64(0), a.i32(1), a.u64(2))
}

/// `symlink(target, linkpath)`
pub fn sys_symlink(p: &Process, a: &SyscallArgs) -> Result<usize> {
    symlink_at(p, a.u64(0), AT_FDCWD, a.u64(1))
}

/// `umask(mask)`: returns the previous mask.
pub fn sys_umask(p: &Process, a: &SyscallArgs) -> Result<usize> {
    Ok(p.set_umask(a.u32(0)) as usize)
}

/// `fchmodat(dirfd, path, mode)` (follows symlinks, as Linux's syscall).
pub fn sys_fchmodat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let path = path_arg(p, a.u64(1))?;
    lookup_at(p, a.i32(0), &path, 0)?.set_permissions(a.u32(2), p.vfs.now());
    Ok(0)
}

/// `chmod(path, mode)`
pub fn sys_chmod(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let path = path_arg(p, a.u64(0))?;
    lookup_at(p, AT_FDCWD, &path, 0)?.set_permissions(a.u32(1), p.vfs.now());
    Ok(0)
}

/// `fchmod(fd, mode)`
pub fn sys_fchmod(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = p.fds.lock().get(a.i32(0))?;
    file.inode()
        .ok_or(Errno::EINVAL)?
        .set_permissions(a.u32(1), p.vfs.now());
    Ok(0)
}

/// A `uid_t`/`gid_t` argument: -1 means "leave unchanged".
fn id_arg(a: &SyscallArgs, i: usize) -> Option<u32> {
    let v = a.u32(i);
    (v != u32::MAX).then_some(v)
}

/// `fchownat(dirfd, path, owner, group, flags)`: as root, any owner.
/// `AT_SYMLINK_NOFOLLOW` and `AT_EMPTY_PATH`.
pub fn sys_fchownat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let flags = a.u32(4);
    if flags & !(AT_SYMLINK_NOFOLLOW | super::AT_EMPTY_PATH) != 0 {
        return_errno!(Errno::EINVAL);
    }
    let path = path_arg(p, a.u64(1))?;
    lookup_at(p, a.i32(0), &path, flags)?.set_owner(id_arg(a, 2), id_arg(a, 3), p.vfs.now());
    Ok(0)
}

/// `chown(path, owner, group)`: follows symlinks.
pub fn sys_chown(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let path = path_arg(p, a.u64(0))?;
    lookup_at(p, AT_FDCWD, &path, 0)?.set_owner(id_arg(a, 1), id_arg(a, 2), p.vfs.now());
    Ok(0)
}

/// `lchown(path, owner, group)`: the link itself.
pub fn sys_lchown(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let path = path_arg(p, a.u64(0))?;
    lookup_at(p, AT_FDCWD, &path, AT_SYMLINK_NOFOLLOW)?.set_owner(
        id_arg(a, 1),
        id_arg(a, 2),
        p.vfs.now(),
    );
    Ok(0)
}

/// `fchown(fd, owner, group)`
pub fn sys_fchown(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = p.fds.lock().get(a.i32(0))?;
    file.inode()
        .ok_or(Errno::EINVAL)?
        .set_owner(id_arg(a, 1), id_arg(a, 2), p.vfs.now());
    Ok(0)
}

/// `fsync(fd)`, `fdatasync(fd)`, `syncfs(fd)`: the file system lives in
/// memory, so there is nothing to flush; `EINVAL` for fds that are not
/// files (pipes, sockets, eventfds), as Linux.
pub fn sys_fsync(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = p.fds.lock().get(a.i32(0))?;
    if file.inode().is_none() {
        return_errno!(Errno::EINVAL);
    }
    Ok(0)
}

/// `sync()`: nothing to flush (in-memory file system).
pub fn sys_sync(_p: &Process, _a: &SyscallArgs) -> Result<usize> {
    Ok(0)
}

fn length_arg(a: &SyscallArgs, i: usize) -> Result<u64> {
    u64::try_from(a.i64(i)).map_err(|_| Errno::EINVAL.into())
}

/// `truncate(path, length)`
pub fn sys_truncate(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let path = path_arg(p, a.u64(0))?;
    let len = length_arg(a, 1)?;
    lookup_at(p, AT_FDCWD, &path, 0)?.truncate(len, p.vfs.now())?;
    Ok(0)
}

/// `ftruncate(fd, length)`: `EINVAL` unless open for writing.
pub fn sys_ftruncate(p: &Process, a: &SyscallArgs) -> Result<usize> {
    use crate::fs::file::open_flags::{O_ACCMODE, O_RDONLY};
    let file = p.fds.lock().get(a.i32(0))?;
    let len = length_arg(a, 1)?;
    if file.status_flags() & O_ACCMODE == O_RDONLY {
        return_errno!(Errno::EINVAL);
    }
    file.inode()
        .ok_or(Errno::EINVAL)?
        .truncate(len, p.vfs.now())?;
    Ok(0)
}
