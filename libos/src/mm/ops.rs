//! Address-space operations: each changes the [`Vm`] and, through the
//! platform's [`AddressSpace`](crate::platform::AddressSpace), the page
//! tables, under the process's `vm` lock. Every change that adds memory
//! is first charged to the commit ([`super::commit`]); a refused charge
//! changes nothing.
//!
//! A small accessible area gets its page-table entries when it is created
//! (`map_zeroed` — lazy entries the kernel backs with a frame on first
//! touch — then the file bytes through `fill`). Pages without entries are
//! recorded in `Vm::unpopulated`: `PROT_NONE` areas (glibc reserves big
//! arenas that way; populated when `mprotect` makes them accessible),
//! anonymous areas over [`LAZY_AREA_BYTES`], private file mappings (and
//! the whole file pages of a program's image), shared file mappings (the
//! file's own frames, mapped one page at a time through
//! [`PageFrames`](crate::platform::PageFrames)) and the main stack below
//! its initial pages, which [`handle_page_fault`] populates on first
//! touch.
//! Unmapping and `mprotect` touch only the populated parts, so an
//! operation's cost does not grow with the size of a lazy area.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use super::commit;
use super::page_up;
use super::vm::STACK_GUARD_GAP;
use super::vm::Vm;
use super::vma::{Backing, SharedObject, Vma, VmaName};
use crate::elf::{PAGE_SIZE, Perms, USER_SPACE_END};
use crate::error::{Errno, Result};
use crate::fs::InodeRef;
use crate::platform::Platform;
use crate::process::Process;
use crate::return_errno;

/// Read-write, not executable.
pub const READ_WRITE: Perms = Perms {
    read: true,
    write: true,
    execute: false,
};

/// Whether any access is allowed (not `PROT_NONE`).
pub fn accessible(p: Perms) -> bool {
    p.read || p.write || p.execute
}

/// Where a new mapping goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere; at the (page-rounded) hint if that range is free.
    Hint(u64),
    /// Exactly here, replacing what is there (`MAP_FIXED`).
    Fixed(u64),
    /// Exactly here, `EEXIST` if anything is there (`MAP_FIXED_NOREPLACE`).
    FixedNoReplace(u64),
}

/// A mapping to create (length page aligned, non-zero; a fixed address
/// page aligned and in user space — the syscall layer checks).
#[derive(Debug, Clone)]
pub struct MapRequest {
    /// Where.
    pub placement: Placement,
    /// Bytes.
    pub len: u64,
    /// Protection.
    pub perms: Perms,
    /// `MAP_SHARED`.
    pub shared: bool,
    /// Whether `mprotect` may add write access later.
    pub may_write: bool,
    /// Contents.
    pub backing: Backing,
    /// Name for `/proc/self/maps`.
    pub name: VmaName,
    /// Never charged to the commit (`MAP_NORESERVE`, `MAP_STACK`).
    pub noreserve: bool,
}

/// The kind of access that faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAccess {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Execute,
}

/// Copies `len` bytes of `inode` from `offset` to `addr` (stopping at the
/// end of the file; the rest stays zero). Returns how many it copied.
pub(super) fn fill_from_file(
    platform: &dyn Platform,
    inode: &InodeRef,
    offset: u64,
    addr: u64,
    len: u64,
) -> Result<u64> {
    let size = inode.metadata().size;
    if offset >= size {
        return Ok(0);
    }
    let total = (size - offset).min(len);
    let mut buf = crate::fallible::bounce_buffer(total as usize, 64 * 1024)?;
    let mut done = 0u64;
    while done < total {
        let n = (total - done).min(buf.len() as u64) as usize;
        let got = inode.read_at(offset + done, &mut buf[..n])?;
        if got == 0 {
            break;
        }
        platform.fill(addr + done, &buf[..got])?;
        done += got as u64;
    }
    Ok(done)
}

