//! Memory syscalls: `brk`, `mmap`, `munmap`, `mprotect`, `mremap`,
//! `msync`, `mincore`, `madvise`. Each decodes and validates its
//! registers as Linux does (same checks, same order where the errno
//! differs) and calls `crate::mm::ops`.
//!
//! `MAP_PRIVATE` file mappings copy the file's bytes in when a page is
//! first touched (later writes to the file are not seen, which Linux
//! leaves unspecified for private mappings). `MAP_SHARED` file mappings
//! map the file's own pages (`crate::mm::ops`), so stores and `write()`s
//! are seen both ways at once; writable ones need the file open
//! read-write. Shared anonymous memory is ordinary memory shared with
//! the processes forked from it.

use super::SyscallArgs;
use super::table::Handler;
use crate::elf::{PAGE_SIZE, Perms, USER_SPACE_END};
use crate::error::{Errno, Result};
use crate::fs::InodeType;
use crate::fs::file::open_flags::{O_ACCMODE, O_PATH, O_RDWR, O_WRONLY};
use crate::mm::ops::{self, MapRequest, Placement, RemapMode};
use crate::mm::{Backing, MMAP_MIN_ADDR, VmaName, is_page_aligned, page_up};
use crate::process::Process;
use crate::user::UserSliceWrite;
use crate::{return_errno, return_errno_with_message};

/// `(number, name, handler)` for the family.
pub const HANDLERS: &[(usize, &str, Handler)] = &[
    (9, "mmap", sys_mmap),
    (10, "mprotect", sys_mprotect),
    (11, "munmap", sys_munmap),
    (12, "brk", sys_brk),
    (25, "mremap", sys_mremap),
    (26, "msync", sys_msync),
    (27, "mincore", sys_mincore),
    (28, "madvise", sys_madvise),
];

/// `PROT_*` and `MAP_*` bits (`asm-generic/mman-common.h`, x86 `mman.h`).
#[allow(missing_docs, reason = "the names are Linux's; see mmap(2)")]
pub mod bits {
    pub const PROT_READ: u32 = 0x1;
    pub const PROT_WRITE: u32 = 0x2;
    pub const PROT_EXEC: u32 = 0x4;
    pub const PROT_SEM: u32 = 0x8;
    pub const PROT_GROWSDOWN: u32 = 0x0100_0000;
    pub const PROT_GROWSUP: u32 = 0x0200_0000;
    pub const MAP_SHARED: u32 = 0x01;
    pub const MAP_PRIVATE: u32 = 0x02;
    pub const MAP_SHARED_VALIDATE: u32 = 0x03;
    pub const MAP_TYPE: u32 = 0x0f;
    pub const MAP_FIXED: u32 = 0x10;
    pub const MAP_ANONYMOUS: u32 = 0x20;
    pub const MAP_32BIT: u32 = 0x40;
    pub const MAP_GROWSDOWN: u32 = 0x100;
    pub const MAP_DENYWRITE: u32 = 0x800;
    pub const MAP_EXECUTABLE: u32 = 0x1000;
    pub const MAP_LOCKED: u32 = 0x2000;
    pub const MAP_NORESERVE: u32 = 0x4000;
    pub const MAP_POPULATE: u32 = 0x8000;
    pub const MAP_NONBLOCK: u32 = 0x1_0000;
    pub const MAP_STACK: u32 = 0x2_0000;
    pub const MAP_HUGETLB: u32 = 0x4_0000;
    pub const MAP_SYNC: u32 = 0x8_0000;
    pub const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;
    pub const MAP_UNINITIALIZED: u32 = 0x400_0000;
    /// Flags `MAP_SHARED_VALIDATE` accepts (`LEGACY_MAP_MASK` plus
    /// `MAP_FIXED_NOREPLACE`; `MAP_SYNC` needs DAX, which no file has).
    pub const VALIDATED: u32 = MAP_SHARED
        | MAP_PRIVATE
        | MAP_FIXED
        | MAP_ANONYMOUS
        | MAP_32BIT
        | MAP_DENYWRITE
        | MAP_EXECUTABLE
        | MAP_UNINITIALIZED
        | MAP_GROWSDOWN
        | MAP_LOCKED
        | MAP_NORESERVE
        | MAP_POPULATE
        | MAP_NONBLOCK
        | MAP_STACK
        | MAP_HUGETLB
        | MAP_FIXED_NOREPLACE;
    pub const MREMAP_MAYMOVE: u32 = 1;
    pub const MREMAP_FIXED: u32 = 2;
    pub const MREMAP_DONTUNMAP: u32 = 4;
    pub const MS_ASYNC: u32 = 1;
    pub const MS_INVALIDATE: u32 = 2;
    pub const MS_SYNC: u32 = 4;
}
use bits::*;

