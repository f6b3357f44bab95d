//! Port I/O through the seam: typed reads and writes
//! ([`read_u8`] … [`write_u32`]) and the `uart_16550` backend
//! ([`SeamPort`], [`uart`]) the consoles use, so no driver issues an
//! `in`/`out` instruction itself (on SEV-SNP and TDX those go through the
//! GHCB or a TDVMCALL).
//!
//! A port access the platform refuses (only possible on a CVM whose host
//! misbehaves) ends the guest: nothing can be reported without the console,
//! which is port I/O itself.

use uart_16550::Uart16550;
use uart_16550::backend::Backend;

use super::{FailureReason, Termination, Width, platform};

fn read(port: u16, width: Width) -> u32 {
    match platform().io_read(port, width) {
        Ok(v) => v,
        Err(_) => platform().terminate(Termination::Failure(FailureReason::Platform)),
    }
}

fn write(port: u16, width: Width, value: u32) {
    if platform().io_write(port, width, value).is_err() {
        platform().terminate(Termination::Failure(FailureReason::Platform));
    }
}

/// Reads a byte from `port`.
pub fn read_u8(port: u16) -> u8 {
    read(port, Width::U8) as u8
}

/// Reads 16 bits from `port`.
pub fn read_u16(port: u16) -> u16 {
    read(port, Width::U16) as u16
}

/// Reads 32 bits from `port`.
pub fn read_u32(port: u16) -> u32 {
    read(port, Width::U32)
}

/// Writes a byte to `port`.
pub fn write_u8(port: u16, value: u8) {
    write(port, Width::U8, u32::from(value));
}

/// Writes 16 bits to `port`.
pub fn write_u16(port: u16, value: u16) {
    write(port, Width::U16, u32::from(value));
}

/// Writes 32 bits to `port`.
pub fn write_u32(port: u16, value: u32) {
    write(port, Width::U32, value);
}

/// A 16550 UART's registers at I/O ports `base .. base + 8`, reached
/// through the seam.
#[derive(Debug, Clone, Copy)]
pub struct SeamPort {
    base: u16,
}

impl Backend for SeamPort {
    unsafe fn read(&mut self, register_offset: u8) -> u8 {
        read_u8(self.base.wrapping_add(u16::from(register_offset)))
    }

    unsafe fn write(&mut self, register_offset: u8, value: u8) {
        write_u8(self.base.wrapping_add(u16::from(register_offset)), value);
    }
}

/// A 16550 UART at I/O base `base` (COM1 0x3f8, COM2 0x2f8, COM3 0x3e8),
/// not yet initialised. `None` if its eight registers would pass port
/// 0xffff.
pub fn uart(base: u16) -> Option<Uart16550<SeamPort>> {
    base.checked_add(7)?;
    // SAFETY: the eight ports from `base` exist in the I/O space (checked
    // above) and a UART's registers cannot make it touch memory; the
    // caller owns the UART at `base` (each console opens its own port
    // once).
    Some(unsafe { Uart16550::new_with_backend(SeamPort { base }) })
}
