//! [`UdpLiteSocket`]: an `AF_INET` or `AF_INET6` `SOCK_DGRAM` socket of
//! protocol `IPPROTO_UDPLITE` (RFC 3828, Linux's udplite(7)).
//!
//! smoltcp has no UDP-Lite, so the transport lives in the LibOS
//! ([`super::udplite_table`]): it reaches the sockets of this guest only —
//! 127.0.0.0/8, `::1` and the card's own address; any other destination is
//! `ENETUNREACH`. Otherwise it behaves as [`super::UdpSocket`], sharing
//! its rules through `datagram::DatagramState`: the same address rules
//! ([`Inet`], dual stack), an ephemeral port at the first
//! `sendto`/`connect`, `connect` setting the default destination and
//! filtering what is received, `SOL_SOCKET`, `IPPROTO_IP` and
//! `IPPROTO_IPV6` options.
//! Its own options are the checksum coverages, `UDPLITE_SEND_CSCOV` and
//! `UDPLITE_RECV_CSCOV` at level `SOL_UDPLITE` (or `SOL_UDP`, as Linux).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::net::{Ipv4Addr, SocketAddr};
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;

use super::addr::SockAddr;
use super::ancillary::Cmsg;
use super::datagram::{DatagramState, UDP_BUFFER_BYTES, received_ancillary};
use super::inet::{self, Inet};
use super::socket::{
    IPPROTO_UDP, Received, SOL_SOCKET, Shutdown, Socket, int_bytes, int_value, merge_nonblock,
    socket_ioctl, socket_metadata,
};
use super::stack::{IfaceId, NetStack};
use super::udplite_table::{Coverage, Datagram, Endpoint, UdpLiteTable};
use crate::error::{Errno, Result};
use crate::fd::{FileLike, IoctlReply, PollEvents};
use crate::fs::Metadata;
use crate::fs::file::open_flags::{O_NONBLOCK, O_RDWR};
use crate::ipc::next_anon_ino;
use crate::return_errno;

/// `IPPROTO_UDPLITE`, also the option level `SOL_UDPLITE`.
pub const IPPROTO_UDPLITE: i32 = 136;
/// `UDPLITE_SEND_CSCOV`
pub const UDPLITE_SEND_CSCOV: i32 = 10;
/// `UDPLITE_RECV_CSCOV`
pub const UDPLITE_RECV_CSCOV: i32 = 11;

/// An `AF_INET` or `AF_INET6` UDP-Lite socket.
#[derive(Debug)]
pub struct UdpLiteSocket {
    table: Arc<UdpLiteTable>,
    /// The card's address, if there is a card.
    ext: Option<Ipv4Addr>,
    endpoint: Arc<Endpoint>,
    state: Mutex<DatagramState>,
    flags: AtomicU32,
    ino: u64,
}

impl UdpLiteSocket {
    /// A new unbound socket of family `inet` ([`Inet::V4`] or [`Inet::V6`])
    /// on `stack`, with `O_NONBLOCK` if in `flags`.
    pub fn new(stack: &NetStack, flags: u32, inet: Inet) -> Self {
        Self {
            table: stack.udplite.clone(),
            ext: stack.has_device().then(|| stack.config().addr),
            endpoint: Arc::new(Endpoint::new(UDP_BUFFER_BYTES)),
            state: Mutex::new(DatagramState::new(inet)),
            flags: AtomicU32::new(O_RDWR | (flags & O_NONBLOCK)),
            ino: next_anon_ino(),
        }
    }

    fn bind_locked(&self, st: &mut DatagramState, addr: SocketAddr, dual: bool) -> Result<()> {
        if st.local.is_some() {
            return_errno!(Errno::EINVAL);
        }
        let reuse = st.common.reuse_port;
        let (port, owner) = self.table.bind(
            inet::bind_addr(addr, dual),
            addr.port(),
            reuse,
            &self.endpoint,
        )?;
        st.local = Some(SocketAddr::new(addr.ip(), port));
        st.lease = Some((port, owner));
        Ok(())
    }

    fn ensure_bound(&self, st: &mut DatagramState) -> Result<()> {
        if let Some((any, dual)) = st.implicit_bind() {
            self.bind_locked(st, any, dual)?;
        }
        Ok(())
    }

    /// `ENETUNREACH` unless `dest` is in the guest (checked before an
    /// implicit bind, so a refused call leaves no port taken).
    fn reachable(&self, dest: SocketAddr) -> Result<()> {
        match inet::route(dest.ip(), self.ext)? {
            (IfaceId::External, _) => return_errno!(Errno::ENETUNREACH),
            _ => Ok(()),
        }
    }

    /// Where a datagram to `dest` goes and the source address it carries:
    /// `ENETUNREACH` outside the guest or for a family the bound address
    /// cannot send from.
    fn route(&self, st: &DatagramState, dest: SocketAddr) -> Result<(SocketAddr, SocketAddr)> {
        let (iface, ip) = inet::route(dest.ip(), self.ext)?;
        if iface == IfaceId::External {
            return_errno!(Errno::ENETUNREACH);
        }
        let local = st.local.ok_or(Errno::EINVAL)?;
        let src_ip = if local.ip().is_unspecified() {
            inet::source(iface, ip, self.ext)
        } else {
            local.ip()
        };
        if src_ip.is_ipv4() != ip.is_ipv4() {
            return_errno!(Errno::ENETUNREACH);
        }
        Ok((
            SocketAddr::new(ip, dest.port()),
            SocketAddr::new(src_ip, local.port()),
        ))
    }
}

