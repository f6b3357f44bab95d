//! Test helpers: a wall clock for TCP timers and an in-memory pair of
//! network cards whose frames cross to each other, either copying every
//! frame ([`device_pair`]) or lending their own buffers to send as the
//! virtio-net driver does natively ([`lending_pair`]: a frame to send is
//! written into the very buffer that crosses), or finishing TCP checksums
//! and cutting long frames into segments as a TAP device's host does
//! ([`offloading_pair`], with the card model of [`card_finish`]), each
//! card counting which way frames went ([`PairStats`]).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use spin::Mutex;

use smoltcp::wire::{Ipv4Packet, TcpPacket, checksum};

use super::device::NetDevice;
use super::offload::{Offloads, TxOffload};
use crate::error::{Errno, Result};
use crate::platform::Clock;

/// Real time, so smoltcp's timers (delayed ACKs, retransmits) run.
#[derive(Debug)]
pub struct StdClock(std::time::Instant);

impl StdClock {
    /// A clock starting now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self(std::time::Instant::now()))
    }
}

impl Clock for StdClock {
    fn monotonic_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64 + 1_000_000_000
    }
    fn realtime_ns(&self) -> u64 {
        self.monotonic_ns()
    }
}

type Queue = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// What crossed one card, and how.
#[derive(Debug, Default)]
pub struct PairStats {
    /// Frames taken with `receive` (copied out).
    pub rx_copied: AtomicUsize,
    /// Frames sent with `transmit` (copied in).
    pub tx_copied: AtomicUsize,
    /// Frames written by `transmit_with`'s caller into the card's buffer.
    pub tx_lent: AtomicUsize,
    /// Address of the buffer last given to `transmit_with`'s `fill`.
    pub last_lent_addr: AtomicUsize,
    /// Calls of `flush`.
    pub flushes: AtomicUsize,
    /// Frames the card cut into segments.
    pub cut: AtomicUsize,
    /// Frames whose checksum the card completed (cut ones included).
    pub completed: AtomicUsize,
}

impl PairStats {
    /// `counter`'s value.
    pub fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Relaxed)
    }
}

/// One card of a pair.
#[derive(Debug)]
pub struct PairEnd {
    mac: [u8; 6],
    tx: Queue,
    rx: Queue,
    /// Frames each queue holds before `transmit` gives `EAGAIN`.
    limit: Arc<AtomicUsize>,
    /// Whether it lends its buffers.
    lends: bool,
    /// What it finishes for the sender.
    offloads: Offloads,
    /// What crossed it.
    pub stats: PairStats,
}

/// Two cards wired to each other that copy every frame; the second MAC
/// ends in 2.
pub fn device_pair(limit: usize) -> (Arc<PairEnd>, Arc<PairEnd>) {
    pair(limit, false)
}

/// Two cards wired to each other that lend their buffers.
pub fn lending_pair(limit: usize) -> (Arc<PairEnd>, Arc<PairEnd>) {
    pair(limit, true)
}

/// Frames the cards of [`offloading_pair`] cut into segments: up to this
/// many bytes.
pub const PAIR_TSO_FRAME: usize = 32 * 1024;

/// Two cards wired to each other that finish TCP checksums and cut TCP
/// frames of up to [`PAIR_TSO_FRAME`] bytes, lending their buffers or not.
pub fn offloading_pair(limit: usize, lends: bool) -> (Arc<PairEnd>, Arc<PairEnd>) {
    let offloads = Offloads {
        tcp_checksum: true,
        tso4_frame: Some(PAIR_TSO_FRAME),
    };
    pair_with(limit, lends, offloads)
}

fn pair(limit: usize, lends: bool) -> (Arc<PairEnd>, Arc<PairEnd>) {
    pair_with(limit, lends, Offloads::default())
}

fn pair_with(limit: usize, lends: bool, offloads: Offloads) -> (Arc<PairEnd>, Arc<PairEnd>) {
    let a: Queue = Arc::default();
    let b: Queue = Arc::default();
    let limit = Arc::new(AtomicUsize::new(limit));
    let end = |last, tx: &Queue, rx: &Queue| {
        Arc::new(PairEnd {
            mac: [0x52, 0x54, 0, 0x12, 0x34, last],
            tx: tx.clone(),
            rx: rx.clone(),
            limit: limit.clone(),
            lends,
            offloads,
            stats: PairStats::default(),
        })
    };
    (end(1, &a, &b), end(2, &b, &a))
}

impl PairEnd {
    /// Changes how many frames each queue of the pair holds.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Puts `frame` on this card's receive queue, as if it came in.
    pub fn inject(&self, frame: &[u8]) {
        self.rx.lock().push_back(frame.to_vec());
    }

    /// Takes every frame this card sent and its peer has not received.
    pub fn take_sent(&self) -> Vec<Vec<u8>> {
        self.tx.lock().drain(..).collect()
    }

    fn room(&self) -> bool {
        self.tx.lock().len() < self.limit.load(Ordering::Relaxed)
    }

    /// The longest frame it takes.
    fn max_len(&self) -> usize {
        self.offloads
            .tso4_frame
            .unwrap_or(1514)
            .max(self.max_frame())
    }

