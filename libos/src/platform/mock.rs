//! [`MockPlatform`]: a [`Platform`](super::Platform) for host tests.
//!
//! User memory is a set of mapped regions backed by `Vec`s (anything else
//! is `EFAULT`), the clocks are settable counters, console output is
//! captured, and randomness is ChaCha20 with a fixed seed.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

use super::{Blocker, Clock};
use crate::error::{Errno, Result};
use crate::fs::ConsoleSink;
use crate::random::{ChaChaCsprng, Csprng};
use crate::user::UserMemory;

/// A fake machine for tests.
#[derive(Debug)]
pub struct MockPlatform {
    regions: Mutex<BTreeMap<u64, Vec<u8>>>,
    console: Mutex<Vec<u8>>,
    monotonic_ns: AtomicU64,
    realtime_ns: AtomicU64,
    rng: ChaChaCsprng,
    block_spins: AtomicU64,
}

impl Default for MockPlatform {
    fn default() -> Self {
        Self::new()
    }
}

impl MockPlatform {
    /// No memory mapped; realtime 2026-01-01T00:00:00Z, monotonic 1 s.
    pub fn new() -> Self {
        Self {
            regions: Mutex::new(BTreeMap::new()),
            console: Mutex::new(Vec::new()),
            monotonic_ns: AtomicU64::new(1_000_000_000),
            realtime_ns: AtomicU64::new(1_767_225_600 * 1_000_000_000),
            rng: ChaChaCsprng::from_seed([42; 32]),
            block_spins: AtomicU64::new(100_000),
        }
    }

    /// Maps `len` zeroed bytes at `addr` and returns `addr`.
    pub fn map(&self, addr: u64, len: usize) -> u64 {
        self.regions.lock().insert(addr, vec![0; len]);
        addr
    }

    /// How many times a wait without a deadline re-checks before failing
    /// with `EDEADLK` (default 100 000, yielding to other threads between).
    pub fn set_block_spins(&self, spins: u64) {
        self.block_spins.store(spins, Ordering::Relaxed);
    }

    /// Advances both clocks by `ns`.
    pub fn advance_ns(&self, ns: u64) {
        self.monotonic_ns.fetch_add(ns, Ordering::Relaxed);
        self.realtime_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Everything written to the console so far.
    pub fn console_output(&self) -> Vec<u8> {
        self.console.lock().clone()
    }

    fn with_range<R>(&self, addr: u64, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        let mut regions = self.regions.lock();
        let (&base, bytes) = regions
            .range_mut(..=addr)
            .next_back()
            .ok_or(Errno::EFAULT)?;
        let start = usize::try_from(addr - base).map_err(|_| Errno::EFAULT)?;
        let end = start.checked_add(len).ok_or(Errno::EFAULT)?;
        let slice = bytes.get_mut(start..end).ok_or(Errno::EFAULT)?;
        Ok(f(slice))
    }
}

impl UserMemory for MockPlatform {
    fn read_user(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.with_range(addr, buf.len(), |s| buf.copy_from_slice(s))
    }

    fn write_user(&self, addr: u64, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.with_range(addr, data.len(), |s| s.copy_from_slice(data))
    }
}

impl Clock for MockPlatform {
    fn monotonic_ns(&self) -> u64 {
        self.monotonic_ns.load(Ordering::Relaxed)
    }
    fn realtime_ns(&self) -> u64 {
        self.realtime_ns.load(Ordering::Relaxed)
    }
}

impl ConsoleSink for MockPlatform {
    fn write_console(&self, bytes: &[u8]) {
        self.console.lock().extend_from_slice(bytes);
    }
}

impl Csprng for MockPlatform {
    fn fill_bytes(&self, buf: &mut [u8]) {
        self.rng.fill_bytes(buf);
    }
}

/// Polls `ready`; a deadline is reached by moving the fake clock to it
/// (tests never wait in real time). Without a deadline it yields to other
/// (test) threads for a while and then fails with `EDEADLK` rather than
/// hang a test that would block forever.
impl Blocker for MockPlatform {
    fn block_until(
        &self,
        ready: &mut dyn FnMut() -> bool,
        deadline_ns: Option<u64>,
    ) -> Result<bool> {
        for _ in 0..=self.block_spins.load(Ordering::Relaxed) {
            if ready() {
                return Ok(true);
            }
            if let Some(deadline) = deadline_ns {
                let now = self.monotonic_ns();
                if now >= deadline {
                    return Ok(false);
                }
                self.advance_ns(deadline - now);
                continue;
            }
            #[cfg(test)]
            std::thread::yield_now();
            #[cfg(not(test))]
            core::hint::spin_loop();
        }
        Err(crate::error::Error::with_message(
            Errno::EDEADLK,
            "mock: would block forever",
        ))
    }
}
