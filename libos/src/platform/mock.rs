//! [`MockPlatform`]: a [`Platform`](super::Platform) for host tests.
//!
//! User memory is a page table of 4 KiB pages with x86-64 permissions
//! (any permission makes a page readable, only `write` makes it writable;
//! anything else is `EFAULT`), backed lazily by `Vec`s and limited to a
//! frame budget (`ENOMEM` past it). The clocks are settable counters,
//! console output is captured, randomness is ChaCha20 with a fixed seed,
//! and waiting polls (see the [`Blocker`] impl).
//!
//! By default a user copy that meets a missing page fails. A test that
//! installs a fault handler ([`MockPlatform::set_fault_handler`], usually
//! [`crate::mm::handle_page_fault`] for its process) gets the kernel's
//! behaviour: the copy asks the handler for the page, with no lock of the
//! mock held, and retries — while the `*_nofault` copies never ask.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use spin::Mutex;

use super::{AddressSpace, Blocker, Clock, CurrentThread, MemoryStats, PageFrames};
use crate::elf::{PAGE_SIZE, Perms};
use crate::error::{Errno, Result};
use crate::fs::ConsoleSink;
use crate::mm::FaultAccess;
use crate::random::{ChaChaCsprng, Csprng};
use crate::user::UserMemory;

/// The bytes of a page; shared between a mapping and [`PageFrames`]
/// frames (`map_frame`).
type MockBytes = Arc<Mutex<Box<[u8]>>>;

/// One mapped page; `bytes` is `None` while the page is all zero.
#[derive(Debug, Clone)]
struct MockPage {
    perms: Perms,
    bytes: Option<MockBytes>,
}

fn zero_bytes() -> MockBytes {
    Arc::new(Mutex::new(
        alloc::vec![0u8; PAGE_SIZE as usize].into_boxed_slice(),
    ))
}

/// What a user copy calls for a page it cannot access (see
/// [`MockPlatform::set_fault_handler`]).
pub type FaultHandler = Arc<dyn Fn(u64, FaultAccess) -> Result<()> + Send + Sync>;

/// The installed [`FaultHandler`], if any.
#[derive(Default)]
struct FaultHook(Option<FaultHandler>);

impl core::fmt::Debug for FaultHook {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(if self.0.is_some() {
            "FaultHook(set)"
        } else {
            "FaultHook(none)"
        })
    }
}

/// Default frame budget: 64 Ki pages (256 MiB).
const DEFAULT_FRAME_LIMIT: usize = 1 << 16;

/// A fake machine for tests.
#[derive(Debug)]
pub struct MockPlatform {
    pages: Mutex<BTreeMap<u64, MockPage>>,
    /// [`PageFrames`] frames by number, each held by its owner's reference
    /// (mappings hold the bytes themselves).
    frames: Mutex<BTreeMap<u64, MockBytes>>,
    next_frame: AtomicU64,
    frame_limit: AtomicU64,
    console: Mutex<Vec<u8>>,
    monotonic_ns: AtomicU64,
    realtime_ns: AtomicU64,
    cpu_ns: AtomicU64,
    rng: ChaChaCsprng,
    block_spins: AtomicU64,
    interrupt_after_ns: AtomicU64,
    tid: AtomicU32,
    cpus: AtomicU32,
    fault_hook: Mutex<FaultHook>,
    faults_handled: AtomicU64,
}

impl Default for MockPlatform {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
std::thread_local! {
    static THREAD_TID: core::cell::Cell<Option<u32>> = const { core::cell::Cell::new(None) };
}

fn page_range(start: u64, len: u64) -> core::ops::Range<u64> {
    let first = start & !(PAGE_SIZE - 1);
    let end = start.saturating_add(len).saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
    first..end
}

impl MockPlatform {
    /// No memory mapped; realtime 2026-01-01T00:00:00Z, monotonic 1 s.
    pub fn new() -> Self {
        Self {
            pages: Mutex::new(BTreeMap::new()),
            frames: Mutex::new(BTreeMap::new()),
            next_frame: AtomicU64::new(0x10_0000),
            frame_limit: AtomicU64::new(DEFAULT_FRAME_LIMIT as u64),
            console: Mutex::new(Vec::new()),
            monotonic_ns: AtomicU64::new(1_000_000_000),
            realtime_ns: AtomicU64::new(1_767_225_600 * 1_000_000_000),
            cpu_ns: AtomicU64::new(0),
            rng: ChaChaCsprng::from_seed([42; 32]),
            block_spins: AtomicU64::new(100_000),
            interrupt_after_ns: AtomicU64::new(u64::MAX),
            tid: AtomicU32::new(1),
            cpus: AtomicU32::new(1),
            fault_hook: Mutex::new(FaultHook(None)),
            faults_handled: AtomicU64::new(0),
        }
    }

