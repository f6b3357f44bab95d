//! [`TcpSocket`] and its state: a socket is idle (unbound, or bound to
//! a port in the [`PortTable`]), a listener (its id in the stack), or a
//! connection (`Conn`: one smoltcp socket and what smoltcp does not
//! record). `refresh` reads how a connection ended (a reset, as the
//! module above says) after anything smoltcp did, and `on_conn` runs an
//! operation on the connection with it done. Dropping the socket frees
//! its port and closes its connection (resets it, with unread data or a
//! zero linger).
//!
//! [`PortTable`]: crate::net::port::PortTable

use alloc::sync::Arc;
use core::net::SocketAddr;
use core::sync::atomic::AtomicU32;

use smoltcp::socket::tcp::{self, State};
use smoltcp::wire::IpEndpoint;
use spin::Mutex;

use super::options::TcpOptions;
use crate::error::{Errno, Result};
use crate::fs::file::open_flags::{O_NONBLOCK, O_RDWR};
use crate::ipc::events::{EventCounts, SpaceWait};
use crate::ipc::next_anon_ino;
use crate::net::inet::Inet;
use crate::net::port::Proto;
use crate::net::socket::CommonOptions;
use crate::net::stack::{IfaceId, Inner, NetStack, SocketHandle};
use crate::return_errno;

/// Receive and send buffer of a TCP socket, bytes each (with window
/// scaling, enough for a bandwidth-delay product of 256 KiB).
pub const TCP_BUFFER_BYTES: usize = 256 * 1024;

/// A connection's smoltcp socket and what smoltcp does not record.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) iface: IfaceId,
    pub(super) handle: SocketHandle,
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
    /// `connect` returned before the handshake finished.
    pub(super) connecting: bool,
    /// An error for the next call (`SO_ERROR`).
    pub(super) error: Option<Errno>,
    /// The connection was reset (or refused): writes give `EPIPE`, reads end of file.
    pub(super) reset: bool,
    pub(super) shut_rd: bool,
    pub(super) shut_wr: bool,
}

#[derive(Debug)]
pub(super) enum Phase {
    /// No address yet, or `bind`'s address.
    Idle(Option<SocketAddr>),
    /// Listening: the listener's id in the stack.
    Listening { id: u64, local: SocketAddr },
    /// Connecting or connected.
    Connected(Conn),
}

#[derive(Debug)]
pub(super) struct State_ {
    pub(super) phase: Phase,
    /// The port this socket owns in the port table: `(port, owner)`.
    pub(super) lease: Option<(u16, u64)>,
    pub(super) common: CommonOptions,
    pub(super) tcp: TcpOptions,
    pub(super) inet: Inet,
    /// Bound at `::` without `IPV6_V6ONLY`: IPv4 too.
    pub(super) dual: bool,
}

/// An `AF_INET` or `AF_INET6` stream socket.
pub struct TcpSocket {
    pub(super) stack: Arc<NetStack>,
    pub(super) state: Mutex<State_>,
    pub(super) flags: AtomicU32,
    pub(super) ino: u64,
    /// Its own shutdowns (events for every waiter).
    pub(super) events: EventCounts,
    /// Room in the send buffer after a write found it full.
    pub(super) space: SpaceWait,
}

impl core::fmt::Debug for TcpSocket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TcpSocket")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A smoltcp endpoint as a socket address.
pub(super) fn endpoint(e: IpEndpoint) -> SocketAddr {
    SocketAddr::from(e)
}

/// Checks the end of a connection after anything smoltcp did.
pub(super) fn refresh(conn: &mut Conn, s: &tcp::Socket) {
    match s.state() {
        State::Closed if !conn.reset && !conn.shut_wr => {
            conn.reset = true;
            conn.error = Some(if conn.connecting {
                Errno::ECONNREFUSED
            } else {
                Errno::ECONNRESET
            });
            conn.connecting = false;
        }
        State::SynSent | State::SynReceived | State::Closed => {}
        _ => conn.connecting = false,
    }
}

impl TcpSocket {
    /// A new unbound `AF_INET` socket on `stack`, with `O_NONBLOCK` if in `flags`.
    pub fn new(stack: Arc<NetStack>, flags: u32) -> Self {
        Self::of_family(stack, flags, Inet::V4)
    }

    /// A new unbound `AF_INET6` socket (dual stack until `IPV6_V6ONLY`).
    pub fn new_v6(stack: Arc<NetStack>, flags: u32) -> Self {
        Self::of_family(stack, flags, Inet::V6)
    }

    fn of_family(stack: Arc<NetStack>, flags: u32, inet: Inet) -> Self {
        let sock = Self::with_phase(
            stack,
            flags,
            Phase::Idle(None),
            CommonOptions::new((TCP_BUFFER_BYTES, TCP_BUFFER_BYTES)),
            TcpOptions::default(),
        );
        sock.state.lock().inet = inet;
        sock
    }

    /// A socket in `phase` with these options (`accept` makes its
    /// connections `Connected` from the start), family `AF_INET`.
    pub(super) fn with_phase(
        stack: Arc<NetStack>,
        flags: u32,
        phase: Phase,
        common: CommonOptions,
        tcp: TcpOptions,
    ) -> Self {
        Self {
            stack,
            state: Mutex::new(State_ {
                phase,
                lease: None,
                common,
                tcp,
                inet: Inet::V4,
                dual: false,
            }),
            flags: AtomicU32::new(O_RDWR | (flags & O_NONBLOCK)),
            ino: next_anon_ino(),
            events: EventCounts::new(),
            space: SpaceWait::new(),
        }
    }

    /// The card's address, if there is a card.
    pub(super) fn ext_addr(&self) -> Option<core::net::Ipv4Addr> {
        self.stack.has_device().then(|| self.stack.config().addr)
    }

    /// Runs `f` on the connection and its smoltcp socket, after driving
    /// the stack (`polled`) or before (`with`).
    pub(super) fn on_conn<R>(
        &self,
        drive_first: bool,
        f: impl FnOnce(&mut Conn, &mut tcp::Socket<'static>) -> Result<R>,
    ) -> Result<R> {
        let mut st = self.state.lock();
        let Phase::Connected(conn) = &mut st.phase else {
            return_errno!(Errno::ENOTCONN);
        };
        let run = |inner: &mut Inner| {
            let s = inner.tcp(conn.iface, conn.handle);
            refresh(conn, s);
            f(conn, s)
        };
        if drive_first {
            self.stack.polled(run)
        } else {
            self.stack.with(run)
        }
    }
}

impl Drop for TcpSocket {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        let linger0 = st.common.linger == Some(0);
        let lease = st.lease.take();
        let phase = core::mem::replace(&mut st.phase, Phase::Idle(None));
        self.stack.with(|inner| {
            if let Some((port, owner)) = lease {
                inner.ports.release(Proto::Tcp, port, owner);
            }
            match phase {
                Phase::Listening { id, .. } => inner.remove_listener(id),
                Phase::Connected(conn) => {
                    let s = inner.tcp(conn.iface, conn.handle);
                    // Unread data or a zero linger: reset, as Linux.
                    if linger0 || s.recv_queue() > 0 {
                        s.abort();
                    } else {
                        s.close();
                    }
                    inner.retire(conn.iface, conn.handle);
                    // Its arrival stamps go with the file (the stack forgets
                    // them again when it removes the socket, in case the
                    // closing handshake brought more).
                    inner.arrivals.forget(&(conn.local, conn.remote));
                }
                Phase::Idle(_) => {}
            }
        });
    }
}
