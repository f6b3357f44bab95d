//! The application's half of the address space: page-granular mappings with
//! demand paging.
//!
//! The LibOS decides *what* is mapped (its `Vm` tracks areas); this module
//! keeps the page tables in step. Every user page-table entry is in one of
//! four states, told apart by the present bit and two software bits:
//!
//! | state            | P | `HAS_FRAME` | meaning                                    |
//! |------------------|---|-------------|--------------------------------------------|
//! | unmapped         | 0 | 0 (entry 0) | a fault is a real `SIGSEGV`                 |
//! | lazy             | 0 | 0           | reserved with permissions, no frame yet    |
//! | inaccessible     | 0 | 1           | has a frame, `PROT_NONE` for now            |
//! | present          | 1 | 1           | hardware-visible with the permissions      |
//!
//! One more software bit, `COW` ([`super::cow`]), marks an entry with a
//! frame a fork may share: it is never hardware-writable, and an allowed
//! write first gives it a frame of its own.
//!
//! The requested permissions live in the software bits `PERM_R/W/X` of
//! every non-zero entry, so `mprotect` of a lazy page and a later fault
//! both know what is allowed. A fault on a lazy page whose permissions allow
//! the access gets a zeroed frame ([`resolve_fault`]); this is what keeps a
//! 64 MiB `PROT_NONE` reservation (glibc's per-thread arenas) from costing
//! 64 MiB.
//!
//! All entries sit below [`USER_END`], in PML4 slots 0–255 of the address
//! space loaded now (`super::space`: one per process), which the
//! kernel's own mappings never use.

use spin::Mutex;
use x86_64::VirtAddr;
use x86_64::instructions::interrupts::without_interrupts;
use x86_64::instructions::tlb;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTable, PageTableFlags as F, PageTableIndex};

pub use super::paging::USER_END;
use libos::elf::Perms;
use libos::mm::FaultAccess;

use super::cow::{self, COW};
use super::{PAGE_BYTES, frames, phys_to_virt, pte};
use crate::arch::uaccess::{self, BadUserAddress};

/// Software bit: the page may be read.
const PERM_R: F = F::BIT_9;
/// Software bit: the page may be written.
const PERM_W: F = F::BIT_10;
/// Software bit: the page may be executed.
const PERM_X: F = F::BIT_11;
/// Software bit: the entry holds a frame (present or not).
pub(super) const HAS_FRAME: F = F::BIT_52;
/// Software bit on every user leaf entry this module writes, so that even a
/// `PROT_NONE` reservation without a frame is non-zero (zero = unmapped).
const MANAGED: F = F::BIT_53;
/// Flags of the tables leading to user pages (the leaf decides the rights).
const USER_TABLE: F = F::PRESENT.union(F::WRITABLE).union(F::USER_ACCESSIBLE);

/// Whether `p` allows any access (else it is `PROT_NONE`).
fn any(p: Perms) -> bool {
    p.read || p.write || p.execute
}

/// The software permission bits recording `p` in an entry.
fn software_bits(p: Perms) -> F {
    let mut f = F::empty();
    if any(p) {
        // x86 cannot express write-only or execute-only: both imply read,
        // as on Linux.
        f |= PERM_R;
    }
    if p.write {
        f |= PERM_W;
    }
    if p.execute {
        f |= PERM_X;
    }
    f
}

/// The permissions an entry's software bits record.
fn perms_of(f: F) -> Perms {
    Perms {
        read: f.contains(PERM_R),
        write: f.contains(PERM_W),
        execute: f.contains(PERM_X),
    }
}

/// Why a user mapping operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserMapError {
    /// No frame for a page or a page table.
    OutOfMemory,
    /// The address is not a mapped user page (for [`fill`]).
    NotMapped(u64),
    /// The range leaves user space or is not page aligned.
    BadRange,
}

/// Serialises page-table edits (of every address space).
static LOCK: Mutex<()> = Mutex::new(());

pub(super) fn table_at(paddr: u64) -> &'static mut PageTable {
    // SAFETY: `paddr` is a page-table frame reachable through the direct
    // map; every caller holds `LOCK` with interrupts off, so this is the
    // only live reference to the table.
    unsafe { &mut *(phys_to_virt(paddr) as *mut PageTable) }
}