/// `MAP_32BIT` places mappings below 2 GiB.
const MAP_32BIT_CEILING: u64 = 0x8000_0000;

fn perms_of(prot: u32) -> Perms {
    Perms {
        read: prot & PROT_READ != 0,
        write: prot & PROT_WRITE != 0,
        execute: prot & PROT_EXEC != 0,
    }
}

/// `len` rounded up to pages; `None` on overflow.
fn page_len(len: u64) -> Option<u64> {
    page_up(len)
}

/// `brk(addr)`: the new break, or the old one if it cannot move.
pub fn sys_brk(p: &Process, a: &SyscallArgs) -> Result<usize> {
    Ok(ops::brk(p, a.u64(0)) as usize)
}

/// What an `mmap` file descriptor provides.
fn file_backing(
    p: &Process,
    fd: i32,
    offset: u64,
    flags: u32,
    prot: u32,
) -> Result<(Backing, bool)> {
    let file = p.fds.lock().get(fd)?;
    let status = file.status_flags();
    if status & O_PATH != 0 {
        return_errno!(Errno::EBADF);
    }
    let Some(inode) = file.inode().cloned() else {
        return_errno_with_message!(Errno::ENODEV, "this kind of file cannot be mapped");
    };
    let meta = inode.metadata();
    if meta.file_type == InodeType::CharDevice && meta.rdev == (1, 5) {
        // /dev/zero: anonymous memory, as Linux.
        return Ok((Backing::Anonymous, true));
    }
    if meta.file_type != InodeType::Regular {
        return_errno_with_message!(
            Errno::ENODEV,
            "only regular files and /dev/zero can be mapped"
        );
    }
    let access = status & O_ACCMODE;
    if access == O_WRONLY {
        return_errno!(Errno::EACCES);
    }
    let shared = flags & MAP_TYPE != MAP_PRIVATE;
    if shared && prot & PROT_WRITE != 0 && access != O_RDWR {
        return_errno!(Errno::EACCES);
    }
    // A shared mapping may become writable later only if the file was
    // opened for writing (Linux's `VM_MAYWRITE`).
    Ok((Backing::File { inode, offset }, !shared || access == O_RDWR))
}