/// Makes `start..end` of `vma` present with `perms`: zeroed, then the
/// file bytes for a file area.
/// On error the range has no page-table entries at all (nothing
/// half-made stays), so the caller may record it as unpopulated.
fn populate(platform: &dyn Platform, vma: &Vma, start: u64, end: u64, perms: Perms) -> Result<()> {
    let done = platform
        .map_zeroed(start, end - start, perms)
        .and_then(|()| match vma.file_offset_of(start) {
            Some((inode, offset)) => {
                fill_from_file(platform, &inode, offset, start, end - start).map(|_| ())
            }
            None => Ok(()),
        });
    if done.is_err() {
        platform.unmap(start, end - start);
    }
    done
}

/// Anonymous areas larger than this get no page-table entries until they
/// are touched ([`handle_page_fault`] reserves them a chunk at a time), so
/// a mapping's cost does not grow with its size: a 1 TiB reservation is
/// as cheap as a 4 KiB one.
pub const LAZY_AREA_BYTES: u64 = 2 << 20;

/// The span [`handle_page_fault`] reserves around a faulting page of a
/// large anonymous area (aligned, within the area).
const FAULT_CHUNK_BYTES: u64 = 2 << 20;

/// Whether `vma`'s pages are left to be reserved on first touch: large
/// anonymous areas (a chunk at a time), private file areas (a page at a
/// time, read from the file then — a program's image and the libraries
/// the dynamic loader maps cost what is touched, not their size) and
/// shared file areas (a page at a time, the file's own frame mapped then:
/// [`map_shared_file_page`]).
fn deferred(vma: &Vma) -> bool {
    match vma.backing {
        Backing::Anonymous => vma.end - vma.start > LAZY_AREA_BYTES,
        Backing::File { .. } => true,
    }
}

/// Whether `vma` maps a file's own pages (`MAP_SHARED` of a file).
pub(crate) fn maps_file_pages(vma: &Vma) -> bool {
    vma.shared && matches!(vma.backing, Backing::File { .. })
}

/// Maps the file page behind `page` of the shared file area `vma`: the
/// file's own frame, so stores reach the file and every other mapping at
/// once. `ENXIO` for a page wholly past the end of the file (`SIGBUS`),
/// `ENOSPC` when a hole cannot get a page (`SIGBUS` too, as tmpfs),
/// `ENOMEM` without a frame.
fn map_shared_file_page(process: &Process, vma: &Vma, page: u64) -> Result<()> {
    let (inode, offset) = vma.file_offset_of(page).ok_or(Errno::EFAULT)?;
    let frames: alloc::sync::Arc<dyn crate::platform::PageFrames> = process.platform.clone();
    let frame = inode.shared_frame(offset, &frames)?;
    process.platform.map_frame(page, frame, vma.perms)
}

/// Adds `vma` over a free range: present pages if accessible (or, for a
/// large anonymous area, nothing until touched), else recorded as
/// unpopulated.
fn establish(platform: &dyn Platform, vm: &mut Vm, vma: Vma) -> Result<()> {
    if accessible(vma.perms) && !deferred(&vma) {
        populate(platform, &vma, vma.start, vma.end, vma.perms)?;
    } else {
        vm.unpopulated.insert(vma.start..vma.end);
    }
    vm.insert(vma);
    Ok(())
}

/// Removes everything in `start..end` from the map and the page tables.
/// Only the populated parts of the areas have page-table entries, so only
/// those are unmapped: a huge lazy area costs what its touched chunks do.
fn unmap_range(platform: &dyn Platform, vm: &mut Vm, start: u64, end: u64) {
    if start >= end {
        return;
    }
    let areas = vm.carve(start, end);
    let absent = vm.unpopulated.remove(start..end);
    for a in &areas {
        for r in present_parts(a.start..a.end, &absent) {
            platform.unmap(r.start, r.end - r.start);
        }
    }
}

/// The parts of `area` outside the ascending `absent` ranges.
pub(super) fn present_parts(area: Range<u64>, absent: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut parts = Vec::new();
    let mut cur = area.start;
    for r in absent
        .iter()
        .filter(|r| r.end > area.start && r.start < area.end)
    {
        if r.start > cur {
            parts.push(cur..r.start);
        }
        cur = cur.max(r.end);
    }
    if cur < area.end {
        parts.push(cur..area.end);
    }
    parts
}

