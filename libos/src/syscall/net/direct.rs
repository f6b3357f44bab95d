//! `sendto`/`sendmsg` and `recvfrom`/`recvmsg` on a socket that copies
//! straight between user memory and its own buffers (TCP and UDP, see
//! [`FileLike::copies_user`]): no bounce buffer, and a fault part way ends
//! the call with the bytes moved before it.

use alloc::sync::Arc;

use super::msg::*;
use super::{blocking, is_datagram, sock};
use crate::error::{Errno, Result};
use crate::fd::FileLike;
use crate::fs::file::open_flags::O_NONBLOCK;
use crate::net::SockAddr;
use crate::net::ancillary::Cmsg;
use crate::net::socket::Received;
use crate::process::Process;
use crate::return_errno;
use crate::uio::{Sink, Source, UserSink, UserSource};

/// Sends from user memory straight into the socket's buffer (a socket
/// whose [`FileLike::copies_user`]): a datagram whole, a stream (blocking)
/// until all of it is queued, a fault part way ending with the bytes
/// queued before it.
pub(super) fn send_direct(
    p: &Process,
    file: &Arc<dyn FileLike>,
    src: &mut UserSource<'_>,
    to: Option<&SockAddr>,
    flags: u32,
    control: &[Cmsg],
) -> Result<usize> {
    if flags & MSG_OOB != 0 {
        return_errno!(Errno::EOPNOTSUPP);
    }
    let s = sock(file);
    let dontwait = flags & MSG_DONTWAIT != 0;
    if is_datagram(file) {
        return blocking(p, &**file, dontwait, || s.send_from(src, to, control));
    }
    let mut done = 0;
    loop {
        match blocking(p, &**file, dontwait, || s.send_from(src, to, control)) {
            Ok(n) => done += n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
        let nonblocking = dontwait || file.status_flags() & O_NONBLOCK != 0;
        if src.left() == 0 || src.faulted() || nonblocking {
            break;
        }
    }
    Ok(done)
}

/// Receives straight from the socket's buffer into user memory `out` (a
/// socket whose [`FileLike::copies_user`]); `MSG_WAITALL` fills it on a
/// stream. A fault part way ends with the bytes copied before it, and
/// the rest stays queued.
pub(super) fn recv_direct(
    p: &Process,
    file: &Arc<dyn FileLike>,
    out: &mut UserSink<'_>,
    flags: u32,
) -> Result<Received> {
    if flags & MSG_OOB != 0 {
        return_errno!(Errno::EOPNOTSUPP);
    }
    let s = sock(file);
    let peek = flags & MSG_PEEK != 0;
    let dontwait = flags & MSG_DONTWAIT != 0;
    let mut got = blocking(p, &**file, dontwait, || s.recv_into(out, peek))?;
    if !is_datagram(file) && flags & MSG_WAITALL != 0 && !peek {
        while got.len > 0 && out.room() > 0 {
            match blocking(p, &**file, dontwait, || s.recv_into(out, false)) {
                Ok(r) if r.len > 0 => got.len += r.len,
                _ => break,
            }
        }
        got.full_len = got.len;
    }
    Ok(got)
}
