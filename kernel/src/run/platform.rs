//! [`KernelPlatform`]: the LibOS's `Platform` on real hardware — user copies
//! with exception fix-up, the TSC and RTC clocks, the COM2 console, the
//! RDSEED/RDRAND-seeded CSPRNG and the scheduler's blocking.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

use libos::elf::Perms;
use libos::error::{Errno, Result};
use libos::fs::ConsoleSink;
use libos::mm::FaultAccess;
use libos::platform::{
    AddressSpace, Blocker, Clock, CurrentThread, MemoryStats, PageFrames, UserMemory,
};
use libos::random::{ChaChaCsprng, Csprng};
use libos::vdso::{Vdso, VdsoData};

use crate::arch::uaccess::{self, BadUserAddress};
use crate::mm::user::{self, UserMapError};

/// The machine as the LibOS sees it.
pub struct KernelPlatform {
    rng: ChaChaCsprng,
    /// The wall clock and the clock data the vDSO answers from.
    clock: spin::Mutex<WallClock>,
    /// The vDSO, once the file system exists to hold it.
    vdso: spin::Once<Arc<Vdso>>,
}

/// The wall clock: a line over the monotonic clock ([`VdsoData`]'s
/// realtime part), from the CMOS clock or kept to the host's.
struct WallClock {
    /// Kept to the host's, when the host gives the time.
    host: Option<super::host_time::HostClock>,
    /// What the kernel and the vDSO compute both clocks from.
    data: VdsoData,
    /// The latest realtime a system call returned: while the vDSO does not
    /// answer for realtime, the line may step back (no program saw it),
    /// but the answers never do.
    handed_out: u64,
}

impl core::fmt::Debug for KernelPlatform {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KernelPlatform")
            .field("clock", &self.clock.lock().data)
            .finish_non_exhaustive()
    }
}

impl KernelPlatform {
    /// Seeds the CSPRNG and reads the wall clock: from the host when
    /// `host_time` (the runner answers, see `host_time.rs`), else from the
    /// CMOS clock (whole seconds).
    pub fn new(host_time: bool) -> Self {
        let seed = super::entropy::seed();
        let host = if host_time {
            match super::host_time::HostClock::start() {
                Some((clock, rtt)) => {
                    log::info!("wall clock from the host (round trip {rtt} ns)");
                    Some(clock)
                }
                None => {
                    log::warn!("the host did not give the time: using the CMOS clock");
                    None
                }
            }
        } else {
            None
        };
        let now = crate::time::now_ns();
        let (tsc_base, ns_per_cycle_fp32) = crate::time::tsc_scale();
        // The TSC is read in user mode only on the native platform: a CVM's
        // host may intercept RDTSC (SEV-SNP without Secure TSC), and the
        // vDSO would then fault there.
        let tsc_ok = ns_per_cycle_fp32 != 0
            && crate::platform::platform().kind() == crate::platform::PlatformKind::Native;
        let blank = VdsoData {
            monotonic_enabled: tsc_ok,
            realtime_enabled: tsc_ok && host.is_none(),
            tsc_base,
            ns_per_cycle_fp32,
            ..VdsoData::default()
        };
        let data = match host.as_ref().and_then(|h| h.line()) {
            Some((at, real, rate)) => blank.rebased(at, real, rate, now),
            None => {
                let base = match crate::arch::rtc::unix_seconds() {
                    Some(s) => (s * 1_000_000_000).saturating_sub(now),
                    None => {
                        log::warn!("the RTC reads nonsense: the wall clock starts at the epoch");
                        0
                    }
                };
                blank.rebased(0, base, 1 << 32, now)
            }
        };
        Self {
            rng: ChaChaCsprng::from_seed(seed),
            clock: spin::Mutex::new(WallClock {
                host,
                data,
                handed_out: 0,
            }),
            vdso: spin::Once::new(),
        }
    }

    /// From an idle CPU: resyncs the wall clock if one is due while the
    /// vDSO answers realtime reads (programs then never enter the kernel
    /// to read it). Before that, only reads resync: one made at the read
    /// is more exact than an idle one extrapolated over an unmeasured rate.
    pub fn keep_clock(&self) {
        if self.clock.lock().data.realtime_enabled {
            let _ = self.realtime_ns();
        }
    }

    /// Puts the vDSO in `vfs` (once) with the current clock data; `None`
    /// if the file system has no room for its two pages.
    pub fn vdso(&self, vfs: &libos::fs::Vfs) -> Option<Arc<Vdso>> {
        if let Some(v) = self.vdso.get() {
            return Some(v.clone());
        }
        let vdso = match Vdso::new(vfs) {
            Ok(v) => Arc::new(v),
            Err(e) => {
                log::warn!("no vDSO ({e}): clock reads are system calls");
                return None;
            }
        };
        let clock = self.clock.lock();
        vdso.publish(&clock.data);
        Some(self.vdso.call_once(|| vdso).clone())
    }
}