    /// Maps the pages covering `addr .. addr + len` zeroed and read-write
    /// (outside any `crate::mm::Vm` bookkeeping) and returns `addr`.
    ///
    /// # Panics
    /// If the frame budget is exhausted (a test setup error).
    pub fn map(&self, addr: u64, len: usize) -> u64 {
        let r = page_range(addr, len as u64);
        let rw = Perms {
            read: true,
            write: true,
            execute: false,
        };
        self.map_zeroed(r.start, r.end - r.start, rw)
            .expect("mock frame budget exhausted");
        addr
    }

    /// Makes [`UserMemory::read_user`] and [`UserMemory::write_user`]
    /// (and the compare-exchange) call `handler` for the first page they
    /// cannot access, with no lock of the mock held, and retry if it
    /// succeeds — as the kernel's copies call the LibOS's fault path. The
    /// `*_nofault` copies never call it.
    pub fn set_fault_handler(&self, handler: FaultHandler) {
        self.fault_hook.lock().0 = Some(handler);
    }

    /// How many times a copy called the fault handler and it succeeded.
    pub fn faults_handled(&self) -> u64 {
        self.faults_handled.load(Ordering::Relaxed)
    }

    /// The first page of `addr .. addr + len` that is not mapped with an
    /// access `allowed` accepts (the start, if the range overflows).
    fn first_bad_page(&self, addr: u64, len: usize, allowed: impl Fn(&Perms) -> bool) -> u64 {
        let Some(end) = addr.checked_add(len as u64) else {
            return addr;
        };
        let pages = self.pages.lock();
        let mut page = addr & !(PAGE_SIZE - 1);
        while page < end {
            if !pages.get(&page).is_some_and(|p| allowed(&p.perms)) {
                return page.max(addr);
            }
            page += PAGE_SIZE;
        }
        addr
    }

