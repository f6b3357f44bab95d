//! In-kernel copies between file descriptors: `sendfile` and
//! `copy_file_range`. The data never visits user memory, which halves the
//! copying of busybox `tar`, `cp` and nginx's static files.

use super::io::{MAX_RW_COUNT, retry_blocking};
use crate::error::{Errno, Result};
use crate::fd::{FileLike, SeekFrom};
use crate::fs::InodeFile;
use crate::fs::file::open_flags::{O_APPEND, O_NONBLOCK};
use crate::fs::inode::Content;
use crate::net::Socket;
use crate::process::Process;
use crate::return_errno;
use crate::syscall::SyscallArgs;
use crate::uio::Source;
use crate::user::UserPtr;

/// Copies up to `count` bytes from `input` (at `*pos`, advanced) to
/// `output` (at its own offset, or at `*out_pos` when given). Stops at end
/// of input or a short write; an error after some progress ends the copy
/// with the progress, as `read`/`write` do.
fn copy(
    p: &Process,
    input: &dyn FileLike,
    pos: &mut u64,
    output: &dyn FileLike,
    mut out_pos: Option<&mut u64>,
    count: usize,
) -> Result<usize> {
    let count = count.min(MAX_RW_COUNT);
    if out_pos.is_none()
        && let Some(sock) = straight_to_socket(input, output)
    {
        return file_to_socket(p, input, pos, output, sock, count);
    }
    let mut buf = p.bounce.take(count)?;
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(buf.len());
        let n = match input.read_at(*pos, &mut buf[..want]) {
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        let mut written = 0;
        while written < n {
            let chunk = &buf[written..n];
            let w = match out_pos.as_deref_mut() {
                Some(at) => output.write_at(*at, chunk).inspect(|&w| *at += w as u64),
                None => retry_blocking(p, output, || output.write(chunk)),
            };
            match w {
                Ok(0) => break,
                Ok(w) => written += w,
                Err(_) if done + written > 0 => break,
                Err(e) => return Err(e),
            }
        }
        *pos += written as u64;
        done += written;
        if written < n || n < want {
            break;
        }
    }
    Ok(done)
}

/// `output` as a socket that takes bytes straight into its send buffer
/// ([`Socket::send_from`]), when `input` is a file of the in-memory file
/// system whose reads only copy its pages (not a device or a generated
/// `/proc` file, whose reads could reach the network stack that the
/// copy holds locked).
fn straight_to_socket<'a>(
    input: &dyn FileLike,
    output: &'a dyn FileLike,
) -> Option<&'a dyn Socket> {
    let sock = output.as_socket().filter(|_| output.copies_user())?;
    input.as_any().downcast_ref::<InodeFile>()?;
    let inode = input.inode()?;
    let pages = matches!(inode.data.lock().content, Content::File(_));
    pages.then_some(sock)
}

/// A file's bytes from `pos` on, read page by page into a socket's send
/// buffer; it ends at the end of the file.
struct FileSource<'a> {
    file: &'a dyn FileLike,
    pos: u64,
    left: usize,
}

impl Source for FileSource<'_> {
    fn left(&self) -> usize {
        self.left
    }

    fn take(&mut self, buf: &mut [u8]) -> usize {
        let want = buf.len().min(self.left);
        let n = self.file.read_at(self.pos, &mut buf[..want]).unwrap_or(0);
        self.pos += n as u64;
        // Past the end (or a file cut short meanwhile): nothing more.
        self.left = if n < want { 0 } else { self.left - n };
        n
    }
}