/// Creates a mapping and returns its address. `ENOMEM` when no room, no
/// frames or over the commit limit ([`commit::ensure`]; nothing changes
/// then), `EEXIST` for an occupied `FixedNoReplace`, errors reading the
/// file.
pub fn map(process: &Process, req: MapRequest) -> Result<u64> {
    let platform = &*process.platform;
    let mut vm = process.vm.lock();
    let start = match req.placement {
        Placement::Hint(hint) => vm.place(hint, req.len).ok_or(Errno::ENOMEM)?,
        Placement::Fixed(addr) => addr,
        Placement::FixedNoReplace(addr) => {
            if !vm.is_free(addr, addr + req.len) {
                return_errno!(Errno::EEXIST);
            }
            addr
        }
    };
    let end = start + req.len;
    let accounted = commit::accountable(req.perms, req.shared, &req.backing, req.noreserve);
    let charge = if accounted { req.len } else { 0 };
    // What a `MAP_FIXED` mapping replaces is uncharged with it.
    commit::ensure(platform, &vm, charge, vm.charged_in(start, end))?;
    // A free range has no page-table entries: only a `MAP_FIXED` mapping
    // has something to clear (so placing a huge area walks no tables).
    if matches!(req.placement, Placement::Fixed(_)) {
        unmap_range(platform, &mut vm, start, end);
    }
    let vma = Vma {
        start,
        end,
        perms: req.perms,
        shared: req.shared,
        may_write: req.may_write,
        grows_down: false,
        noreserve: req.noreserve,
        accounted,
        shared_object: (req.shared && matches!(req.backing, Backing::Anonymous))
            .then(SharedObject::new),
        backing: req.backing,
        name: req.name,
    };
    establish(platform, &mut vm, vma)?;
    Ok(start)
}

/// `MAP_POPULATE`: gives every page of `start..end` (a fresh anonymous
/// mapping) its frame now. `ENOMEM` when memory runs out (Linux would
/// return the mapping and populate what it can; failing is the honest
/// answer here, where nothing can be reclaimed later).
pub fn populate_now(process: &Process, start: u64, end: u64) -> Result<()> {
    let platform = &*process.platform;
    let mut vm = process.vm.lock();
    let Some(vma) = vm.find(start).cloned() else {
        return_errno!(Errno::ENOMEM);
    };
    if !accessible(vma.perms) {
        return Ok(());
    }
    for r in vm.unpopulated.remove(start..end) {
        platform.map_zeroed(r.start, r.end - r.start, vma.perms)?;
    }
    // Writing zeros through `fill` gives each lazy page its frame.
    const ZEROS: [u8; 4096] = [0; 4096];
    let mut page = start;
    while page < end {
        platform.fill(page, &ZEROS)?;
        page += PAGE_SIZE;
    }
    Ok(())
}

/// `munmap`: removes `start..end` (holes are fine).
pub fn unmap(process: &Process, start: u64, end: u64) {
    let mut vm = process.vm.lock();
    unmap_range(&*process.platform, &mut vm, start, end);
}

/// Whether `mprotect` to `perms` starts charging `v` (a reservation
/// made writable, or a file mapping made accessible).
fn charged_by(v: &Vma, perms: Perms) -> bool {
    !v.accounted && commit::accountable(perms, v.shared, &v.backing, v.noreserve)
}

