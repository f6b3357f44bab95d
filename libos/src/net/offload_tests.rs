//! Tests of [`super`]: frames smoltcp writes with the TCP checksum left to
//! the card, finished by a model of the card (virtio's checksum rule, and
//! Linux's segmentation for a TAP device's frames), then checked by
//! smoltcp's own parser.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::{Checksum, ChecksumCapabilities};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetRepr, IpAddress, Ipv4Address,
    Ipv4Repr, Ipv6Address, Ipv6Repr, TcpControl, TcpRepr, TcpSeqNumber, TcpTimestampRepr,
    UdpPacket, UdpRepr,
};

use super::*;
use crate::net::testdev::{complete_checksum, cut_segments};

const SRC4: Ipv4Address = Ipv4Address::new(10, 77, 0, 2);
const DST4: Ipv4Address = Ipv4Address::new(10, 77, 0, 1);
const SRC6: Ipv6Address = Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
const DST6: Ipv6Address = Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const ETH: usize = 14;

/// Checksums computed in software (`full`) or the TCP one left to the card.
fn caps(full: bool) -> ChecksumCapabilities {
    let mut caps = ChecksumCapabilities::default();
    if !full {
        caps.tcp = Checksum::Rx;
    }
    caps
}

fn ethernet(ethertype: EthernetProtocol, f: &mut [u8]) {
    EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
        ethertype,
    }
    .emit(&mut EthernetFrame::new_unchecked(f));
}

/// A segment from port 8080 with timestamps, near the sequence space's
/// wrap.
fn tcp(payload: &[u8], control: TcpControl) -> TcpRepr<'_> {
    TcpRepr {
        src_port: 8080,
        dst_port: 40000,
        control,
        seq_number: TcpSeqNumber(-3000),
        ack_number: Some(TcpSeqNumber(1234)),
        window_len: 512,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: Some(TcpTimestampRepr { tsval: 7, tsecr: 9 }),
        payload,
    }
}

/// An Ethernet frame of `seg` over IPv4, its TCP checksum computed
/// (`full`) or left at 0 as smoltcp leaves it for the card.
fn frame_v4(seg: &TcpRepr, full: bool) -> Vec<u8> {
    let ip = Ipv4Repr {
        src_addr: SRC4,
        dst_addr: DST4,
        next_header: IpProtocol::Tcp,
        payload_len: seg.buffer_len(),
        hop_limit: 64,
    };
    let mut f = vec![0; ETH + ip.buffer_len() + seg.buffer_len()];
    ethernet(EthernetProtocol::Ipv4, &mut f);
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[ETH..]), &caps(full));
    let at = ETH + ip.buffer_len();
    seg.emit(
        &mut TcpPacket::new_unchecked(&mut f[at..]),
        &SRC4.into(),
        &DST4.into(),
        &caps(full),
    );
    f
}

/// [`frame_v4`] over IPv6.
fn frame_v6(seg: &TcpRepr, full: bool) -> Vec<u8> {
    let ip = Ipv6Repr {
        src_addr: SRC6,
        dst_addr: DST6,
        next_header: IpProtocol::Tcp,
        payload_len: seg.buffer_len(),
        hop_limit: 64,
    };
    let mut f = vec![0; ETH + ip.buffer_len() + seg.buffer_len()];
    ethernet(EthernetProtocol::Ipv6, &mut f);
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut f[ETH..]));
    let at = ETH + ip.buffer_len();
    seg.emit(
        &mut TcpPacket::new_unchecked(&mut f[at..]),
        &SRC6.into(),
        &DST6.into(),
        &caps(full),
    );
    f
}

#[test]
fn a_tcp_segment_over_ipv4_completed_by_the_card_is_the_one_smoltcp_would_send() {
    let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    for control in [TcpControl::None, TcpControl::Psh, TcpControl::Fin] {
        let seg = tcp(&payload, control);
        let mut frame = frame_v4(&seg, false);
        let off = prepare(&mut frame, None);
        assert_eq!(off.checksum, Some((34, 16)));
        assert_eq!(off.segmentation, None);
        complete_checksum(&mut frame, &off);
        assert_eq!(frame, frame_v4(&seg, true));
    }
}

