//! Leaving the VM: QEMU's `isa-debug-exit` device (I/O port 0xf4) turns the
//! value `v` written there into the exit status `(v << 1) | 1`.
//!
//! | code | QEMU exit status | meaning |
//! |------|------------------|---------|
//! | [`ExitCode::Success`] `0x10` | 33 | all went well |
//! | [`ExitCode::Failure`] `0x11` | 35 | a test failed, a panic, a fatal exception |
//!
//! Without the device (another VMM), the CPU halts with interrupts off.
//! The platform seam does the leaving ([`crate::platform::Platform::terminate`]):
//! natively the port write above, on a CVM the host's termination request.

use crate::platform::{FailureReason, Termination, platform};

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
    exit_because(code, FailureReason::FatalException)
}

/// Exits with `code`, telling a CVM host `why` on failure.
pub fn exit_because(code: ExitCode, why: FailureReason) -> ! {
    // Bytes still in a UART when QEMU exits are lost.
    crate::app_console::drain();
    crate::console::drain();
    platform().terminate(match code {
        ExitCode::Success => Termination::Success,
        ExitCode::Failure => Termination::Failure(why),
    })
}

/// The host's request to stop (an NMI: `cloister run` injects one through
/// QMP when its timeout expires, before it kills QEMU): records it in the
/// audit log, seals the open block so nothing recorded stays
/// unauthenticated, prints the network counters (`crate::net::summary`)
/// and exits. Runs in the NMI handler.
pub fn host_stop() -> ! {
    crate::arch::interrupts::disable();
    crate::audit::record_host_stop();
    crate::console::emergency_write(format_args!("\ncloister: stopped by the host (NMI)\n"));
    if let Some(line) = crate::run::net_summary() {
        crate::console::emergency_write(format_args!("{line}\n"));
    }
    exit_because(ExitCode::Failure, FailureReason::HostStop)
}

/// Disables interrupts and halts the CPU for good.
pub fn halt_forever() -> ! {
    crate::arch::cpu::halt_forever()
}