impl Drop for UdpLiteSocket {
    fn drop(&mut self) {
        if let Some((port, owner)) = self.state.get_mut().lease.take() {
            self.table.release(port, owner);
        }
    }
}

impl Socket for UdpLiteSocket {
    fn bind(&self, addr: &SockAddr) -> Result<()> {
        let mut st = self.state.lock();
        let (addr, dual) = st.inet.local(addr, self.ext)?;
        self.bind_locked(&mut st, addr, dual)
    }

    fn connect(&self, addr: &SockAddr) -> Result<()> {
        let mut st = self.state.lock();
        if *addr == SockAddr::Unspec {
            st.disconnect();
            self.endpoint.set_peer(None);
            return Ok(());
        }
        let peer = st.inet.peer(addr, true)?;
        self.reachable(peer)?;
        self.ensure_bound(&mut st)?;
        let (peer, source) = self.route(&st, peer)?;
        st.peer = Some(peer);
        st.source = Some(source.ip());
        self.endpoint.set_peer(Some(peer));
        Ok(())
    }

    fn send(&self, buf: &[u8], to: Option<&SockAddr>) -> Result<usize> {
        self.send_control(buf, to, &[])
    }

    /// IPv6 control messages are read for IPv6 destinations only (as UDP,
    /// `datagram::DatagramState::destination`).
    fn send_control(&self, buf: &[u8], to: Option<&SockAddr>, control: &[Cmsg]) -> Result<usize> {
        let mut st = self.state.lock();
        let (dest, marks) = st.destination(to, buf.len(), control)?;
        self.reachable(dest)?;
        self.ensure_bound(&mut st)?;
        let (to, from) = self.route(&st, dest)?;
        let coverage = self.endpoint.coverage().outgoing(buf.len());
        let data = crate::fallible::copy_of(buf)?;
        drop(st);
        self.table.deliver(
            to,
            Datagram {
                data,
                from,
                coverage,
                marks,
            },
        );
        Ok(buf.len())
    }

    fn recv(&self, buf: &mut [u8], peek: bool) -> Result<Received> {
        let st = self.state.lock();
        if let Some(eof) = st.read_shut() {
            return Ok(eof);
        }
        let inet = st.inet;
        drop(st);
        self.endpoint
            .take(peek, |d| {
                let len = d.data.len().min(buf.len());
                buf[..len].copy_from_slice(&d.data[..len]);
                Received {
                    len,
                    full_len: d.data.len(),
                    from: Some(inet.user(d.from)),
                    ancillary: received_ancillary(&inet, d.from, d.marks),
                }
            })
            .ok_or_else(|| Errno::EAGAIN.into())
    }

    fn shutdown(&self, how: Shutdown) -> Result<()> {
        self.state.lock().shutdown(how)
    }

    fn local_addr(&self) -> Result<SockAddr> {
        Ok(self.state.lock().local_addr())
    }

    fn peer_addr(&self) -> Result<SockAddr> {
        self.state.lock().peer_addr()
    }

    fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<()> {
        let mut st = self.state.lock();
        match level {
            IPPROTO_UDPLITE | IPPROTO_UDP => {
                if name != UDPLITE_SEND_CSCOV && name != UDPLITE_RECV_CSCOV {
                    return_errno!(Errno::ENOPROTOOPT);
                }
                let v = Coverage::normalize(int_value(value)?);
                let mut c = self.endpoint.coverage();
                if name == UDPLITE_SEND_CSCOV {
                    c.send = Some(v);
                } else {
                    c.recv = Some(v);
                }
                self.endpoint.set_coverage(c);
                Ok(())
            }
            _ => {
                st.set_option(level, name, value)?;
                if level == SOL_SOCKET {
                    self.endpoint.set_capacity(st.common.buffers.0);
                }
                Ok(())
            }
        }
    }

    fn get_option(&self, level: i32, name: i32) -> Result<Vec<u8>> {
        let st = self.state.lock();
        match level {
            IPPROTO_UDPLITE | IPPROTO_UDP => {
                let c = self.endpoint.coverage();
                let v = match name {
                    UDPLITE_SEND_CSCOV => c.send,
                    UDPLITE_RECV_CSCOV => c.recv,
                    _ => return_errno!(Errno::ENOPROTOOPT),
                };
                Ok(int_bytes(i32::from(v.unwrap_or(0))))
            }
            _ => st.get_option(level, name, IPPROTO_UDPLITE),
        }
    }
}

impl FileLike for UdpLiteSocket {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        self.recv(buf, false).map(|r| r.len)
    }

    fn write(&self, buf: &[u8]) -> Result<usize> {
        self.send(buf, None)
    }

    fn metadata(&self) -> Result<Metadata> {
        Ok(socket_metadata(self.ino))
    }

    fn poll(&self) -> PollEvents {
        let shut_rd = self.state.lock().shut_rd;
        // Sending never waits: the datagram is queued at the receiver or dropped.
        let mut ev = PollEvents::OUT | PollEvents::WRNORM;
        if shut_rd || self.endpoint.readable() {
            ev |= PollEvents::IN | PollEvents::RDNORM;
        }
        ev
    }

    fn ioctl(&self, cmd: u32, arg: u64) -> Result<IoctlReply> {
        socket_ioctl(&self.flags, cmd, arg, || self.endpoint.next_len())
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
