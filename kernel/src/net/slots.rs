//! The virtio-net driver's packet buffers in the shared DMA pool
//! ([`super::virtio`]): sets of fixed slots ([`Slots`]) with their free
//! lists ([`FreeList`]), and the arena its long frames are written in
//! ([`LongFrames`]).
//!
//! A frame to send longer than one MTU exists only with segmentation
//! offload (the device cuts it into segments, `libos::net::offload`). It
//! takes a range of [`ARENA_BYTES`] handed out in turn
//! ([`allocator::ring::RingArena`]): the device finishes sends in order,
//! so the ranges come back in order, and each frame takes its own length
//! — a 4 KiB reply as much as a 62 KiB run of a file — where a fixed slot
//! per frame would hold either few long frames or only short ones. Each
//! long frame in flight also holds one of [`LONG_FRAMES`] transmit slot
//! numbers (the virtqueue's descriptors are shared with the small slots:
//! a free number always has a free descriptor).

use allocator::ring::RingArena;
use virtio_drivers::{BufferDirection, Hal};

use super::hal::KernelHal;
use crate::mm::PAGE_BYTES;

/// Bytes of one small slot: a virtio-net header and a whole frame.
pub const SLOT_BYTES: usize = 2048;
/// Long frames in flight at once.
pub const LONG_FRAMES: usize = 32;
/// Bytes of the arena long frames are written in.
pub const ARENA_BYTES: usize = 512 * 1024;
/// The longest frame the device is given to cut: an IP packet below both
/// the 64 KiB of IPv4's length field and Linux's segmentation limit
/// (where a TAP device's frames are cut).
pub const LONG_FRAME: usize = 62 * 1024;
/// Room for the virtio-net header (10 or 12 bytes) before a long frame.
pub const HEADER_ROOM: usize = 16;
/// Where long frames start in the arena: a cache line.
const ARENA_ALIGN: usize = 64;
/// No slot.
pub const NO_SLOT: u16 = u16::MAX;

/// `count` buffer slots of `bytes` each in one run of the shared DMA pool.
#[derive(Debug)]
pub struct Slots {
    /// Physical address of slot 0 (what `dma_alloc` returned).
    paddr: u64,
    /// Address of slot 0 in the pool's shared window.
    vaddr: u64,
    count: usize,
    bytes: usize,
}

impl Slots {
    /// A set of slots from the pool; `None` if it is exhausted.
    pub fn new(count: usize, bytes: usize) -> Option<Self> {
        let (paddr, vaddr) = KernelHal::dma_alloc(Self::pages(count, bytes), BufferDirection::Both);
        (paddr != 0).then(|| Self {
            paddr,
            vaddr: vaddr.as_ptr() as u64,
            count,
            bytes,
        })
    }

    /// Pages of `count` slots of `bytes`.
    fn pages(count: usize, bytes: usize) -> usize {
        (count * bytes).div_ceil(PAGE_BYTES as usize)
    }

    /// Address of slot 0 in the pool's shared window.
    pub fn base(&self) -> u64 {
        self.vaddr
    }

    /// `len` bytes at `offset` in slot `i`.
    ///
    /// # Safety
    ///
    /// The caller must not hold another reference to those bytes, and
    /// must not use these while the device owns the slot (between the
    /// `*_begin` and `*_complete` calls that carry it).
    #[expect(clippy::mut_from_ref, reason = "slots are disjoint DMA memory")]
    pub unsafe fn bytes(&self, i: usize, offset: usize, len: usize) -> &mut [u8] {
        debug_assert!(i < self.count && offset + len <= self.bytes);
        // SAFETY: the run holds `count` slots of `bytes`, mapped
        // read-write in the pool's window and owned by this set until it
        // is dropped (with the device); exclusivity is the caller's
        // obligation.
        unsafe {
            core::slice::from_raw_parts_mut(
                (self.vaddr + (i * self.bytes + offset) as u64) as *mut u8,
                len,
            )
        }
    }

