//! `stat`, `lstat`, `fstat`, `newfstatat`, `statx` and `getdents64`.
//!
//! [`encode_stat`] and [`encode_statx`] produce the x86-64 `struct stat`
//! (144 bytes) and `struct statx` (256 bytes) byte for byte.

use alloc::vec::Vec;

use super::{AT_EMPTY_PATH, AT_FDCWD, AT_NO_AUTOMOUNT, AT_SYMLINK_NOFOLLOW, lookup_at, path_arg};
use crate::error::{Errno, Result};
use crate::fallible::TryVec;
use crate::fs::{InodeFile, Metadata};
use crate::process::Process;
use crate::syscall::SyscallArgs;
use crate::user::UserSliceWrite;
use crate::{return_errno, return_errno_with_message};

/// `st_dev` of every VFS file: device (0, 1) in glibc's encoding.
pub const VFS_DEV: (u32, u32) = (0, 1);
/// `st_blksize`
const BLOCK_BYTES: u64 = 4096;
/// `STATX_BASIC_STATS`: everything but the birth time.
pub const STATX_BASIC_STATS: u32 = 0x7ff;

/// glibc's `makedev`.
pub const fn encode_dev((major, minor): (u32, u32)) -> u64 {
    let (major, minor) = (major as u64, minor as u64);
    ((major & 0xfff) << 8) | ((major & !0xfff) << 32) | (minor & 0xff) | ((minor & !0xff) << 12)
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

const fn split_ns(ns: u64) -> (u64, u64) {
    (ns / 1_000_000_000, ns % 1_000_000_000)
}

/// The x86-64 `struct stat` for `md`.
pub fn encode_stat(md: &Metadata) -> [u8; 144] {
    let mut b = [0u8; 144];
    put(&mut b, 0, &encode_dev(VFS_DEV).to_le_bytes());
    put(&mut b, 8, &md.ino.to_le_bytes());
    put(&mut b, 16, &u64::from(md.nlink).to_le_bytes());
    put(&mut b, 24, &md.mode.to_le_bytes());
    put(&mut b, 28, &md.uid.to_le_bytes());
    put(&mut b, 32, &md.gid.to_le_bytes());
    put(&mut b, 40, &encode_dev(md.rdev).to_le_bytes());
    put(&mut b, 48, &md.size.to_le_bytes());
    put(&mut b, 56, &BLOCK_BYTES.to_le_bytes());
    put(&mut b, 64, &md.blocks_512().to_le_bytes());
    for (i, ns) in [md.atime_ns, md.mtime_ns, md.ctime_ns]
        .into_iter()
        .enumerate()
    {
        let (s, n) = split_ns(ns);
        put(&mut b, 72 + 16 * i, &s.to_le_bytes());
        put(&mut b, 80 + 16 * i, &n.to_le_bytes());
    }
    b
}

/// The `struct statx` for `md`. Every basic field is filled whatever the
/// requested mask (Linux may do the same); `stx_mask` says which.
pub fn encode_statx(md: &Metadata) -> [u8; 256] {
    let mut b = [0u8; 256];
    put(&mut b, 0, &STATX_BASIC_STATS.to_le_bytes());
    put(&mut b, 4, &(BLOCK_BYTES as u32).to_le_bytes());
    put(&mut b, 16, &md.nlink.to_le_bytes());
    put(&mut b, 20, &md.uid.to_le_bytes());
    put(&mut b, 24, &md.gid.to_le_bytes());
    put(&mut b, 28, &(md.mode as u16).to_le_bytes());
    put(&mut b, 32, &md.ino.to_le_bytes());
    put(&mut b, 40, &md.size.to_le_bytes());
    put(&mut b, 48, &md.blocks_512().to_le_bytes());
    // atime @64, btime @80 (not provided), ctime @96, mtime @112.
    for (at, ns) in [(64, md.atime_ns), (96, md.ctime_ns), (112, md.mtime_ns)] {
        let (s, n) = split_ns(ns);
        put(&mut b, at, &s.to_le_bytes());
        put(&mut b, at + 8, &(n as u32).to_le_bytes());
    }
    put(&mut b, 128, &md.rdev.0.to_le_bytes());
    put(&mut b, 132, &md.rdev.1.to_le_bytes());
    put(&mut b, 136, &VFS_DEV.0.to_le_bytes());
    put(&mut b, 140, &VFS_DEV.1.to_le_bytes());
    b
}

fn write_stat(p: &Process, addr: u64, md: &Metadata) -> Result<usize> {
    let bytes = encode_stat(md);
    UserSliceWrite::new(addr, bytes.len())?.write(&*p.platform, &bytes)?;
    Ok(0)
}

/// `fstat(fd, statbuf)`
pub fn sys_fstat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let md = p.fds.lock().get(a.i32(0))?.metadata()?;
    write_stat(p, a.u64(1), &md)
}