    /// Puts what the card sends for `frame` marked `off` on the wire.
    fn send(&self, frame: Vec<u8>, off: &TxOffload) {
        if off.checksum.is_some() {
            self.stats.completed.fetch_add(1, Ordering::Relaxed);
        }
        if off.segmentation.is_some() {
            self.stats.cut.fetch_add(1, Ordering::Relaxed);
        }
        self.tx.lock().extend(card_finish(frame, off));
    }
}

impl NetDevice for PairEnd {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn flush(&self) {
        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
    }
    fn max_frame(&self) -> usize {
        1514
    }
    fn transmit(&self, frame: &[u8]) -> Result<()> {
        let mut q = self.tx.lock();
        if q.len() >= self.limit.load(Ordering::Relaxed) {
            return Err(Errno::EAGAIN.into());
        }
        q.push_back(frame.to_vec());
        self.stats.tx_copied.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn receive(&self, buf: &mut [u8]) -> Result<Option<usize>> {
        let Some(frame) = self.rx.lock().pop_front() else {
            return Ok(None);
        };
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        self.stats.rx_copied.fetch_add(1, Ordering::Relaxed);
        Ok(Some(n))
    }
    fn offloads(&self) -> Offloads {
        self.offloads
    }
    fn transmit_offloaded(&self, frame: &[u8], off: TxOffload) -> Result<()> {
        if off == TxOffload::NONE {
            return self.transmit(frame);
        }
        if !self.offloads.tcp_checksum {
            return Err(Errno::EOPNOTSUPP.into());
        }
        if frame.len() > self.max_len() {
            return Err(Errno::EMSGSIZE.into());
        }
        if !self.room() {
            return Err(Errno::EAGAIN.into());
        }
        self.send(frame.to_vec(), &off);
        self.stats.tx_copied.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn transmit_with(
        &self,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> TxOffload,
    ) -> Result<()> {
        if !self.lends {
            return Err(Errno::EOPNOTSUPP.into());
        }
        if len > self.max_len() {
            return Err(Errno::EMSGSIZE.into());
        }
        if !self.room() {
            return Err(Errno::EAGAIN.into());
        }
        // The buffer that crosses to the peer, written in place.
        let mut frame = vec![0; len];
        let addr = frame.as_ptr() as usize;
        self.stats.last_lent_addr.store(addr, Ordering::Relaxed);
        let off = fill(&mut frame);
        self.send(frame, &off);
        self.stats.tx_lent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Bytes of an Ethernet header.
const ETHERNET_HEADER: usize = 14;

/// What the card does with the checksum of a frame marked `off`: the
/// ones' complement of the sum from `csum_start` to the end goes at
/// `csum_start + csum_offset` (virtio 1.2, §5.1.6.2).
pub fn complete_checksum(frame: &mut [u8], off: &TxOffload) {
    if let Some((start, offset)) = off.checksum {
        let (start, at) = (usize::from(start), usize::from(start + offset));
        let sum = !checksum::data(&frame[start..]);
        frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    }
}

/// What Linux does with a frame marked for segmentation
/// (`inet_gso_segment`, `tcp_gso_segment`): the payload cut into `mss`
/// pieces behind copies of the headers, each with its IP length, a
/// following IP ident and IP checksum, its sequence number, FIN and PSH
/// on the last only, and the TCP checksum field's pseudo-header sum moved
/// from the whole frame's TCP length to the segment's before the card
/// completes it.
pub fn cut_segments(frame: &[u8], off: &TxOffload) -> Vec<Vec<u8>> {
    let seg = off.segmentation.expect("marked for segmentation");
    let (start, _) = off.checksum.expect("segmentation needs the checksum");
    let (start, headers) = (usize::from(start), usize::from(seg.header_len));
    let whole = (frame.len() - start) as u16;
    let partial = TcpPacket::new_checked(&frame[start..])
        .expect("tcp")
        .checksum();
    let pieces: Vec<&[u8]> = frame[headers..].chunks(usize::from(seg.mss)).collect();
    let last = pieces.len() - 1;
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let mut s = frame[..headers].to_vec();
            s.extend_from_slice(piece);
            let len = s.len();
            let mut ip = Ipv4Packet::new_unchecked(&mut s[ETHERNET_HEADER..]);
            ip.set_total_len((len - ETHERNET_HEADER) as u16);
            ip.set_ident(ip.ident().wrapping_add(i as u16));
            ip.fill_checksum();
            let mut t = TcpPacket::new_unchecked(&mut s[start..]);
            t.set_seq_number(t.seq_number() + i * usize::from(seg.mss));
            if i != last {
                t.set_fin(false);
                t.set_psh(false);
            }
            t.set_checksum(checksum::combine(&[partial, !whole, (len - start) as u16]));
            let mut done = s;
            complete_checksum(
                &mut done,
                &TxOffload {
                    checksum: off.checksum,
                    segmentation: None,
                },
            );
            done
        })
        .collect()
}

/// What a card that offers [`Offloads`] sends for `frame` marked `off`:
/// the frame with its checksum completed, or the segments it is cut into.
pub fn card_finish(mut frame: Vec<u8>, off: &TxOffload) -> Vec<Vec<u8>> {
    if off.segmentation.is_some() {
        return cut_segments(&frame, off);
    }
    complete_checksum(&mut frame, off);
    vec![frame]
}
