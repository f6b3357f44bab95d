//! [`LoopbackPhy`]: the loopback device of the loopback interfaces, like
//! smoltcp's `phy::Loopback` (what is sent is received, in order) but
//! letting the stack look at the next packet before smoltcp takes it, so
//! that a parked connection can be put back in the polled set first
//! (`super::sockets`).
//!
//! It also carries per-datagram IPv6 header fields ([`Marks`], RFC 3542's
//! hop limit and traffic class) between smoltcp and the sockets. Sending:
//! smoltcp 0.14 has no traffic class and does not hand an IPv6 packet's
//! `PacketMeta` to the device, so a UDP socket names its next datagram
//! ([`LoopbackPhy::mark_next`]: ports and destination) just before the
//! stack is driven, and the device writes the marks into that packet's
//! IPv6 header as it goes out. Receiving: a received IPv6 packet's hop
//! limit and traffic class are handed to smoltcp as its `PacketMeta` id,
//! which a UDP socket's receive metadata keeps.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv6Addr;

use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium, PacketMeta};
use smoltcp::time::Instant;

use super::ancillary::Marks;

/// Largest packet over loopback (as smoltcp's loopback device).
const LOOPBACK_MTU: usize = 65535;

/// The UDP datagram a mark is for: source port, destination address and port.
pub(crate) type Flow = (u16, Ipv6Addr, u16);

/// A loopback device carrying IP packets (no link layer).
#[derive(Debug, Default)]
pub(crate) struct LoopbackPhy {
    queue: VecDeque<Vec<u8>>,
    /// The marks of the next UDP datagram of a flow to go out.
    next: Option<(Flow, Marks)>,
}

impl LoopbackPhy {
    /// The next packet to be received, if any.
    pub(crate) fn peek(&self) -> Option<&[u8]> {
        self.queue.front().map(Vec::as_slice)
    }

    /// Whether no packet is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Gives the next IPv6 UDP datagram of `flow` sent through this
    /// device `marks` (replacing a mark not yet used: the stack is driven
    /// after every send, so a socket has no older datagram waiting).
    pub(crate) fn mark_next(&mut self, flow: Flow, marks: Marks) {
        self.next = Some((flow, marks));
    }
}

/// The flow of an IPv6 UDP packet (no extension headers: smoltcp sends none).
fn flow_of(p: &[u8]) -> Option<Flow> {
    if p.len() < 48 || p[0] >> 4 != 6 || p[6] != 17 {
        return None;
    }
    let port = |at: usize| u16::from_be_bytes([p[at], p[at + 1]]);
    let dst = <[u8; 16]>::try_from(&p[24..40]).ok()?;
    Some((port(40), Ipv6Addr::from(dst), port(42)))
}

/// A packet taken from the queue.
pub(crate) struct LoopbackRx(Vec<u8>);

/// Room to queue one packet.
pub(crate) struct LoopbackTx<'a> {
    queue: &'a mut VecDeque<Vec<u8>>,
    next: &'a mut Option<(Flow, Marks)>,
}

impl phy::RxToken for LoopbackRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }

    fn meta(&self) -> PacketMeta {
        Marks::of_packet(&self.0).map_or_else(PacketMeta::default, Marks::to_meta)
    }
}

impl phy::TxToken for LoopbackTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = vec![0; len];
        let r = f(&mut packet);
        if let Some((flow, marks)) = *self.next
            && flow_of(&packet) == Some(flow)
        {
            marks.apply(&mut packet);
            *self.next = None;
        }
        self.queue.push_back(packet);
        r
    }
}

impl Device for LoopbackPhy {
    type RxToken<'a> = LoopbackRx;
    type TxToken<'a> = LoopbackTx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let packet = self.queue.pop_front()?;
        let tx = LoopbackTx {
            queue: &mut self.queue,
            next: &mut self.next,
        };
        Some((LoopbackRx(packet), tx))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        Some(LoopbackTx {
            queue: &mut self.queue,
            next: &mut self.next,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = LOOPBACK_MTU;
        // Nothing corrupts a packet between two sockets of this machine.
        caps.checksum = ChecksumCapabilities::ignored();
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::{RxToken as _, TxToken as _};

    #[test]
    fn marks_sent_are_written_and_read_back() {
        let mut lo = LoopbackPhy::default();
        let now = Instant::from_millis(0);
        let marks = Marks {
            hop_limit: 1,
            tclass: 0x2e,
        };
        let udp = |b: &mut [u8], dst_port: u16| {
            b[0] = 0x60;
            b[6] = 17;
            b[7] = 64;
            b[24..40].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
            b[40..42].copy_from_slice(&5000u16.to_be_bytes());
            b[42..44].copy_from_slice(&dst_port.to_be_bytes());
        };
        lo.mark_next((5000, Ipv6Addr::LOCALHOST, 53), marks);
        // Another flow's packet goes first, unmarked.
        lo.transmit(now).unwrap().consume(48, |b| udp(b, 54));
        lo.transmit(now).unwrap().consume(48, |b| udp(b, 53));
        // The mark was used once.
        lo.transmit(now).unwrap().consume(48, |b| udp(b, 53));
        let plain = Marks {
            hop_limit: 64,
            tclass: 0,
        };
        assert_eq!(lo.peek().map(<[u8]>::len), Some(48));
        let (rx, _) = lo.receive(now).unwrap();
        assert_eq!(Marks::from_meta(rx.meta()), Some(plain));
        let (rx, _) = lo.receive(now).unwrap();
        assert_eq!(Marks::from_meta(rx.meta()), Some(marks));
        rx.consume(|b| assert_eq!((b[0], b[1], b[7]), (0x62, 0xe0, 1)));
        let (rx, _) = lo.receive(now).unwrap();
        assert_eq!(Marks::from_meta(rx.meta()), Some(plain));
        assert!(lo.receive(now).is_none() && lo.is_empty());
        // IPv4 packets carry none.
        lo.transmit(now).unwrap().consume(48, |b| b[0] = 0x45);
        let (rx, _) = lo.receive(now).unwrap();
        assert_eq!(Marks::from_meta(rx.meta()), None);
    }
}
