//! `audit.crash_test=` (test kernels only): ways to die that the host's
//! crash tests (`tests/tests/audit_crash.rs`) boot with a file-backed audit
//! region and then check from the file.
//!
//! - `audit.crash_test=N`: appends N syscall records (record `i` has
//!   `nr = 1000 + i`, `args = [i, 2i, 3i, 4i, 5i, 6i]`, `result = -i`,
//!   `tid = 7`), then an append torn just before its commit mark (what a
//!   guest killed mid-append leaves), removes the log so nothing else is
//!   written, and panics;
//! - `audit.crash_test=ud`: executes `ud2` in the kernel (#UD, fatal);
//! - `audit.crash_test=pf`: reads an unmapped kernel address (#PF, fatal);
//! - `audit.crash_test=panic`: panics.
//!
//! Not in production kernels: whoever controls the command line could
//! otherwise make the kernel write (well-sealed) records of syscalls that
//! never happened.

use ::audit::{Event, SyscallEvent};
use libos::boot::cmdline::KernelArgs;

/// The address `pf` reads.
pub(super) use crate::arch::cpu::UNMAPPED_KERNEL_ADDRESS;

/// The `i`-th crash-test record.
pub(super) fn crash_record(i: u64) -> Event<'static> {
    let args = [i, 2 * i, 3 * i, 4 * i, 5 * i, 6 * i];
    Event::Syscall(SyscallEvent::new(
        1000 + i as u32,
        args,
        -(i as i64),
        7,
        100,
    ))
}

/// Runs the action named by `audit.crash_test=`, if any; never returns then.
pub(super) fn run(args: &KernelArgs<'_>) {
    let Some(action) = args.get("audit.crash_test") else {
        return;
    };
    match action {
        "ud" => {
            crate::kprintln!("audit crash test: executing ud2");
            // The fatal-exception path records it and exits QEMU.
            crate::arch::cpu::raise_invalid_opcode();
        }
        "pf" => {
            crate::kprintln!("audit crash test: reading {UNMAPPED_KERNEL_ADDRESS:#x}");
            crate::arch::cpu::fault_on_unmapped_read();
        }
        "panic" => panic!("audit crash test: panicking on purpose"),
        n => match n.parse::<u64>() {
            Ok(n) => torn_after(n),
            Err(_) => {
                ::log::warn!("audit.crash_test={n}: expected a count, ud, pf or panic");
                return;
            }
        },
    }
    unreachable!("the audit crash test did not crash");
}

/// Appends `n` records, tears the next one, and panics.
fn torn_after(n: u64) -> ! {
    if !super::is_enabled() {
        panic!("audit crash test: auditing is off (no ivshmem device, no audit=SIZE)");
    }
    for i in 0..n {
        assert!(
            super::record_event(&crash_record(i)).is_some(),
            "audit crash test: record {i} was not appended"
        );
    }
    let torn = super::log::with_locked(|log, now| log.append_torn(&crash_record(n), now, 0));
    // The log must not be used after a torn append: take it away so the
    // panic below records nothing.
    let _ = super::log::uninstall();
    crate::kprintln!("audit crash test: {n} records committed, record {n} torn: {torn:?}");
    panic!("audit crash test: dying in the middle of an append");
}