#[test]
fn a_tcp_segment_over_ipv6_completed_by_the_card_is_the_one_smoltcp_would_send() {
    for len in [0, 1, 2, 3, 1000, 1207] {
        let payload = vec![0xa5; len];
        let seg = tcp(&payload, TcpControl::Psh);
        let mut frame = frame_v6(&seg, false);
        // IPv6 frames are never cut, whatever smoltcp asks.
        let off = prepare(&mut frame, Some(100));
        assert_eq!(off.checksum, Some((54, 16)));
        assert_eq!(off.segmentation, None);
        complete_checksum(&mut frame, &off);
        assert_eq!(frame, frame_v6(&seg, true), "payload of {len} bytes");
    }
}

#[test]
fn a_bare_ack_and_a_syn_get_their_checksum_from_the_card_too() {
    let mut syn = tcp(&[], TcpControl::Syn);
    syn.max_seg_size = Some(1460);
    syn.window_scale = Some(7);
    for seg in [tcp(&[], TcpControl::None), syn] {
        let mut frame = frame_v4(&seg, false);
        let off = prepare(&mut frame, Some(1448));
        assert_eq!(off.segmentation, None, "nothing to cut");
        complete_checksum(&mut frame, &off);
        assert_eq!(frame, frame_v4(&seg, true));
    }
}

#[test]
fn a_frame_with_several_segments_is_cut_into_segments_with_valid_checksums() {
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let seg = tcp(&payload, TcpControl::Psh);
    let mut frame = frame_v4(&seg, false);
    let off = prepare(&mut frame, Some(1448));
    let headers = ETH + 20 + 32;
    assert_eq!(
        off.segmentation,
        Some(Segmentation {
            mss: 1448,
            header_len: headers as u16
        })
    );
    let segments = cut_segments(&frame, &off);
    assert_eq!(segments.len(), payload.len().div_ceil(1448));
    let mut joined = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        let ip = Ipv4Packet::new_checked(&s[ETH..]).expect("ipv4");
        assert!(ip.verify_checksum(), "segment {i}: IP checksum");
        let t = TcpPacket::new_checked(ip.payload()).expect("tcp");
        assert!(
            t.verify_checksum(&IpAddress::from(SRC4), &IpAddress::from(DST4)),
            "segment {i}: TCP checksum"
        );
        assert_eq!(t.seq_number(), seg.seq_number + joined.len());
        assert_eq!(t.psh(), i == segments.len() - 1);
        assert!(t.payload().len() <= 1448);
        joined.extend_from_slice(t.payload());
    }
    assert_eq!(joined, payload);
}

#[test]
fn a_sum_over_each_segments_length_instead_of_the_whole_would_be_caught() {
    // The check above can fail: with the pseudo-header sum over one
    // segment's TCP length (not the whole frame's), the cut segments'
    // checksums are wrong.
    let payload = vec![0x3c; 4000];
    let mut frame = frame_v4(&tcp(&payload, TcpControl::None), false);
    let off = prepare(&mut frame, Some(1448));
    let wrong = checksum::pseudo_header_v4(&SRC4, &DST4, IpProtocol::Tcp, 32 + 1448);
    TcpPacket::new_unchecked(&mut frame[34..]).set_checksum(wrong);
    let first = &cut_segments(&frame, &off)[0];
    let t = TcpPacket::new_checked(&first[34..]).expect("tcp");
    assert!(!t.verify_checksum(&IpAddress::from(SRC4), &IpAddress::from(DST4)));
}

#[test]
fn a_frame_within_one_segment_is_not_marked_for_cutting() {
    let payload = vec![1; 1448];
    let mut frame = frame_v4(&tcp(&payload, TcpControl::None), false);
    assert_eq!(prepare(&mut frame, Some(1448)).segmentation, None);
    let mut frame = frame_v4(&tcp(&payload, TcpControl::None), false);
    assert!(prepare(&mut frame, Some(1447)).segmentation.is_some());
    let mut frame = frame_v4(&tcp(&payload, TcpControl::None), false);
    assert_eq!(prepare(&mut frame, Some(0)).segmentation, None);
}