/// The first address after `vaddr` whose level-1 entry may exist, when
/// the table holding `vaddr`'s entry does not: the end of the span the
/// missing table would map (so walks over huge empty ranges skip whole
/// tables instead of testing every page).
fn skip_missing(vaddr: u64) -> u64 {
    let addr = VirtAddr::new(vaddr);
    let mut table = table_at(pte::strip(Cr3::read().0.start_address().as_u64()));
    // Spans of a PML4, PDPT and PD entry.
    let spans = [1u64 << 39, 1 << 30, 1 << 21];
    let indices = [addr.p4_index(), addr.p3_index(), addr.p2_index()];
    for (index, span) in indices.into_iter().zip(spans) {
        let entry = &table[index];
        if entry.is_unused() {
            return (vaddr & !(span - 1)).saturating_add(span);
        }
        table = table_at(pte::frame_of(entry));
    }
    vaddr + PAGE_BYTES
}

/// The level-1 entry for `vaddr`, creating the tables on the way when
/// `create` is set. `None`: no table (and `create` unset) or out of frames.
fn leaf(vaddr: u64, create: bool) -> Option<&'static mut PageTableEntry> {
    let addr = VirtAddr::new(vaddr);
    let mut table = table_at(pte::strip(Cr3::read().0.start_address().as_u64()));
    let indices: [PageTableIndex; 3] = [addr.p4_index(), addr.p3_index(), addr.p2_index()];
    for index in indices {
        let entry = &mut table[index];
        if entry.is_unused() {
            if !create {
                return None;
            }
            let frame = frames::alloc_user_zeroed()?;
            entry.set_addr(pte::private(frame), USER_TABLE);
        }
        table = table_at(pte::frame_of(entry));
    }
    Some(&mut table[addr.p1_index()])
}

/// The flags of a user leaf entry with `prot`: present (with hardware
/// rights) only when it has a frame and some access is allowed.
fn leaf_flags(prot: Perms, has_frame: bool) -> F {
    let mut f = MANAGED | software_bits(prot);
    if !has_frame {
        return f;
    }
    f |= HAS_FRAME;
    if any(prot) {
        f |= F::PRESENT | F::USER_ACCESSIBLE;
        if prot.write {
            f |= F::WRITABLE;
        }
        if !prot.execute {
            f |= F::NO_EXECUTE;
        }
    }
    f
}

fn check_range(start: u64, len: u64) -> Result<u64, UserMapError> {
    let end = start.checked_add(len).ok_or(UserMapError::BadRange)?;
    if !start.is_multiple_of(PAGE_BYTES) || !len.is_multiple_of(PAGE_BYTES) || end > USER_END {
        return Err(UserMapError::BadRange);
    }
    Ok(end)
}

/// Runs `f` with the page-table lock; the pages it flushed ([`flush_page`])
/// are shot down on the other CPUs that have the space loaded before the
/// lock is let go.
pub(super) fn with_lock<R>(f: impl FnOnce() -> R) -> R {
    without_interrupts(|| {
        let _g = LOCK.lock();
        let r = f();
        crate::arch::smp::tlb::finish();
        r
    })
}

/// Flushes the page at `vaddr` from this CPU's TLB and notes it for the
/// shootdown at the end of [`with_lock`].
pub(super) fn flush_page(vaddr: u64) {
    tlb::flush(VirtAddr::new(vaddr));
    crate::arch::smp::tlb::note_page(vaddr);
}

/// Frees the frame an entry holds, if any, and clears it.
fn clear_entry(entry: &mut PageTableEntry) {
    if entry.flags().contains(HAS_FRAME) {
        // A frame we allocated for this page, freed with its last mapping
        // (a forked space may share it: `cow`).
        cow::release(pte::frame_of(entry));
    }
    entry.set_unused();
}

/// Reserves `start .. start + len` with `prot`, replacing (and freeing)
/// whatever was mapped there. Frames come on first touch.
pub fn map_lazy(start: u64, len: u64, prot: Perms) -> Result<(), UserMapError> {
    let end = check_range(start, len)?;
    with_lock(|| {
        let mut v = start;
        while v < end {
            let entry = leaf(v, true).ok_or(UserMapError::OutOfMemory)?;
            let was_present = entry.flags().contains(F::PRESENT);
            clear_entry(entry);
            entry.set_addr(x86_64::PhysAddr::new(0), MANAGED | software_bits(prot));
            if was_present {
                flush_page(v);
            }
            v += PAGE_BYTES;
        }
        Ok(())
    })
}

/// Changes the permissions of every mapped page in the range.
pub fn protect(start: u64, len: u64, prot: Perms) -> Result<(), UserMapError> {
    let end = check_range(start, len)?;
    with_lock(|| {
        let mut v = start;
        while v < end {
            let Some(entry) = leaf(v, false) else {
                v = skip_missing(v);
                continue;
            };
            if !entry.is_unused() {
                let flags = entry.flags();
                let mut new = leaf_flags(prot, flags.contains(HAS_FRAME));
                if flags.contains(COW) {
                    // Still shared: writable only after the copy.
                    new = cow::shared_flags(new);
                }
                entry.set_flags(new);
                if flags.contains(F::PRESENT) {
                    flush_page(v);
                }
            }
            v += PAGE_BYTES;
        }
        Ok(())
    })
}

