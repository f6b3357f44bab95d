//! [`UdpLiteTable`]: the machine's UDP-Lite (RFC 3828) endpoints, kept in
//! the LibOS because smoltcp has no UDP-Lite. A datagram never leaves the
//! guest: a sender hands it straight to the receiving socket's queue
//! ([`Endpoint`]), chosen as Linux's lookup does.
//!
//! UDP-Lite has its own port space (its own [`PortTable`]), so a UDP and a
//! UDP-Lite socket can bind the same port and a UDP datagram never reaches
//! a UDP-Lite socket. No checksum is computed (nothing can corrupt a
//! datagram in memory) but the checksum coverage a datagram is sent with
//! is carried, for the receiver's `UDPLITE_RECV_CSCOV` rule
//! ([`Coverage::accepts`]).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::net::SocketAddr;
use spin::Mutex;

use super::port::{BindAddr, PortTable, Proto};
use crate::error::Result;

/// Bytes of the UDP-Lite header, which a coverage length counts.
pub const HEADER_BYTES: usize = 8;

/// The checksum coverage options of a socket (`UDPLITE_SEND_CSCOV`,
/// `UDPLITE_RECV_CSCOV`): `None` until set, as Linux's `UDPLITE_*_CC`
/// flags; a set value is 0 (full coverage) or 8..=65535.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// `UDPLITE_SEND_CSCOV`
    pub send: Option<u16>,
    /// `UDPLITE_RECV_CSCOV`
    pub recv: Option<u16>,
}

impl Coverage {
    /// A coverage option's value as Linux stores it: 1..=7 (and negative
    /// values) become 8, values past 65535 become 65535.
    pub fn normalize(v: i32) -> u16 {
        match v {
            0 => 0,
            i32::MIN..=7 => 8,
            _ => u16::try_from(v).unwrap_or(u16::MAX),
        }
    }

    /// The coverage a datagram of `payload` bytes carries: `Some(bytes)`
    /// for partial coverage (header included), `None` for full — as Linux
    /// writes the length field: the send coverage when set, non-zero and
    /// shorter than the datagram, else the whole datagram.
    pub fn outgoing(&self, payload: usize) -> Option<u16> {
        let total = payload.saturating_add(HEADER_BYTES);
        self.send.filter(|&c| c != 0 && usize::from(c) < total)
    }

    /// Whether a receiver with these options takes a datagram of
    /// `coverage` (from [`Coverage::outgoing`]). Linux: a fully covered
    /// datagram always; a partially covered one only if the receiver set
    /// no `UDPLITE_RECV_CSCOV`, or set a non-zero one no larger than the
    /// datagram's coverage (setting 0 demands full coverage).
    pub fn accepts(&self, coverage: Option<u16>) -> bool {
        match (coverage, self.recv) {
            (None, _) | (Some(_), None) => true,
            (Some(_), Some(0)) => false,
            (Some(c), Some(r)) => c >= r,
        }
    }
}

/// A datagram waiting in a socket's queue.
#[derive(Debug)]
pub struct Datagram {
    /// The payload.
    pub data: Vec<u8>,
    /// The sender (an IPv4 address for IPv4 traffic, also to a dual-stack
    /// socket, which shows it mapped).
    pub from: SocketAddr,
    /// Partial coverage, if any ([`Coverage::outgoing`]).
    pub coverage: Option<u16>,
    /// The hop limit and traffic class of an IPv6 datagram (RFC 3542;
    /// delivered inside the guest, the hop limit is not decremented).
    pub marks: Option<super::ancillary::Marks>,
}

/// A receive queue and what delivery to it checks.
#[derive(Debug, Default)]
struct Queue {
    datagrams: VecDeque<Datagram>,
    bytes: usize,
    /// The receive buffer (`SO_RCVBUF`), payload bytes.
    capacity: usize,
    /// The connected peer: datagrams from others do not match the socket.
    peer: Option<SocketAddr>,
    /// The socket's coverage options (only `recv` matters here).
    coverage: Coverage,
}

/// The receiving side of one UDP-Lite socket, shared with the table.
#[derive(Debug, Default)]
pub struct Endpoint {
    queue: Mutex<Queue>,
}

