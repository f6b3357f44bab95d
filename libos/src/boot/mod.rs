//! Boot-time logic that needs no hardware: the kernel command line, the PVH
//! `hvm_start_info` structures, the physical memory map arithmetic and the
//! firmware tables that list the CPUs ([`cpus`]).
//!
//! The kernel reads guest-physical memory through [`pvh::PhysReader`] and
//! hands the results to [`memmap::MemoryMap`]; [`rtc`] turns a CMOS clock
//! reading into Unix time; [`tsc`] picks the TSC frequency the clocks run
//! on. Everything here is tested on
//! the host against fake memory.

pub mod cmdline;
pub mod cpus;
pub mod host_time;
pub mod memmap;
pub mod pvh;
pub mod rtc;
pub mod tsc;