/// `mmap(addr, len, prot, flags, fd, offset)`.
pub fn sys_mmap(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (addr, len, prot, flags, fd, offset) =
        (a.u64(0), a.u64(1), a.u32(2), a.u32(3), a.i32(4), a.u64(5));
    if !is_page_aligned(offset) {
        return_errno!(Errno::EINVAL);
    }
    let anonymous = flags & MAP_ANONYMOUS != 0;
    let file = if anonymous {
        None
    } else {
        p.fds.lock().get(fd)?;
        Some(fd)
    };
    if flags & MAP_HUGETLB != 0 && anonymous {
        return_errno_with_message!(Errno::ENOMEM, "no huge pages are reserved");
    }
    if len == 0 {
        return_errno!(Errno::EINVAL);
    }
    let len = page_len(len).filter(|&l| l != 0).ok_or(Errno::ENOMEM)?;
    if offset.checked_add(len).is_none() {
        return_errno!(Errno::EOVERFLOW);
    }
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    if len > USER_SPACE_END || (fixed && addr > USER_SPACE_END - len) {
        return_errno!(Errno::ENOMEM);
    }
    if fixed && !is_page_aligned(addr) {
        return_errno!(Errno::EINVAL);
    }
    if fixed && addr < MMAP_MIN_ADDR {
        return_errno_with_message!(Errno::EPERM, "below vm.mmap_min_addr");
    }
    match flags & MAP_TYPE {
        MAP_SHARED | MAP_PRIVATE => {}
        MAP_SHARED_VALIDATE => {
            if flags & !VALIDATED != 0 {
                return_errno!(Errno::EOPNOTSUPP);
            }
        }
        _ => return_errno!(Errno::EINVAL),
    }
    let shared = flags & MAP_TYPE != MAP_PRIVATE;
    if anonymous && shared && flags & MAP_GROWSDOWN != 0 {
        return_errno!(Errno::EINVAL);
    }
    let (backing, may_write) = match file {
        None => (Backing::Anonymous, true),
        Some(fd) => file_backing(p, fd, offset, flags, prot)?,
    };
    let populate = flags & MAP_POPULATE != 0 && matches!(backing, Backing::Anonymous);
    let placement = if flags & MAP_FIXED_NOREPLACE != 0 {
        Placement::FixedNoReplace(addr)
    } else if flags & MAP_FIXED != 0 {
        Placement::Fixed(addr)
    } else if flags & MAP_32BIT != 0 {
        let low =
            p.vm.lock()
                .find_free_below(len, MAP_32BIT_CEILING)
                .ok_or(Errno::ENOMEM)?;
        Placement::Hint(low)
    } else {
        Placement::Hint(addr)
    };
    let req = MapRequest {
        placement,
        len,
        perms: perms_of(prot),
        shared,
        may_write,
        backing,
        name: VmaName::None,
        // Thread stacks are not charged either (see `crate::mm::commit`).
        noreserve: flags & (MAP_NORESERVE | MAP_STACK) != 0,
    };
    let start = ops::map(p, req)?;
    if populate && let Err(e) = ops::populate_now(p, start, start + len) {
        ops::unmap(p, start, start + len);
        return Err(e);
    }
    Ok(start as usize)
}

/// `munmap(addr, len)`.
pub fn sys_munmap(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (addr, len) = (a.u64(0), a.u64(1));
    if !is_page_aligned(addr) || addr > USER_SPACE_END || len > USER_SPACE_END - addr {
        return_errno!(Errno::EINVAL);
    }
    let len = page_len(len).filter(|&l| l != 0).ok_or(Errno::EINVAL)?;
    ops::unmap(p, addr, addr + len);
    Ok(0)
}

