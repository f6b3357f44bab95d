//! [`TcpSocket`]: an `AF_INET` or `AF_INET6` `SOCK_STREAM` socket over
//! smoltcp (the family's part is [`Inet`]).
//!
//! A socket is unbound, bound (a port taken in the [`PortTable`]), a
//! listener (a pool of smoltcp sockets in the stack, see
//! `Listener` in `super::stack`), or a connection (one smoltcp
//! socket on the interface its peer is reached through). smoltcp does not
//! say why a connection ended: a connection that reaches `Closed` before
//! this side sent its FIN was reset (`ECONNREFUSED` while connecting,
//! `ECONNRESET` after), since an orderly end needs both FINs.
//!
//! [`PortTable`]: super::port::PortTable

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::net::{IpAddr, SocketAddr};
use core::sync::atomic::{AtomicU32, Ordering};

use super::stack::SocketHandle;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};
use spin::Mutex;

use super::addr::SockAddr;
use super::ancillary::Cmsg;
use super::inet::{self, Inet};
use super::port::Proto;
use super::socket::{
    CommonOptions, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, Received, SOCK_STREAM, SOL_SOCKET,
    Shutdown, Socket, int_bytes, int_value, merge_nonblock, so, socket_ioctl, socket_metadata,
};
use super::stack::{IfaceId, Inner, Listener, NetStack, new_tcp_socket};
use crate::error::{Errno, Result};
use crate::fd::{FileLike, IoctlReply, PollEvents};
use crate::fs::Metadata;
use crate::fs::file::open_flags::{O_NONBLOCK, O_RDWR};
use crate::ipc::events::{EventCounts, SpaceWait, wants_input, wants_output};
use crate::ipc::next_anon_ino;
use crate::uio::{Sink, SliceSink, SliceSource, Source};
use crate::{return_errno, return_errno_with_message};
use ring::{drain_receive_buffer, fill_send_buffer, peek_receive_buffer};

mod ring;

/// Receive and send buffer of a TCP socket, bytes each (with window
/// scaling, enough for a bandwidth-delay product of 256 KiB).
pub const TCP_BUFFER_BYTES: usize = 256 * 1024;

/// `TCP_*` option names.
#[allow(missing_docs, reason = "the names are Linux's; see tcp(7)")]
pub mod opt {
    pub const TCP_NODELAY: i32 = 1;
    pub const TCP_MAXSEG: i32 = 2;
    pub const TCP_CORK: i32 = 3;
    pub const TCP_KEEPIDLE: i32 = 4;
    pub const TCP_KEEPINTVL: i32 = 5;
    pub const TCP_KEEPCNT: i32 = 6;
    pub const TCP_DEFER_ACCEPT: i32 = 9;
    pub const TCP_QUICKACK: i32 = 12;
    pub const TCP_USER_TIMEOUT: i32 = 18;
    pub const TCP_FASTOPEN: i32 = 23;
}
use opt::*;

/// TCP-level options.
#[derive(Debug, Clone, Copy)]
struct TcpOptions {
    nodelay: bool,
    cork: bool,
    keep_idle_s: i32,
    keep_intvl_s: i32,
    keep_cnt: i32,
}

impl Default for TcpOptions {
    fn default() -> Self {
        Self {
            nodelay: false,
            cork: false,
            keep_idle_s: 7200,
            keep_intvl_s: 75,
            keep_cnt: 9,
        }
    }
}

/// A connection's smoltcp socket and what smoltcp does not record.
#[derive(Debug)]
struct Conn {
    iface: IfaceId,
    handle: SocketHandle,
    local: SocketAddr,
    remote: SocketAddr,
    /// `connect` returned before the handshake finished.
    connecting: bool,
    /// An error for the next call (`SO_ERROR`).
    error: Option<Errno>,
    /// The connection was reset (or refused): writes give `EPIPE`, reads end of file.
    reset: bool,
    shut_rd: bool,
    shut_wr: bool,
}

#[derive(Debug)]
enum Phase {
    /// No address yet, or `bind`'s address.
    Idle(Option<SocketAddr>),
    /// Listening: the listener's id in the stack.
    Listening { id: u64, local: SocketAddr },
    /// Connecting or connected.
    Connected(Conn),
}

