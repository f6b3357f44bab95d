//! How a [`TcpSocket`] gets its address and its connection: `bind`
//! (a port taken in the [`PortTable`]), `listen` (a pool of smoltcp
//! sockets in the stack, see `Listener` in `crate::net::stack`),
//! `accept` (a connection the pool finished, made a socket of its own),
//! and `connect` (one smoltcp socket on the interface the peer is
//! reached through, an ephemeral port if unbound) with its outcome.
//!
//! [`PortTable`]: crate::net::port::PortTable

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use smoltcp::socket::tcp::State;
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use super::options::configure;
use super::state::{Conn, Phase, TcpSocket, endpoint};
use crate::error::{Errno, Result};
use crate::fd::FileLike;
use crate::fs::file::open_flags::O_NONBLOCK;
use crate::net::addr::SockAddr;
use crate::net::inet::{self, Inet};
use crate::net::port::Proto;
use crate::net::stack::{Listener, new_tcp_socket};
use crate::{return_errno, return_errno_with_message};

/// A listen endpoint at `ip` (a wildcard: any address) and `port`.
fn listen_endpoint(ip: IpAddr, port: u16) -> IpListenEndpoint {
    IpListenEndpoint {
        addr: (!ip.is_unspecified()).then_some(IpAddress::from(ip)),
        port,
    }
}

/// `bind`
pub(super) fn bind(socket: &TcpSocket, addr: &SockAddr) -> Result<()> {
    let mut st = socket.state.lock();
    let (addr, dual) = st.inet.local(addr, socket.ext_addr())?;
    if !matches!(st.phase, Phase::Idle(None)) {
        return_errno!(Errno::EINVAL);
    }
    let reuse_port = st.common.reuse_port;
    let (port, owner) = socket.stack.with(|inner| {
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

/// `listen`, binding an ephemeral port first if unbound.
pub(super) fn listen(socket: &TcpSocket, backlog: usize) -> Result<()> {
    let mut st = socket.state.lock();
    let local = match st.phase {
        Phase::Listening { .. } => return Ok(()),
        Phase::Connected(_) => return_errno!(Errno::EINVAL),
        Phase::Idle(Some(local)) => local,
        Phase::Idle(None) => {
            let reuse_port = st.common.reuse_port;
            let any = st.inet.unspecified();
            let dual = st.inet.v6 && !st.inet.v6only;
            let (port, owner) = socket.stack.with(|inner| {
                inner
                    .ports
                    .bind(Proto::Tcp, inet::bind_addr(any, dual), 0, reuse_port)
            })?;
            st.lease = Some((port, owner));
            st.dual = dual;
            SocketAddr::new(any.ip(), port)
        }
    };
    let ifaces = inet::ifaces(local.ip(), st.dual, socket.stack.has_device());
    let listener = Listener {
        endpoint: listen_endpoint(local.ip(), local.port()),
        ifaces,
        backlog: backlog.clamp(1, 4096),
        buffers: st.common.buffers,
        sockets: Vec::new(),
        accepted: 0,
    };
    let id = socket.stack.with(|inner| inner.add_listener(listener));
    st.phase = Phase::Listening { id, local };
    Ok(())
}

/// `accept`: a connection that finished its handshake, as a new socket
/// (with `O_NONBLOCK` if `nonblock`); `EAGAIN` if none is waiting.
pub(super) fn accept(socket: &TcpSocket, nonblock: bool) -> Result<(Arc<dyn FileLike>, SockAddr)> {
    let st = socket.state.lock();
    let Phase::Listening { id, .. } = st.phase else {
        return_errno!(Errno::EINVAL);
    };
    let (common, tcp_opts, inet) = (st.common, st.tcp, st.inet);
    let taken = socket.stack.polled(|inner| {
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
        configure(s, &common, &tcp_opts, &inet);
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
    let sock = TcpSocket::with_phase(
        socket.stack.clone(),
        flags,
        Phase::Connected(conn),
        common,
        tcp_opts,
    );
    sock.state.lock().inet = inet;
    Ok((Arc::new(sock), inet.user(remote)))
}

/// `connect`: `EINPROGRESS` until the handshake ends (loopback ones end
/// within the call).
pub(super) fn connect(socket: &TcpSocket, addr: &SockAddr) -> Result<()> {
    let mut st = socket.state.lock();
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
    let (iface, remote_ip) = inet::route(remote.ip(), socket.ext_addr())?;
    if let Some(b) = bound {
        // A socket bound to an address of the other family (`::1`
        // talking to IPv4, a mapped address talking to IPv6).
        if !b.ip().is_unspecified() && b.is_ipv4() != remote.is_ipv4() {
            return_errno!(Errno::ENETUNREACH);
        }
    }
    let stack = socket.stack.clone();
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
        configure(&mut s, &common, &tcp_opts, &inet);
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
    connect_result(socket)
}

/// How the last `connect` ended: `EINPROGRESS` while under way, then its
/// error (once) or `Ok`.
pub(super) fn connect_result(socket: &TcpSocket) -> Result<()> {
    socket.on_conn(true, |conn, _| match conn.error.take() {
        Some(e) => Err(e.into()),
        None if conn.connecting => Err(Errno::EINPROGRESS.into()),
        None => Ok(()),
    })
}