/// Unmaps the range, freeing its frames.
pub fn unmap(start: u64, len: u64) -> Result<(), UserMapError> {
    let end = check_range(start, len)?;
    with_lock(|| {
        let mut v = start;
        while v < end {
            let Some(entry) = leaf(v, false) else {
                v = skip_missing(v);
                continue;
            };
            let was_present = entry.flags().contains(F::PRESENT);
            clear_entry(entry);
            if was_present {
                flush_page(v);
            }
            v += PAGE_BYTES;
        }
        Ok(())
    })
}

/// Moves the entries (and frames) of `from ..` to `to ..`; the destination
/// is first unmapped.
pub fn move_pages(from: u64, to: u64, len: u64) -> Result<(), UserMapError> {
    check_range(from, len)?;
    check_range(to, len)?;
    unmap(to, len)?;
    with_lock(|| {
        let mut off = 0;
        while off < len {
            let Some(src) = leaf(from + off, false) else {
                off = skip_missing(from + off) - from;
                continue;
            };
            if !src.is_unused() {
                let (addr, flags) = (src.addr(), src.flags());
                src.set_unused();
                if flags.contains(F::PRESENT) {
                    flush_page(from + off);
                }
                let dst = leaf(to + off, true).ok_or(UserMapError::OutOfMemory)?;
                dst.set_addr(addr, flags);
            }
            off += PAGE_BYTES;
        }
        Ok(())
    })
}

/// Gives a lazy page its zeroed frame, or a copy-on-write page at
/// `vaddr` a frame of its own, for a write (the lock is held).
fn populate(entry: &mut PageTableEntry, vaddr: u64) -> Result<u64, UserMapError> {
    let flags = entry.flags();
    if flags.contains(HAS_FRAME) && flags.contains(COW) {
        return cow::break_cow(entry, vaddr, |f| leaf_flags(perms_of(f), true))
            .ok_or(UserMapError::OutOfMemory);
    }
    if flags.contains(HAS_FRAME) {
        return Ok(pte::frame_of(entry));
    }
    let frame = frames::alloc_user_zeroed().ok_or(UserMapError::OutOfMemory)?;
    let prot = perms_of(flags);
    entry.set_addr(pte::private(frame), leaf_flags(prot, true));
    Ok(frame)
}

/// Copies `data` to user address `addr` through the direct map, ignoring
/// page permissions (loading a file into read-only or executable pages).
/// Lazy pages get their frames.
pub fn fill(addr: u64, data: &[u8]) -> Result<(), UserMapError> {
    addr.checked_add(data.len() as u64)
        .filter(|&e| e <= USER_END)
        .ok_or(UserMapError::BadRange)?;
    with_lock(|| {
        let mut done = 0usize;
        while done < data.len() {
            let v = addr + done as u64;
            let in_page = (PAGE_BYTES - v % PAGE_BYTES) as usize;
            let n = in_page.min(data.len() - done);
            let page = v & !(PAGE_BYTES - 1);
            let entry = leaf(page, false)
                .filter(|e| !e.is_unused())
                .ok_or(UserMapError::NotMapped(v))?;
            let frame = populate(entry, page)?;
            let dst = phys_to_virt(frame) + v % PAGE_BYTES;
            // SAFETY: `dst .. dst + n` lies inside one frame owned by this
            // user page, reached through the direct map; the source is a
            // kernel slice that cannot overlap it.
            unsafe {
                core::ptr::copy_nonoverlapping(data[done..].as_ptr(), dst as *mut u8, n);
            }
            done += n;
        }
        Ok(())
    })
}

/// The access a page-fault error code describes (bit 4: instruction
/// fetch, bit 1: write).
pub fn fault_access(error_code: u64) -> FaultAccess {
    if error_code & 16 != 0 {
        FaultAccess::Execute
    } else if error_code & 2 != 0 {
        FaultAccess::Write
    } else {
        FaultAccess::Read
    }
}