    /// Slot `i`, or its first `len` bytes.
    ///
    /// # Safety
    ///
    /// As [`Self::bytes`].
    #[expect(clippy::mut_from_ref, reason = "slots are disjoint DMA memory")]
    pub unsafe fn slot(&self, i: u16, len: usize) -> &mut [u8] {
        // SAFETY: the caller's obligations.
        unsafe { self.bytes(usize::from(i), 0, len) }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        let vaddr = core::ptr::NonNull::new(self.vaddr as *mut u8).expect("allocated");
        let pages = Self::pages(self.count, self.bytes);
        // SAFETY: what `dma_alloc` returned for these pages, freed once; a
        // set is dropped only with its device (or when the device never
        // came up), so the device holds none of its slots.
        unsafe { KernelHal::dma_dealloc(self.paddr, vaddr, pages) };
    }
}

/// Free transmit slot numbers of one kind.
#[derive(Debug)]
pub struct FreeList<const N: usize> {
    slots: [u16; N],
    count: usize,
}

impl<const N: usize> FreeList<N> {
    /// Slots `first..first + N`, all free.
    pub fn new(first: usize) -> Self {
        Self {
            slots: core::array::from_fn(|i| (first + i) as u16),
            count: N,
        }
    }

    /// Free slots.
    pub fn available(&self) -> usize {
        self.count
    }

    pub fn pop(&mut self) -> Option<u16> {
        self.count = self.count.checked_sub(1)?;
        Some(self.slots[self.count])
    }

    pub fn push(&mut self, slot: u16) {
        if let Some(free) = self.slots.get_mut(self.count) {
            *free = slot;
            self.count += 1;
        }
    }
}

/// Long frames to send: [`LONG_FRAMES`] slot numbers from `first`, their
/// bytes in one arena of [`ARENA_BYTES`].
#[derive(Debug)]
pub struct LongFrames {
    arena: Slots,
    ring: RingArena<LONG_FRAMES>,
    /// Where each slot number's frame starts in the arena (its header's
    /// room first), and the bytes it took.
    at: [(usize, usize); LONG_FRAMES],
    free: FreeList<LONG_FRAMES>,
    first: usize,
}

impl LongFrames {
    /// The arena, from the pool, for slot numbers from `first`; `None` if
    /// the pool has no room.
    pub fn new(first: usize) -> Option<Self> {
        Some(Self {
            arena: Slots::new(1, ARENA_BYTES)?,
            ring: RingArena::new(ARENA_BYTES, ARENA_ALIGN),
            at: [(0, 0); LONG_FRAMES],
            free: FreeList::new(first),
            first,
        })
    }

    /// Slot numbers free.
    pub fn free(&self) -> usize {
        self.free.available()
    }

    /// A slot number for a frame of `len` bytes (at most [`LONG_FRAME`])
    /// with room for its header; `None` if no number or no room is free
    /// now.
    pub fn take(&mut self, len: usize) -> Option<u16> {
        if len > LONG_FRAME {
            return None;
        }
        let slot = self.free.pop()?;
        let bytes = HEADER_ROOM + len;
        let Some(at) = self.ring.alloc(bytes) else {
            self.free.push(slot);
            return None;
        };
        self.at[usize::from(slot) - self.first] = (at, bytes);
        Some(slot)
    }

    /// Gives back slot number `slot` and its bytes.
    pub fn give_back(&mut self, slot: u16) {
        let Some(&(at, _)) = self.at.get(usize::from(slot).wrapping_sub(self.first)) else {
            return;
        };
        self.ring.free(at);
        self.free.push(slot);
    }

    /// The first `len` bytes of slot number `slot` (its header's room,
    /// then the frame).
    ///
    /// # Safety
    ///
    /// `slot` was taken and not given back, with room for `len`
    /// ([`Self::take`]'s `len` plus the header's room); as
    /// [`Slots::bytes`] otherwise.
    #[expect(clippy::mut_from_ref, reason = "ranges are disjoint DMA memory")]
    pub unsafe fn slot(&self, slot: u16, len: usize) -> &mut [u8] {
        let (at, bytes) = self.at[usize::from(slot) - self.first];
        debug_assert!(len <= bytes);
        // SAFETY: the range the ring handed out for this slot lies in the
        // arena (one slot of ARENA_BYTES); the rest is the caller's.
        unsafe { self.arena.bytes(0, at, len) }
    }
}
