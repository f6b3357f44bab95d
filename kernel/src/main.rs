//! The `kernel` binary: Cloister booting into its Linux-ABI run mode.
//!
//! With an initramfs (`cloister run`) it runs the unmodified Linux program
//! the image names; without one it shows the timer ticking and powers off.
//! Everything is in the `kernel` library; this image is one of its
//! applications ([`kernel::linux_abi_main`] through `entry!(machine: …)`),
//! as `kernel/examples/` are others (docs/RUNTIME.md).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

kernel::entry!(machine: kernel::linux_abi_main);