/// `stat(path, statbuf)`
pub fn sys_stat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let path = path_arg(p, a.u64(0))?;
    let md = lookup_at(p, AT_FDCWD, &path, 0)?.metadata();
    write_stat(p, a.u64(1), &md)
}

/// `lstat(path, statbuf)`
pub fn sys_lstat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let path = path_arg(p, a.u64(0))?;
    let md = lookup_at(p, AT_FDCWD, &path, AT_SYMLINK_NOFOLLOW)?.metadata();
    write_stat(p, a.u64(1), &md)
}

/// `newfstatat(dirfd, path, statbuf, flags)`
pub fn sys_newfstatat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let flags = a.u32(3);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT) != 0 {
        return_errno!(Errno::EINVAL);
    }
    let path = path_arg(p, a.u64(1))?;
    let md = metadata_at(p, a.i32(0), &path, flags)?;
    write_stat(p, a.u64(2), &md)
}

/// The metadata `path` names relative to `dirfd`; with `AT_EMPTY_PATH` and
/// an empty path, that of the open file `dirfd` itself — any kind of file:
/// a pipe, socket or eventfd has no inode, and glibc's `fstat` is exactly
/// this call.
fn metadata_at(p: &Process, dirfd: i32, path: &[u8], flags: u32) -> Result<Metadata> {
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 && dirfd != AT_FDCWD {
        return p.fds.lock().get(dirfd)?.metadata();
    }
    Ok(lookup_at(p, dirfd, path, flags)?.metadata())
}

/// `statx(dirfd, path, flags, mask, statxbuf)`
pub fn sys_statx(p: &Process, a: &SyscallArgs) -> Result<usize> {
    const AT_STATX_SYNC_TYPE: u32 = 0x6000;
    let flags = a.u32(2);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0 {
        return_errno!(Errno::EINVAL);
    }
    if a.u32(3) & 0x8000_0000 != 0 {
        return_errno_with_message!(Errno::EINVAL, "STATX__RESERVED set in mask");
    }
    let path = path_arg(p, a.u64(1))?;
    let md = metadata_at(p, a.i32(0), &path, flags)?;
    let bytes = encode_statx(&md);
    UserSliceWrite::new(a.u64(4), bytes.len())?.write(&*p.platform, &bytes)?;
    Ok(0)
}

/// `getdents64(fd, dirp, count)`: `struct linux_dirent64` records
/// (`d_ino`, `d_off`, `d_reclen`, `d_type`, `d_name`), 8-byte aligned.
/// `d_off` is the index of the next entry; `EINVAL` if not even one
/// record fits.
pub fn sys_getdents64(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = p.fds.lock().get(a.i32(0))?;
    let Some(dir) = file.as_any().downcast_ref::<InodeFile>() else {
        return_errno!(Errno::ENOTDIR);
    };
    if !file.inode().is_some_and(|i| i.is_dir()) {
        return_errno!(Errno::ENOTDIR);
    }
    let count = a.usize(2).min(1 << 20);
    let out = UserSliceWrite::new(a.u64(1), count)?;
    let mut buf: Vec<u8> = Vec::new();
    let mut too_small = false;
    let mut out_of_memory = false;
    dir.read_dir_with(|name, ino, ty, next| {
        let reclen = (19 + name.len() + 1).next_multiple_of(8);
        if buf.len() + reclen > count {
            too_small = buf.is_empty();
            return false;
        }
        // The records are built in a kernel buffer that grows with
        // them: a failed growth ends the call with ENOMEM.
        if buf.try_room(reclen).is_err() {
            out_of_memory = true;
            return false;
        }
        buf.extend_from_slice(&ino.to_le_bytes());
        buf.extend_from_slice(&next.to_le_bytes());
        buf.extend_from_slice(&(reclen as u16).to_le_bytes());
        buf.push(ty.dirent_type());
        buf.extend_from_slice(name);
        buf.resize(buf.len() + reclen - 19 - name.len(), 0);
        true
    })?;
    if out_of_memory && buf.is_empty() {
        return_errno!(Errno::ENOMEM);
    }
    if too_small {
        return_errno_with_message!(Errno::EINVAL, "getdents64 buffer too small for one entry");
    }
    out.write(&*p.platform, &buf)
}