/// `mprotect`: `ENOMEM` if `start..end` has a hole or the new access
/// must be charged and the commit cannot take it (nothing is changed
/// then), `EACCES` when adding write access to a shared file mapping.
pub fn protect(process: &Process, start: u64, end: u64, perms: Perms) -> Result<()> {
    let platform = &*process.platform;
    let mut vm = process.vm.lock();
    if !vm.is_covered(start, end) {
        return_errno!(Errno::ENOMEM);
    }
    if perms.write && vm.overlapping(start, end).any(|v| !v.may_write) {
        return_errno!(Errno::EACCES);
    }
    let charge = vm
        .overlapping(start, end)
        .filter(|v| charged_by(v, perms))
        .map(|v| v.end.min(end) - v.start.max(start))
        .sum();
    commit::ensure(platform, &vm, charge, 0)?;
    // Large anonymous areas stay unpopulated: their pages are reserved
    // when touched, with the area's new permissions.
    if accessible(perms) {
        let eager: Vec<(u64, u64)> = vm
            .overlapping(start, end)
            .filter(|v| !deferred(v))
            .map(|v| (v.start.max(start), v.end.min(end)))
            .collect();
        let mut absent = Vec::new();
        for (s, e) in eager {
            absent.extend(vm.unpopulated.remove(s..e));
        }
        for (i, r) in absent.iter().enumerate() {
            let mut result = Ok(());
            for v in vm.overlapping(r.start, r.end) {
                let (s, e) = (v.start.max(r.start), v.end.min(r.end));
                result = result.and_then(|()| populate(platform, v, s, e, perms));
            }
            if let Err(e) = result {
                for r in &absent[i..] {
                    platform.unmap(r.start, r.end - r.start);
                    vm.unpopulated.insert(r.clone());
                }
                return Err(e);
            }
        }
    }
    vm.update(start, end, |v| {
        v.accounted |= charged_by(v, perms);
        v.perms = perms;
    });
    // Only populated pages have entries to change (a huge lazy area costs
    // what its touched chunks do).
    let absent = vm.unpopulated_in(start, end);
    for r in present_parts(start..end, &absent) {
        platform.protect(r.start, r.end - r.start, perms)?;
    }
    Ok(())
}

/// `brk`: moves the break to `new` if it can and returns the break.
/// Below the heap start, or into another mapping (with a guard page),
/// over the commit limit or out of frames, the break stays where it was.
/// Growth is charged to the commit; shrinking uncharges.
pub fn brk(process: &Process, new: u64) -> u64 {
    let platform = &*process.platform;
    let mut vm = process.vm.lock();
    let old = vm.brk;
    if new < vm.brk_start {
        return old;
    }
    let (Some(old_end), Some(new_end)) = (page_up(old), page_up(new)) else {
        return old;
    };
    if new_end > old_end {
        if commit::ensure(platform, &vm, new_end - old_end, 0).is_err() {
            return old;
        }
        let fits = new_end
            .checked_add(PAGE_SIZE)
            .is_some_and(|guard| guard <= USER_SPACE_END && vm.is_free(old_end, guard));
        if !fits {
            return old;
        }
        let heap = Vma {
            accounted: true,
            ..Vma::anonymous(old_end, new_end, READ_WRITE, VmaName::Heap)
        };
        if establish(platform, &mut vm, heap).is_err() {
            return old;
        }
    } else if new_end < old_end {
        unmap_range(platform, &mut vm, new_end, old_end);
    }
    vm.brk = new;
    new
}

/// `madvise(MADV_DONTNEED)`: private pages read as zero (anonymous) or
/// the file's bytes again (file mappings); shared anonymous memory keeps
/// its contents. `ENOMEM` if the range has a hole (after doing the
/// mapped parts, as Linux).
pub fn discard(process: &Process, start: u64, end: u64) -> Result<()> {
    let platform = &*process.platform;
    let mut vm = process.vm.lock();
    let pieces: vec::Vec<Vma> = vm.overlapping(start, end).cloned().collect();
    for v in &pieces {
        let (s, e) = (v.start.max(start), v.end.min(end));
        if v.shared && matches!(v.backing, Backing::Anonymous) {
            continue;
        }
        if accessible(v.perms) && !deferred(v) {
            vm.unpopulated.remove(s..e);
            if let Err(err) = populate(platform, v, s, e, v.perms) {
                // The range lost its pages: populated again on touch.
                vm.unpopulated.insert(s..e);
                return Err(err);
            }
        } else {
            // Back to untouched: zero (or absent) on the next access.
            platform.unmap(s, e - s);
            vm.unpopulated.insert(s..e);
        }
    }
    if !vm.is_covered(start, end) {
        return_errno!(Errno::ENOMEM);
    }
    Ok(())
}

