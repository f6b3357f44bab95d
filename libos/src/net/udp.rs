//! [`UdpSocket`]: an `AF_INET` or `AF_INET6` `SOCK_DGRAM` socket over
//! smoltcp (the family's part is [`Inet`]).
//!
//! A socket bound to the wildcard address has one smoltcp socket per
//! interface of its family (the IPv4 and IPv6 loopbacks and the card; a
//! dual-stack `AF_INET6` socket all three); a datagram goes out through the
//! interface that reaches its destination. An unbound socket binds an
//! ephemeral port at its first `sendto`/`connect`. `connect` sets the
//! default destination and filters what is received to that peer.
//!
//! For edge-triggered `epoll` ([`FileLike::event_seq`]) the events for
//! readers are the bytes that ever reached its receive buffers (queued
//! plus taken out), so each datagram with a payload is one; a datagram
//! without payload is not seen. Room after a full send buffer is one for
//! writers, a shutdown one for both.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::net::{IpAddr, SocketAddr};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::stack::SocketHandle;
use smoltcp::phy::PacketMeta;
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};
use spin::Mutex;

use super::addr::SockAddr;
use super::ancillary::{Ancillary, Cmsg, Marks};
use super::datagram::{DatagramState, received_ancillary};
use super::inet::{self, Inet};
use super::port::Proto;
use super::socket::{
    IPPROTO_IPV6, IPPROTO_UDP, Received, Shutdown, Socket, merge_nonblock, socket_ioctl,
    socket_metadata,
};
use super::stack::{IfaceId, NetStack};
use crate::error::{Errno, Result};
use crate::fd::{FileLike, IoctlReply, PollEvents};
use crate::fs::Metadata;
use crate::fs::file::open_flags::{O_NONBLOCK, O_RDWR};
use crate::ipc::events::{EventCounts, SpaceWait, wants_input, wants_output};
use crate::ipc::next_anon_ino;
use crate::return_errno;
use crate::uio::{Sink, SliceSink, SliceSource, Source};

pub use super::datagram::{UDP_BUFFER_BYTES, UDP_MAX_PAYLOAD};

/// Datagrams each buffer holds at most.
const UDP_BUFFER_PACKETS: usize = 256;

#[derive(Debug)]
struct UdpState {
    /// What UDP-Lite keeps too.
    dgram: DatagramState,
    /// One smoltcp socket per interface the bound address reaches.
    handles: Vec<(IfaceId, SocketHandle)>,
}

/// An `AF_INET` or `AF_INET6` datagram socket.
pub struct UdpSocket {
    stack: Arc<NetStack>,
    state: Mutex<UdpState>,
    flags: AtomicU32,
    ino: u64,
    /// Receive-buffer bytes taken out so far (datagrams and the padding
    /// smoltcp's ring buffer left before them).
    dequeued: AtomicU64,
    /// Its own shutdowns.
    events: EventCounts,
    /// Room in a send buffer after a send found it full.
    space: SpaceWait,
}

impl core::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A smoltcp socket with `bytes` of buffer each way (`ENOMEM` when the
/// heap cannot give them: the size is the program's `SO_RCVBUF`).
fn new_udp_socket(bytes: usize) -> Result<udp::Socket<'static>> {
    let buffer = || -> Result<udp::PacketBuffer<'static>> {
        let mut meta = crate::fallible::with_capacity(UDP_BUFFER_PACKETS)?;
        meta.resize(UDP_BUFFER_PACKETS, udp::PacketMetadata::EMPTY);
        let data = crate::fallible::zeroed(bytes.max(UDP_MAX_PAYLOAD))?;
        Ok(udp::PacketBuffer::new(meta, data))
    };
    Ok(udp::Socket::new(buffer()?, buffer()?))
}

impl UdpSocket {
    /// A new unbound `AF_INET` socket on `stack`, with `O_NONBLOCK` if in `flags`.
    pub fn new(stack: Arc<NetStack>, flags: u32) -> Self {
        Self::of_family(stack, flags, Inet::V4)
    }

    /// A new unbound `AF_INET6` socket (dual stack until `IPV6_V6ONLY`).
    pub fn new_v6(stack: Arc<NetStack>, flags: u32) -> Self {
        Self::of_family(stack, flags, Inet::V6)
    }

