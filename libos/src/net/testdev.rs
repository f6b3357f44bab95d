//! Test helpers: a wall clock for TCP timers and an in-memory pair of
//! network cards whose frames cross to each other.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
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

/// One card of a pair.
#[derive(Debug)]
pub struct PairEnd {
    mac: [u8; 6],
    tx: Queue,
    rx: Queue,
    /// Frames each queue holds before `transmit` gives `EAGAIN`.
    limit: usize,
}

/// Two cards wired to each other; the second MAC ends in 2.
pub fn device_pair(limit: usize) -> (Arc<PairEnd>, Arc<PairEnd>) {
    let a: Queue = Arc::default();
    let b: Queue = Arc::default();
    let end = |last, tx: &Queue, rx: &Queue| {
        Arc::new(PairEnd {
            mac: [0x52, 0x54, 0, 0x12, 0x34, last],
            tx: tx.clone(),
            rx: rx.clone(),
            limit,
        })
    };
    (end(1, &a, &b), end(2, &b, &a))
}

impl NetDevice for PairEnd {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn max_frame(&self) -> usize {
        1514
    }
    fn transmit(&self, frame: &[u8]) -> Result<()> {
        let mut q = self.tx.lock();
        if q.len() >= self.limit {
            return Err(Errno::EAGAIN.into());
        }
        q.push_back(frame.to_vec());
        Ok(())
    }
    fn receive(&self, buf: &mut [u8]) -> Result<Option<usize>> {
        let Some(frame) = self.rx.lock().pop_front() else {
            return Ok(None);
        };
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok(Some(n))
    }
}
