//! Opening, closing, reading, writing and controlling file descriptors.

use alloc::sync::Arc;

use super::{base_dir, path_arg};
use crate::error::{Errno, Result};
use crate::fallible::{TryVec, with_capacity};
use crate::fasync::O_ASYNC;
use crate::fd::{FileLike, SeekFrom};
use crate::fs::InodeFile;
use crate::fs::file::open_flags::*;
use crate::fs::file::tty_ioctl::{FIOASYNC, FIOCLEX, FIONBIO};
use crate::ipc::PipeEnd;
use crate::process::Process;
use crate::syscall::SyscallArgs;
use crate::syscall::signal::sigpipe_on_epipe;
use crate::user::{UserPtr, UserSliceRead, UserSliceWrite};
use crate::{return_errno, return_errno_with_message};

/// `IOV_MAX`
const IOV_MAX: usize = 1024;
/// Largest single transfer, as Linux (`MAX_RW_COUNT`).
pub(crate) const MAX_RW_COUNT: usize = 0x7fff_f000;

pub(super) fn file(p: &Process, fd: i32) -> Result<Arc<dyn FileLike>> {
    p.fds.lock().get(fd)
}

/// Runs `op` on `file`; while it fails with `EAGAIN` on a blocking fd,
/// waits (through the platform's [`Blocker`](crate::platform::Blocker))
/// for it to succeed. The wake-up condition is the operation itself, not
/// just readiness: an eventfd can be writable yet too full for this value.
/// Records that the program was told `EAGAIN` (see
/// `Process::would_block_epoch`).
pub(crate) fn note_would_block(p: &Process) {
    p.would_block_epoch
        .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn retry_blocking<T>(
    p: &Process,
    file: &dyn FileLike,
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    let first = op();
    match first {
        Err(e) if e.errno() == Errno::EAGAIN && file.status_flags() & O_NONBLOCK == 0 => {}
        Err(e) if e.errno() == Errno::EAGAIN => {
            note_would_block(p);
            return Err(e);
        }
        other => return other,
    }
    let mut outcome = None;
    p.platform.block_until(
        &mut || match op() {
            Err(e) if e.errno() == Errno::EAGAIN => false,
            other => {
                outcome = Some(other);
                true
            }
        },
        None,
    )?;
    outcome.unwrap_or(Err(Errno::EAGAIN.into()))
}

/// Opens `path` relative to `dirfd` with `flags` and creation `mode`.
pub fn do_open(p: &Process, dirfd: i32, path: &[u8], flags: u32, mode: u32) -> Result<usize> {
    if flags & O_TMPFILE == O_TMPFILE {
        return_errno_with_message!(Errno::EOPNOTSUPP, "O_TMPFILE is not supported");
    }
    if flags & O_CREAT != 0 && flags & O_DIRECTORY != 0 {
        return_errno!(Errno::EINVAL);
    }
    let base = base_dir(p, dirfd, path)?;
    let follow = flags & O_NOFOLLOW == 0;
    let inode = match p.vfs.resolve(&base, path, follow) {
        Ok(_) if flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL => return_errno!(Errno::EEXIST),
        Ok(inode) => inode,
        Err(e) if e.errno() == Errno::ENOENT && flags & O_CREAT != 0 => {
            let perm = mode & 0o7777 & !p.umask();
            p.vfs.create_file(&base, path, perm)?
        }
        Err(e) => return Err(e),
    };
    let ty = inode.file_type();
    if ty == crate::fs::InodeType::Symlink && flags & O_PATH == 0 {
        return_errno!(Errno::ELOOP);
    }
    if flags & O_DIRECTORY != 0 && !inode.is_dir() {
        return_errno!(Errno::ENOTDIR);
    }
    let writing = matches!(flags & O_ACCMODE, O_WRONLY | O_RDWR);
    if inode.is_dir() && (writing || flags & O_CREAT != 0) && flags & O_PATH == 0 {
        return_errno!(Errno::EISDIR);
    }
    if flags & O_TRUNC != 0 && writing && ty == crate::fs::InodeType::Regular {
        inode.truncate(0, p.vfs.now())?;
    }
    let file: Arc<dyn FileLike> = if flags & O_PATH != 0 {
        Arc::new(InodeFile::new(p.vfs.clone(), inode, flags))
    } else if let Some(pipe) = inode.fifo() {
        // A FIFO: a new end of its pipe, after waiting for the other side.
        crate::ipc::pipe::open_fifo(&pipe, inode, flags, &*p.platform)?
    } else if ty == crate::fs::InodeType::Socket {
        return_errno_with_message!(Errno::ENXIO, "a socket node cannot be opened");
    } else {
        match inode.device().and_then(|d| d.open_file(&p.vfs, flags)) {
            // A device with an open file of its own (a pseudo-terminal).
            Some(file) => file?,
            None => {
                if let Some(device) = inode.device() {
                    device.open()?;
                }
                Arc::new(InodeFile::new(p.vfs.clone(), inode, flags))
            }
        }
    };
    let fd = p.fds.lock().insert(file, flags & O_CLOEXEC != 0)?;
    Ok(fd as usize)
}

/// `openat(dirfd, path, flags, mode)`
pub fn sys_openat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let path = path_arg(p, a.u64(1))?;
    do_open(p, a.i32(0), &path, a.u32(2), a.u32(3))
}

