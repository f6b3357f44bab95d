//! x86-64 specifics: the PVH entry, descriptor tables, traps, the local APIC
//! timer, the I/O APIC (device interrupt routing), PIT-based TSC calibration,
//! CPU feature control and the application processors (`smp`).

pub mod apic;
pub mod boot;
pub mod catch;
pub mod cpu;
pub mod fpu;
pub mod gdt;
pub mod idt;
pub mod interrupts;
pub mod ioapic;
pub mod irq;
#[cfg(feature = "ktest")]
mod ktests;
pub mod mm;
pub mod pit;
pub mod rtc;
pub mod smp;
pub mod switch;
pub mod trap;
pub mod uaccess;
pub mod user;
#[cfg(feature = "ktest")]
mod user_ktests;
