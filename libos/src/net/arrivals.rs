//! When each TCP connection last became readable, for `epoll`'s ready
//! order ([`FileLike::ready_stamp`](crate::fd::FileLike::ready_stamp)).
//!
//! smoltcp does not say which socket a received packet was for, so
//! [`Observed`] wraps an interface's device and notes the connection
//! (local and remote address) of every TCP segment that can make a socket
//! readable (data, a SYN, FIN or RST; not a bare ACK or a SYN-ACK). After each packet the
//! stack moves the notes into [`Arrivals`], stamped with
//! [`ready_seq`](crate::ipc::ready_seq): a connection keeps the stamp of
//! its first such segment until the program drains its receive queue.
//! The stamp of its latest such segment is its count of events for
//! readers ([`FileLike::event_seq`](crate::fd::FileLike::event_seq)):
//! every arrival moves it, as every arrival wakes an edge-triggered
//! `epoll` registration on Linux. It is kept until the connection is
//! removed.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// A TCP connection as this machine sees it: `(local, remote)`.
pub(crate) type Flow = (SocketAddr, SocketAddr);

/// Most connections remembered; past it the notes start afresh (ready
/// files then fall back to the order `epoll` first sees them ready, and
/// an edge-triggered registration may see one extra event).
const MAX_FLOWS: usize = 16_384;

/// A connection's arrival stamps.
#[derive(Debug, Clone, Copy, Default)]
struct Stamps {
    /// The first segment of its unread data (0: none unread).
    first: u64,
    /// Its latest segment.
    latest: u64,
}

/// Arrival stamps of connections.
#[derive(Debug, Default)]
pub(crate) struct Arrivals {
    stamps: BTreeMap<Flow, Stamps>,
}

impl Arrivals {
    /// Notes segments received for `flows` (keeps an older stamp).
    pub(crate) fn record(&mut self, flows: &mut Vec<Flow>) {
        for flow in flows.drain(..) {
            if self.stamps.len() >= MAX_FLOWS && !self.stamps.contains_key(&flow) {
                self.stamps.clear();
            }
            let now = crate::ipc::ready_seq();
            let stamps = self.stamps.entry(flow).or_default();
            if stamps.first == 0 {
                stamps.first = now;
            }
            stamps.latest = now;
        }
    }

    /// The stamp of `flow`'s unread data, 0 if none noted.
    pub(crate) fn stamp(&self, flow: &Flow) -> u64 {
        self.stamps.get(flow).map_or(0, |s| s.first)
    }

    /// The stamp of `flow`'s latest segment that can make it readable, 0
    /// if none noted.
    pub(crate) fn latest(&self, flow: &Flow) -> u64 {
        self.stamps.get(flow).map_or(0, |s| s.latest)
    }

    /// The program read everything `flow` had: the next segment is a new
    /// arrival.
    pub(crate) fn drained(&mut self, flow: &Flow) {
        if let Some(s) = self.stamps.get_mut(flow) {
            s.first = 0;
        }
    }

    /// `flow`'s connection is gone.
    pub(crate) fn forget(&mut self, flow: &Flow) {
        self.stamps.remove(flow);
    }
}

/// The connection of a received frame, if it is a TCP segment over IPv4
/// or IPv6 (without extension headers) that can make a socket readable.
#[cfg(test)]
pub(crate) fn flow_of(frame: &[u8], medium: Medium) -> Option<Flow> {
    let (flow, readable, _) = segment_of(frame, medium)?;
    readable.then_some(flow)
}

/// The connection of a TCP segment over IPv4 or IPv6 (without extension
/// headers), whatever it carries.
pub(crate) fn tcp_flow_of(frame: &[u8], medium: Medium) -> Option<Flow> {
    segment_of(frame, medium).map(|(flow, _, _)| flow)
}

