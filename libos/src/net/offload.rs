//! Checksum and segmentation offload for frames sent: what a card
//! finishes for the sender ([`Offloads`]), and how a frame smoltcp wrote is
//! prepared for it ([`prepare`], [`TxOffload`]).
//!
//! - *Checksum offload* ([`Offloads::tcp_checksum`]): smoltcp leaves a TCP
//!   segment's checksum at 0. [`prepare`] writes the pseudo-header sum
//!   there and says where the card completes it (`csum_start`,
//!   `csum_offset`): the card replaces the field by the ones' complement
//!   of the sum from `csum_start` to the end of the frame (virtio 1.2,
//!   §5.1.6.2, "Packet Transmission"; Linux's `CHECKSUM_PARTIAL`).
//! - *TCP segmentation offload over IPv4* ([`Offloads::tso4_frame`]):
//!   smoltcp writes one frame of up to that many bytes carrying several
//!   segments' payload, and gives the segment size in the frame's
//!   metadata; [`prepare`] marks such a frame for the card to cut
//!   (`gso_size`, `hdr_len`). The pseudo-header sum then covers the whole
//!   frame's TCP length, which Linux's segmentation (`tcp_gso_segment`,
//!   where a TAP device's frames are cut) adjusts segment by segment.
//!   smoltcp 0.14 drops IPv6 packets over the MTU instead of handing them
//!   to the card, so segmentation is offered for IPv4 only.
//!
//! [`TxOffload::virtio_header`] encodes the result as the first ten bytes
//! of a `virtio_net_hdr`; the kernel's virtio-net driver puts it in front
//! of the frame. Nothing here trusts the host more than before: the host
//! carries every frame anyway and could rewrite any of them.

use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, checksum,
};

/// What a card finishes for the sender ([`super::NetDevice::offloads`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offloads {
    /// The card completes TCP checksums (`VIRTIO_NET_F_CSUM`).
    pub tcp_checksum: bool,
    /// The card cuts TCP-over-IPv4 frames of up to this many bytes
    /// (Ethernet header included) into segments
    /// (`VIRTIO_NET_F_HOST_TSO4`); `None` if it does not. Only with
    /// [`Self::tcp_checksum`].
    pub tso4_frame: Option<usize>,
}

/// `VIRTIO_NET_F_CSUM` (feature bit 0): the device completes the
/// checksums of frames sent.
pub const VIRTIO_NET_F_CSUM: u64 = 1 << 0;

/// `VIRTIO_NET_F_HOST_TSO4` (feature bit 11): the device cuts TCP-over-IPv4
/// frames into segments.
pub const VIRTIO_NET_F_HOST_TSO4: u64 = 1 << 11;

/// The features a virtio-net driver accepts: `accepted` (what it takes on
/// its own) plus, if `wanted`, checksum offload when the device offers it,
/// and segmentation over IPv4 when it offers that too (virtio 1.2,
/// §5.1.3.1: `HOST_TSO4` requires `CSUM`).
pub fn virtio_net_features(device: u64, accepted: u64, wanted: bool) -> u64 {
    if !wanted || device & VIRTIO_NET_F_CSUM == 0 {
        return accepted;
    }
    accepted | VIRTIO_NET_F_CSUM | (device & VIRTIO_NET_F_HOST_TSO4)
}

impl Offloads {
    /// What a virtio-net device that accepted `features` finishes, cutting
    /// frames of up to `tso_frame` bytes (what the driver's buffers hold).
    pub fn from_virtio_features(features: u64, tso_frame: usize) -> Self {
        let tcp_checksum = features & VIRTIO_NET_F_CSUM != 0;
        let tso = tcp_checksum && features & VIRTIO_NET_F_HOST_TSO4 != 0;
        Self {
            tcp_checksum,
            tso4_frame: tso.then_some(tso_frame),
        }
    }
}

/// A frame's segmentation by the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segmentation {
    /// Payload bytes of each segment but the last (`gso_size`).
    pub mss: u16,
    /// Bytes of the headers copied into each segment, Ethernet to TCP
    /// (`hdr_len`).
    pub header_len: u16,
}

