//! The shared DMA pool: the only memory devices see.
//!
//! On a confidential VM the host (and so every emulated device) can read
//! and write only pages the guest has made shared; everything else is
//! private. So one fixed region is set aside at boot ([`init`]): contiguous
//! frames, made shared through the platform seam
//! ([`super::Platform::make_shared`]) and mapped in a window of its own
//! ([`DMA_WINDOW_BASE`]) with the platform's shared page-table mask
//! ([`super::PteMasks::shared`]). Every buffer a device reads or writes —
//! virtqueues, packet buffers, bounce copies of private buffers — is carved
//! from it ([`SharedPool::alloc`]); the bookkeeping is
//! [`allocator::dma::DmaArena`], host-tested. Natively (no encryption) the
//! same code runs with empty masks, so the path is exercised on every boot.
//!
//! The pool's frames stay mapped private in the direct map too; nothing
//! uses that alias (on SEV-SNP reading a shared page through it would give
//! ciphertext). Data the host may change is read with [`SharedPool::read`],
//! a copy into private memory, so a parser never looks at shared memory
//! twice (no double fetch).
//!
//! Size: `dma.pool=SIZE` on the command line (`2M`, `4096K`), default
//! [`DEFAULT_POOL_BYTES`]; the virtio-net driver needs about 530 KiB
//! (two queues of 128 descriptors, 2 × 128 packet slots of 2 KiB).

use alloc::vec::Vec;

use allocator::dma::{DmaArena, DmaError, bitmap_words};
use libos::boot::cmdline::{KernelArgs, parse_size};
use spin::Mutex;
use x86_64::instructions::interrupts::without_interrupts;

use super::{PlatformError, platform};
use crate::mm::{PAGE_BYTES, frames, paging};

/// The command-line key that sizes the pool.
pub const CMDLINE_KEY: &str = "dma.pool";
/// The pool's size without `dma.pool=`.
pub const DEFAULT_POOL_BYTES: u64 = 2 << 20;
/// The smallest pool accepted.
const MIN_POOL_BYTES: u64 = 256 << 10;
/// The largest pool accepted.
const MAX_POOL_BYTES: u64 = 64 << 20;
/// Where the pool is mapped (shared): between the kernel stacks and the
/// device-register window.
pub const DMA_WINDOW_BASE: u64 = 0xffff_c800_0000_0000;

/// A piece of the pool: what the device is given (`paddr`) and where the
/// kernel reaches it (`vaddr`, in the shared window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaBuf {
    /// Physical address, as the device sees it.
    pub paddr: u64,
    /// Virtual address in [`DMA_WINDOW_BASE`]'s window.
    pub vaddr: u64,
    /// Bytes asked for.
    pub bytes: usize,
}

/// Why the pool could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolInitError {
    /// `dma.pool=` is not a size in the accepted range.
    BadSize,
    /// No contiguous frames for it.
    OutOfMemory,
    /// The platform refused to share it.
    Share(PlatformError),
    /// Mapping the window failed.
    Map(paging::MapError),
}

/// The pool (see the module docs).
#[derive(Debug)]
pub struct SharedPool {
    paddr: u64,
    bytes: u64,
    arena: Mutex<DmaArena<'static>>,
}

static POOL: spin::Once<SharedPool> = spin::Once::new();

/// The pool size `args` asks for.
pub fn pool_bytes(args: &KernelArgs<'_>) -> Result<u64, PoolInitError> {
    let Some(value) = args.get(CMDLINE_KEY) else {
        return Ok(DEFAULT_POOL_BYTES);
    };
    parse_size(value)
        .filter(|b| (MIN_POOL_BYTES..=MAX_POOL_BYTES).contains(b) && b.is_multiple_of(PAGE_BYTES))
        .ok_or(PoolInitError::BadSize)
}

/// Sets the pool up (once; later calls return the first pool): `bytes` of
/// contiguous frames, shared with the host, mapped shared at
/// [`DMA_WINDOW_BASE`] and zeroed.
pub fn init(bytes: u64) -> Result<&'static SharedPool, PoolInitError> {
    if let Some(pool) = POOL.get() {
        return Ok(pool);
    }
    if !(MIN_POOL_BYTES..=MAX_POOL_BYTES).contains(&bytes) || !bytes.is_multiple_of(PAGE_BYTES) {
        return Err(PoolInitError::BadSize);
    }
    let pages = (bytes / PAGE_BYTES) as usize;
    let mut paddr = frames::alloc_contiguous(pages, 1).ok_or(PoolInitError::OutOfMemory)?;
    if paddr == 0 {
        // virtio-drivers takes physical address 0 for failure: keep this
        // run (once, never used) and take another.
        paddr = frames::alloc_contiguous(pages, 1).ok_or(PoolInitError::OutOfMemory)?;
    }
    platform()
        .make_shared(paddr, bytes)
        .map_err(PoolInitError::Share)?;
    for page in 0..bytes / PAGE_BYTES {
        let offset = page * PAGE_BYTES;
        paging::map_shared_page(DMA_WINDOW_BASE + offset, paddr + offset, paging::DATA)
            .map_err(PoolInitError::Map)?;
    }
    // SAFETY: the window was just mapped read-write over the pool's
    // `bytes`, which nothing else refers to; sharing lost their contents.
    unsafe { core::ptr::write_bytes(DMA_WINDOW_BASE as *mut u8, 0, bytes as usize) };
    let storage = Vec::leak(alloc::vec![0u64; 2 * bitmap_words(bytes as usize)]);
    let arena = DmaArena::new(bytes as usize, storage).map_err(|_| PoolInitError::OutOfMemory)?;
    Ok(POOL.call_once(|| SharedPool {
        paddr,
        bytes,
        arena: Mutex::new(arena),
    }))
}

