//! [`NetCounters`]: what the external interface's device path counts to
//! explain stalled connections — TCP retransmissions, frames held back or
//! refused because the device's transmit queue was full, receive errors —
//! and [`RetransmitDetector`], which recognises a retransmission in the
//! frames smoltcp sends (smoltcp 0.14 counts none itself). Sent frames
//! are also counted by how they crossed the device trait: written in
//! place into the device's buffer, or copied (`super::device`).
//!
//! A sent TCP segment that carries sequence space (data, SYN or FIN) is a
//! retransmission when its end lies at or before the highest sequence end
//! already sent on its connection (compared modulo 2³², RFC 793) — except
//! a one-byte segment ending exactly there, the form of a keep-alive probe,
//! counted apart (a genuine retransmission of a connection's last single
//! byte is counted as a probe too). A
//! connection is the segment's (source, destination) address and port
//! pair; a SYN that does not repeat the connection's last one starts it
//! afresh (a new connection on reused ports). At most [`MAX_FLOWS`]
//! connections are tracked; past that the table starts over, so a
//! retransmission right after may go uncounted — the count never
//! includes a first transmission.

use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// Connections [`RetransmitDetector`] remembers at once.
pub const MAX_FLOWS: usize = 4096;

/// Counters of the external interface's device path.
#[derive(Debug, Default)]
pub struct NetCounters {
    /// Frames smoltcp sent (handed to the device or held back for it).
    pub tx_frames: AtomicU64,
    /// Sent TCP segments that repeat sequence space already sent
    /// (keep-alive probes apart).
    pub tcp_retransmits: AtomicU64,
    /// Sent TCP keep-alive probes.
    pub tcp_keepalives: AtomicU64,
    /// Frames held back in software because the device's queue was full.
    pub tx_deferred: AtomicU64,
    /// Times smoltcp was told there was no room to send at all (the
    /// held-back queue was full too).
    pub tx_backlog_full: AtomicU64,
    /// Frames taken from the device.
    pub rx_frames: AtomicU64,
    /// Receives the device failed (a frame dropped: too long, or a device
    /// error).
    pub rx_errors: AtomicU64,
    /// Of [`Self::tx_frames`], those smoltcp wrote straight into a device
    /// buffer (the rest were built in private memory and copied).
    pub tx_in_place: AtomicU64,
    /// Of [`Self::tx_frames`], those of at most the copybreak built in
    /// private memory and copied to the device without asking it for a
    /// buffer.
    pub tx_short_copied: AtomicU64,
    /// Of [`Self::tx_frames`], those longer than one segment that the
    /// card cuts into segments (`super::offload`).
    pub tx_segmented: AtomicU64,
}

/// A copy of [`NetCounters`] at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// See [`NetCounters::tx_frames`].
    pub tx_frames: u64,
    /// See [`NetCounters::tcp_retransmits`].
    pub tcp_retransmits: u64,
    /// See [`NetCounters::tcp_keepalives`].
    pub tcp_keepalives: u64,
    /// See [`NetCounters::tx_deferred`].
    pub tx_deferred: u64,
    /// See [`NetCounters::tx_backlog_full`].
    pub tx_backlog_full: u64,
    /// See [`NetCounters::rx_frames`].
    pub rx_frames: u64,
    /// See [`NetCounters::rx_errors`].
    pub rx_errors: u64,
    /// See [`NetCounters::tx_in_place`].
    pub tx_in_place: u64,
    /// See [`NetCounters::tx_short_copied`].
    pub tx_short_copied: u64,
    /// See [`NetCounters::tx_segmented`].
    pub tx_segmented: u64,
}

impl NetCounters {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> CountersSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersSnapshot {
            tx_frames: get(&self.tx_frames),
            tcp_retransmits: get(&self.tcp_retransmits),
            tcp_keepalives: get(&self.tcp_keepalives),
            tx_deferred: get(&self.tx_deferred),
            tx_backlog_full: get(&self.tx_backlog_full),
            rx_frames: get(&self.rx_frames),
            rx_errors: get(&self.rx_errors),
            tx_in_place: get(&self.tx_in_place),
            tx_short_copied: get(&self.tx_short_copied),
            tx_segmented: get(&self.tx_segmented),
        }
    }
}

