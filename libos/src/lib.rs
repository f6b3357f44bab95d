//! Cloister's LibOS: the Linux ABI and the boot-time logic that does not need
//! hardware (command line, memory map arithmetic), host-testable behind a
//! platform trait.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod boot;
pub mod bounce;
pub mod cpio;
pub mod cred;
pub mod elf;
pub mod error;
pub mod exec;
pub mod fallible;
pub mod fasync;
pub mod fd;
pub mod fork;
pub mod fs;
pub mod futex;
pub mod ipc;
pub mod itimer;
pub mod mm;
pub mod net;
pub mod platform;
pub mod process;
pub mod ptable;
pub mod ptimer;
pub mod random;
pub mod rlimit;
pub mod signal;
pub mod syscall;
pub mod uio;
pub mod user;
pub mod vdso;
