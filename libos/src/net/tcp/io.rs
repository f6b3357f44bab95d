//! The data paths of a connected [`TcpSocket`]: a send copies from a
//! [`Source`] into smoltcp's send buffer, a receive from its receive
//! buffer into a [`Sink`] (both through [`super::ring`], so a fault part
//! way leaves the rest queued), and `shutdown`. Each runs on the
//! connection through `TcpSocket::on_conn` (`ENOTCONN` without one),
//! which first reads how it ended (`refresh` in [`super::state`]): the
//! error a reset left is given once; after it writers get `EPIPE`, and
//! readers, once the queued bytes are read, end of file.

use super::ring::{drain_receive_buffer, fill_send_buffer, peek_receive_buffer};
use super::state::TcpSocket;
use crate::error::{Errno, Result};
use crate::net::socket::{Received, Shutdown};
use crate::return_errno;
use crate::uio::{Sink, Source};

/// `send`: queues what fits of `src` (`EFAULT` if a fault stopped it
/// before any byte); `EAGAIN` when nothing fits, and when the buffer
/// filled, the room coming back is an event for `epoll`.
pub(super) fn send_from(socket: &TcpSocket, src: &mut dyn Source) -> Result<usize> {
    let r = socket.on_conn(false, |conn, s| {
        if let Some(e) = conn.error.take() {
            return Err(e.into());
        }
        if conn.connecting {
            return_errno!(Errno::EAGAIN);
        }
        if conn.shut_wr || conn.reset || !s.may_send() {
            return_errno!(Errno::EPIPE);
        }
        let wanted = src.left();
        let sent = fill_send_buffer(s, src)?;
        if src.faulted() {
            if sent == 0 {
                return_errno!(Errno::EFAULT);
            }
        } else if sent < wanted {
            // The buffer is full: room coming back is an event.
            socket.space.full();
        }
        if sent == 0 && wanted > 0 {
            return_errno!(Errno::EAGAIN);
        }
        Ok(sent)
    });
    match r {
        Err(e) if e.errno() == Errno::ENOTCONN => {
            // Linux: writing to a never-connected stream socket.
            return_errno!(Errno::ENOTCONN)
        }
        other => other,
    }
}

/// `recv` (`peek`: `MSG_PEEK`), end of file once the peer or a
/// shutdown ended the stream.
pub(super) fn recv_into(socket: &TcpSocket, out: &mut dyn Sink, peek: bool) -> Result<Received> {
    let mut drained = None;
    let r = socket.on_conn(true, |conn, s| {
        let done = |len| {
            Ok(Received {
                len,
                full_len: len,
                from: None,
                ancillary: Default::default(),
            })
        };
        if s.can_recv() && !conn.shut_rd {
            let n = if peek {
                peek_receive_buffer(s, out)
            } else {
                drain_receive_buffer(s, out)
            };
            if n == 0 && out.faulted() {
                // Nothing was taken out: the bytes stay queued.
                return_errno!(Errno::EFAULT);
            }
            if !peek && s.recv_queue() == 0 {
                drained = Some((conn.local, conn.remote));
            }
            return done(n);
        }
        if let Some(e) = conn.error.take() {
            return Err(e.into());
        }
        if conn.connecting {
            return_errno!(Errno::EAGAIN);
        }
        if conn.shut_rd || conn.reset || !s.may_recv() || out.room() == 0 {
            return done(0);
        }
        return_errno!(Errno::EAGAIN)
    });
    if let Some(flow) = drained {
        socket
            .stack
            .with_lock(|inner| inner.arrivals.drained(&flow));
    }
    r
}

/// `shutdown`: `SHUT_WR` sends the FIN.
pub(super) fn shutdown(socket: &TcpSocket, how: Shutdown) -> Result<()> {
    socket.on_conn(false, |conn, s| {
        if conn.connecting {
            return_errno!(Errno::ENOTCONN);
        }
        if how.write && !conn.shut_wr {
            conn.shut_wr = true;
            s.close();
        }
        conn.shut_rd |= how.read;
        // Linux wakes every waiter of a socket shut down.
        socket.events.all();
        Ok(())
    })
}
