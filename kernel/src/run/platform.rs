//! [`KernelPlatform`]: the LibOS's `Platform` on real hardware — user copies
//! with exception fix-up, the TSC and RTC clocks, the COM2 console, the
//! RDSEED/RDRAND-seeded CSPRNG and the scheduler's blocking.

use libos::error::{Errno, Result};
use libos::fs::ConsoleSink;
use libos::platform::{Blocker, Clock, UserMemory};
use libos::random::{ChaChaCsprng, Csprng};

use crate::arch::uaccess;

/// The machine as the LibOS sees it.
pub struct KernelPlatform {
    rng: ChaChaCsprng,
    /// Unix time (ns) at monotonic time 0.
    realtime_base_ns: u64,
}

impl core::fmt::Debug for KernelPlatform {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KernelPlatform")
            .field("realtime_base_ns", &self.realtime_base_ns)
            .finish_non_exhaustive()
    }
}

impl KernelPlatform {
    /// Seeds the CSPRNG and reads the wall clock.
    pub fn new() -> Self {
        let seed = super::entropy::seed();
        let now = crate::time::now_ns();
        let realtime_base_ns = match crate::arch::rtc::unix_seconds() {
            Some(s) => (s * 1_000_000_000).saturating_sub(now),
            None => {
                log::warn!("the RTC reads nonsense: the wall clock starts at the epoch");
                0
            }
        };
        Self {
            rng: ChaChaCsprng::from_seed(seed),
            realtime_base_ns,
        }
    }
}

impl UserMemory for KernelPlatform {
    fn read_user(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        uaccess::copy_from_user(addr, buf).map_err(|_| Errno::EFAULT.into())
    }

    fn write_user(&self, addr: u64, data: &[u8]) -> Result<()> {
        uaccess::copy_to_user(addr, data).map_err(|_| Errno::EFAULT.into())
    }
}

impl Clock for KernelPlatform {
    fn monotonic_ns(&self) -> u64 {
        crate::time::now_ns()
    }

    fn realtime_ns(&self) -> u64 {
        self.realtime_base_ns + crate::time::now_ns()
    }
}

impl ConsoleSink for KernelPlatform {
    fn write_console(&self, bytes: &[u8]) {
        crate::app_console::write(bytes);
    }
}

impl Csprng for KernelPlatform {
    fn fill_bytes(&self, buf: &mut [u8]) {
        self.rng.fill_bytes(buf);
    }
}

impl Blocker for KernelPlatform {
    fn block_until(
        &self,
        ready: &mut dyn FnMut() -> bool,
        deadline_ns: Option<u64>,
    ) -> Result<bool> {
        Ok(crate::task::block_until(ready, deadline_ns))
    }
}