    fn of_family(stack: Arc<NetStack>, flags: u32, inet: Inet) -> Self {
        Self {
            stack,
            state: Mutex::new(UdpState {
                dgram: DatagramState::new(inet),
                handles: Vec::new(),
            }),
            flags: AtomicU32::new(O_RDWR | (flags & O_NONBLOCK)),
            ino: next_anon_ino(),
            dequeued: AtomicU64::new(0),
            events: EventCounts::new(),
            space: SpaceWait::new(),
        }
    }

    /// Notes that a receive buffer went from `before` to `after` queued
    /// bytes (see [`UdpSocket::event_seq`](FileLike::event_seq)).
    fn taken(&self, before: usize, after: usize) {
        self.dequeued
            .fetch_add(before.saturating_sub(after) as u64, Ordering::Relaxed);
    }

    /// Binds `addr` (port 0: ephemeral; `dual`: `::` taking IPv4 too)
    /// with the state locked; the caller checked the address is local.
    fn bind_locked(&self, st: &mut UdpState, addr: SocketAddr, dual: bool) -> Result<()> {
        if st.dgram.local.is_some() {
            return_errno!(Errno::EINVAL);
        }
        let ip = addr.ip();
        let ifaces = inet::ifaces(ip, dual, self.stack.has_device());
        let (reuse, bytes) = (st.dgram.common.reuse_port, st.dgram.common.buffers);
        let hops = st.dgram.inet.hop_limit();
        let (port, handles, lease) = self.stack.with(|inner| -> Result<_> {
            let (port, owner) =
                inner
                    .ports
                    .bind(Proto::Udp, inet::bind_addr(addr, dual), addr.port(), reuse)?;
            let endpoint = IpListenEndpoint {
                addr: (!ip.is_unspecified()).then_some(IpAddress::from(ip)),
                port,
            };
            let mut handles = Vec::new();
            for &i in &ifaces {
                let mut s = match new_udp_socket(bytes.0.max(bytes.1)) {
                    Ok(s) => s,
                    Err(e) => {
                        // Nothing is left half bound.
                        for &(i, h) in &handles {
                            inner.sockets(i).remove(h);
                        }
                        inner.ports.release(Proto::Udp, port, owner);
                        return Err(e);
                    }
                };
                // The port is free and non-zero: binding cannot fail.
                let _ = s.bind(endpoint);
                s.set_hop_limit(hops);
                handles.push((i, inner.sockets(i).add(s)));
            }
            Ok((port, handles, (port, owner)))
        })?;
        st.dgram.local = Some(SocketAddr::new(ip, port));
        st.handles = handles;
        st.dgram.lease = Some(lease);
        Ok(())
    }

    fn ensure_bound(&self, st: &mut UdpState) -> Result<()> {
        if let Some((any, dual)) = st.dgram.implicit_bind() {
            self.bind_locked(st, any, dual)?;
        }
        Ok(())
    }

    /// The card's address, if there is a card.
    fn ext_addr(&self) -> Option<core::net::Ipv4Addr> {
        self.stack.has_device().then(|| self.stack.config().addr)
    }
}

/// The control messages a datagram from `from` gets on a socket with
/// `inet`'s options ([`received_ancillary`]). An IPv6 datagram's marks
/// come from the loopback device; one that came another way (none: the
/// card has no IPv6 address) would report the defaults.
fn received(inet: &Inet, from: SocketAddr, meta: PacketMeta) -> Ancillary {
    let marks = Marks::from_meta(meta).unwrap_or(Marks {
        hop_limit: inet::DEFAULT_HOP_LIMIT,
        tclass: 0,
    });
    received_ancillary(inet, from, Some(marks))
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        let handles = core::mem::take(&mut st.handles);
        let lease = st.dgram.lease.take();
        self.stack.with_lock(|inner| {
            for (i, h) in handles {
                inner.sockets(i).remove(h);
            }
            if let Some((port, owner)) = lease {
                inner.ports.release(Proto::Udp, port, owner);
            }
        });
    }
}

