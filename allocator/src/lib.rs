//! Cloister's memory allocators: the physical frame allocator and (soon) the
//! slab allocator that serves as the kernel's global allocator.
//!
//! Host-testable: every allocator here works over memory handed to it, so the
//! same code runs in the guest over physical frames and on the host over an
//! arena.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod frame;