/// Whether a fault taken in user mode is one the entry now allows in
/// hardware (not a reserved-bit fault): nothing is left to resolve. Only
/// user-mode faults: one taken in user mode waits for the kernel lock,
/// during which another CPU may resolve it; a kernel access runs under the
/// lock, and a kernel fault on an allowed page (a SMAP slip) must not be
/// retried forever.
fn spurious(flags: F, error_code: u64) -> bool {
    /// Error code bits: 2, the access was in user mode; 3, a reserved bit
    /// was set in an entry.
    const USER_MODE: u64 = 1 << 2;
    const RESERVED_BIT: u64 = 1 << 3;
    error_code & (USER_MODE | RESERVED_BIT) == USER_MODE
        && flags.contains(F::PRESENT | F::USER_ACCESSIBLE)
        && match fault_access(error_code) {
            FaultAccess::Write => flags.contains(F::WRITABLE),
            FaultAccess::Execute => !flags.contains(F::NO_EXECUTE),
            FaultAccess::Read => true,
        }
}

/// Whether `prot` allows `access`.
fn access_allowed(prot: Perms, access: FaultAccess) -> bool {
    match access {
        FaultAccess::Execute => prot.execute,
        FaultAccess::Write => prot.write,
        FaultAccess::Read => prot.read,
    }
}

/// What demand paging made of a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demand {
    /// The page got its frame: retry the access.
    Resolved,
    /// Not a lazy page this access may touch (ask the LibOS, or a genuine
    /// fault).
    NotLazy,
    /// A lazy page the access may touch, but no frame is left for it.
    OutOfMemory,
    /// A page of a shared file mapping the file cannot back: wholly past
    /// its end, or a hole the full file system cannot fill (`SIGBUS`, as
    /// Linux; `EFAULT` for a user copy).
    BusError,
}

/// Demand paging for a fault at user address `addr`: if the page is lazy
/// and its permissions allow the access, maps a zeroed frame.
pub fn demand_fault(addr: u64, error_code: u64) -> Demand {
    if addr >= USER_END {
        return Demand::NotLazy;
    }
    let page = addr & !(PAGE_BYTES - 1);
    with_lock(|| {
        let Some(entry) = leaf(page, false) else {
            return Demand::NotLazy;
        };
        let flags = entry.flags();
        if spurious(flags, error_code) {
            // Another CPU resolved the same fault first (populated or
            // copied the page while this one waited for the kernel lock),
            // or a stale translation: retry the access, as Linux does.
            tlb::flush(VirtAddr::new(page));
            return Demand::Resolved;
        }
        if flags.contains(COW | HAS_FRAME | F::PRESENT)
            && fault_access(error_code) == FaultAccess::Write
            && perms_of(flags).write
        {
            // A write to a page shared since a fork: copy it.
            return match populate(entry, page) {
                Ok(_) => Demand::Resolved,
                Err(_) => Demand::OutOfMemory,
            };
        }
        if error_code & 1 != 0 {
            // Other protection violations on present pages are never
            // demand faults.
            return Demand::NotLazy;
        }
        if entry.is_unused() || flags.contains(HAS_FRAME) {
            return Demand::NotLazy;
        }
        if !access_allowed(perms_of(flags), fault_access(error_code)) {
            return Demand::NotLazy;
        }
        match populate(entry, page) {
            Ok(_) => Demand::Resolved,
            Err(_) => Demand::OutOfMemory,
        }
    })
}

/// [`demand_fault`] for the kernel's own accesses to user memory (user
/// copies): `true` if the access can be retried.
pub fn resolve_fault(addr: u64, error_code: u64) -> bool {
    demand_fault(addr, error_code) == Demand::Resolved
}

/// The permissions of the page at `addr` and whether it has a frame, or
/// `None` if unmapped (for tests and `/proc/self/maps` checks).
pub fn query(addr: u64) -> Option<(Perms, bool)> {
    with_lock(|| {
        let entry = leaf(addr & !(PAGE_BYTES - 1), false)?;
        if entry.is_unused() {
            return None;
        }
        let flags = entry.flags();
        Some((perms_of(flags), flags.contains(HAS_FRAME)))
    })
}

/// A zeroed frame for a file page that `MAP_SHARED` mappings will map
/// ([`map_frame`]), with one reference (the file's); `None` once only
/// the kernel's reserve is left.
pub fn frame_alloc() -> Option<u64> {
    frames::alloc_user_zeroed()
}

/// Drops one reference to a frame from [`frame_alloc`]: freed with its
/// last reference (a mapping may still hold it).
pub fn frame_release(frame: u64) {
    with_lock(|| cow::release(frame));
}

/// The direct-map address of `len` bytes at `offset` in `frame`, or
/// `None` if the range leaves the frame.
fn frame_bytes(frame: u64, offset: usize, len: usize) -> Option<u64> {
    let end = offset.checked_add(len)?;
    (end <= PAGE_BYTES as usize && frame.is_multiple_of(PAGE_BYTES))
        .then(|| phys_to_virt(frame) + offset as u64)
}

