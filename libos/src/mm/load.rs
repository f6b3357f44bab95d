//! [`load_image`]: materialises a [`ProcessImage`] in a fresh address
//! space at `execve` — segments, stack, heap — and records every area.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Range;

use super::ops::{READ_WRITE, fill_from_file, present_parts};
use super::vm::Vm;
use super::vma::{Backing, Vma, VmaName};
use super::{page_up, rlimit_stack_bytes};
use crate::elf::{PAGE_SIZE, Perms};
use crate::error::{Errno, Result};
use crate::exec::{ImageSegment, ImageSource, ProcessImage};
use crate::fs::InodeRef;
use crate::process::Process;
use crate::return_errno_with_message;

/// How much of the stack, from its top, is present at exec; below that
/// (down to `RLIMIT_STACK`) pages are populated by
/// [`handle_page_fault`](super::handle_page_fault) on first touch.
pub const STACK_PRESENT_BYTES: u64 = 1 << 20;

/// Replaces the process's address space with `image`: unmaps every old
/// area; maps the pages wholly covered by a segment's file bytes as file
/// areas left unpopulated (read from the file on first touch, so an exec
/// costs what the program touches, as Linux's); maps the other segment
/// pages zeroed with their final permissions and copies their file bytes
/// in (`AddressSpace::fill` ignores protection),
/// reserves the stack (`RLIMIT_STACK` bytes below the stack top, grows
/// down, the top [`STACK_PRESENT_BYTES`] present) and writes the initial
/// stack, and starts the heap at `image.brk_start`. Returns the initial
/// `rsp`.
///
/// Errors: `ENOMEM` (out of frames), `ENOEXEC` for a segment whose bytes
/// lie outside its file. On error the old address space is already gone:
/// the caller must not return to the program.
pub fn load_image(process: &Process, image: &ProcessImage) -> Result<u64> {
    let platform = &*process.platform;
    let stack = &image.stack;
    let stack_end = stack
        .rsp
        .checked_add(stack.bytes.len() as u64)
        .and_then(page_up)
        .ok_or(Errno::EFAULT)?;
    let stack_limit = rlimit_stack_bytes(process);
    *process.image.lock() = (image.exe_path.clone(), image.cmdline.clone());
    let mut vm = process.vm.lock();
    for v in vm.areas() {
        platform.unmap(v.start, v.len());
    }
    *vm = Vm::new(stack_end, stack_limit);

    let exe_name = VmaName::Path(Arc::from(image.exe_path.as_slice()));
    let interp_name = image
        .interp_path
        .as_ref()
        .map_or(VmaName::None, |p| VmaName::Path(Arc::from(p.as_slice())));
    let lazy: Vec<Range<u64>> = image
        .segments
        .iter()
        .map(|seg| lazy_pages(seg, &image.segments, inode_of(image, seg.source).is_some()))
        .collect();
    for (range, perms) in &image.protections {
        for r in outside(range.clone(), &lazy) {
            platform.map_zeroed(r.start, r.end - r.start, *perms)?;
        }
    }
    for (seg, lazy) in image.segments.iter().zip(&lazy) {
        let m = &seg.mapping;
        let (bytes, name) = match seg.source {
            ImageSource::Executable => (&image.exe_image[..], &exe_name),
            ImageSource::Interpreter => {
                (image.interp_image.as_deref().unwrap_or(&[]), &interp_name)
            }
        };
        // The segment's bytes on the pages that are not mapped from the
        // file: the first and last (partial or shared) ones, read from the
        // file (or from the image's bytes when it names no file).
        let file_end = m
            .file_vaddr
            .checked_add(m.file_bytes)
            .ok_or(Errno::ENOEXEC)?;
        for r in outside(m.file_vaddr..file_end, core::slice::from_ref(lazy)) {
            let offset = m.file_offset + (r.start - m.file_vaddr);
            match inode_of(image, seg.source) {
                Some(inode) => {
                    let got = fill_from_file(platform, &inode, offset, r.start, r.end - r.start)?;
                    if got < r.end - r.start {
                        return_errno_with_message!(Errno::ENOEXEC, "segment outside its file");
                    }
                }
                None => {
                    let piece = usize::try_from(offset)
                        .ok()
                        .zip(usize::try_from(r.end - r.start).ok())
                        .and_then(|(off, n)| bytes.get(off..off.checked_add(n)?));
                    let Some(piece) = piece else {
                        return_errno_with_message!(Errno::ENOEXEC, "segment outside its file");
                    };
                    platform.fill(r.start, piece)?;
                }
            }
        }
        for (range, perms) in &image.protections {
            let (s, e) = (range.start.max(m.pages.start), range.end.min(m.pages.end));
            if s >= e || !vm.is_free(s, e) {
                continue;
            }
            // Charged: the segment's bytes are the program's own (not
            // checked: the old image's charge is gone, and a program
            // larger than memory fails on the frames).
            let (ls, le) = (lazy.start.max(s), lazy.end.min(e));
            if ls < le
                && let Some(inode) = inode_of(image, seg.source)
            {
                // Whole pages of file bytes: read from the file when first
                // touched, as Linux maps them.
                // Congruent, so this does not underflow (see `lazy_pages`).
                let offset = m.file_offset + ls - m.file_vaddr;
                vm.insert(Vma {
                    accounted: true,
                    backing: Backing::File { inode, offset },
                    ..Vma::anonymous(ls, le, *perms, name.clone())
                });
                vm.unpopulated.insert(ls..le);
            }
            for r in outside(s..e, core::slice::from_ref(lazy)) {
                vm.insert(Vma {
                    accounted: true,
                    ..Vma::anonymous(r.start, r.end, *perms, name.clone())
                });
            }
        }
    }

    if let (Some(crate::vdso::BASE), Some(vdso)) = (image.vdso, &process.vdso) {
        vdso.map_into(&mut vm);
    }

    let stack_start = stack_end.saturating_sub(stack_limit).max(PAGE_SIZE);
    let present = (stack.rsp & !(PAGE_SIZE - 1))
        .min(stack_end.saturating_sub(STACK_PRESENT_BYTES))
        .max(stack_start);
    let stack_perms = Perms {
        execute: image.executable_stack,
        ..READ_WRITE
    };
    if !vm.is_free(stack_start, stack_end) {
        return_errno_with_message!(Errno::ENOMEM, "the stack overlaps the image");
    }
    platform.map_zeroed(present, stack_end - present, stack_perms)?;
    platform.fill(stack.rsp, &stack.bytes)?;
    vm.unpopulated.insert(stack_start..present);
    vm.insert(Vma {
        grows_down: true,
        backing: Backing::Anonymous,
        ..Vma::anonymous(stack_start, stack_end, stack_perms, VmaName::Stack)
    });
    vm.brk_start = image.brk_start;
    vm.brk = image.brk_start;
    Ok(stack.rsp)
}