/// What the card must finish in one frame; [`Self::NONE`] when nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxOffload {
    /// The TCP header's offset, where the card's checksum starts, and the
    /// checksum field's offset from there; `None` if the frame is
    /// complete.
    pub checksum: Option<(u16, u16)>,
    /// TCP segmentation over IPv4, if the frame is cut by the card.
    pub segmentation: Option<Segmentation>,
}

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`.
const HDR_F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
const HDR_GSO_TCPV4: u8 = 1;
/// The TCP checksum field's offset in the TCP header.
const TCP_CHECKSUM_AT: u16 = 16;

impl TxOffload {
    /// A complete frame: the card has nothing to do.
    pub const NONE: Self = Self {
        checksum: None,
        segmentation: None,
    };

    /// The first ten bytes of the frame's `virtio_net_hdr` (`flags`,
    /// `gso_type`, `hdr_len`, `gso_size`, `csum_start`, `csum_offset`,
    /// little-endian as virtio 1.x and legacy x86 agree); a version 1
    /// header's `num_buffers` that follows is 0 when sending.
    pub fn virtio_header(&self) -> [u8; 10] {
        let mut h = [0u8; 10];
        if let Some((start, offset)) = self.checksum {
            h[0] = HDR_F_NEEDS_CSUM;
            h[6..8].copy_from_slice(&start.to_le_bytes());
            h[8..10].copy_from_slice(&offset.to_le_bytes());
        }
        if let Some(seg) = self.segmentation {
            h[1] = HDR_GSO_TCPV4;
            h[2..4].copy_from_slice(&seg.header_len.to_le_bytes());
            h[4..6].copy_from_slice(&seg.mss.to_le_bytes());
        }
        h
    }
}

/// Prepares `frame`, an Ethernet frame smoltcp wrote with its TCP checksum
/// left to the card, and says what the card must finish: for a TCP
/// segment over IPv4 or IPv6, the pseudo-header sum goes into the checksum
/// field; with `mss` (smoltcp's segmentation size for this frame) and an
/// IPv4 payload longer than it, the card cuts the frame too. Anything else
/// (ARP, UDP, ICMP, a frame too short to parse) is left as it is:
/// [`TxOffload::NONE`].
pub fn prepare(frame: &mut [u8], mss: Option<u16>) -> TxOffload {
    let Ok(eth) = EthernetFrame::new_checked(&*frame) else {
        return TxOffload::NONE;
    };
    let ip_at = EthernetFrame::<&[u8]>::header_len();
    let (tcp_at, tcp_len, pseudo, v4) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(&frame[ip_at..]) else {
                return TxOffload::NONE;
            };
            if ip.next_header() != IpProtocol::Tcp {
                return TxOffload::NONE;
            }
            let header = usize::from(ip.header_len());
            let len = usize::from(ip.total_len()) - header;
            let sum = checksum::pseudo_header_v4(
                &ip.src_addr(),
                &ip.dst_addr(),
                IpProtocol::Tcp,
                len as u32,
            );
            (ip_at + header, len, sum, true)
        }
        EthernetProtocol::Ipv6 => {
            let Ok(ip) = Ipv6Packet::new_checked(&frame[ip_at..]) else {
                return TxOffload::NONE;
            };
            if ip.next_header() != IpProtocol::Tcp {
                return TxOffload::NONE;
            }
            let len = usize::from(ip.payload_len());
            let sum = checksum::pseudo_header_v6(
                &ip.src_addr(),
                &ip.dst_addr(),
                IpProtocol::Tcp,
                len as u32,
            );
            (ip_at + ip.header_len(), len, sum, false)
        }
        _ => return TxOffload::NONE,
    };
    // `new_checked` checked the IP lengths against the frame; the TCP
    // header must fit the IP payload.
    let Some(tcp_bytes) = frame.get_mut(tcp_at..tcp_at + tcp_len) else {
        return TxOffload::NONE;
    };
    let Ok(mut tcp) = TcpPacket::new_checked(tcp_bytes) else {
        return TxOffload::NONE;
    };
    tcp.set_checksum(pseudo);
    // At least 20 bytes and within the segment: `new_checked` checked.
    let header_len = usize::from(tcp.header_len());
    let payload = tcp_len - header_len;
    let segmentation = mss
        .filter(|&mss| v4 && mss > 0 && payload > usize::from(mss))
        .map(|mss| Segmentation {
            mss,
            header_len: (tcp_at + header_len) as u16,
        });
    TxOffload {
        checksum: Some((tcp_at as u16, TCP_CHECKSUM_AT)),
        segmentation,
    }
}

#[cfg(test)]
#[path = "offload_tests.rs"]
mod tests;