/// Runs a user copy; when it stops at a page the LibOS can still populate
/// (the stack below its initial pages, a reservation made accessible),
/// populates it and retries. Each retry gets at least one page further. A
/// valid page no memory can back is the OOM kill.
fn with_fault_retry(
    access: FaultAccess,
    mut copy: impl FnMut() -> core::result::Result<(), BadUserAddress>,
) -> Result<()> {
    let mut last = None;
    loop {
        match copy() {
            Ok(()) => return Ok(()),
            Err(BadUserAddress(at)) => {
                let page = at & !(crate::mm::PAGE_BYTES - 1);
                if last == Some(page) {
                    return Err(Errno::EFAULT.into());
                }
                match super::user_copy_demand(at, access) {
                    user::Demand::Resolved => {}
                    user::Demand::NotLazy | user::Demand::BusError => {
                        return Err(Errno::EFAULT.into());
                    }
                    // As Linux's OOM killer would end the program whose
                    // system call needed the page: never a pretend EFAULT.
                    user::Demand::OutOfMemory => {
                        let tid = crate::task::current().map_or(1, |t| t.tid);
                        super::fault::out_of_memory(tid, at);
                        // The program is ending: the error is never seen.
                        return Err(Errno::EFAULT.into());
                    }
                }
                last = Some(page);
            }
        }
    }
}

/// The bytes a user copy of `len` bytes at `addr` moved before it stopped.
fn copied(addr: u64, len: usize, result: core::result::Result<(), BadUserAddress>) -> usize {
    match result {
        Ok(()) => len,
        Err(BadUserAddress(at)) => (at.saturating_sub(addr) as usize).min(len),
    }
}

impl UserMemory for KernelPlatform {
    fn read_user(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        with_fault_retry(FaultAccess::Read, || uaccess::copy_from_user(addr, buf))
    }

    fn write_user(&self, addr: u64, data: &[u8]) -> Result<()> {
        with_fault_retry(FaultAccess::Write, || uaccess::copy_to_user(addr, data))
    }

    // One copy without `with_fault_retry`: the trap handler still gives a
    // lazy page its frame and copies a copy-on-write page (page-table
    // locks only), but nothing asks the LibOS, whose fault path takes the
    // `vm` lock and a file's lock (see `libos::fs::direct`).
    fn read_user_nofault(&self, addr: u64, buf: &mut [u8]) -> usize {
        copied(addr, buf.len(), uaccess::copy_from_user(addr, buf))
    }

    fn write_user_nofault(&self, addr: u64, data: &[u8]) -> usize {
        copied(addr, data.len(), uaccess::copy_to_user(addr, data))
    }

    fn cmpxchg_u32(&self, addr: u64, old: u32, new: u32) -> Result<u32> {
        let mut held = 0;
        with_fault_retry(FaultAccess::Write, || {
            held = uaccess::cmpxchg_user_u32(addr, old, new)?;
            Ok(())
        })?;
        Ok(held)
    }
}

fn map_err(e: UserMapError) -> libos::error::Error {
    match e {
        UserMapError::OutOfMemory => Errno::ENOMEM.into(),
        UserMapError::NotMapped(_) | UserMapError::BadRange => Errno::EFAULT.into(),
    }
}

impl AddressSpace for KernelPlatform {
    fn map_zeroed(&self, start: u64, len: u64, perms: Perms) -> Result<()> {
        // Lazy: frames come on first touch (see `mm::user`).
        user::map_lazy(start, len, perms).map_err(map_err)
    }

    fn protect(&self, start: u64, len: u64, perms: Perms) -> Result<()> {
        user::protect(start, len, perms).map_err(map_err)
    }

    fn unmap(&self, start: u64, len: u64) {
        if let Err(e) = user::unmap(start, len) {
            log::error!("unmap {start:#x}+{len:#x}: {e:?}");
        }
    }

    fn move_pages(&self, from: u64, to: u64, len: u64) -> Result<()> {
        user::move_pages(from, to, len).map_err(map_err)
    }

    fn fill(&self, addr: u64, data: &[u8]) -> Result<()> {
        user::fill(addr, data).map_err(map_err)
    }
}

/// File pages that `MAP_SHARED` mappings map: user frames counted by
/// the copy-on-write table (`mm::user::frame_alloc` and friends).
impl PageFrames for KernelPlatform {
    fn frame_alloc(&self) -> Result<u64> {
        user::frame_alloc().ok_or_else(|| Errno::ENOMEM.into())
    }

    fn frame_release(&self, frame: u64) {
        user::frame_release(frame);
    }

    fn frame_read(&self, frame: u64, offset: usize, buf: &mut [u8]) {
        user::frame_read(frame, offset, buf);
    }

    // Straight between the frame (direct map) and the current address
    // space, which is the user memory every `mem` here copies to: one
    // copy, without the LibOS's fault path (as `write_user_nofault`).
    fn frame_to_user_nofault(
        &self,
        frame: u64,
        offset: usize,
        _mem: &dyn UserMemory,
        addr: u64,
        len: usize,
    ) -> usize {
        copied(addr, len, user::frame_to_user(frame, offset, addr, len))
    }

    fn frame_from_user_nofault(
        &self,
        frame: u64,
        offset: usize,
        _mem: &dyn UserMemory,
        addr: u64,
        len: usize,
    ) -> usize {
        copied(addr, len, user::frame_from_user(frame, offset, addr, len))
    }

