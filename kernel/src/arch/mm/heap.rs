//! The kernel heap: the slab allocator from `allocator/` as the global
//! allocator, drawing page runs from the frame allocator through the direct
//! map. Its statistics are printed at shutdown.

use core::ptr::NonNull;

use allocator::{AllocStats, CpuLocal, PageSource, SlabAllocator};
use x86_64::instructions::interrupts;

use super::{PHYS_OFFSET, frames, phys_to_virt};

#[global_allocator]
static HEAP: SlabAllocator = SlabAllocator::new();

/// Page runs from the frame allocator, as direct-map addresses.
#[derive(Debug)]
struct KernelPages;

// SAFETY: runs come from the frame allocator, so they are exclusive until
// freed; frames are 4 KiB aligned, and the direct map maps all RAM RW. The
// frame allocator's lock masks interrupts, so the methods may be called
// from any context, including interrupt handlers.
unsafe impl PageSource for KernelPages {
    fn alloc_pages(&self, count: usize) -> Option<NonNull<u8>> {
        let paddr = frames::alloc_contiguous(count, 1)?;
        NonNull::new(phys_to_virt(paddr) as *mut u8)
    }

    unsafe fn free_pages(&self, ptr: NonNull<u8>, count: usize) {
        let paddr = ptr.as_ptr() as u64 - PHYS_OFFSET;
        if let Err(e) = frames::free(paddr, count) {
            panic!("heap returned pages the frame allocator refuses: {e}");
        }
    }

    unsafe fn grow_pages(&self, ptr: NonNull<u8>, count: usize, new_count: usize) -> bool {
        let paddr = ptr.as_ptr() as u64 - PHYS_OFFSET;
        new_count > count && frames::try_extend(paddr, count, new_count - count)
    }
}

/// The running CPU (its index, `arch::smp::cpu_index`), with interrupt
/// masking for the allocator's shared paths.
#[derive(Debug)]
struct KernelCpu;

impl CpuLocal for KernelCpu {
    fn cpu_id(&self) -> usize {
        crate::arch::smp::cpu_index()
    }

    fn irq_save(&self) -> usize {
        let enabled = interrupts::are_enabled();
        interrupts::disable();
        usize::from(enabled)
    }

    fn irq_restore(&self, saved: usize) {
        if saved != 0 {
            interrupts::enable();
        }
    }
}

static PAGES: KernelPages = KernelPages;
static CPU: KernelCpu = KernelCpu;

/// Connects the heap to the frame allocator. Before this, allocation
/// returns null (and the kernel does not allocate).
pub fn init() {
    // SAFETY: each CPU reports its own index (`smp::cpu_index`: 0 until an
    // AP starts, then IA32_TSC_AUX — set by each AP before it first
    // allocates — or the AP whose stacks hold the stack pointer; distinct
    // per CPU and below `allocator::MAX_CPUS`), and nothing preempts or migrates a
    // caller inside the allocator (kernel code never moves between CPUs;
    // interrupt handlers that allocate find the per-CPU cache claimed and
    // use the depot), so no two CPUs use one id at the same time.
    if unsafe { HEAP.init_exclusive(&PAGES, &CPU) }.is_err() {
        log::warn!("heap initialised twice");
    }
}

/// A snapshot of the heap's statistics.
pub fn stats() -> AllocStats {
    HEAP.stats()
}

/// Returns cached and empty slabs to the frame allocator.
pub fn trim() {
    HEAP.trim();
}
