//! Kernel stacks with an unmapped guard page below each, so an overflow
//! faults instead of corrupting whatever lies beneath.

use core::sync::atomic::{AtomicU64, Ordering};

use super::paging::{self, DATA};
use super::{PAGE_BYTES, STACKS_BASE, frames};

static NEXT_VADDR: AtomicU64 = AtomicU64::new(STACKS_BASE);

/// A mapped kernel stack.
#[derive(Debug, Clone, Copy)]
pub struct KernelStack {
    /// The unmapped guard page's address.
    pub guard: u64,
    /// Lowest mapped byte.
    pub bottom: u64,
    /// One past the highest byte: the initial stack pointer.
    pub top: u64,
}

/// Allocates and maps a stack of `pages` pages plus a guard page. Virtual
/// addresses are never reused (the stack region is 64 TiB); frames are,
/// through [`free`].
pub fn alloc(pages: u64) -> Option<KernelStack> {
    let guard = NEXT_VADDR.fetch_add((pages + 1) * PAGE_BYTES, Ordering::Relaxed);
    let bottom = guard + PAGE_BYTES;
    for i in 0..pages {
        let frame = frames::alloc()?;
        paging::map_page(bottom + i * PAGE_BYTES, frame, DATA).ok()?;
    }
    Some(KernelStack {
        guard,
        bottom,
        top: bottom + pages * PAGE_BYTES,
    })
}

/// Unmaps `stack` and returns its frames.
///
/// # Safety
/// Nothing may run on the stack or hold a reference into it, now or later.
pub unsafe fn free(stack: &KernelStack) {
    let mut v = stack.bottom;
    while v < stack.top {
        if let Some(frame) = paging::unmap_kernel_page(v)
            && let Err(e) = frames::free(frame, 1)
        {
            log::error!("freeing a stack frame: {e:?}");
        }
        v += PAGE_BYTES;
    }
}

/// Switches to `stack` and calls `f` there; never returns.
pub fn run_on(stack: &KernelStack, f: extern "C" fn() -> !) -> ! {
    // SAFETY: `stack.top` is the 16-byte-aligned top of a mapped, unused
    // stack; `f` never returns, so abandoning the current stack is sound
    // (nothing on it is used again).
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "xor ebp, ebp",
            "call {f}",
            "ud2",
            top = in(reg) stack.top,
            f = in(reg) f,
            options(noreturn),
        )
    }
}