    fn frame_write(&self, frame: u64, offset: usize, data: &[u8]) {
        user::frame_write(frame, offset, data);
    }

    fn map_frame(&self, vaddr: u64, frame: u64, perms: Perms) -> Result<()> {
        user::map_frame(vaddr, frame, perms).map_err(map_err)
    }

    fn map_frame_private(&self, vaddr: u64, frame: u64, perms: Perms) -> Result<()> {
        user::map_frame_private(vaddr, frame, perms).map_err(map_err)
    }
}

impl CurrentThread for KernelPlatform {
    fn current_tid(&self) -> u32 {
        crate::task::current().map_or(1, |t| t.tid)
    }

    fn current_cpu(&self) -> u32 {
        crate::arch::smp::cpu_index() as u32
    }

    fn cpu_count(&self) -> u32 {
        crate::arch::smp::thread_cpus() as u32
    }
}

impl MemoryStats for KernelPlatform {
    /// Free is what the program can still have: the kernel's reserve is
    /// not counted (`mm::frames::user_available_bytes`).
    fn memory_bytes(&self) -> (u64, u64) {
        let (total, _) = crate::mm::frames::memory_bytes();
        (total, crate::mm::frames::user_available_bytes())
    }

    /// What user pages and page tables hold plus what they can still have.
    fn program_memory_bytes(&self) -> u64 {
        crate::mm::frames::user_capacity_bytes()
    }
}

impl Clock for KernelPlatform {
    fn monotonic_ns(&self) -> u64 {
        crate::time::now_ns()
    }

    fn realtime_ns(&self) -> u64 {
        let mut clock = self.clock.lock();
        let line = clock
            .host
            .as_mut()
            .and_then(|h| h.resync_if_due(crate::time::now_ns()));
        // Read after the exchange: the new line's point lies inside it, and
        // a time taken before would fall before that point, where the line
        // gives its value at the point itself — ahead by as long as the
        // exchange took (milliseconds on a loaded host, which the vDSO then
        // kept: the clock ran up to 8 ms ahead of the host's in the clock
        // test while every exchange was good to 0.3 ms).
        let now = crate::time::now_ns();
        if let Some((at, real, rate)) = line {
            // Left to the vDSO between resyncs only once the kernel
            // clock's rate is measured: until then it may drift by a
            // percent, and each system call read resyncs when one is due.
            let enable = clock.data.monotonic_enabled
                && clock.host.as_ref().is_some_and(|h| h.rate_measured());
            clock.data = if clock.data.realtime_enabled {
                // Programs read this line: steer it, never back.
                clock.data.rebased(at, real, rate, now)
            } else {
                // Only system calls read it: take the host's line; the
                // answers stay monotonic through `handed_out`, and so
                // does the vDSO's line once it starts from there.
                let line = clock.data.on_line(at, real, rate);
                let from = line.realtime_ns(now).max(clock.handed_out);
                line.on_line(now, from, rate)
            };
            clock.data.realtime_enabled = enable;
            if let Some(vdso) = self.vdso.get() {
                vdso.publish(&clock.data);
            }
        }
        let t = clock.data.realtime_ns(now).max(clock.handed_out);
        clock.handed_out = t;
        t
    }

    fn thread_cpu_ns(&self) -> u64 {
        crate::task::current_cpu_ns()
    }

    fn process_cpu_ns(&self) -> u64 {
        crate::task::process_cpu_ns()
    }
}

impl ConsoleSink for KernelPlatform {
    fn write_console(&self, bytes: &[u8]) {
        crate::app_console::write(bytes);
    }

    fn write_console_err(&self, bytes: &[u8]) {
        crate::app_console::write_err(bytes);
    }

    fn read_console_input(&self, buf: &mut [u8]) -> usize {
        crate::app_console::read_input(buf)
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
        let mut interrupted = false;
        let mut check = || {
            super::poll_network();
            if ready() {
                return true;
            }
            // This thread has nothing to do: what it sent goes out now,
            // even if other threads keep the CPU busy (`net::doorbell`).
            crate::net::ring();
            super::poll_console_interrupt();
            interrupted = super::wait_interrupted();
            interrupted
        };
        let done = crate::task::block_until(&mut check, deadline_ns);
        if interrupted {
            return Err(Errno::EINTR.into());
        }
        Ok(done)
    }

    fn block_until_flag(&self, flag: &Arc<AtomicBool>, deadline_ns: Option<u64>) -> Result<bool> {
        let mut interrupted = false;
        let mut check = || {
            if flag.load(Ordering::Acquire) {
                return true;
            }
            // As in `block_until`: a thread that waits has nothing more
            // to send for now.
            crate::net::ring();
            super::poll_console_interrupt();
            interrupted = super::wait_interrupted();
            interrupted
        };
        let done = crate::task::block_on_flag(flag.clone(), &mut check, deadline_ns);
        if interrupted {
            return Err(Errno::EINTR.into());
        }
        Ok(done)
    }

    fn yield_now(&self) {
        crate::task::yield_now();
    }
}