impl fmt::Display for CountersSnapshot {
    /// `tx_frames=… tcp_retransmits=… tcp_keepalives=… tx_deferred=…
    /// tx_backlog_full=… rx_frames=… rx_errors=… tx_in_place=…
    /// tx_short_copied=… tx_segmented=…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tx_frames={} tcp_retransmits={} tcp_keepalives={} tx_deferred={} tx_backlog_full={} rx_frames={} rx_errors={} tx_in_place={} tx_short_copied={} tx_segmented={}",
            self.tx_frames,
            self.tcp_retransmits,
            self.tcp_keepalives,
            self.tx_deferred,
            self.tx_backlog_full,
            self.rx_frames,
            self.rx_errors,
            self.tx_in_place,
            self.tx_short_copied,
            self.tx_segmented
        )
    }
}

/// A connection as seen in sent segments: source then destination
/// (IPv4 address, port), packed into one integer (a cheap key: the
/// detector looks at every frame sent).
type Flow = u128;

/// What [`RetransmitDetector`] needs of a sent IPv4/TCP segment.
#[derive(Debug, Clone, Copy)]
struct TcpHead {
    flow: Flow,
    seq: u32,
    payload: usize,
    syn: bool,
    fin: bool,
}

/// Reads a big-endian `u16` at `at` (the caller checked the length).
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The TCP header of an Ethernet/IPv4 frame, read at the fixed offsets of
/// RFC 791/793 with the same length checks as smoltcp's `new_checked`
/// (header lengths within the packet, the IPv4 total length within the
/// frame); `None` for anything else. Hand-written because it runs on
/// every sent frame and smoltcp's three checked wrappers cost several
/// times as much.
fn tcp_head(frame: &[u8]) -> Option<TcpHead> {
    const ETH: usize = 14;
    if frame.len() < ETH + 20 || be16(frame, 12) != 0x0800 {
        return None;
    }
    let ip = &frame[ETH..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2));
    if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || total > ip.len() || ip[9] != 6 {
        return None;
    }
    let tcp = &ip[ihl..total];
    if tcp.len() < 20 {
        return None;
    }
    let doff = usize::from(tcp[12] >> 4) * 4;
    if doff < 20 || doff > tcp.len() {
        return None;
    }
    let addr = |at: usize| {
        u128::from(u32::from_be_bytes([
            ip[at],
            ip[at + 1],
            ip[at + 2],
            ip[at + 3],
        ]))
    };
    let flow =
        addr(12) << 64 | u128::from(be16(tcp, 0)) << 48 | addr(16) << 16 | u128::from(be16(tcp, 2));
    Some(TcpHead {
        flow,
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        payload: tcp.len() - doff,
        syn: tcp[13] & 0x02 != 0,
        fin: tcp[13] & 0x01 != 0,
    })
}

/// What the detector remembers of a connection.
#[derive(Debug, Clone, Copy)]
struct Sent {
    /// The highest sequence end sent.
    end: u32,
    /// The sequence number of its last SYN.
    syn: Option<u32>,
}

/// What a sent frame is, as far as retransmissions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// Not a TCP segment carrying sequence space (a bare ACK, not TCP, or
    /// not parseable).
    Other,
    /// A TCP segment that sends sequence space for the first time.
    New,
    /// A TCP segment repeating sequence space already sent.
    Retransmit,
    /// A keep-alive probe: one byte at the sequence number just below the
    /// next one (RFC 1122 4.2.3.6), repeating sent space on purpose.
    KeepAlive,
}

/// Finds retransmissions among sent frames (see the module docs).
#[derive(Debug, Default)]
pub struct RetransmitDetector {
    flows: BTreeMap<Flow, Sent>,
}