#[test]
fn frames_other_than_tcp_are_left_alone() {
    // ARP.
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        source_protocol_addr: SRC4,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: DST4,
    };
    let mut f = vec![0; ETH + arp.buffer_len()];
    ethernet(EthernetProtocol::Arp, &mut f);
    arp.emit(&mut ArpPacket::new_unchecked(&mut f[ETH..]));
    // UDP over IPv4, its checksum computed by smoltcp.
    let udp = UdpRepr {
        src_port: 53,
        dst_port: 5353,
    };
    let ip = Ipv4Repr {
        src_addr: SRC4,
        dst_addr: DST4,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + 5,
        hop_limit: 64,
    };
    let mut u = vec![0; ETH + 20 + udp.header_len() + 5];
    ethernet(EthernetProtocol::Ipv4, &mut u);
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut u[ETH..]), &caps(true));
    udp.emit(
        &mut UdpPacket::new_unchecked(&mut u[ETH + 20..]),
        &SRC4.into(),
        &DST4.into(),
        5,
        |p| p.copy_from_slice(b"hello"),
        &caps(true),
    );
    for frame in [f, u] {
        let mut copy = frame.clone();
        assert_eq!(prepare(&mut copy, Some(1448)), TxOffload::NONE);
        assert_eq!(copy, frame);
    }
}

#[test]
fn truncated_and_garbled_frames_are_left_alone_without_a_panic() {
    let payload = vec![9; 3000];
    let good = frame_v4(&tcp(&payload, TcpControl::Psh), false);
    for len in 0..good.len() {
        let mut cut = good[..len].to_vec();
        assert_eq!(
            prepare(&mut cut, Some(1448)),
            TxOffload::NONE,
            "{len} bytes"
        );
    }
    // Every byte of the headers set to every value in turn, and a simple
    // generator's noise behind an IPv4 or IPv6 Ethernet type.
    for at in 0..ETH + 20 + 32 {
        for value in [0u8, 1, 0x0f, 0x45, 0x80, 0xff] {
            let mut f = good.clone();
            f[at] = value;
            let _ = prepare(&mut f, Some(1448));
        }
    }
    let mut x = 0x2545_f491_u32;
    for round in 0..2000 {
        let len = round % 200;
        let mut f: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        if len > 14 {
            f[12..14].copy_from_slice(if round % 2 == 0 {
                &[0x08, 0x00]
            } else {
                &[0x86, 0xdd]
            });
        }
        let _ = prepare(&mut f, Some(1448));
    }
}

#[test]
fn the_virtio_header_carries_the_flags_offsets_and_segment_size() {
    assert_eq!(TxOffload::NONE.virtio_header(), [0; 10]);
    let checksum_only = TxOffload {
        checksum: Some((34, 16)),
        segmentation: None,
    };
    assert_eq!(
        checksum_only.virtio_header(),
        [1, 0, 0, 0, 0, 0, 34, 0, 16, 0]
    );
    let cut = TxOffload {
        checksum: Some((34, 16)),
        segmentation: Some(Segmentation {
            mss: 1448,
            header_len: 66,
        }),
    };
    let [lo, hi] = 1448u16.to_le_bytes();
    assert_eq!(cut.virtio_header(), [1, 1, 66, 0, lo, hi, 34, 0, 16, 0]);
}

#[test]
fn offloads_are_accepted_only_as_the_device_offers_them() {
    const MAC: u64 = 1 << 5;
    const BOTH: u64 = VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_TSO4;
    // Not wanted, or not offered: what the driver took on its own.
    assert_eq!(virtio_net_features(BOTH | MAC, MAC, false), MAC);
    assert_eq!(virtio_net_features(MAC, MAC, true), MAC);
    // Segmentation without the checksum is not taken (it requires it).
    assert_eq!(
        virtio_net_features(VIRTIO_NET_F_HOST_TSO4 | MAC, MAC, true),
        MAC
    );
    assert_eq!(
        virtio_net_features(VIRTIO_NET_F_CSUM | MAC, MAC, true),
        VIRTIO_NET_F_CSUM | MAC
    );
    assert_eq!(virtio_net_features(BOTH | MAC, MAC, true), BOTH | MAC);
    // Other offered offloads (the guest's own, 1 << 1) are left alone.
    assert_eq!(virtio_net_features(BOTH | 2, 0, true), BOTH);
}

#[test]
fn the_offloads_follow_the_accepted_features() {
    assert_eq!(
        Offloads::from_virtio_features(0, 60_000),
        Offloads::default()
    );
    assert_eq!(
        Offloads::from_virtio_features(VIRTIO_NET_F_CSUM, 60_000),
        Offloads {
            tcp_checksum: true,
            tso4_frame: None
        }
    );
    assert_eq!(
        Offloads::from_virtio_features(VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_TSO4, 60_000),
        Offloads {
            tcp_checksum: true,
            tso4_frame: Some(60_000)
        }
    );
    assert_eq!(
        Offloads::from_virtio_features(VIRTIO_NET_F_HOST_TSO4, 60_000),
        Offloads::default()
    );
}