/// `madvise(MADV_REMOVE)` on shared anonymous memory: zero again.
pub fn zero_shared(process: &Process, start: u64, end: u64) -> Result<()> {
    let platform = &*process.platform;
    let mut vm = process.vm.lock();
    let pieces: vec::Vec<Vma> = vm.overlapping(start, end).cloned().collect();
    for v in &pieces {
        let (s, e) = (v.start.max(start), v.end.min(end));
        if accessible(v.perms) && !deferred(v) {
            vm.unpopulated.remove(s..e);
            if let Err(err) = populate(platform, v, s, e, v.perms) {
                // The range lost its pages: populated again on touch.
                vm.unpopulated.insert(s..e);
                return Err(err);
            }
        } else {
            // Back to untouched: zero (or absent) on the next access.
            platform.unmap(s, e - s);
            vm.unpopulated.insert(s..e);
        }
    }
    Ok(())
}

/// Moves `old..old+old_len` (inside one area `vma`) to `new`, then grows
/// the moved area to `new_len`.
fn move_area(
    platform: &dyn Platform,
    vm: &mut Vm,
    old: u64,
    old_len: u64,
    new: u64,
    new_len: u64,
) -> Result<()> {
    let pieces = vm.carve(old, old + old_len);
    let absent = vm.unpopulated.remove(old..old + old_len);
    if let Err(e) = platform.move_pages(old, new, old_len) {
        for p in pieces {
            vm.insert(p);
        }
        for r in absent {
            vm.unpopulated.insert(r);
        }
        return Err(e);
    }
    for r in absent {
        vm.unpopulated
            .insert(r.start - old + new..r.end - old + new);
    }
    let mut last = None;
    for p in pieces {
        let mut moved = p.slice(p.start, p.end);
        moved.start = p.start - old + new;
        moved.end = p.end - old + new;
        last = Some(moved.clone());
        vm.insert(moved);
    }
    if new_len > old_len
        && let Some(last) = last
    {
        establish(platform, vm, following(&last, new + new_len))?;
    }
    Ok(())
}

/// An area continuing `vma` from its end to `end` (same attributes, the
/// following file bytes).
fn following(vma: &Vma, end: u64) -> Vma {
    let mut next = vma.clone();
    if let Backing::File { offset, .. } = &mut next.backing {
        *offset += vma.len();
    }
    next.shared_object = vma.shared_object.map(|o| o.advanced(vma.len()));
    next.start = vma.end;
    next.end = end;
    next
}

/// What `mremap` may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemapMode {
    /// `MREMAP_MAYMOVE`
    pub may_move: bool,
    /// `MREMAP_FIXED`: the destination.
    pub fixed: Option<u64>,
}

/// `mremap` on page-aligned, validated arguments: `EFAULT` if the old
/// range is not inside one area, `ENOMEM` if it cannot grow in place and
/// may not move (or there is no room).
pub fn remap(
    process: &Process,
    old: u64,
    old_len: u64,
    new_len: u64,
    mode: RemapMode,
) -> Result<u64> {
    let platform = &*process.platform;
    let mut vm = process.vm.lock();
    let vma = vm.find(old).cloned().ok_or(Errno::EFAULT)?;
    let old_end = old.checked_add(old_len).ok_or(Errno::EFAULT)?;
    if old_end > vma.end {
        return_errno!(Errno::EFAULT);
    }
    // Growth of a charged area is charged (checked before anything moves).
    let growth = if vma.accounted {
        new_len.saturating_sub(old_len)
    } else {
        0
    };
    if let Some(new) = mode.fixed {
        commit::ensure(platform, &vm, growth, vm.charged_in(new, new + new_len))?;
        unmap_range(platform, &mut vm, new, new + new_len);
        let kept = old_len.min(new_len);
        unmap_range(platform, &mut vm, old + kept, old_end);
        move_area(platform, &mut vm, old, kept, new, new_len)?;
        return Ok(new);
    }
    if new_len <= old_len {
        unmap_range(platform, &mut vm, old + new_len, old_end);
        return Ok(old);
    }
    let new_end = old.checked_add(new_len).filter(|&e| e <= USER_SPACE_END);
    commit::ensure(platform, &vm, growth, 0)?;
    if old_end == vma.end
        && let Some(new_end) = new_end
        && vm.is_free(old_end, new_end)
    {
        establish(platform, &mut vm, following(&vma, new_end))?;
        return Ok(old);
    }
    if !mode.may_move {
        return_errno!(Errno::ENOMEM);
    }
    let new = vm.find_free(new_len).ok_or(Errno::ENOMEM)?;
    move_area(platform, &mut vm, old, old_len, new, new_len)?;
    Ok(new)
}