/// [`copy`] from a file of the in-memory file system to a socket: the
/// pages go straight into the socket's send buffer, no buffer between.
/// A blocking socket waits for room until `count` bytes or the end of
/// the file are queued.
fn file_to_socket(
    p: &Process,
    input: &dyn FileLike,
    pos: &mut u64,
    output: &dyn FileLike,
    sock: &dyn Socket,
    count: usize,
) -> Result<usize> {
    // EBADF for an input not open for reading, before anything is sent.
    input.read_at(*pos, &mut [])?;
    let size = input.metadata()?.size;
    let left = usize::try_from(size.saturating_sub(*pos)).map_or(count, |l| l.min(count));
    let mut src = FileSource {
        file: input,
        pos: *pos,
        left,
    };
    let mut done = 0usize;
    while src.left() > 0 {
        match retry_blocking(p, output, || sock.send_from(&mut src, None, &[])) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
        if output.status_flags() & O_NONBLOCK != 0 {
            break;
        }
    }
    *pos = src.pos;
    Ok(done)
}

fn fd(p: &Process, fd: i32) -> Result<alloc::sync::Arc<dyn FileLike>> {
    p.fds.lock().get(fd)
}

/// `sendfile(out_fd, in_fd, offset, count)`: from a seekable `in_fd` (at
/// `*offset`, which is advanced, or at its file offset, which is) to any
/// `out_fd` — file, pipe, console or socket. `EINVAL` for an `O_APPEND`
/// output or an input without positioned reads (a pipe), as Linux.
pub fn sys_sendfile(p: &Process, a: &SyscallArgs) -> Result<usize> {
    crate::syscall::signal::sigpipe_on_epipe(p, sendfile(p, a))
}

fn sendfile(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (out, input) = (fd(p, a.i32(0))?, fd(p, a.i32(1))?);
    if out.status_flags() & O_APPEND != 0 || input.inode().is_none() {
        return_errno!(Errno::EINVAL);
    }
    let off_ptr = UserPtr::<i64>::new(a.u64(2));
    if off_ptr.is_null() {
        let mut pos = input.seek(SeekFrom::Current(0))?;
        let n = copy(p, &*input, &mut pos, &*out, None, a.usize(3))?;
        input.seek(SeekFrom::Start(pos as i64))?;
        Ok(n)
    } else {
        let start = off_ptr.read(&*p.platform)?;
        let mut pos = u64::try_from(start).map_err(|_| Errno::EINVAL)?;
        let n = copy(p, &*input, &mut pos, &*out, None, a.usize(3))?;
        off_ptr.write(&*p.platform, pos as i64)?;
        Ok(n)
    }
}

/// `copy_file_range(fd_in, off_in, fd_out, off_out, len, flags)` between
/// regular files; `flags` must be 0. `EINVAL` for non-files or an
/// `O_APPEND` output, `EBADF` for a write-only input (checked by `read_at`).
pub fn sys_copy_file_range(p: &Process, a: &SyscallArgs) -> Result<usize> {
    if a.u32(5) != 0 {
        return_errno!(Errno::EINVAL);
    }
    let (input, out) = (fd(p, a.i32(0))?, fd(p, a.i32(2))?);
    if input.inode().is_none() || out.inode().is_none() || out.status_flags() & O_APPEND != 0 {
        return_errno!(Errno::EINVAL);
    }
    let in_ptr = UserPtr::<i64>::new(a.u64(1));
    let out_ptr = UserPtr::<i64>::new(a.u64(3));
    let read_pos = |ptr: &UserPtr<i64>, f: &dyn FileLike| -> Result<u64> {
        if ptr.is_null() {
            f.seek(SeekFrom::Current(0))
        } else {
            u64::try_from(ptr.read(&*p.platform)?).map_err(|_| Errno::EINVAL.into())
        }
    };
    let mut in_pos = read_pos(&in_ptr, &*input)?;
    let mut out_pos = read_pos(&out_ptr, &*out)?;
    let n = copy(
        p,
        &*input,
        &mut in_pos,
        &*out,
        Some(&mut out_pos),
        a.usize(4),
    )?;
    for (ptr, f, pos) in [(&in_ptr, &input, in_pos), (&out_ptr, &out, out_pos)] {
        if ptr.is_null() {
            f.seek(SeekFrom::Start(pos as i64))?;
        } else {
            ptr.write(&*p.platform, pos as i64)?;
        }
    }
    Ok(n)
}