/// Whether `a` comes after `b` in sequence space.
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl RetransmitDetector {
    /// Looks at one sent Ethernet frame; whether it is a TCP
    /// retransmission (keep-alive probes apart). Anything that is not
    /// IPv4/TCP, or does not parse, is not.
    pub fn is_retransmit(&mut self, frame: &[u8]) -> bool {
        self.classify(frame) == Segment::Retransmit
    }

    /// What one sent Ethernet frame is (see [`Segment`]).
    pub fn classify(&mut self, frame: &[u8]) -> Segment {
        let Some(head) = tcp_head(frame) else {
            return Segment::Other;
        };
        let seg_len = head.payload + usize::from(head.syn) + usize::from(head.fin);
        if seg_len == 0 {
            // A bare ACK (or RST) takes no sequence space.
            return Segment::Other;
        }
        let seq = head.seq;
        let end = seq.wrapping_add(seg_len as u32);
        if self.flows.len() >= MAX_FLOWS && !self.flows.contains_key(&head.flow) {
            self.flows.clear();
        }
        let fresh = Sent {
            end,
            syn: head.syn.then_some(seq),
        };
        let sent = match self.flows.entry(head.flow) {
            Entry::Vacant(v) => {
                v.insert(fresh);
                return Segment::New;
            }
            Entry::Occupied(o) => o.into_mut(),
        };
        if head.syn && sent.syn != Some(seq) {
            // A SYN other than the connection's last: a new connection.
            *sent = fresh;
            Segment::New
        } else if seq_after(end, sent.end) {
            sent.end = end;
            Segment::New
        } else if head.payload == 1 && !head.syn && !head.fin && end == sent.end {
            // One byte just below the next sequence number: a keep-alive
            // probe (smoltcp sends one as soon as SO_KEEPALIVE is set).
            Segment::KeepAlive
        } else {
            Segment::Retransmit
        }
    }

    /// Connections remembered now.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
        Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    };

    /// An Ethernet/IPv4/TCP frame from 10.0.2.15:`sport` to 10.0.2.2:80.
    fn segment(sport: u16, seq: u32, control: TcpControl, payload: &[u8]) -> alloc::vec::Vec<u8> {
        let src = Ipv4Address::new(10, 0, 2, 15);
        let dst = Ipv4Address::new(10, 0, 2, 2);
        let tcp = TcpRepr {
            src_port: sport,
            dst_port: 80,
            control,
            seq_number: TcpSeqNumber(seq as i32),
            ack_number: Some(TcpSeqNumber(1)),
            window_len: 1024,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut buf = alloc::vec![0u8; eth.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
        let caps = ChecksumCapabilities::default();
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut frame);
        let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet, &caps);
        let mut t = TcpPacket::new_unchecked(packet.payload_mut());
        tcp.emit(&mut t, &IpAddress::Ipv4(src), &IpAddress::Ipv4(dst), &caps);
        buf
    }

    #[test]
    fn new_data_is_not_a_retransmission_repeated_data_is() {
        let mut d = RetransmitDetector::default();
        assert!(!d.is_retransmit(&segment(40000, 100, TcpControl::Syn, &[])));
        assert!(d.is_retransmit(&segment(40000, 100, TcpControl::Syn, &[])));
        assert!(!d.is_retransmit(&segment(40000, 101, TcpControl::None, b"hello")));
        assert!(!d.is_retransmit(&segment(40000, 106, TcpControl::None, b"world")));
        // The first segment again, and a part of the second.
        assert!(d.is_retransmit(&segment(40000, 101, TcpControl::None, b"hello")));
        assert!(d.is_retransmit(&segment(40000, 106, TcpControl::None, b"wor")));
        // A bare ACK takes no sequence space.
        assert!(!d.is_retransmit(&segment(40000, 111, TcpControl::None, &[])));
        assert!(!d.is_retransmit(&segment(40000, 111, TcpControl::Fin, &[])));
        assert!(d.is_retransmit(&segment(40000, 111, TcpControl::Fin, &[])));
        // One byte just below the next sequence number: a keep-alive probe,
        // as smoltcp sends once SO_KEEPALIVE is set (Redis sets it).
        assert_eq!(
            d.classify(&segment(40000, 111, TcpControl::None, &[0])),
            Segment::KeepAlive
        );
        assert_eq!(
            d.classify(&segment(40000, 112, TcpControl::None, b"more")),
            Segment::New
        );
        // Another connection is counted on its own.
        assert!(!d.is_retransmit(&segment(40001, 101, TcpControl::None, b"hello")));
        assert_eq!(d.flows(), 2);
    }

    #[test]
    fn sequence_numbers_wrap_and_a_new_syn_starts_afresh() {
        let mut d = RetransmitDetector::default();
        assert!(!d.is_retransmit(&segment(1, u32::MAX - 2, TcpControl::None, b"abcd")));
        assert!(!d.is_retransmit(&segment(1, 1, TcpControl::None, b"ef")));
        assert!(d.is_retransmit(&segment(1, u32::MAX - 2, TcpControl::None, b"abcd")));
        // The ports reused by a new connection with another ISN.
        assert!(!d.is_retransmit(&segment(1, 5000, TcpControl::Syn, &[])));
        assert!(!d.is_retransmit(&segment(1, 5001, TcpControl::None, b"x")));
    }

    #[test]
    fn other_frames_and_garbage_are_not_counted() {
        let mut d = RetransmitDetector::default();
        assert!(!d.is_retransmit(&[]));
        assert!(!d.is_retransmit(&[0xff; 13]));
        let mut arp = segment(1, 1, TcpControl::None, b"x");
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!d.is_retransmit(&arp));
        assert!(!d.is_retransmit(&arp));
        // Truncated inside the TCP header.
        let seg = segment(1, 1, TcpControl::None, b"x");
        assert!(!d.is_retransmit(&seg[..40]));
        assert!(!d.is_retransmit(&seg[..40]));
    }

    /// The hand-written header reader agrees with smoltcp's parsers,
    /// TCP options and IPv4 options included.
    #[test]
    fn the_header_reader_agrees_with_smoltcp() {
        let mut frames = alloc::vec![
            segment(7, 42, TcpControl::Syn, &[]),
            segment(8, 9, TcpControl::Fin, b"abc")
        ];
        // TCP options (a 32-byte header): smoltcp emits MSS and a timestamp.
        let mut with_options = segment(9, 1000, TcpControl::None, b"payload");
        {
            let eth = EthernetFrame::new_checked(&with_options[..]).unwrap();
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            let ihl = usize::from(ip.header_len());
            let tcp_at = 14 + ihl;
            // Make room for 12 bytes of NOP options inside the TCP header.
            with_options.splice(tcp_at + 20..tcp_at + 20, [1u8; 12]);
            with_options[tcp_at + 12] = 8 << 4;
            let total = (with_options.len() - 14) as u16;
            with_options[16..18].copy_from_slice(&total.to_be_bytes());
        }
        frames.push(with_options.clone());
        // IPv4 options: one 4-byte NOP/EOL word (IHL 6).
        let mut ip_options = with_options;
        ip_options.splice(34..34, [1u8, 1, 1, 0]);
        ip_options[14] = 0x46;
        let total = (ip_options.len() - 14) as u16;
        ip_options[16..18].copy_from_slice(&total.to_be_bytes());
        frames.push(ip_options);
        for f in &frames {
            let eth = EthernetFrame::new_checked(&f[..]).unwrap();
            assert_eq!(eth.ethertype(), EthernetProtocol::Ipv4);
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            assert_eq!(ip.next_header(), IpProtocol::Tcp);
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            let head = tcp_head(f).expect("a TCP segment");
            assert_eq!(head.seq, tcp.seq_number().0 as u32);
            assert_eq!(head.payload, tcp.payload().len());
            assert_eq!((head.syn, head.fin), (tcp.syn(), tcp.fin()));
            assert_eq!(head.flow & 0xffff, u128::from(tcp.dst_port()));
            assert_eq!((head.flow >> 48) & 0xffff, u128::from(tcp.src_port()));
        }
        assert_eq!(tcp_head(&frames[2]).unwrap().payload, 7);
        assert_eq!(tcp_head(&frames[3]).unwrap().payload, 7);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut d = RetransmitDetector::default();
        for port in 0..=MAX_FLOWS as u16 {
            assert!(!d.is_retransmit(&segment(port, 1, TcpControl::None, b"x")));
        }
        assert!(d.flows() <= MAX_FLOWS);
    }

    #[test]
    fn snapshots_print_every_counter() {
        let c = NetCounters::default();
        NetCounters::bump(&c.tcp_retransmits);
        NetCounters::bump(&c.tx_frames);
        NetCounters::bump(&c.tx_frames);
        NetCounters::bump(&c.tx_in_place);
        NetCounters::bump(&c.tx_short_copied);
        NetCounters::bump(&c.tx_segmented);
        assert_eq!(
            c.snapshot().to_string(),
            "tx_frames=2 tcp_retransmits=1 tcp_keepalives=0 tx_deferred=0 tx_backlog_full=0 rx_frames=0 rx_errors=0 tx_in_place=1 tx_short_copied=1 tx_segmented=1"
        );
    }
}
