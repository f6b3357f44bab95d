//! `splice`: moves bytes between a pipe and another file descriptor (or
//! between two pipes) without a trip through user memory.
//!
//! As Linux: one end must be a pipe (`EINVAL` otherwise), an offset
//! pointer for a pipe end is `ESPIPE`, an `O_APPEND` output is `EINVAL`.
//! A file or socket input is read at its offset (or `*off_in`) for as
//! many bytes as the output pipe takes, and the offset advances by what
//! was written. A pipe input is read for at most what the output can take
//! now (a file takes everything; another pipe its free space), so no byte
//! taken from the pipe is lost. An empty input pipe, or an output pipe
//! without room, waits unless either fd or `SPLICE_F_NONBLOCK` says not to
//! (`EAGAIN`).

use super::io::{MAX_RW_COUNT, file, retry_blocking};
use crate::error::{Errno, Result};
use crate::fd::{FileLike, SeekFrom};
use crate::fs::file::open_flags::{O_APPEND, O_NONBLOCK};
use crate::ipc::PipeEnd;
use crate::process::Process;
use crate::return_errno;
use crate::syscall::SyscallArgs;
use crate::user::UserPtr;

/// `SPLICE_F_NONBLOCK`
pub const SPLICE_F_NONBLOCK: u32 = 2;
/// Every `SPLICE_F_*` flag (`MOVE`, `NONBLOCK`, `MORE`, `GIFT`).
const SPLICE_FLAGS: u32 = 0xf;

fn as_pipe(f: &dyn FileLike) -> Option<&PipeEnd> {
    f.as_any().downcast_ref::<PipeEnd>()
}

/// Runs `op` until it stops saying `EAGAIN`, unless `nonblock`.
fn maybe_wait<T>(
    p: &Process,
    f: &dyn FileLike,
    nonblock: bool,
    op: impl FnMut() -> Result<T>,
) -> Result<T> {
    if nonblock || f.status_flags() & O_NONBLOCK != 0 {
        let mut op = op;
        op()
    } else {
        retry_blocking(p, f, op)
    }
}

/// The offset to use for a non-pipe end: `*ptr`, or the file offset.
fn start(p: &Process, f: &dyn FileLike, ptr: &UserPtr<i64>) -> Result<u64> {
    if ptr.is_null() {
        f.seek(SeekFrom::Current(0))
    } else {
        u64::try_from(ptr.read(&*p.platform)?).map_err(|_| Errno::EINVAL.into())
    }
}

/// Stores the offset after the copy: in `*ptr`, or as the file offset.
fn finish(p: &Process, f: &dyn FileLike, ptr: &UserPtr<i64>, pos: u64) -> Result<()> {
    if ptr.is_null() {
        f.seek(SeekFrom::Start(pos as i64))?;
    } else {
        ptr.write(&*p.platform, pos as i64)?;
    }
    Ok(())
}

/// `splice(fd_in, off_in, fd_out, off_out, len, flags)`
pub fn sys_splice(p: &Process, a: &SyscallArgs) -> Result<usize> {
    crate::syscall::signal::sigpipe_on_epipe(p, splice(p, a))
}

fn splice(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let flags = a.u32(5);
    if flags & !SPLICE_FLAGS != 0 {
        return_errno!(Errno::EINVAL);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let (input, output) = (file(p, a.i32(0))?, file(p, a.i32(2))?);
    let (off_in, off_out) = (UserPtr::<i64>::new(a.u64(1)), UserPtr::<i64>::new(a.u64(3)));
    let (in_pipe, out_pipe) = (as_pipe(&*input), as_pipe(&*output));
    if in_pipe.is_none() && out_pipe.is_none() {
        return_errno!(Errno::EINVAL);
    }
    if (in_pipe.is_some() && !off_in.is_null()) || (out_pipe.is_some() && !off_out.is_null()) {
        return_errno!(Errno::ESPIPE);
    }
    if output.status_flags() & O_APPEND != 0 {
        return_errno!(Errno::EINVAL);
    }
    let len = a.usize(4).min(MAX_RW_COUNT);
    if len == 0 {
        return Ok(0);
    }
    let mut buf = p.bounce.take(len)?;
    let want = buf.len();
    match (in_pipe, out_pipe) {
        (None, Some(out)) => {
            // File (or socket) to pipe: read at the offset, write what
            // fits, advance by what was written.
            let mut pos = start(p, &*input, &off_in)?;
            let n = input.read_at(pos, &mut buf[..want])?;
            if n == 0 {
                return Ok(0);
            }
            let w = maybe_wait(p, &*output, nonblock, || out.write(&buf[..n]))?;
            pos += w as u64;
            finish(p, &*input, &off_in, pos)?;
            Ok(w)
        }
        (Some(inp), out) => {
            // Pipe to file or pipe: take no more than the output takes.
            let room = |b: usize| match out {
                Some(o) => o.free_space().min(b),
                None => b,
            };
            if let Some(o) = out {
                maybe_wait(p, &*output, nonblock, || match o.free_space() {
                    0 => Err(Errno::EAGAIN.into()),
                    free => Ok(free),
                })?;
            }
            let n = {
                let take = room(want);
                maybe_wait(p, &*input, nonblock, || inp.read(&mut buf[..take]))?
            };
            if n == 0 {
                return Ok(0);
            }
            match out {
                Some(o) => o.write(&buf[..n]),
                None => {
                    let mut pos = start(p, &*output, &off_out)?;
                    let w = output.write_at(pos, &buf[..n])?;
                    pos += w as u64;
                    finish(p, &*output, &off_out, pos)?;
                    Ok(w)
                }
            }
        }
        (None, None) => return_errno!(Errno::EINVAL),
    }
}