    /// Runs a copy of `addr .. addr + len`; while it fails and a fault
    /// handler is installed, resolves the first page it cannot access
    /// through the handler and retries (`EFAULT` when the handler fails,
    /// or a page stays inaccessible after it succeeded).
    fn with_faults(
        &self,
        addr: u64,
        len: usize,
        access: FaultAccess,
        mut copy: impl FnMut() -> Result<()>,
    ) -> Result<()> {
        let allowed = |p: &Perms| match access {
            FaultAccess::Write => p.write,
            _ => readable(p),
        };
        let mut last = None;
        loop {
            let err = match copy() {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let handler = self.fault_hook.lock().0.clone();
            let Some(handler) = handler else {
                return Err(err);
            };
            let at = self.first_bad_page(addr, len, allowed);
            let page = at & !(PAGE_SIZE - 1);
            if last == Some(page) {
                return Err(err);
            }
            handler(at, access)?;
            self.faults_handled.fetch_add(1, Ordering::Relaxed);
            last = Some(page);
        }
    }

    /// Copies page by page while each page allows the access; the bytes
    /// done before the first that does not.
    fn copy_nofault(
        &self,
        addr: u64,
        len: usize,
        mut piece: impl FnMut(u64, usize, usize) -> Result<()>,
    ) -> usize {
        let mut done = 0usize;
        while done < len {
            let Some(at) = addr.checked_add(done as u64) else {
                break;
            };
            let n = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(len - done);
            if piece(at, done, n).is_err() {
                break;
            }
            done += n;
        }
        done
    }

    /// Limits how many pages may be mapped at once (default 65536).
    pub fn set_frame_limit(&self, pages: u64) {
        self.frame_limit.store(pages, Ordering::Relaxed);
    }

    /// How many pages are mapped.
    pub fn mapped_pages(&self) -> usize {
        self.pages.lock().len()
    }

    /// The permissions of the page holding `addr`, if mapped.
    pub fn page_perms(&self, addr: u64) -> Option<Perms> {
        self.pages
            .lock()
            .get(&(addr & !(PAGE_SIZE - 1)))
            .map(|p| p.perms)
    }

    /// Reads mapped memory regardless of protection (for test checks).
    pub fn peek(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        self.copy(
            addr,
            buf.len(),
            |_| true,
            |page, off, i, n| match &page.bytes {
                Some(b) => buf[i..i + n].copy_from_slice(&b.lock()[off..off + n]),
                None => buf[i..i + n].fill(0),
            },
        )
    }

    /// [`PageFrames`] frames whose owner has not released them.
    pub fn owned_frames(&self) -> usize {
        self.frames.lock().len()
    }

    /// How many times a wait without a deadline re-checks before failing
    /// with `EDEADLK` (default 100 000, yielding to other threads between).
    pub fn set_block_spins(&self, spins: u64) {
        self.block_spins.store(spins, Ordering::Relaxed);
    }

    /// Makes the next wait that would pass `ns` nanoseconds from its
    /// start end with `EINTR` after that long instead (a signal arriving).
    pub fn interrupt_next_wait_after(&self, ns: u64) {
        self.interrupt_after_ns.store(ns, Ordering::Relaxed);
    }

    /// Sets how many CPUs [`CurrentThread::cpu_count`] reports (1 by
    /// default; the caller then runs on the last).
    pub fn set_cpus(&self, cpus: u32) {
        self.cpus.store(cpus, Ordering::Relaxed);
    }

    /// Sets the thread id [`CurrentThread::current_tid`] reports: for the
    /// calling test thread only under `cfg(test)`, else for everyone.
    pub fn set_current_tid(&self, tid: u32) {
        #[cfg(test)]
        THREAD_TID.with(|t| t.set(Some(tid)));
        #[cfg(not(test))]
        self.tid.store(tid, Ordering::Relaxed);
    }

    /// Advances both clocks by `ns`.
    pub fn advance_ns(&self, ns: u64) {
        self.monotonic_ns.fetch_add(ns, Ordering::Relaxed);
        self.realtime_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Advances the CPU-time clocks (the program ran for `ns`); the
    /// monotonic clock moves with them, as time passes while it runs.
    pub fn advance_cpu_ns(&self, ns: u64) {
        self.cpu_ns.fetch_add(ns, Ordering::Relaxed);
        self.advance_ns(ns);
    }

    /// Everything written to the console so far.
    pub fn console_output(&self) -> Vec<u8> {
        self.console.lock().clone()
    }

    /// Walks `addr .. addr + len` page by page: every page must be mapped
    /// and pass `allowed` (else `EFAULT`, nothing copied), then `each` is
    /// called with the page, the offset in it, the offset in the buffer
    /// and the byte count.
    fn copy(
        &self,
        addr: u64,
        len: usize,
        allowed: impl Fn(&Perms) -> bool,
        mut each: impl FnMut(&mut MockPage, usize, usize, usize),
    ) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let mut pages = self.pages.lock();
        let mut page = addr & !(PAGE_SIZE - 1);
        while page < end {
            match pages.get(&page) {
                Some(p) if allowed(&p.perms) => {}
                _ => return Err(Errno::EFAULT.into()),
            }
            page += PAGE_SIZE;
        }
        let mut cur = addr;
        while cur < end {
            let base = cur & !(PAGE_SIZE - 1);
            let off = (cur - base) as usize;
            let n = ((PAGE_SIZE as usize) - off).min((end - cur) as usize);
            let p = pages.get_mut(&base).ok_or(Errno::EFAULT)?;
            each(p, off, (cur - addr) as usize, n);
            cur += n as u64;
        }
        Ok(())
    }
}

fn page_bytes(page: &mut MockPage) -> spin::MutexGuard<'_, Box<[u8]>> {
    page.bytes.get_or_insert_with(zero_bytes).lock()
}

fn readable(p: &Perms) -> bool {
    p.read || p.write || p.execute
}

impl MockPlatform {
    /// One attempt at [`UserMemory::read_user`] (no fault handling).
    fn read_once(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let len = buf.len();
        self.copy(addr, len, readable, |page, off, i, n| match &page.bytes {
            Some(b) => buf[i..i + n].copy_from_slice(&b.lock()[off..off + n]),
            None => buf[i..i + n].fill(0),
        })
    }

