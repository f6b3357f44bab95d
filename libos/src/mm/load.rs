//! [`load_image`]: materialises a [`ProcessImage`] in a fresh address
//! space at `execve` — segments, stack, heap — and records every area.

use alloc::sync::Arc;

use super::ops::READ_WRITE;
use super::vm::Vm;
use super::vma::{Backing, Vma, VmaName};
use super::{page_up, rlimit_stack_bytes};
use crate::elf::{PAGE_SIZE, Perms};
use crate::error::{Errno, Result};
use crate::exec::{ImageSource, ProcessImage};
use crate::process::Process;
use crate::return_errno_with_message;

/// How much of the stack, from its top, is present at exec; below that
/// (down to `RLIMIT_STACK`) pages are populated by
/// [`handle_page_fault`](super::handle_page_fault) on first touch.
pub const STACK_PRESENT_BYTES: u64 = 1 << 20;

/// Replaces the process's address space with `image`: unmaps every old
/// area, maps each segment's pages zeroed with their final permissions,
/// copies the file bytes in (`AddressSpace::fill` ignores protection),
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
    for (range, perms) in &image.protections {
        platform.map_zeroed(range.start, range.end - range.start, *perms)?;
    }
    for seg in &image.segments {
        let m = &seg.mapping;
        let (bytes, name) = match seg.source {
            ImageSource::Executable => (&image.exe_image[..], &exe_name),
            ImageSource::Interpreter => {
                (image.interp_image.as_deref().unwrap_or(&[]), &interp_name)
            }
        };
        let file = usize::try_from(m.file_offset)
            .ok()
            .zip(usize::try_from(m.file_bytes).ok())
            .and_then(|(off, n)| bytes.get(off..off.checked_add(n)?));
        let Some(file) = file else {
            return_errno_with_message!(Errno::ENOEXEC, "segment outside its file");
        };
        platform.fill(m.file_vaddr, file)?;
        for (range, perms) in &image.protections {
            let (s, e) = (range.start.max(m.pages.start), range.end.min(m.pages.end));
            if s < e && vm.is_free(s, e) {
                // Charged: the segment's bytes are the program's own
                // (not checked: the old image's charge is gone, and a
                // program larger than memory fails on the frames).
                vm.insert(Vma {
                    accounted: true,
                    ..Vma::anonymous(s, e, *perms, name.clone())
                });
            }
        }
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