/// The file of a segment's bytes, when the image names it.
fn inode_of(image: &ProcessImage, source: ImageSource) -> Option<InodeRef> {
    match source {
        ImageSource::Executable => image.exe_inode.clone(),
        ImageSource::Interpreter => image.interp_inode.clone(),
    }
}

/// The pages of `seg` that can be mapped from its file on first touch:
/// those wholly covered by its file bytes (counting, on the first page,
/// the file bytes before the segment, as Linux maps whole pages) and used
/// by no other segment; empty when the file offset and the address are
/// not congruent modulo the page size (then everything is copied at exec).
fn lazy_pages(seg: &ImageSegment, all: &[ImageSegment], has_file: bool) -> Range<u64> {
    let m = &seg.mapping;
    let congruent = m.file_vaddr % PAGE_SIZE == m.file_offset % PAGE_SIZE;
    let Some(file_end) = m.file_vaddr.checked_add(m.file_bytes) else {
        return 0..0;
    };
    if !has_file || !congruent {
        return 0..0;
    }
    let mut start = (m.file_vaddr & !(PAGE_SIZE - 1)).max(m.pages.start);
    let mut end = (file_end & !(PAGE_SIZE - 1)).min(m.pages.end);
    for other in all.iter().filter(|o| !core::ptr::eq(*o, seg)) {
        let p = &other.mapping.pages;
        if p.start < end && start < p.end {
            if p.start <= start {
                start = p.end;
            } else {
                end = p.start;
            }
        }
    }
    if start < end { start..end } else { 0..0 }
}

/// The parts of `range` outside the `holes` (empty ones ignored, in any
/// order), ascending.
fn outside(range: Range<u64>, holes: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut holes: Vec<Range<u64>> = holes.iter().filter(|h| h.start < h.end).cloned().collect();
    holes.sort_by_key(|h| h.start);
    present_parts(range, &holes)
}