    /// One attempt at [`UserMemory::write_user`] (no fault handling).
    fn write_once(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.copy(
            addr,
            data.len(),
            |p| p.write,
            |page, off, i, n| {
                page_bytes(page)[off..off + n].copy_from_slice(&data[i..i + n]);
            },
        )
    }
}

impl UserMemory for MockPlatform {
    fn read_user(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let len = buf.len();
        self.with_faults(addr, len, FaultAccess::Read, || self.read_once(addr, buf))
    }

    fn write_user(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.with_faults(addr, data.len(), FaultAccess::Write, || {
            self.write_once(addr, data)
        })
    }

    fn cmpxchg_u32(&self, addr: u64, old: u32, new: u32) -> Result<u32> {
        let mut held = 0;
        self.with_faults(addr, 4, FaultAccess::Write, || {
            let mut b = [0u8; 4];
            // Both checks first, so a read-only word is not half done.
            self.copy(addr, 4, |p| p.write, |_, _, _, _| {})?;
            self.read_once(addr, &mut b)?;
            held = u32::from_le_bytes(b);
            if held == old {
                self.write_once(addr, &new.to_le_bytes())?;
            }
            Ok(())
        })?;
        Ok(held)
    }

    fn read_user_nofault(&self, addr: u64, buf: &mut [u8]) -> usize {
        let len = buf.len();
        self.copy_nofault(addr, len, |at, i, n| self.read_once(at, &mut buf[i..i + n]))
    }

    fn write_user_nofault(&self, addr: u64, data: &[u8]) -> usize {
        self.copy_nofault(addr, data.len(), |at, i, n| {
            self.write_once(at, &data[i..i + n])
        })
    }
}

impl AddressSpace for MockPlatform {
    fn map_zeroed(&self, start: u64, len: u64, perms: Perms) -> Result<()> {
        let r = page_range(start, len);
        let mut pages = self.pages.lock();
        let replaced = pages.range(r.clone()).count() as u64;
        let wanted = (r.end - r.start) / PAGE_SIZE;
        let limit = self.frame_limit.load(Ordering::Relaxed);
        if (pages.len() as u64 - replaced).saturating_add(wanted) > limit {
            return Err(Errno::ENOMEM.into());
        }
        for page in r.step_by(PAGE_SIZE as usize) {
            pages.insert(page, MockPage { perms, bytes: None });
        }
        Ok(())
    }

    fn protect(&self, start: u64, len: u64, perms: Perms) -> Result<()> {
        for (_, page) in self.pages.lock().range_mut(page_range(start, len)) {
            page.perms = perms;
        }
        Ok(())
    }

    fn unmap(&self, start: u64, len: u64) {
        let r = page_range(start, len);
        let mut pages = self.pages.lock();
        let doomed: Vec<u64> = pages.range(r).map(|(&a, _)| a).collect();
        for a in doomed {
            pages.remove(&a);
        }
    }

    fn move_pages(&self, from: u64, to: u64, len: u64) -> Result<()> {
        let r = page_range(from, len);
        let mut pages = self.pages.lock();
        let moving: Vec<u64> = pages.range(r.clone()).map(|(&a, _)| a).collect();
        for a in moving {
            if let Some(page) = pages.remove(&a) {
                pages.insert(a - r.start + to, page);
            }
        }
        Ok(())
    }

    fn fill(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.copy(
            addr,
            data.len(),
            |_| true,
            |page, off, i, n| {
                page_bytes(page)[off..off + n].copy_from_slice(&data[i..i + n]);
            },
        )
    }
}

/// Frames are `Arc`ed byte buffers: a mapping holds the buffer itself, so
/// it outlives the owner's release as a kernel frame outlives it.
impl PageFrames for MockPlatform {
    fn frame_alloc(&self) -> Result<u64> {
        let frame = self.next_frame.fetch_add(PAGE_SIZE, Ordering::Relaxed);
        self.frames.lock().insert(frame, zero_bytes());
        Ok(frame)
    }

