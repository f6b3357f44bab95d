//! Cloister's memory allocators: the physical frame allocator ([`frame`]),
//! the bookkeeping of the shared DMA pool ([`dma`]) and the slab allocator
//! ([`SlabAllocator`]) that serves as the kernel's global allocator.
//!
//! Host-testable: every allocator here works over memory handed to it, so the
//! same code runs in the guest over physical frames and on the host over an
//! arena ([`ArenaPages`]).
//!
//! # The slab allocator
//!
//! Requests up to 1 KiB (and aligned ones up to 7 KiB, [`MAX_SMALL_BYTES`])
//! are rounded to one of the
//! size classes (≤ 12.5 % rounding waste from 64 B up) and served from per-CPU free lists; behind
//! them each class has a depot of partial slabs, carved from page runs a
//! [`PageSource`] hands out. Requests of 1–8 KiB are cut to measure by a
//! best-fit allocator with coalescing (TLSF-style) in chunks of pages.
//! Larger requests are page runs from the page source directly. Refills take from a class's fullest slab, a class with
//! no free object borrows the spare ones of a slightly larger class, and
//! empty slabs go back to the page source beyond a small reserve (8 pages
//! over all classes), so the memory held follows the live set. See
//! `allocator/README.md` for the design and its picture.
//!
//! # Wiring it into a kernel
//!
//! ```ignore
//! use allocator::{CpuLocal, PageSource, SlabAllocator};
//!
//! #[global_allocator]
//! static ALLOC: SlabAllocator = SlabAllocator::new();
//!
//! struct KernelCpu;
//! impl CpuLocal for KernelCpu {
//!     fn cpu_id(&self) -> usize { 0 } // per-CPU index once SMP is up
//!     fn irq_save(&self) -> usize {
//!         let enabled = x86_64::instructions::interrupts::are_enabled();
//!         x86_64::instructions::interrupts::disable();
//!         enabled as usize
//!     }
//!     fn irq_restore(&self, saved: usize) {
//!         if saved != 0 { x86_64::instructions::interrupts::enable(); }
//!     }
//! }
//! static KERNEL_CPU: KernelCpu = KernelCpu;
//!
//! // FRAMES: a `static` implementing `PageSource` over the frame allocator.
//! // SAFETY: one vCPU, and the kernel never preempts or migrates a caller
//! // inside the allocator, so CPU id 0 is exclusive. (With SMP: a per-CPU
//! // index from `cpu_id`, same condition; or the safe `ALLOC.init(..)`.)
//! unsafe { ALLOC.init_exclusive(&FRAMES, &KERNEL_CPU) }.expect("heap initialised once");
//! // ... later, e.g. at shutdown:
//! log::info!("{}", ALLOC.stats());
//! ```
//!
//! The embedder guarantees what [`PageSource`] and [`CpuLocal`] document:
//! the page source hands out exclusive 4 KiB-aligned runs and is safe to call
//! from every CPU (and from interrupt handlers, if they allocate); `irq_save`
//! masks interrupts if interrupt handlers allocate; NMI handlers never
//! allocate. The allocator never holds one of its locks across a call into
//! the page source.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod dma;
pub mod frame;
pub mod ring;

mod arena;
mod bestfit;
mod cache;
mod class;
mod descpool;
mod heap;
mod pagemap;
mod raw;
mod slab;
mod source;
mod stats;

pub use arena::ArenaPages;
pub use class::{MAX_SMALL_BYTES, NUM_CLASSES, PAGE_SIZE};
pub use heap::{AlreadyInitialized, MAX_CPUS, SlabAllocator};
pub use source::{CpuLocal, PageSource, SingleCpu};
pub use stats::{AllocStats, ClassStats};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bestfit;
#[cfg(test)]
mod tests_carve;
#[cfg(test)]
mod tests_fit;
#[cfg(test)]
mod tests_grow;