#[derive(Debug)]
struct State_ {
    phase: Phase,
    /// The port this socket owns in the port table: `(port, owner)`.
    lease: Option<(u16, u64)>,
    common: CommonOptions,
    tcp: TcpOptions,
    inet: Inet,
    /// Bound at `::` without `IPV6_V6ONLY`: IPv4 too.
    dual: bool,
}

/// An `AF_INET` or `AF_INET6` stream socket.
pub struct TcpSocket {
    stack: Arc<NetStack>,
    state: Mutex<State_>,
    flags: AtomicU32,
    ino: u64,
    /// Its own shutdowns (events for every waiter).
    events: EventCounts,
    /// Room in the send buffer after a write found it full.
    space: SpaceWait,
}

impl core::fmt::Debug for TcpSocket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TcpSocket")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn endpoint(e: IpEndpoint) -> SocketAddr {
    SocketAddr::from(e)
}

/// A listen endpoint at `ip` (a wildcard: any address) and `port`.
fn listen_endpoint(ip: IpAddr, port: u16) -> IpListenEndpoint {
    IpListenEndpoint {
        addr: (!ip.is_unspecified()).then_some(IpAddress::from(ip)),
        port,
    }
}

/// Checks the end of a connection after anything smoltcp did.
fn refresh(conn: &mut Conn, s: &tcp::Socket) {
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

    fn with_phase(
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
    fn ext_addr(&self) -> Option<core::net::Ipv4Addr> {
        self.stack.has_device().then(|| self.stack.config().addr)
    }

    /// Applies the options to a smoltcp socket.
    fn configure(s: &mut tcp::Socket, common: &CommonOptions, t: &TcpOptions, inet: &Inet) {
        s.set_nagle_enabled(!t.nodelay && !t.cork);
        s.set_hop_limit(inet.hop_limit());
        s.set_keep_alive(
            common
                .keepalive
                .then(|| Duration::from_secs(t.keep_idle_s.max(1) as u64)),
        );
    }

    /// Runs `f` on the connection and its smoltcp socket, after driving
    /// the stack (`polled`) or before (`with`).
    fn on_conn<R>(
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

impl Socket for TcpSocket {
    fn bind(&self, addr: &SockAddr) -> Result<()> {
        let mut st = self.state.lock();
        let (addr, dual) = st.inet.local(addr, self.ext_addr())?;
        if !matches!(st.phase, Phase::Idle(None)) {
            return_errno!(Errno::EINVAL);
        }
        let reuse_port = st.common.reuse_port;
        let (port, owner) = self.stack.with(|inner| {
            inner.ports.bind(
                Proto::Tcp,
                inet::bind_addr(addr, dual),
                addr.port(),
                reuse_port,
            )
        })?;
        st.lease = Some((port, owner));
        st.dual = dual;
        st.phase = Phase::Idle(Some(SocketAddr::new(addr.ip(), port)));
        Ok(())
    }

    fn listen(&self, backlog: usize) -> Result<()> {
        let mut st = self.state.lock();
        let local = match st.phase {
            Phase::Listening { .. } => return Ok(()),
            Phase::Connected(_) => return_errno!(Errno::EINVAL),
            Phase::Idle(Some(local)) => local,
            Phase::Idle(None) => {
                let reuse_port = st.common.reuse_port;
                let any = st.inet.unspecified();
                let dual = st.inet.v6 && !st.inet.v6only;
                let (port, owner) = self.stack.with(|inner| {
                    inner
                        .ports
                        .bind(Proto::Tcp, inet::bind_addr(any, dual), 0, reuse_port)
                })?;
                st.lease = Some((port, owner));
                st.dual = dual;
                SocketAddr::new(any.ip(), port)
            }
        };
        let ifaces = inet::ifaces(local.ip(), st.dual, self.stack.has_device());
        let listener = Listener {
            endpoint: listen_endpoint(local.ip(), local.port()),
            ifaces,
            backlog: backlog.clamp(1, 4096),
            buffers: st.common.buffers,
            sockets: Vec::new(),
            accepted: 0,
        };
        let id = self.stack.with(|inner| inner.add_listener(listener));
        st.phase = Phase::Listening { id, local };
        Ok(())
    }

    fn accept(&self, nonblock: bool) -> Result<(Arc<dyn FileLike>, SockAddr)> {
        let st = self.state.lock();
        let Phase::Listening { id, .. } = st.phase else {
            return_errno!(Errno::EINVAL);
        };
        let (common, tcp_opts, inet) = (st.common, st.tcp, st.inet);
        let taken = self.stack.polled(|inner| {
            let socks = inner.listeners.get(&id)?.sockets.clone();
            let mut found = None;
            for (k, &(i, h)) in socks.iter().enumerate() {
                match inner.tcp_ref(i, h).state() {
                    State::Listen | State::SynReceived => {}
                    _ => {
                        found = Some(k);
                        break;
                    }
                }
            }
            let listener = inner.listeners.get_mut(&id)?;
            let (i, h) = listener.sockets.remove(found?);
            listener.accepted += 1;
            inner.refill(id);
            let s = inner.tcp(i, h);
            Self::configure(s, &common, &tcp_opts, &inet);
            let local = endpoint(s.local_endpoint()?);
            let remote = endpoint(s.remote_endpoint()?);
            if s.recv_queue() == 0 {
                // The handshake's arrival made the listener readable, not
                // the new connection.
                inner.arrivals.drained(&(local, remote));
            }
            Some((i, h, local, remote))
        });
        let Some((iface, handle, local, remote)) = taken else {
            return_errno!(Errno::EAGAIN);
        };
        let conn = Conn {
            iface,
            handle,
            local,
            remote,
            connecting: false,
            error: None,
            reset: false,
            shut_rd: false,
            shut_wr: false,
        };
        let flags = if nonblock { O_NONBLOCK } else { 0 };
        let sock = Self::with_phase(
            self.stack.clone(),
            flags,
            Phase::Connected(conn),
            common,
            tcp_opts,
        );
        sock.state.lock().inet = inet;
        Ok((Arc::new(sock), inet.user(remote)))
    }

    fn connect(&self, addr: &SockAddr) -> Result<()> {
        let mut st = self.state.lock();
        let remote = st.inet.peer(addr, false)?;
        if remote.port() == 0 {
            return_errno!(Errno::ECONNREFUSED);
        }
        let bound = match &st.phase {
            Phase::Idle(b) => *b,
            Phase::Listening { .. } => return_errno!(Errno::EISCONN),
            Phase::Connected(c) if c.connecting => return_errno!(Errno::EALREADY),
            Phase::Connected(c) if c.reset => return_errno!(Errno::EISCONN),
            Phase::Connected(_) => return_errno!(Errno::EISCONN),
        };
        let (common, tcp_opts, inet) = (st.common, st.tcp, st.inet);
        let (iface, remote_ip) = inet::route(remote.ip(), self.ext_addr())?;
        if let Some(b) = bound {
            // A socket bound to an address of the other family (`::1`
            // talking to IPv4, a mapped address talking to IPv6).
            if !b.ip().is_unspecified() && b.is_ipv4() != remote.is_ipv4() {
                return_errno!(Errno::ENETUNREACH);
            }
        }
        let stack = self.stack.clone();
        let (conn, lease) = stack.with(|inner| -> Result<(Conn, Option<(u16, u64)>)> {
            let (local_ip, port, lease) = match bound {
                Some(b) if b.ip().is_unspecified() => {
                    (Inet::unspecified_of(remote).ip(), b.port(), None)
                }
                Some(b) => (b.ip(), b.port(), None),
                None => {
                    let any = Inet::unspecified_of(remote);
                    let (port, owner) =
                        inner
                            .ports
                            .bind(Proto::Tcp, inet::bind_addr(any, false), 0, false)?;
                    (any.ip(), port, Some((port, owner)))
                }
            };
            let Some(mut s) = new_tcp_socket(common.buffers) else {
                if let Some((port, owner)) = lease {
                    inner.ports.release(Proto::Tcp, port, owner);
                }
                return_errno_with_message!(Errno::ENOBUFS, "no memory for the socket's buffers");
            };
            Self::configure(&mut s, &common, &tcp_opts, &inet);
            let local = listen_endpoint(local_ip, port);
            let (cx, set) = inner.iface(iface);
            let remote_ep = IpEndpoint::new(IpAddress::from(remote_ip), remote.port());
            if s.connect(cx, remote_ep, local).is_err() {
                if let Some((port, owner)) = lease {
                    inner.ports.release(Proto::Tcp, port, owner);
                }
                return_errno!(Errno::ENETUNREACH);
            }
            let local = s
                .local_endpoint()
                .map_or(SocketAddr::new(local_ip, port), endpoint);
            let handle = set.add(s);
            let conn = Conn {
                iface,
                handle,
                local,
                remote: SocketAddr::new(remote_ip, remote.port()),
                connecting: true,
                error: None,
                reset: false,
                shut_rd: false,
                shut_wr: false,
            };
            Ok((conn, lease))
        })?;
        if lease.is_some() {
            st.lease = lease;
        }
        st.phase = Phase::Connected(conn);
        drop(st);
        // Loopback handshakes finish within the poll that sent the SYN.
        self.on_conn(true, |conn, _| match conn.error.take() {
            Some(e) => Err(e.into()),
            None if conn.connecting => Err(Errno::EINPROGRESS.into()),
            None => Ok(()),
        })
    }

    fn connect_result(&self) -> Result<()> {
        self.on_conn(true, |conn, _| match conn.error.take() {
            Some(e) => Err(e.into()),
            None if conn.connecting => Err(Errno::EINPROGRESS.into()),
            None => Ok(()),
        })
    }

    fn send(&self, buf: &[u8], to: Option<&SockAddr>) -> Result<usize> {
        self.send_from(&mut SliceSource::new(buf), to, &[])
    }

    fn send_from(
        &self,
        src: &mut dyn Source,
        _to: Option<&SockAddr>,
        _control: &[Cmsg],
    ) -> Result<usize> {
        let r = self.on_conn(false, |conn, s| {
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
                self.space.full();
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

    fn recv(&self, buf: &mut [u8], peek: bool) -> Result<Received> {
        self.recv_into(&mut SliceSink::new(buf), peek)
    }

    fn recv_into(&self, out: &mut dyn Sink, peek: bool) -> Result<Received> {
        let mut drained = None;
        let r = self.on_conn(true, |conn, s| {
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
            self.stack.with_lock(|inner| inner.arrivals.drained(&flow));
        }
        r
    }

    fn shutdown(&self, how: Shutdown) -> Result<()> {
        self.on_conn(false, |conn, s| {
            if conn.connecting {
                return_errno!(Errno::ENOTCONN);
            }
            if how.write && !conn.shut_wr {
                conn.shut_wr = true;
                s.close();
            }
            conn.shut_rd |= how.read;
            // Linux wakes every waiter of a socket shut down.
            self.events.all();
            Ok(())
        })
    }

    fn local_addr(&self) -> Result<SockAddr> {
        let st = self.state.lock();
        Ok(st.inet.user(match &st.phase {
            Phase::Idle(b) => b.unwrap_or(st.inet.unspecified()),
            Phase::Listening { local, .. } => *local,
            Phase::Connected(c) => c.local,
        }))
    }

    fn peer_addr(&self) -> Result<SockAddr> {
        let st = self.state.lock();
        match &st.phase {
            Phase::Connected(c) if !c.connecting && !c.reset => Ok(st.inet.user(c.remote)),
            _ => return_errno!(Errno::ENOTCONN),
        }
    }

    fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<()> {
        let mut st = self.state.lock();
        match level {
            SOL_SOCKET => st.common.set(name, value)?,
            IPPROTO_TCP => {
                let v = int_value(value)?;
                match name {
                    TCP_NODELAY => st.tcp.nodelay = v != 0,
                    TCP_CORK => st.tcp.cork = v != 0,
                    TCP_KEEPIDLE | TCP_KEEPINTVL | TCP_KEEPCNT if v < 1 => {
                        return_errno!(Errno::EINVAL)
                    }
                    TCP_KEEPIDLE => st.tcp.keep_idle_s = v,
                    TCP_KEEPINTVL => st.tcp.keep_intvl_s = v,
                    TCP_KEEPCNT => st.tcp.keep_cnt = v,
                    TCP_MAXSEG | TCP_DEFER_ACCEPT | TCP_QUICKACK | TCP_USER_TIMEOUT
                    | TCP_FASTOPEN => {}
                    _ => return_errno!(Errno::ENOPROTOOPT),
                }
            }
            IPPROTO_IP => match name {
                // IP_TOS, IP_TTL: accepted, not applied.
                1 | 2 => {
                    int_value(value)?;
                }
                _ => return_errno!(Errno::ENOPROTOOPT),
            },
            // ENOPROTOOPT on an AF_INET socket.
            IPPROTO_IPV6 => {
                let bound = st.lease.is_some();
                st.inet.set_option(name, value, bound)?;
            }
            _ => return_errno!(Errno::ENOPROTOOPT),
        }
        let (common, t, inet) = (st.common, st.tcp, st.inet);
        if let Phase::Connected(c) = &st.phase {
            let (i, h) = (c.iface, c.handle);
            self.stack
                .with(|inner| Self::configure(inner.tcp(i, h), &common, &t, &inet));
        }
        Ok(())
    }

    fn get_option(&self, level: i32, name: i32) -> Result<Vec<u8>> {
        match (level, name) {
            (SOL_SOCKET, so::SO_ERROR) => {
                let mut st = self.state.lock();
                let err = match &mut st.phase {
                    Phase::Connected(c) => {
                        let (i, h) = (c.iface, c.handle);
                        self.stack.polled(|inner| refresh(c, inner.tcp(i, h)));
                        c.error.take()
                    }
                    _ => None,
                };
                Ok(int_bytes(err.map_or(0, Errno::as_i32)))
            }
            (SOL_SOCKET, so::SO_ACCEPTCONN) => Ok(int_bytes(i32::from(matches!(
                self.state.lock().phase,
                Phase::Listening { .. }
            )))),
            (SOL_SOCKET, _) => {
                let st = self.state.lock();
                st.common
                    .get(name, (st.inet.domain(), SOCK_STREAM, IPPROTO_TCP))
            }
            (IPPROTO_IPV6, _) => self.state.lock().inet.get_option(name),
            (IPPROTO_TCP, _) => {
                let t = self.state.lock().tcp;
                Ok(int_bytes(match name {
                    TCP_NODELAY => i32::from(t.nodelay),
                    TCP_CORK => i32::from(t.cork),
                    TCP_KEEPIDLE => t.keep_idle_s,
                    TCP_KEEPINTVL => t.keep_intvl_s,
                    TCP_KEEPCNT => t.keep_cnt,
                    TCP_MAXSEG => 1460,
                    _ => return_errno!(Errno::ENOPROTOOPT),
                }))
            }
            _ => return_errno!(Errno::ENOPROTOOPT),
        }
    }
}

impl FileLike for TcpSocket {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        self.recv(buf, false).map(|r| r.len)
    }

    fn ready_stamp(&self) -> u64 {
        let st = self.state.lock();
        match &st.phase {
            Phase::Connected(conn) => {
                let flow = (conn.local, conn.remote);
                self.stack.with_lock(|inner| inner.arrivals.stamp(&flow))
            }
            Phase::Listening { id, .. } => {
                let id = *id;
                // The oldest connection waiting for accept.
                self.stack.with_lock(|inner| {
                    let Some(l) = inner.listeners.get(&id) else {
                        return 0;
                    };
                    let socks = l.sockets.clone();
                    socks
                        .iter()
                        .filter_map(|&(i, h)| {
                            let s = inner.tcp_ref(i, h);
                            if matches!(s.state(), State::Listen | State::SynReceived) {
                                return None;
                            }
                            let flow = (
                                endpoint(s.local_endpoint()?),
                                endpoint(s.remote_endpoint()?),
                            );
                            Some(inner.arrivals.stamp(&flow))
                        })
                        .filter(|&t| t != 0)
                        .min()
                        .unwrap_or(0)
                })
            }
            Phase::Idle(_) => 0,
        }
    }

    /// A connection: the stamp of its latest arrival (data, FIN, RST)
    /// for readers, room after a full send buffer for writers; a
    /// listener: the connections that finished their handshake.
    fn event_seq(&self, interest: PollEvents) -> Option<u64> {
        let st = self.state.lock();
        let theirs = match &st.phase {
            Phase::Connected(conn) => self.stack.with_lock(|inner| {
                let input = if wants_input(interest) {
                    inner.arrivals.latest(&(conn.local, conn.remote))
                } else {
                    0
                };
                let output = if wants_output(interest) {
                    let s = inner.tcp_ref(conn.iface, conn.handle);
                    self.space.seq(s.can_send())
                } else {
                    0
                };
                input.wrapping_add(output)
            }),
            Phase::Listening { id, .. } if wants_input(interest) => {
                let id = *id;
                self.stack.with_lock(|inner| inner.listener_events(id))
            }
            Phase::Listening { .. } | Phase::Idle(_) => 0,
        };
        Some(self.events.seq(interest).wrapping_add(theirs))
    }

    fn write(&self, buf: &[u8]) -> Result<usize> {
        self.send(buf, None)
    }

    fn copies_user(&self) -> bool {
        true
    }

    fn read_user(&self, mem: &dyn crate::user::UserMemory, addr: u64, len: usize) -> Result<usize> {
        super::socket::read_user(self, mem, addr, len)
    }

    fn write_user(
        &self,
        mem: &dyn crate::user::UserMemory,
        addr: u64,
        len: usize,
    ) -> Result<usize> {
        super::socket::write_user(self, mem, addr, len)
    }

    fn metadata(&self) -> Result<Metadata> {
        Ok(socket_metadata(self.ino))
    }

    fn poll(&self) -> PollEvents {
        let mut st = self.state.lock();
        match &mut st.phase {
            Phase::Idle(_) => PollEvents::OUT | PollEvents::WRNORM | PollEvents::HUP,
            Phase::Listening { id, .. } => {
                let id = *id;
                let ready = self.stack.with_lock(|inner| {
                    let Some(l) = inner.listeners.get(&id) else {
                        return false;
                    };
                    let socks = l.sockets.clone();
                    socks.iter().any(|&(i, h)| {
                        !matches!(
                            inner.tcp_ref(i, h).state(),
                            State::Listen | State::SynReceived
                        )
                    })
                });
                if ready {
                    PollEvents::IN | PollEvents::RDNORM
                } else {
                    PollEvents::empty()
                }
            }
            Phase::Connected(conn) => self.stack.with_lock(|inner| {
                let s = inner.tcp_ref(conn.iface, conn.handle);
                refresh(conn, s);
                let mut ev = PollEvents::empty();
                if conn.connecting {
                    return ev;
                }
                let eof = conn.reset || conn.shut_rd || !s.may_recv();
                if s.can_recv() || eof {
                    ev |= PollEvents::IN | PollEvents::RDNORM;
                }
                if s.can_send() || conn.reset || conn.shut_wr || !s.may_send() {
                    ev |= PollEvents::OUT | PollEvents::WRNORM;
                }
                if conn.error.is_some() {
                    ev |= PollEvents::ERR;
                }
                if conn.reset || (eof && (conn.shut_wr || !s.may_send())) {
                    ev |= PollEvents::HUP;
                }
                ev
            }),
        }
    }

    fn ioctl(&self, cmd: u32, arg: u64) -> Result<IoctlReply> {
        socket_ioctl(&self.flags, cmd, arg, || {
            self.on_conn(false, |_, s| Ok(s.recv_queue())).unwrap_or(0)
        })
    }

    fn status_flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        merge_nonblock(&self.flags, flags);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_socket(&self) -> Option<&dyn Socket> {
        Some(self)
    }
}
