//! Test helpers: a wall clock for TCP timers and an in-memory pair of
//! network cards whose frames cross to each other, either copying every
//! frame ([`device_pair`]) or lending their own buffers to send as the
//! virtio-net driver does natively ([`lending_pair`]: a frame to send is
//! written into the very buffer that crosses), each card counting which
//! way frames went ([`PairStats`]).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use spin::Mutex;

use super::device::NetDevice;
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

fn pair(limit: usize, lends: bool) -> (Arc<PairEnd>, Arc<PairEnd>) {
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
    fn transmit_with(&self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<()> {
        if !self.lends {
            return Err(Errno::EOPNOTSUPP.into());
        }
        if len > self.max_frame() {
            return Err(Errno::EMSGSIZE.into());
        }
        if !self.room() {
            return Err(Errno::EAGAIN.into());
        }
        // The buffer that crosses to the peer, written in place.
        let mut frame = vec![0; len];
        let addr = frame.as_ptr() as usize;
        self.stats.last_lent_addr.store(addr, Ordering::Relaxed);
        fill(&mut frame);
        self.tx.lock().push_back(frame);
        self.stats.tx_lent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