impl Endpoint {
    /// An endpoint whose queue holds `capacity` payload bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: Mutex::new(Queue {
                capacity,
                ..Queue::default()
            }),
        }
    }

    /// Sets the receive buffer.
    pub fn set_capacity(&self, bytes: usize) {
        self.queue.lock().capacity = bytes;
    }

    /// Sets the connected peer (`None`: any sender).
    pub fn set_peer(&self, peer: Option<SocketAddr>) {
        self.queue.lock().peer = peer;
    }

    /// Sets the coverage options.
    pub fn set_coverage(&self, coverage: Coverage) {
        self.queue.lock().coverage = coverage;
    }

    /// The coverage options.
    pub fn coverage(&self) -> Coverage {
        self.queue.lock().coverage
    }

    /// Runs `f` on the first waiting datagram, taking it off the queue
    /// unless `peek`; `None` if the queue is empty.
    pub fn take<R>(&self, peek: bool, f: impl FnOnce(&Datagram) -> R) -> Option<R> {
        let mut q = self.queue.lock();
        let r = f(q.datagrams.front()?);
        if !peek && let Some(d) = q.datagrams.pop_front() {
            q.bytes -= d.data.len();
        }
        Some(r)
    }

    /// Whether a datagram waits.
    pub fn readable(&self) -> bool {
        !self.queue.lock().datagrams.is_empty()
    }

    /// The first waiting datagram's length (`FIONREAD`), 0 if none.
    pub fn next_len(&self) -> usize {
        self.queue
            .lock()
            .datagrams
            .front()
            .map_or(0, |d| d.data.len())
    }

    /// Queues `d` unless the receiver refuses its coverage or its buffer
    /// is full (a datagram is then dropped, as Linux does).
    fn push(&self, d: Datagram) {
        let mut q = self.queue.lock();
        let full = q.bytes.saturating_add(d.data.len()) > q.capacity && !q.datagrams.is_empty();
        if full || !q.coverage.accepts(d.coverage) {
            return;
        }
        q.bytes += d.data.len();
        q.datagrams.push_back(d);
    }
}

#[derive(Debug)]
struct Bound {
    owner: u64,
    addr: BindAddr,
    endpoint: Weak<Endpoint>,
}

#[derive(Debug)]
struct Inner {
    ports: PortTable,
    bound: BTreeMap<u16, Vec<Bound>>,
}

/// The UDP-Lite endpoints of the machine and their ports.
#[derive(Debug)]
pub struct UdpLiteTable {
    inner: Mutex<Inner>,
}

impl UdpLiteTable {
    /// An empty table; `seed` picks where the ephemeral port search starts.
    pub fn new(seed: u64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                ports: PortTable::new(seed),
                bound: BTreeMap::new(),
            }),
        }
    }

    /// Binds `endpoint` at `addr:port` (port 0: ephemeral); returns the
    /// port and the owner token for [`UdpLiteTable::release`].
    /// `EADDRINUSE` as for UDP (`SO_REUSEPORT` shares a port).
    pub fn bind(
        &self,
        addr: BindAddr,
        port: u16,
        reuse_port: bool,
        endpoint: &Arc<Endpoint>,
    ) -> Result<(u16, u64)> {
        let mut inner = self.inner.lock();
        // The table is UDP-Lite's alone: `Proto::Udp` is only its key.
        let (port, owner) = inner.ports.bind(Proto::Udp, addr, port, reuse_port)?;
        inner.bound.entry(port).or_default().push(Bound {
            owner,
            addr,
            endpoint: Arc::downgrade(endpoint),
        });
        Ok((port, owner))
    }

    /// Frees what [`UdpLiteTable::bind`] gave `owner`.
    pub fn release(&self, port: u16, owner: u64) {
        let mut inner = self.inner.lock();
        inner.ports.release(Proto::Udp, port, owner);
        if let Some(v) = inner.bound.get_mut(&port) {
            v.retain(|b| b.owner != owner);
            if v.is_empty() {
                inner.bound.remove(&port);
            }
        }
    }

    /// Hands `d` to the socket bound at `to` that Linux would pick (an
    /// exact address before a wildcard, a socket connected to the sender
    /// before an unconnected one, an IPv4 socket before a dual-stack one
    /// for IPv4); dropped if none matches, as a datagram to a closed port.
    pub fn deliver(&self, to: SocketAddr, d: Datagram) {
        let best = {
            let inner = self.inner.lock();
            let Some(bound) = inner.bound.get(&to.port()) else {
                return;
            };
            bound
                .iter()
                .filter_map(|b| Some((score(b.addr, to, d.from, &b.endpoint)?, &b.endpoint)))
                .fold(None::<(u32, &Weak<Endpoint>)>, |best, c| match best {
                    Some(b) if b.0 >= c.0 => Some(b),
                    _ => Some(c),
                })
                .and_then(|(_, e)| e.upgrade())
        };
        if let Some(e) = best {
            e.push(d);
        }
    }
}

