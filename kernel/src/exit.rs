//! Leaving the VM: QEMU's `isa-debug-exit` device (I/O port 0xf4) turns the
//! value `v` written there into the exit status `(v << 1) | 1`.
//!
//! | code | QEMU exit status | meaning |
//! |------|------------------|---------|
//! | [`ExitCode::Success`] `0x10` | 33 | all went well |
//! | [`ExitCode::Failure`] `0x11` | 35 | a test failed, a panic, a fatal exception |
//!
//! Without the device (another VMM), the CPU halts with interrupts off.

use x86_64::instructions::port::Port;

const DEBUG_EXIT_PORT: u16 = 0xf4;

/// What the guest reports to the host on exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// QEMU exits with 33.
    Success = 0x10,
    /// QEMU exits with 35.
    Failure = 0x11,
}

/// Exits QEMU with `code`; halts forever if the device is absent.
pub fn exit(code: ExitCode) -> ! {
    let mut port = Port::<u32>::new(DEBUG_EXIT_PORT);
    // SAFETY: writing to the debug-exit port has no effect other than ending
    // the VM when the device is present; on a machine without it the write
    // goes nowhere.
    unsafe { port.write(code as u32) };
    halt_forever()
}

/// The host's request to stop (an NMI: `cloister run` injects one through
/// QMP when its timeout expires, before it kills QEMU): records it in the
/// audit log, seals the open block so nothing recorded stays
/// unauthenticated, and exits. Runs in the NMI handler.
pub fn host_stop() -> ! {
    x86_64::instructions::interrupts::disable();
    crate::audit::record_host_stop();
    crate::console::emergency_write(format_args!("\ncloister: stopped by the host (NMI)\n"));
    exit(ExitCode::Failure)
}

/// Disables interrupts and halts the CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