    fn frame_release(&self, frame: u64) {
        self.frames.lock().remove(&frame);
    }

    fn frame_read(&self, frame: u64, offset: usize, buf: &mut [u8]) {
        let frames = self.frames.lock();
        let bytes = frames.get(&frame).expect("read of a released mock frame");
        buf.copy_from_slice(&bytes.lock()[offset..offset + buf.len()]);
    }

    fn frame_write(&self, frame: u64, offset: usize, data: &[u8]) {
        let frames = self.frames.lock();
        let bytes = frames.get(&frame).expect("write to a released mock frame");
        bytes.lock()[offset..offset + data.len()].copy_from_slice(data);
    }

    fn map_frame(&self, vaddr: u64, frame: u64, perms: Perms) -> Result<()> {
        let bytes = self
            .frames
            .lock()
            .get(&frame)
            .cloned()
            .ok_or(Errno::EFAULT)?;
        self.pages.lock().insert(
            vaddr & !(PAGE_SIZE - 1),
            MockPage {
                perms,
                bytes: Some(bytes),
            },
        );
        Ok(())
    }

    fn map_frame_private(&self, vaddr: u64, frame: u64, perms: Perms) -> Result<()> {
        // A copy at once: the mock has no copy-on-write, and a private
        // page must not reach the file.
        let copy = self
            .frames
            .lock()
            .get(&frame)
            .map(|b| b.lock().clone())
            .ok_or(Errno::EFAULT)?;
        self.pages.lock().insert(
            vaddr & !(PAGE_SIZE - 1),
            MockPage {
                perms,
                bytes: Some(Arc::new(Mutex::new(copy))),
            },
        );
        Ok(())
    }
}

impl CurrentThread for MockPlatform {
    fn current_tid(&self) -> u32 {
        #[cfg(test)]
        if let Some(tid) = THREAD_TID.with(core::cell::Cell::get) {
            return tid;
        }
        self.tid.load(Ordering::Relaxed)
    }

    /// The last CPU, so tests see a value other than the default.
    fn current_cpu(&self) -> u32 {
        self.cpus.load(Ordering::Relaxed).saturating_sub(1)
    }

    fn cpu_count(&self) -> u32 {
        self.cpus.load(Ordering::Relaxed)
    }
}

/// 1 GiB total; free is the total less the mapped pages, and no more
/// than the frame budget leaves.
impl MemoryStats for MockPlatform {
    fn memory_bytes(&self) -> (u64, u64) {
        let total = 1u64 << 30;
        let used = self.pages.lock().len() as u64 * PAGE_SIZE;
        let budget = self
            .frame_limit
            .load(Ordering::Relaxed)
            .saturating_mul(PAGE_SIZE);
        (total, total.min(budget).saturating_sub(used))
    }

    /// The frame budget (at most the total).
    fn program_memory_bytes(&self) -> u64 {
        let budget = self
            .frame_limit
            .load(Ordering::Relaxed)
            .saturating_mul(PAGE_SIZE);
        budget.min(1 << 30)
    }
}

impl Clock for MockPlatform {
    fn monotonic_ns(&self) -> u64 {
        self.monotonic_ns.load(Ordering::Relaxed)
    }
    fn realtime_ns(&self) -> u64 {
        self.realtime_ns.load(Ordering::Relaxed)
    }
    /// One thread's worth: the mock does not tell threads apart.
    fn thread_cpu_ns(&self) -> u64 {
        self.cpu_ns.load(Ordering::Relaxed)
    }
    fn process_cpu_ns(&self) -> u64 {
        self.cpu_ns.load(Ordering::Relaxed)
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
        let interrupt = self.interrupt_after_ns.swap(u64::MAX, Ordering::Relaxed);
        if interrupt != u64::MAX && !ready() {
            let start = self.monotonic_ns();
            if deadline_ns.is_none_or(|d| d > start.saturating_add(interrupt)) {
                self.advance_ns(interrupt);
                return Err(Errno::EINTR.into());
            }
        }
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