impl Socket for UdpSocket {
    fn bind(&self, addr: &SockAddr) -> Result<()> {
        let mut st = self.state.lock();
        let (addr, dual) = st.dgram.inet.local(addr, self.ext_addr())?;
        self.bind_locked(&mut st, addr, dual)
    }

    fn connect(&self, addr: &SockAddr) -> Result<()> {
        let mut st = self.state.lock();
        if *addr == SockAddr::Unspec {
            st.dgram.disconnect();
            return Ok(());
        }
        let peer = st.dgram.inet.peer(addr, true)?;
        let (iface, ip) = inet::route(peer.ip(), self.ext_addr())?;
        self.ensure_bound(&mut st)?;
        st.dgram.peer = Some(SocketAddr::new(ip, peer.port()));
        st.dgram.source = Some(inet::source(iface, ip, self.ext_addr()));
        Ok(())
    }

    fn send(&self, buf: &[u8], to: Option<&SockAddr>) -> Result<usize> {
        self.send_control(buf, to, &[])
    }

    /// IPv6 control messages are read for IPv6 destinations only
    /// (`datagram::DatagramState::destination`).
    fn send_control(&self, buf: &[u8], to: Option<&SockAddr>, control: &[Cmsg]) -> Result<usize> {
        self.send_from(&mut SliceSource::new(buf), to, control)
    }

    /// The datagram is copied from `src` straight into a slot of
    /// smoltcp's send buffer. smoltcp cannot take a slot back, so `src`
    /// is first checked readable to its end (`EFAULT`, nothing queued,
    /// as Linux); only a buffer unmapped by another thread between that
    /// check and the copy leaves a datagram with zeros where the bytes
    /// could not be read (still `EFAULT`).
    fn send_from(
        &self,
        src: &mut dyn Source,
        to: Option<&SockAddr>,
        control: &[Cmsg],
    ) -> Result<usize> {
        let len = src.left();
        let mut st = self.state.lock();
        let (dest, marks) = st.dgram.destination(to, len, control)?;
        let (iface, dest_ip) = inet::route(dest.ip(), self.ext_addr())?;
        self.ensure_bound(&mut st)?;
        // Before the stack is locked: lazy pages come in here.
        src.check()?;
        let port = st.dgram.local.map_or(0, |l| l.port());
        let handles = st.handles.clone();
        self.stack.with(|inner| {
            let Some(&(i, h)) = handles.iter().find(|(i, _)| *i == iface) else {
                return_errno!(Errno::ENETUNREACH);
            };
            let s = inner.sockets(i).get_mut::<udp::Socket>(h);
            let ep = IpEndpoint::new(IpAddress::from(dest_ip), dest.port());
            let queued = s.send_with(len, ep, |slot| {
                let n = src.take(&mut slot[..len]);
                slot[n..len].fill(0);
                len
            });
            match queued {
                Ok(_) => {
                    if let (Some(m), IpAddr::V6(ip)) = (marks, dest_ip) {
                        inner.mark_next(iface, (port, ip, dest.port()), m);
                    }
                    if src.faulted() {
                        return_errno!(Errno::EFAULT);
                    }
                    Ok(len)
                }
                Err(udp::SendError::BufferFull) => {
                    self.space.full();
                    return_errno!(Errno::EAGAIN)
                }
                Err(udp::SendError::Unaddressable) => return_errno!(Errno::EINVAL),
            }
        })
    }

    fn recv(&self, buf: &mut [u8], peek: bool) -> Result<Received> {
        self.recv_into(&mut SliceSink::new(buf), peek)
    }