/// Copies bytes of a [`frame_alloc`] frame into `buf` (a range outside
/// the frame reads nothing).
pub fn frame_read(frame: u64, offset: usize, buf: &mut [u8]) {
    let Some(src) = frame_bytes(frame, offset, buf.len()) else {
        log::error!("frame_read outside frame {frame:#x}");
        return;
    };
    // SAFETY: the range lies inside `frame` (checked above), a frame the
    // caller holds a reference to, reached through the direct map; user
    // stores to it meanwhile only change the bytes read (as a user copy
    // races with the program), and `buf` is a kernel buffer that cannot
    // overlap it.
    unsafe { core::ptr::copy_nonoverlapping(src as *const u8, buf.as_mut_ptr(), buf.len()) };
}

/// Copies `data` into a [`frame_alloc`] frame at `offset` (a range
/// outside the frame writes nothing).
pub fn frame_write(frame: u64, offset: usize, data: &[u8]) {
    let Some(dst) = frame_bytes(frame, offset, data.len()) else {
        log::error!("frame_write outside frame {frame:#x}");
        return;
    };
    // SAFETY: as in `frame_read`: inside a frame the caller holds, through
    // the direct map, and `data` is a kernel slice that cannot overlap it.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst as *mut u8, data.len()) };
}

/// Copies `len` bytes of a [`frame_alloc`] frame from `offset` straight
/// to user address `addr`, as a user copy (stops at a fault: see
/// [`crate::arch::uaccess`]); a range outside the frame copies nothing.
pub fn frame_to_user(
    frame: u64,
    offset: usize,
    addr: u64,
    len: usize,
) -> Result<(), BadUserAddress> {
    let Some(src) = frame_bytes(frame, offset, len) else {
        log::error!("frame_to_user outside frame {frame:#x}");
        return Err(BadUserAddress(addr));
    };
    // SAFETY: the range lies inside `frame` (checked above), a frame the
    // caller holds a reference to, reached through the direct map, so it
    // stays readable for the copy.
    unsafe { uaccess::copy_to_user_from(addr, src as *const u8, len) }
}

/// Copies `len` bytes from user address `addr` straight into a
/// [`frame_alloc`] frame at `offset`, likewise.
pub fn frame_from_user(
    frame: u64,
    offset: usize,
    addr: u64,
    len: usize,
) -> Result<(), BadUserAddress> {
    let Some(dst) = frame_bytes(frame, offset, len) else {
        log::error!("frame_from_user outside frame {frame:#x}");
        return Err(BadUserAddress(addr));
    };
    // SAFETY: as in `frame_to_user`: inside a frame the caller holds,
    // through the direct map; the kernel keeps no Rust reference to a
    // file frame's bytes (they are only reached through these copies).
    unsafe { uaccess::copy_from_user_to(dst as *mut u8, addr, len) }
}

/// Maps `frame` (from [`frame_alloc`]) at the user page `vaddr` with
/// `prot`, replacing (and freeing) what was there; the entry holds a
/// reference to the frame. Never copy-on-write: a fork must list the page
/// as shared (`space::fork_current`).
pub fn map_frame(vaddr: u64, frame: u64, prot: Perms) -> Result<(), UserMapError> {
    map_file_frame(vaddr, frame, leaf_flags(prot, true))
}

/// [`map_frame`] for a private mapping: the entry is copy-on-write
/// ([`cow`]), so the first store copies the frame (the file's reference
/// keeps it shared) and the file's page never changes. An exec maps a
/// program's text this way: the same frames every time, so the code
/// stays where it was (under TCG, its translations stay valid).
pub fn map_frame_private(vaddr: u64, frame: u64, prot: Perms) -> Result<(), UserMapError> {
    map_file_frame(vaddr, frame, cow::shared_flags(leaf_flags(prot, true)))
}

fn map_file_frame(vaddr: u64, frame: u64, flags: F) -> Result<(), UserMapError> {
    check_range(vaddr, PAGE_BYTES)?;
    if !frame.is_multiple_of(PAGE_BYTES) {
        return Err(UserMapError::BadRange);
    }
    with_lock(|| {
        let entry = leaf(vaddr, true).ok_or(UserMapError::OutOfMemory)?;
        let was_present = entry.flags().contains(F::PRESENT);
        clear_entry(entry);
        cow::share(frame);
        entry.set_addr(pte::private(frame), flags);
        if was_present {
            tlb::flush(VirtAddr::new(vaddr));
        }
        Ok(())
    })
}