/// The connection of a TCP segment, whether it can make a socket
/// readable, and whether it asks for a connection (a SYN without ACK).
fn segment_of(frame: &[u8], medium: Medium) -> Option<(Flow, bool, bool)> {
    let (ip, version) = match medium {
        // Ethernet II with EtherType IPv4 or IPv6.
        Medium::Ethernet => match frame.get(12..14)? {
            [0x08, 0x00] => (frame.get(14..)?, 4),
            [0x86, 0xdd] => (frame.get(14..)?, 6),
            _ => return None,
        },
        _ => (frame, *frame.first()? >> 4),
    };
    let version_ihl = *ip.first()?;
    if version_ihl >> 4 != version {
        return None;
    }
    // (source, destination, TCP segment)
    let (src, dst, tcp) = match version_ihl >> 4 {
        4 if *ip.get(9)? == 6 => {
            let ihl = usize::from(version_ihl & 0xf) * 4;
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            let addr = |at: usize| {
                let b: [u8; 4] = ip.get(at..at + 4)?.try_into().ok()?;
                Some(IpAddr::from(Ipv4Addr::from(b)))
            };
            (addr(12)?, addr(16)?, ip.get(ihl..total.min(ip.len()))?)
        }
        6 if *ip.get(6)? == 6 => {
            let payload = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
            let addr = |at: usize| {
                let b: [u8; 16] = ip.get(at..at + 16)?.try_into().ok()?;
                Some(IpAddr::from(Ipv6Addr::from(b)))
            };
            let end = payload.checked_add(40)?.min(ip.len());
            (addr(8)?, addr(24)?, ip.get(40..end)?)
        }
        _ => return None,
    };
    let data_offset = usize::from(*tcp.get(12)? >> 4) * 4;
    let flags = *tcp.get(13)?;
    // A SYN without ACK makes a listener readable (a SYN-ACK only
    // completes the caller's own connect); FIN and RST a connection.
    let (fin_rst, syn_ack) = (flags & 0x05 != 0, flags & 0x12);
    let readable = tcp.len() > data_offset || fin_rst || syn_ack == 0x02;
    let port = |at: usize| Some(u16::from_be_bytes([*tcp.get(at)?, *tcp.get(at + 1)?]));
    let src = SocketAddr::new(src, port(0)?);
    let dst = SocketAddr::new(dst, port(2)?);
    Some(((dst, src), readable, syn_ack == 0x02))
}

/// A device whose received TCP segments are noted (see the module docs).
#[derive(Debug)]
pub(crate) struct Observed<D> {
    pub(crate) inner: D,
    /// Connections of the frames received since the stack last looked.
    pub(crate) flows: Vec<Flow>,
    /// Whether a frame that may ask for a connection (a SYN without ACK,
    /// or anything not read as TCP) arrived since the stack last looked:
    /// only such a frame takes a listening socket out of `Listen`, so only
    /// then may a listener's pool need topping up.
    requests: bool,
}

impl<D> Observed<D> {
    pub(crate) fn new(inner: D) -> Self {
        Self {
            inner,
            flows: Vec::new(),
            requests: false,
        }
    }

    /// Whether a connection request may have arrived since the last call.
    pub(crate) fn take_requests(&mut self) -> bool {
        core::mem::take(&mut self.requests)
    }
}

/// A received frame whose connection is noted as it is consumed.
pub(crate) struct ObservedRx<'a, T> {
    inner: T,
    medium: Medium,
    flows: &'a mut Vec<Flow>,
    requests: &'a mut bool,
}

impl<T: phy::RxToken> phy::RxToken for ObservedRx<'_, T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let (medium, flows, requests) = (self.medium, self.flows, self.requests);
        self.inner.consume(|frame| {
            match segment_of(frame, medium) {
                Some((flow, readable, request)) => {
                    if readable {
                        flows.push(flow);
                    }
                    *requests |= request;
                }
                None => *requests = true,
            }
            f(frame)
        })
    }

    fn meta(&self) -> phy::PacketMeta {
        self.inner.meta()
    }
}