/// How well a socket bound at `addr` matches a datagram from `from` to
/// `to`: `None` if it does not.
fn score(addr: BindAddr, to: SocketAddr, from: SocketAddr, e: &Weak<Endpoint>) -> Option<u32> {
    let family = addr.ip.is_ipv4() == to.is_ipv4();
    let mut s = if addr.ip == to.ip() {
        4
    } else if addr.ip.is_unspecified() && (family || (addr.dual && to.is_ipv4())) {
        0
    } else {
        return None;
    };
    if family && to.is_ipv4() {
        s += 1;
    }
    match e.upgrade()?.queue.lock().peer {
        Some(p) if p == from => s += 4,
        Some(_) => return None,
        None => {}
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn dgram(from: SocketAddr, coverage: Option<u16>) -> Datagram {
        Datagram {
            data: alloc::vec![1, 2, 3],
            from,
            coverage,
            marks: None,
        }
    }

    #[test]
    fn coverage_values_and_the_drop_rule_are_linuxs() {
        assert_eq!(Coverage::normalize(0), 0);
        assert_eq!(Coverage::normalize(1), 8);
        assert_eq!(Coverage::normalize(7), 8);
        assert_eq!(Coverage::normalize(-3), 8);
        assert_eq!(Coverage::normalize(20), 20);
        assert_eq!(Coverage::normalize(1 << 20), u16::MAX);
        let send = |c| Coverage {
            send: Some(c),
            recv: None,
        };
        assert_eq!(Coverage::default().outgoing(100), None);
        assert_eq!(send(0).outgoing(100), None, "0 is full coverage");
        assert_eq!(send(20).outgoing(100), Some(20));
        assert_eq!(send(108).outgoing(100), None, "covers it all");
        assert_eq!(send(107).outgoing(100), Some(107));
        let recv = |c| Coverage {
            send: None,
            recv: Some(c),
        };
        assert!(Coverage::default().accepts(Some(8)));
        assert!(recv(20).accepts(None), "full coverage always satisfies");
        assert!(recv(20).accepts(Some(20)));
        assert!(recv(20).accepts(Some(30)));
        assert!(!recv(20).accepts(Some(19)));
        assert!(!recv(0).accepts(Some(30)), "0 asks for full coverage");
        assert!(recv(0).accepts(None));
    }

    #[test]
    fn delivery_prefers_exact_and_connected_sockets() {
        let t = UdpLiteTable::new(0);
        let lo: SocketAddr = (Ipv4Addr::LOCALHOST, 9000).into();
        let sender: SocketAddr = (Ipv4Addr::LOCALHOST, 40000).into();
        let (any, exact) = (
            Arc::new(Endpoint::new(1 << 16)),
            Arc::new(Endpoint::new(1 << 16)),
        );
        t.bind(BindAddr::single(Ipv4Addr::UNSPECIFIED), 9000, true, &any)
            .unwrap();
        t.bind(BindAddr::single(Ipv4Addr::LOCALHOST), 9000, true, &exact)
            .unwrap();
        t.deliver(lo, dgram(sender, None));
        assert!(exact.readable() && !any.readable());
        any.set_peer(Some(sender));
        t.deliver(lo, dgram(sender, None));
        assert!(any.readable(), "connected to the sender wins");
        // Another sender does not match the connected socket.
        let other: SocketAddr = (Ipv4Addr::LOCALHOST, 40001).into();
        any.take(false, |_| ()).unwrap();
        t.deliver(lo, dgram(other, None));
        assert!(!any.readable());
        // IPv6 traffic does not reach IPv4 sockets; a closed port drops.
        t.deliver((Ipv6Addr::LOCALHOST, 9000).into(), dgram(sender, None));
        t.deliver((Ipv4Addr::LOCALHOST, 9001).into(), dgram(sender, None));
        assert_eq!(exact.take(false, |d| d.data.len()), Some(3));
        assert_eq!(exact.take(false, |d| d.data.len()), Some(3));
        assert_eq!(exact.take(false, |d| d.data.len()), None);
    }

    #[test]
    fn a_dual_stack_wildcard_takes_ipv4_and_a_full_queue_drops() {
        let t = UdpLiteTable::new(0);
        let dual = Arc::new(Endpoint::new(4));
        let addr = BindAddr {
            ip: Ipv6Addr::UNSPECIFIED.into(),
            dual: true,
        };
        let (port, owner) = t.bind(addr, 0, false, &dual).unwrap();
        let from: SocketAddr = (Ipv4Addr::LOCALHOST, 1).into();
        t.deliver((Ipv4Addr::LOCALHOST, port).into(), dgram(from, None));
        t.deliver((Ipv4Addr::LOCALHOST, port).into(), dgram(from, None));
        assert_eq!(dual.next_len(), 3);
        dual.take(false, |_| ()).unwrap();
        assert!(!dual.readable(), "the second did not fit in 4 bytes");
        t.release(port, owner);
        t.deliver((Ipv4Addr::LOCALHOST, port).into(), dgram(from, None));
        assert!(!dual.readable());
    }
}