/// `mprotect(addr, len, prot)`; `PROT_GROWSDOWN` extends the range to the
/// start of a grows-down area.
pub fn sys_mprotect(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (mut start, len, prot) = (a.u64(0), a.u64(1), a.u32(2));
    let grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
    let prot = prot & !grows;
    if grows == PROT_GROWSDOWN | PROT_GROWSUP {
        return_errno!(Errno::EINVAL);
    }
    if !is_page_aligned(start) {
        return_errno!(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let len = page_len(len).ok_or(Errno::ENOMEM)?;
    let end = start
        .checked_add(len)
        .filter(|&e| e > start)
        .ok_or(Errno::ENOMEM)?;
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM) != 0 {
        return_errno!(Errno::EINVAL);
    }
    if grows != 0 {
        let vm = p.vm.lock();
        let Some(v) = vm.first_above(start).filter(|v| v.start < end) else {
            return_errno!(Errno::ENOMEM);
        };
        if grows == PROT_GROWSUP || !v.grows_down {
            return_errno!(Errno::EINVAL);
        }
        start = v.start;
    }
    if end > USER_SPACE_END {
        return_errno!(Errno::ENOMEM);
    }
    ops::protect(p, start, end, perms_of(prot))?;
    Ok(0)
}

/// `mremap(old, old_len, new_len, flags, new_addr)`.
pub fn sys_mremap(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (old, old_len, new_len, flags, new_addr) =
        (a.u64(0), a.u64(1), a.u64(2), a.u32(3), a.u64(4));
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
        || (flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0)
    {
        return_errno!(Errno::EINVAL);
    }
    if flags & MREMAP_DONTUNMAP != 0 {
        return_errno_with_message!(Errno::EINVAL, "MREMAP_DONTUNMAP is not supported");
    }
    if !is_page_aligned(old) {
        return_errno!(Errno::EINVAL);
    }
    let old_len = page_len(old_len).ok_or(Errno::EINVAL)?;
    let new_len = page_len(new_len).filter(|&l| l != 0).ok_or(Errno::EINVAL)?;
    if old_len == 0 {
        return_errno_with_message!(
            Errno::EINVAL,
            "duplicating a mapping (old_len 0) is not supported"
        );
    }
    let fixed = if flags & MREMAP_FIXED != 0 {
        if !is_page_aligned(new_addr)
            || new_len > USER_SPACE_END
            || new_addr > USER_SPACE_END - new_len
            || (old.saturating_add(old_len) > new_addr && new_addr + new_len > old)
        {
            return_errno!(Errno::EINVAL);
        }
        if new_addr < MMAP_MIN_ADDR {
            return_errno!(Errno::EPERM);
        }
        Some(new_addr)
    } else {
        None
    };
    if old > USER_SPACE_END || old_len > USER_SPACE_END - old {
        return_errno!(Errno::EFAULT);
    }
    let mode = RemapMode {
        may_move: flags & MREMAP_MAYMOVE != 0,
        fixed,
    };
    Ok(ops::remap(p, old, old_len, new_len, mode)? as usize)
}

/// Validates a page-aligned `(start, len)` for `msync`/`madvise`: the
/// end, or `None` for an empty range.
fn range_end(start: u64, len: u64, overflow: Errno) -> Result<Option<u64>> {
    if !is_page_aligned(start) {
        return_errno!(Errno::EINVAL);
    }
    let len = page_len(len).ok_or(overflow)?;
    let end = start.checked_add(len).ok_or(overflow)?;
    Ok((end != start).then_some(end))
}

/// `msync(addr, len, flags)`: nothing to write back (shared file
/// mappings map the in-memory file's own pages, so the file has every
/// store already); checks the range is mapped.
pub fn sys_msync(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let flags = a.u32(2);
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || (flags & MS_ASYNC != 0 && flags & MS_SYNC != 0)
    {
        return_errno!(Errno::EINVAL);
    }
    if let Some(end) = range_end(a.u64(0), a.u64(1), Errno::ENOMEM)?
        && !p.vm.lock().is_covered(a.u64(0), end)
    {
        return_errno!(Errno::ENOMEM);
    }
    Ok(0)
}

/// `mincore(addr, len, vec)`: 1 for each present page, 0 for a page not
/// populated yet.
pub fn sys_mincore(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (start, len, vec_addr) = (a.u64(0), a.u64(1), a.u64(2));
    if !is_page_aligned(start) {
        return_errno!(Errno::EINVAL);
    }
    let end = start
        .checked_add(len)
        .filter(|&e| e <= USER_SPACE_END)
        .ok_or(Errno::ENOMEM)?;
    let pages = (end - start).div_ceil(PAGE_SIZE);
    let out = UserSliceWrite::new(vec_addr, pages as usize)?;
    let end = start + pages * PAGE_SIZE;
    let bytes = {
        let vm = p.vm.lock();
        if !vm.is_covered(start, end) {
            return_errno!(Errno::ENOMEM);
        }
        if pages > 1 << 24 {
            return_errno!(Errno::ENOMEM);
        }
        let mut bytes = crate::fallible::zeroed(pages as usize)?;
        bytes.fill(1);
        for r in vm.unpopulated_in(start, end) {
            let from = ((r.start - start) / PAGE_SIZE) as usize;
            let to = ((r.end - start) / PAGE_SIZE) as usize;
            bytes[from..to].fill(0);
        }
        bytes
    };
    out.write(&*p.platform, &bytes)?;
    Ok(0)
}

/// `madvise` advice values (`asm-generic/mman-common.h`).
#[allow(missing_docs, reason = "the names are Linux's; see madvise(2)")]
pub mod advice {
    pub const MADV_NORMAL: i32 = 0;
    pub const MADV_RANDOM: i32 = 1;
    pub const MADV_SEQUENTIAL: i32 = 2;
    pub const MADV_WILLNEED: i32 = 3;
    pub const MADV_DONTNEED: i32 = 4;
    pub const MADV_FREE: i32 = 8;
    pub const MADV_REMOVE: i32 = 9;
    pub const MADV_DONTFORK: i32 = 10;
    pub const MADV_DOFORK: i32 = 11;
    pub const MADV_MERGEABLE: i32 = 12;
    pub const MADV_UNMERGEABLE: i32 = 13;
    pub const MADV_HUGEPAGE: i32 = 14;
    pub const MADV_NOHUGEPAGE: i32 = 15;
    pub const MADV_DONTDUMP: i32 = 16;
    pub const MADV_DODUMP: i32 = 17;
    pub const MADV_WIPEONFORK: i32 = 18;
    pub const MADV_KEEPONFORK: i32 = 19;
    pub const MADV_COLD: i32 = 20;
    pub const MADV_PAGEOUT: i32 = 21;
    pub const MADV_POPULATE_READ: i32 = 22;
    pub const MADV_POPULATE_WRITE: i32 = 23;
    pub const MADV_DONTNEED_LOCKED: i32 = 24;
    pub const MADV_COLLAPSE: i32 = 25;
}
use advice::*;

/// `madvise(addr, len, advice)`: `MADV_DONTNEED(_LOCKED)` discards
/// private pages (zero again, or the file's bytes); `MADV_REMOVE` zeroes
/// shared anonymous memory (`EINVAL` on private mappings, as Linux);
/// `MADV_FREE` and `MADV_WIPEONFORK` need private anonymous memory; the
/// other hints change nothing a program can observe here.
pub fn sys_madvise(p: &Process, a: &SyscallArgs) -> Result<usize> {
    let (start, len, adv) = (a.u64(0), a.u64(1), a.i32(2));
    let known = matches!(
        adv,
        MADV_NORMAL
            | MADV_RANDOM
            | MADV_SEQUENTIAL
            | MADV_WILLNEED
            | MADV_DONTNEED
            | MADV_FREE
            | MADV_REMOVE
            | MADV_DONTFORK
            | MADV_DOFORK
            | MADV_MERGEABLE
            | MADV_UNMERGEABLE
            | MADV_HUGEPAGE
            | MADV_NOHUGEPAGE
            | MADV_DONTDUMP
            | MADV_DODUMP
            | MADV_WIPEONFORK
            | MADV_KEEPONFORK
            | MADV_COLD
            | MADV_PAGEOUT
            | MADV_POPULATE_READ
            | MADV_POPULATE_WRITE
            | MADV_DONTNEED_LOCKED
            | MADV_COLLAPSE
    );
    if !known {
        return_errno!(Errno::EINVAL);
    }
    let Some(end) = range_end(start, len, Errno::EINVAL)? else {
        return Ok(0);
    };
    if end > USER_SPACE_END {
        return_errno!(Errno::ENOMEM);
    }
    match adv {
        MADV_DONTNEED | MADV_DONTNEED_LOCKED => ops::discard(p, start, end)?,
        MADV_REMOVE | MADV_FREE | MADV_WIPEONFORK => {
            let want_shared = adv == MADV_REMOVE;
            let vm = p.vm.lock();
            let ok = vm
                .overlapping(start, end)
                .all(|v| v.shared == want_shared && matches!(v.backing, Backing::Anonymous));
            let covered = vm.is_covered(start, end);
            drop(vm);
            if !ok {
                return_errno!(Errno::EINVAL);
            }
            if adv == MADV_REMOVE {
                ops::zero_shared(p, start, end)?;
            }
            if !covered {
                return_errno!(Errno::ENOMEM);
            }
        }
        _ => {
            if !p.vm.lock().is_covered(start, end) {
                return_errno!(Errno::ENOMEM);
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod commit_tests;
#[cfg(test)]
mod shared_file_tests;
#[cfg(test)]
mod tests;
