//! Copies between a connection's smoltcp ring buffers and a
//! [`Sink`]/[`Source`] (user memory, a kernel slice, a file's pages):
//! smoltcp hands out each contiguous run of its ring (the part before the
//! ring's end, then the part wrapped to its start) and dequeues or queues
//! exactly the bytes the copy moved, so a copy that stops at a fault
//! leaves the rest where it was.

use smoltcp::socket::tcp;

use crate::error::{Errno, Result};
use crate::return_errno;
use crate::uio::{Sink, Source};

/// Copies from `src` into `s`'s send buffer (its two free runs, the
/// ring's end then its start) until `src` is drained, faults, or the
/// buffer is full; smoltcp queues exactly the bytes copied.
pub(super) fn fill_send_buffer(
    s: &mut tcp::Socket<'static>,
    src: &mut dyn Source,
) -> Result<usize> {
    let mut sent = 0;
    while src.left() > 0 {
        match s.send(|room| {
            let n = src.take(room);
            (n, n)
        }) {
            Ok(0) => break,
            Ok(n) => sent += n,
            Err(_) if sent > 0 => break,
            Err(_) => return_errno!(Errno::EPIPE),
        }
    }
    Ok(sent)
}

/// Copies the front of `s`'s receive buffer into `out` (the ring's end,
/// then its start) and takes out exactly the bytes copied: what a fault
/// or a full `out` left stays queued.
pub(super) fn drain_receive_buffer(s: &mut tcp::Socket<'static>, out: &mut dyn Sink) -> usize {
    let mut got = 0;
    while out.room() > 0 {
        let n = s
            .recv(|queued| {
                let n = out.put(queued);
                (n, n)
            })
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        got += n;
    }
    got
}

/// Copies the front of `s`'s receive buffer into `out` and leaves it
/// queued (`MSG_PEEK`). The part before the ring's end goes straight;
/// queued bytes that wrapped to its start are reached only through
/// smoltcp's `peek_slice`, so that rarer rest goes through a buffer.
/// Without memory for that buffer the peek gives the first part only (a
/// short peek, which a stream may always give).
pub(super) fn peek_receive_buffer(s: &mut tcp::Socket<'static>, out: &mut dyn Sink) -> usize {
    let want = out.room();
    let first = s.peek(want).map_or(0, |front| out.put(front));
    let queued = s.recv_queue().min(want);
    if first == 0 || out.room() == 0 || first >= queued {
        return first;
    }
    let Ok(mut front) = crate::fallible::zeroed(queued) else {
        return first;
    };
    let n = s.peek_slice(&mut front).unwrap_or(0);
    first + out.put(front.get(first..n).unwrap_or(&[]))
}