/// Resolves a fault on a page that is not present: a page of an area
/// that allows `access` and was not populated yet (a `PROT_NONE`
/// reservation made accessible, the stack below its initial pages), or a
/// page just below a grows-down stack within its limit (the area grows).
/// `Ok` means the page is now present and the access can be retried; an
/// error means the access is invalid (`SIGSEGV`).
///
/// The kernel calls this for not-present faults from user mode and from
/// its user-copy routines before reporting `EFAULT`.
pub fn handle_page_fault(process: &Process, addr: u64, access: FaultAccess) -> Result<()> {
    let platform = &*process.platform;
    let mut vm = process.vm.lock();
    let page = addr & !(PAGE_SIZE - 1);
    let vma = match vm.find(addr) {
        Some(v) => v.clone(),
        None => grow_stack(&mut vm, page)?,
    };
    let allowed = match access {
        FaultAccess::Read => accessible(vma.perms),
        FaultAccess::Write => vma.perms.write,
        FaultAccess::Execute => vma.perms.execute,
    };
    if !allowed || !vm.unpopulated.contains(page) {
        return_errno!(Errno::EFAULT);
    }
    if maps_file_pages(&vma) {
        map_shared_file_page(process, &vma, page)?;
        vm.unpopulated.remove(page..page + PAGE_SIZE);
        return Ok(());
    }
    // A large anonymous area: reserve the chunk around the page (cheap
    // lazy entries; the frame comes when the access is retried). A file
    // area: the page alone, read from the file now.
    let (start, end) = if deferred(&vma) && matches!(vma.backing, Backing::Anonymous) {
        let chunk = page & !(FAULT_CHUNK_BYTES - 1);
        (
            chunk.max(vma.start),
            chunk.saturating_add(FAULT_CHUNK_BYTES).min(vma.end),
        )
    } else {
        (page, page + PAGE_SIZE)
    };
    let pieces = vm.unpopulated.remove(start..end);
    for (i, r) in pieces.iter().enumerate() {
        if let Err(e) = populate(platform, &vma, r.start, r.end, vma.perms) {
            for r in &pieces[i..] {
                vm.unpopulated.insert(r.clone());
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Populates the unpopulated pages of `addr..addr + len`, as the kernel's
/// user-copy routines do one fault at a time, so host tests over the mock
/// platform (which does not fault) can read and write lazy areas. Pages
/// the access may not touch stay absent (the access then fails).
#[cfg(test)]
pub(crate) fn fault_in(process: &Process, addr: u64, len: u64, access: FaultAccess) {
    let end = addr.saturating_add(len);
    let mut page = addr & !(PAGE_SIZE - 1);
    while page < end {
        let absent = process.vm.lock().unpopulated.contains(page);
        if absent {
            let _ = handle_page_fault(process, page, access);
        }
        page += PAGE_SIZE;
    }
}

/// Extends the grows-down area above `page` down to it, if within the
/// stack limit and clear of the area below by the guard gap.
fn grow_stack(vm: &mut Vm, page: u64) -> Result<Vma> {
    let above = vm.first_above(page).cloned().ok_or(Errno::EFAULT)?;
    let within_limit = vm.stack_top.saturating_sub(page) <= vm.stack_limit;
    let clear = vm
        .last_below(page)
        .is_none_or(|below| below.end.saturating_add(STACK_GUARD_GAP) <= page);
    if !above.grows_down || !within_limit || !clear {
        return_errno!(Errno::EFAULT);
    }
    let grown = Vma {
        start: page,
        end: above.start,
        ..above.clone()
    };
    vm.unpopulated.insert(page..above.start);
    vm.insert(grown.clone());
    Ok(grown)
}