impl<D: Device> Device for Observed<D> {
    type RxToken<'a>
        = ObservedRx<'a, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let medium = self.inner.capabilities().medium;
        let (rx, tx) = self.inner.receive(now)?;
        Some((
            ObservedRx {
                inner: rx,
                medium,
                flows: &mut self.flows,
                requests: &mut self.requests,
            },
            tx,
        ))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(now)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4/TCP packet from 10.0.2.2:40000 to 10.0.2.15:6379.
    fn segment(flags: u8, payload: &[u8]) -> Vec<u8> {
        let total = 20 + 20 + payload.len();
        let mut p = alloc::vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 0, 2, 2]);
        p[16..20].copy_from_slice(&[10, 0, 2, 15]);
        p[20..22].copy_from_slice(&40000u16.to_be_bytes());
        p[22..24].copy_from_slice(&6379u16.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = flags;
        p[40..].copy_from_slice(payload);
        p
    }

    fn flow() -> Flow {
        (
            SocketAddr::new(Ipv4Addr::new(10, 0, 2, 15).into(), 6379),
            SocketAddr::new(Ipv4Addr::new(10, 0, 2, 2).into(), 40000),
        )
    }

    /// An IPv6/TCP packet from [::1]:40000 to [::1]:6379.
    fn segment6(flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = alloc::vec![0u8; 40 + 20 + payload.len()];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        p[6] = 6;
        p[7] = 64;
        p[23] = 1;
        p[39] = 1;
        p[40..42].copy_from_slice(&40000u16.to_be_bytes());
        p[42..44].copy_from_slice(&6379u16.to_be_bytes());
        p[52] = 5 << 4;
        p[53] = flags;
        p[60..].copy_from_slice(payload);
        p
    }

    #[test]
    fn ipv6_segments_are_arrivals_too() {
        let lo = |port| SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port);
        let want = Some((lo(6379), lo(40000)));
        assert_eq!(flow_of(&segment6(0x18, b"hi"), Medium::Ip), want);
        assert_eq!(flow_of(&segment6(0x02, b""), Medium::Ip), want);
        assert_eq!(flow_of(&segment6(0x10, b""), Medium::Ip), None);
        let mut udp = segment6(0x18, b"hi");
        udp[6] = 17;
        assert_eq!(flow_of(&udp, Medium::Ip), None);
        let full = segment6(0x18, b"data");
        for n in 0..full.len() {
            let _ = flow_of(&full[..n], Medium::Ip);
        }
    }

    #[test]
    fn data_syn_fin_and_rst_are_arrivals_a_bare_ack_or_syn_ack_is_not() {
        assert_eq!(
            flow_of(&segment(0x18, b"PING\r\n"), Medium::Ip),
            Some(flow())
        );
        assert_eq!(flow_of(&segment(0x02, b""), Medium::Ip), Some(flow()));
        assert_eq!(flow_of(&segment(0x11, b""), Medium::Ip), Some(flow()));
        assert_eq!(flow_of(&segment(0x04, b""), Medium::Ip), Some(flow()));
        assert_eq!(flow_of(&segment(0x10, b""), Medium::Ip), None);
        // Only a SYN without ACK asks for a connection (listeners refill).
        let request = |flags| segment_of(&segment(flags, b""), Medium::Ip).map(|s| s.2);
        assert_eq!(request(0x02), Some(true));
        assert_eq!(request(0x12), Some(false));
        assert_eq!(request(0x10), Some(false));
        assert_eq!(flow_of(&segment(0x12, b""), Medium::Ip), None, "SYN-ACK");
        let mut eth = alloc::vec![0u8; 14];
        eth[12..14].copy_from_slice(&[0x08, 0x00]);
        eth.extend(segment(0x18, b"x"));
        assert_eq!(flow_of(&eth, Medium::Ethernet), Some(flow()));
        eth[12] = 0x86; // IPv6 EtherType with an IPv4 packet: not TCP/IPv6
        eth[13] = 0xdd;
        assert_eq!(flow_of(&eth, Medium::Ethernet), None);
        eth[12..14].copy_from_slice(&[0x08, 0x06]); // ARP
        assert_eq!(flow_of(&eth, Medium::Ethernet), None);
    }

    #[test]
    fn truncated_or_foreign_frames_are_ignored_without_panicking() {
        let full = segment(0x18, b"data");
        for n in 0..full.len() {
            let _ = flow_of(&full[..n], Medium::Ip);
            let _ = flow_of(&full[..n], Medium::Ethernet);
        }
        let mut udp = full.clone();
        udp[9] = 17;
        assert_eq!(flow_of(&udp, Medium::Ip), None);
        let mut bad_ihl = full;
        bad_ihl[0] = 0x4f;
        assert_eq!(flow_of(&bad_ihl, Medium::Ip), None);
    }

    #[test]
    fn a_connection_keeps_its_first_stamp_until_drained() {
        let mut a = Arrivals::default();
        a.record(&mut alloc::vec![flow()]);
        let first = a.stamp(&flow());
        assert_ne!(first, 0);
        a.record(&mut alloc::vec![flow()]);
        assert_eq!(a.stamp(&flow()), first);
        a.drained(&flow());
        assert_eq!(a.stamp(&flow()), 0);
        a.record(&mut alloc::vec![flow()]);
        assert!(a.stamp(&flow()) > first);
    }

    #[test]
    fn every_arrival_moves_the_latest_stamp_until_the_connection_goes() {
        let mut a = Arrivals::default();
        assert_eq!(a.latest(&flow()), 0);
        a.record(&mut alloc::vec![flow()]);
        let one = a.latest(&flow());
        a.record(&mut alloc::vec![flow()]);
        let two = a.latest(&flow());
        assert!(two > one, "a second arrival on unread data is an event");
        assert_eq!(a.stamp(&flow()), one, "the order stamp stays the first");
        a.drained(&flow());
        assert_eq!(a.latest(&flow()), two, "draining is no event");
        a.forget(&flow());
        assert_eq!((a.stamp(&flow()), a.latest(&flow())), (0, 0));
    }
}