    /// A datagram that a fault stops part way gives `EFAULT` and, unless
    /// peeked, is gone, as on Linux (`udp_recvmsg` drops it).
    fn recv_into(&self, out: &mut dyn Sink, peek: bool) -> Result<Received> {
        let st = self.state.lock();
        if let Some(eof) = st.dgram.read_shut() {
            return Ok(eof);
        }
        let (handles, peer, inet) = (st.handles.clone(), st.dgram.peer, st.dgram.inet);
        self.stack.polled(|inner| {
            for &(i, h) in &handles {
                let s = inner.sockets(i).get_mut::<udp::Socket>(h);
                while s.can_recv() {
                    let before = s.recv_queue();
                    let (data, m) = if peek {
                        let (d, m) = s.peek().map_err(|_| Errno::EAGAIN)?;
                        (d, *m)
                    } else {
                        s.recv().map_err(|_| Errno::EAGAIN)?
                    };
                    let from = SocketAddr::from(m.endpoint);
                    if peer.is_some_and(|p| p != from) {
                        if peek {
                            let _ = s.recv();
                        }
                        self.taken(before, s.recv_queue());
                        continue;
                    }
                    let full_len = data.len();
                    let len = out.put(data);
                    let faulted = out.faulted();
                    self.taken(before, s.recv_queue());
                    if faulted {
                        return_errno!(Errno::EFAULT);
                    }
                    return Ok(Received {
                        len,
                        full_len,
                        from: Some(inet.user(from)),
                        ancillary: received(&inet, from, m.meta),
                    });
                }
            }
            return_errno!(Errno::EAGAIN)
        })
    }

    fn shutdown(&self, how: Shutdown) -> Result<()> {
        let mut st = self.state.lock();
        st.dgram.shutdown(how)?;
        self.events.all();
        Ok(())
    }

    fn local_addr(&self) -> Result<SockAddr> {
        Ok(self.state.lock().dgram.local_addr())
    }

    fn peer_addr(&self) -> Result<SockAddr> {
        self.state.lock().dgram.peer_addr()
    }

    fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<()> {
        let mut st = self.state.lock();
        st.dgram.set_option(level, name, value)?;
        if level == IPPROTO_IPV6 {
            // The hop limit may have changed: the smoltcp sockets send with it.
            let (hops, handles) = (st.dgram.inet.hop_limit(), st.handles.clone());
            self.stack.with_lock(|inner| {
                for (i, h) in handles {
                    inner
                        .sockets(i)
                        .get_mut::<udp::Socket>(h)
                        .set_hop_limit(hops);
                }
            });
        }
        Ok(())
    }

    fn get_option(&self, level: i32, name: i32) -> Result<Vec<u8>> {
        self.state.lock().dgram.get_option(level, name, IPPROTO_UDP)
    }
}

impl FileLike for UdpSocket {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        self.recv(buf, false).map(|r| r.len)
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
        let st = self.state.lock();
        let handles = st.handles.clone();
        let (readable, writable) = self.stack.with_lock(|inner| {
            let mut r = false;
            let mut w = true;
            for &(i, h) in &handles {
                let s = inner.sockets(i).get_mut::<udp::Socket>(h);
                r |= s.can_recv();
                w &= s.can_send();
            }
            (r, w)
        });
        let mut ev = PollEvents::empty();
        if readable || st.dgram.shut_rd {
            ev |= PollEvents::IN | PollEvents::RDNORM;
        }
        if writable {
            ev |= PollEvents::OUT | PollEvents::WRNORM;
        }
        ev
    }

    fn event_seq(&self, interest: PollEvents) -> Option<u64> {
        let handles = self.state.lock().handles.clone();
        let theirs = self.stack.with_lock(|inner| {
            let (mut arrived, mut writable) = (self.dequeued.load(Ordering::Relaxed), true);
            for &(i, h) in &handles {
                let s = inner.sockets(i).get_mut::<udp::Socket>(h);
                arrived = arrived.wrapping_add(s.recv_queue() as u64);
                writable &= s.can_send();
            }
            let input = if wants_input(interest) { arrived } else { 0 };
            let output = if wants_output(interest) {
                self.space.seq(writable)
            } else {
                0
            };
            input.wrapping_add(output)
        });
        Some(self.events.seq(interest).wrapping_add(theirs))
    }

    fn ioctl(&self, cmd: u32, arg: u64) -> Result<IoctlReply> {
        socket_ioctl(&self.flags, cmd, arg, || {
            let handles = self.state.lock().handles.clone();
            self.stack.with_lock(|inner| {
                handles
                    .iter()
                    .find_map(|&(i, h)| {
                        let s = inner.sockets(i).get_mut::<udp::Socket>(h);
                        s.peek().ok().map(|(d, _)| d.len())
                    })
                    .unwrap_or(0)
            })
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