/// `open(path, flags, mode)`
pub fn sys_open(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let path = path_arg(p, a.u64(0))?;
    do_open(p, super::AT_FDCWD, &path, a.u32(1), a.u32(2))
}

/// `creat(path, mode)`
pub fn sys_creat(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let path = path_arg(p, a.u64(0))?;
    do_open(
        p,
        super::AT_FDCWD,
        &path,
        O_CREAT | O_WRONLY | O_TRUNC,
        a.u32(1),
    )
}

/// `close(fd)`
pub fn sys_close(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let file = p.fds.lock().close(a.i32(0))?;
    // Closing any fd of a file drops the process's POSIX locks on it.
    if let Ok(m) = file.metadata() {
        p.locks.release_process(p.pid, Some(m.ino));
    }
    Ok(0)
}

/// Reads from `file` into user memory at `addr`, `len` bytes, at `pos`
/// (or the file offset). Stops at the first short read. A file that
/// [`FileLike::copies_user`] (a regular file, a pipe, a socket) copies
/// straight into user memory; anything else goes through the process's
/// bounce buffer.
pub(super) fn read_to_user(
    p: &Process,
    file: &dyn FileLike,
    addr: u64,
    len: usize,
    pos: Option<u64>,
) -> Result<usize> {
    let len = len.min(MAX_RW_COUNT);
    UserSliceWrite::new(addr, len)?;
    if file.copies_user() {
        return match pos {
            Some(off) => file.read_user_at(&*p.platform, off, addr, len),
            None => retry_blocking(p, file, || file.read_user(&*p.platform, addr, len)),
        };
    }
    let mut buf = p.bounce.take(len)?;
    let mut done = 0usize;
    while done < len {
        let want = (len - done).min(buf.len());
        let n = match pos {
            Some(off) => file.read_at(off + done as u64, &mut buf[..want]),
            None if done == 0 => retry_blocking(p, file, || file.read(&mut buf[..want])),
            None => file.read(&mut buf[..want]),
        };
        let n = match n {
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        p.platform.write_user(addr + done as u64, &buf[..n])?;
        done += n;
        if n < want {
            break;
        }
    }
    Ok(done)
}

/// Writes `len` bytes from user memory at `addr` to `file` at `pos` (or
/// the file offset), straight from user memory when the file
/// [`FileLike::copies_user`], else through the bounce buffer.
pub(super) fn write_from_user(
    p: &Process,
    file: &dyn FileLike,
    addr: u64,
    len: usize,
    pos: Option<u64>,
) -> Result<usize> {
    let len = len.min(MAX_RW_COUNT);
    UserSliceRead::new(addr, len)?;
    if file.copies_user() {
        if let Some(off) = pos {
            return file.write_user_at(&*p.platform, off, addr, len);
        }
        // Straight from user memory into the file's buffer; a blocking
        // writer waits for room until everything is written, as below.
        let mut done = 0usize;
        while done < len {
            let at = addr + done as u64;
            let n = match retry_blocking(p, file, || file.write_user(&*p.platform, at, len - done))
            {
                Ok(n) => n,
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            done += n;
        }
        return Ok(done);
    }
    let mut buf = p.bounce.take(len)?;
    let mut done = 0usize;
    while done < len {
        let want = (len - done).min(buf.len());
        if let Err(e) = p.platform.read_user(addr + done as u64, &mut buf[..want]) {
            if done > 0 {
                break;
            }
            return Err(e);
        }
        let n = match pos {
            Some(off) => file.write_at(off + done as u64, &buf[..want]),
            None => retry_blocking(p, file, || file.write(&buf[..want])),
        };
        let n = match n {
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        done += n;
        // A blocking pipe or socket writer waits for room until
        // everything is written; anything else returns its short count
        // (an eventfd takes exactly 8 bytes).
        let stream = file.as_any().is::<PipeEnd>() || file.as_socket().is_some();
        if n == 0 || (n < want && !stream) {
            break;
        }
    }
    Ok(done)
}

/// `read(fd, buf, count)`
pub fn sys_read(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let f = file(p, a.i32(0))?;
    read_to_user(p, &*f, a.u64(1), a.usize(2), None)
}

/// `write(fd, buf, count)`
pub fn sys_write(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let f = file(p, a.i32(0))?;
    sigpipe_on_epipe(p, write_from_user(p, &*f, a.u64(1), a.usize(2), None))
}

fn offset_arg(a: &SyscallArgs, i: usize) -> Result<u64> {
    u64::try_from(a.i64(i)).map_err(|_| Errno::EINVAL.into())
}

/// A positioned transfer's offset, checked as Linux's `rw_verify_area`
/// does for a file with positions: `EINVAL` if negative or if `count`
/// bytes from it would pass the largest offset.
pub(super) fn positioned(f: &dyn FileLike, a: &SyscallArgs, i: usize, count: usize) -> Result<u64> {
    let off = offset_arg(a, i)?;
    if f.inode().is_some() {
        crate::fs::data::check_range(off, count.min(isize::MAX as usize))?;
    }
    Ok(off)
}

/// `pread64(fd, buf, count, offset)`
pub fn sys_pread64(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let f = file(p, a.i32(0))?;
    let off = positioned(&*f, a, 3, a.usize(2))?;
    read_to_user(p, &*f, a.u64(1), a.usize(2), Some(off))
}

/// `pwrite64(fd, buf, count, offset)`
pub fn sys_pwrite64(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let f = file(p, a.i32(0))?;
    let off = positioned(&*f, a, 3, a.usize(2))?;
    sigpipe_on_epipe(p, write_from_user(p, &*f, a.u64(1), a.usize(2), Some(off)))
}

/// Reads the `iovec` array: `(base, len)` pairs.
pub(crate) fn iovecs(
    p: &Process,
    addr: u64,
    count: usize,
) -> Result<alloc::vec::Vec<(u64, usize)>> {
    if count > IOV_MAX {
        return_errno!(Errno::EINVAL);
    }
    let base = UserPtr::<u64>::new(addr);
    let mut total = 0usize;
    let mut out = with_capacity(count)?;
    for i in 0..count {
        let iov_base = base.offset(2 * i)?.read(&*p.platform)?;
        let iov_len = base.offset(2 * i + 1)?.read(&*p.platform)?;
        let len = usize::try_from(iov_len).map_err(|_| Errno::EINVAL)?;
        total = total
            .checked_add(len)
            .filter(|&t| t <= isize::MAX as usize)
            .ok_or(Errno::EINVAL)?;
        out.try_push((iov_base, len))?;
    }
    Ok(out)
}

/// `read_to_user` or `write_from_user`: one buffer's transfer.
pub(super) type Transfer = fn(&Process, &dyn FileLike, u64, usize, Option<u64>) -> Result<usize>;

/// Runs `transfer` over each iovec in turn; stops at the first short
/// transfer, and an error after some progress ends with the progress.
fn vectored(p: &Process, a: &SyscallArgs, transfer: Transfer) -> Result<usize> {
    let f = file(p, a.i32(0))?;
    vectored_at(p, &*f, a, transfer, None)
}

/// [`vectored`] on `f` from `pos` on (or the file offset, for `None`).
pub(super) fn vectored_at(
    p: &Process,
    f: &dyn FileLike,
    a: &SyscallArgs,
    transfer: Transfer,
    pos: Option<u64>,
) -> Result<usize> {
    let mut done = 0;
    for (base, len) in iovecs(p, a.u64(1), a.usize(2))? {
        let at = pos.map(|off| off + done as u64);
        let n = match transfer(p, f, base, len, at) {
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        done += n;
        if n < len {
            break;
        }
    }
    Ok(done)
}

/// `readv(fd, iov, iovcnt)`
pub fn sys_readv(p: &Process, a: &SyscallArgs) -> Result<usize> {
    vectored(p, a, read_to_user)
}

/// `writev(fd, iov, iovcnt)`
pub fn sys_writev(p: &Process, a: &SyscallArgs) -> Result<usize> {
    sigpipe_on_epipe(p, vectored(p, a, write_from_user))
}

/// `lseek(fd, offset, whence)`: `SEEK_SET`, `SEEK_CUR`, `SEEK_END`,
/// `SEEK_DATA`, `SEEK_HOLE` (a regular file's holes are its missing
/// pages, as on tmpfs; anything else is all data).
pub fn sys_lseek(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let f = file(p, a.i32(0))?;
    let off = a.i64(1);
    let pos = match a.u32(2) {
        0 => SeekFrom::Start(off),
        1 => SeekFrom::Current(off),
        2 => SeekFrom::End(off),
        whence @ (3 | 4) => {
            let start = u64::try_from(off).map_err(|_| Errno::ENXIO)?;
            if let Some(found) = f
                .inode()
                .and_then(|i| i.seek_data_or_hole(start, whence == 3))
            {
                return Ok(f.seek(SeekFrom::Start(found? as i64))? as usize);
            }
            let size = f.metadata()?.size;
            if start >= size {
                return_errno!(Errno::ENXIO);
            }
            SeekFrom::Start(if whence == 3 { off } else { size as i64 })
        }
        _ => return_errno!(Errno::EINVAL),
    };
    Ok(f.seek(pos)? as usize)
}

/// `dup(fd)`
pub fn sys_dup(p: &Process, a: &SyscallArgs) -> Result<usize> {
    Ok(p.fds.lock().dup(a.i32(0))? as usize)
}

/// `dup2(old, new)`
pub fn sys_dup2(p: &Process, a: &SyscallArgs) -> Result<usize> {
    Ok(p.fds.lock().dup2(a.i32(0), a.i32(1))? as usize)
}

/// `dup3(old, new, flags)`: only `O_CLOEXEC` is allowed in `flags`.
pub fn sys_dup3(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let flags = a.u32(2);
    if flags & !O_CLOEXEC != 0 {
        return_errno!(Errno::EINVAL);
    }
    Ok(p.fds.lock().dup3(a.i32(0), a.i32(1), flags != 0)? as usize)
}

/// `fcntl` commands handled.
mod cmd {
    pub const F_DUPFD: u32 = 0;
    pub const F_GETFD: u32 = 1;
    pub const F_SETFD: u32 = 2;
    pub const F_GETFL: u32 = 3;
    pub const F_SETFL: u32 = 4;
    pub const F_GETLK: u32 = 5;
    pub const F_SETLK: u32 = 6;
    pub const F_SETLKW: u32 = 7;
    pub const F_SETOWN: u32 = 8;
    pub const F_GETOWN: u32 = 9;
    pub const F_OFD_GETLK: u32 = 36;
    pub const F_OFD_SETLK: u32 = 37;
    pub const F_OFD_SETLKW: u32 = 38;
    pub const F_DUPFD_CLOEXEC: u32 = 1030;
    pub const F_SETPIPE_SZ: u32 = 1031;
    pub const F_GETPIPE_SZ: u32 = 1032;
    pub const FD_CLOEXEC: u64 = 1;
}

/// `fcntl(fd, cmd, arg)`: fd duplication, `FD_CLOEXEC`, status flags,
/// a pipe's size (`F_GETPIPE_SZ`, `F_SETPIPE_SZ`), the `SIGIO` owner and
/// record locks (`super::locks`).
pub fn sys_fcntl(p: &Process, a: &SyscallArgs) -> Result<usize> {
    use cmd::*;
    let fd = a.i32(0);
    let f = file(p, fd)?;
    match a.u32(1) {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = usize::try_from(a.i32(2)).map_err(|_| Errno::EINVAL)?;
            let cloexec = a.u32(1) == F_DUPFD_CLOEXEC;
            Ok(p.fds.lock().insert_from(min, f, cloexec)? as usize)
        }
        F_GETFD => Ok(usize::from(p.fds.lock().cloexec(fd)?)),
        F_SETFD => {
            p.fds.lock().set_cloexec(fd, a.u64(2) & FD_CLOEXEC != 0)?;
            Ok(0)
        }
        F_GETFL => {
            let on = f.fasync().is_some_and(|o| o.enabled());
            Ok((f.status_flags() | if on { O_ASYNC } else { 0 }) as usize)
        }
        F_SETFL => {
            let flags = a.u32(2);
            f.set_status_flags(flags)?;
            // O_ASYNC is kept where data arrives; a kind of file without
            // signal-driven I/O ignores it, as Linux's files without a
            // `fasync` operation do.
            if let Some(owner) = f.fasync() {
                owner.set_enabled(flags & O_ASYNC != 0);
            }
            Ok(0)
        }
        F_SETOWN => {
            let Some(owner) = f.fasync() else {
                return_errno_with_message!(Errno::EINVAL, "no signal-driven I/O on this file");
            };
            owner.set_owner(a.i32(2), &p.processes);
            Ok(0)
        }
        F_GETOWN => Ok(f.fasync().map_or(0, |o| o.owner()) as isize as usize),
        F_GETLK | F_OFD_GETLK | F_SETLK | F_SETLKW | F_OFD_SETLK | F_OFD_SETLKW => {
            super::locks::fcntl_lock(p, &f, a.u32(1), a.u64(2))
        }
        F_GETPIPE_SZ | F_SETPIPE_SZ => {
            // Linux answers EBADF for anything but a pipe.
            let pipe = f.as_any().downcast_ref::<PipeEnd>().ok_or(Errno::EBADF)?;
            if a.u32(1) == F_GETPIPE_SZ {
                Ok(pipe.capacity())
            } else {
                pipe.set_capacity(u64::from(a.u32(2)))
            }
        }
        _ => return_errno_with_message!(Errno::EINVAL, "unsupported fcntl command"),
    }
}

/// `ioctl(fd, request, arg)`: `FIONBIO`, `FIOCLEX`/`FIONCLEX`,
/// `FIOASYNC` (pipes and Unix sockets, see [`crate::fasync`]), and the
/// terminal queries (`TCGETS`, `TIOCGWINSZ`, …) on the console; `ENOTTY`
/// for anything else, as Linux answers for a non-terminal.
pub fn sys_ioctl(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let fd = a.i32(0);
    let f = file(p, fd)?;
    let request = a.u32(1);
    match request {
        FIOCLEX | 0x5450 => {
            p.fds.lock().set_cloexec(fd, request == FIOCLEX)?;
            return Ok(0);
        }
        FIOASYNC => {
            let on = UserPtr::<i32>::new(a.u64(2)).read(&*p.platform)?;
            let Some(owner) = f.fasync() else {
                return_errno_with_message!(Errno::ENOTTY, "no signal-driven I/O on this file");
            };
            owner.set_enabled(on != 0);
            return Ok(0);
        }
        FIONBIO => {
            // Every kind of file: O_NONBLOCK through the status flags, as
            // Linux's generic ioctl does (`os.set_blocking` on a pipe).
            let on = UserPtr::<i32>::new(a.u64(2)).read(&*p.platform)?;
            let flags = f.status_flags();
            let flags = if on != 0 {
                flags | O_NONBLOCK
            } else {
                flags & !O_NONBLOCK
            };
            f.set_status_flags(flags)?;
            return Ok(0);
        }
        _ => {}
    }
    if request == crate::fs::pty::request::TIOCGPTPEER {
        // A pseudo-terminal master's slave as a new fd.
        let Some(master) = f.as_any().downcast_ref::<crate::fs::pty::PtySide>() else {
            return_errno!(Errno::ENOTTY);
        };
        let flags = a.u32(2);
        let slave = master.open_peer(flags)?;
        let fd = p.fds.lock().insert(slave, flags & O_CLOEXEC != 0)?;
        return Ok(fd as usize);
    }
    let arg = a.u64(2);
    let read_arg = |n: usize| UserSliceRead::new(arg, n)?.read_to_vec(&*p.platform);
    let reply = f.ioctl_with(request, arg, &read_arg)?;
    if !reply.out.is_empty() {
        UserSliceWrite::new(a.u64(2), reply.out.len())?.write(&*p.platform, &reply.out)?;
    }
    Ok(reply.ret)
}