/// The pool, once [`init`] set it up.
pub fn pool() -> Option<&'static SharedPool> {
    POOL.get()
}

impl SharedPool {
    /// Physical address of the pool's first byte.
    pub fn paddr(&self) -> u64 {
        self.paddr
    }

    /// The pool's size.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes handed out now and at most so far.
    pub fn usage(&self) -> (usize, usize) {
        without_interrupts(|| {
            let a = self.arena.lock();
            (a.used_bytes(), a.peak_bytes())
        })
    }

    /// `bytes` of the pool at a multiple of `align` (physically; the pool
    /// is page aligned), zeroed. Running out is [`DmaError::Exhausted`].
    pub fn alloc(&self, bytes: usize, align: usize) -> Result<DmaBuf, DmaError> {
        let offset = without_interrupts(|| self.arena.lock().alloc(bytes, align))?;
        let buf = DmaBuf {
            paddr: self.paddr + offset as u64,
            vaddr: DMA_WINDOW_BASE + offset as u64,
            bytes,
        };
        // SAFETY: the arena just handed out `[offset, offset + bytes)`, so
        // nothing else uses it; it lies in the mapped window.
        unsafe { core::ptr::write_bytes(buf.vaddr as *mut u8, 0, bytes) };
        Ok(buf)
    }

    /// Gives back `bytes` at `paddr`, as [`SharedPool::alloc`] returned
    /// them; a double free or a foreign address is refused.
    pub fn free(&self, paddr: u64, bytes: usize) -> Result<(), DmaError> {
        let offset = paddr
            .checked_sub(self.paddr)
            .filter(|&o| o < self.bytes)
            .ok_or(DmaError::NotAllocated)?;
        without_interrupts(|| self.arena.lock().free(offset as usize, bytes))
    }

    /// Whether `[paddr, paddr + len)` lies in the pool.
    pub fn contains(&self, paddr: u64, len: usize) -> bool {
        let end = paddr.checked_add(len as u64);
        paddr >= self.paddr && end.is_some_and(|e| e <= self.paddr + self.bytes)
    }

    /// The physical address of the window bytes `[vaddr, vaddr + len)`,
    /// if they lie in the pool.
    pub fn paddr_of(&self, vaddr: u64, len: usize) -> Option<u64> {
        let offset = vaddr.checked_sub(DMA_WINDOW_BASE)?;
        if offset >= self.bytes {
            return None;
        }
        let paddr = self.paddr + offset;
        self.contains(paddr, len).then_some(paddr)
    }

    /// The window address of pool address `paddr`.
    fn vaddr_of(&self, paddr: u64, len: usize) -> Option<u64> {
        self.contains(paddr, len)
            .then(|| DMA_WINDOW_BASE + (paddr - self.paddr))
    }

    /// Copies `src` into the pool at `paddr`; `false` (nothing copied) if
    /// that range is not in the pool.
    pub fn write(&self, paddr: u64, src: &[u8]) -> bool {
        let Some(vaddr) = self.vaddr_of(paddr, src.len()) else {
            return false;
        };
        // SAFETY: `[vaddr, vaddr + len)` is in the mapped window; pool
        // memory is never a Rust object of private code, so no reference
        // is aliased (the host may read it meanwhile, which is its purpose).
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), vaddr as *mut u8, src.len()) };
        true
    }

    /// Copies pool bytes at `paddr` into private memory `dst` (one fetch:
    /// parse the copy, not the pool); `false` if the range is not in the
    /// pool.
    pub fn read(&self, paddr: u64, dst: &mut [u8]) -> bool {
        let Some(vaddr) = self.vaddr_of(paddr, dst.len()) else {
            return false;
        };
        // SAFETY: as in `write`; `dst` is private memory we hold mutably.
        unsafe { core::ptr::copy_nonoverlapping(vaddr as *const u8, dst.as_mut_ptr(), dst.len()) };
        true
    }
}
