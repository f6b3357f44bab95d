//! Measuring the TSC frequency against the 8254 PIT (1.193182 MHz).
//!
//! Channel 0 counts down in mode 2; we read it with latch commands (no
//! speaker-gate port 0x61, which `microvm` lacks) and time a fixed number of
//! PIT ticks with the TSC. Each port access exits to the VMM (~8 µs under the
//! software KVM here), so a 20 ms window keeps the error well under 1 %.

use crate::platform::port;

/// The PIT input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;
const PIT_CH0: u16 = 0x40;
const PIT_CMD: u16 = 0x43;
/// PIT ticks in the calibration window (20 ms).
const WINDOW_TICKS: u16 = 23_864;

fn read_counter() -> u16 {
    // Latch command for channel 0, then the two counter bytes; the PIT is a
    // fixed PC device used by nothing else once the APIC timer runs.
    port::write_u8(PIT_CMD, 0x00);
    let lo = port::read_u8(PIT_CH0);
    let hi = port::read_u8(PIT_CH0);
    u16::from_le_bytes([lo, hi])
}

/// Measures the TSC frequency in Hz, or `None` if the PIT does not count
/// (no PIT on this machine).
pub fn measure_tsc_hz() -> Option<u64> {
    // Channel 0 in mode 2, lobyte/hibyte, binary, with the full count
    // 0xffff; its IRQ 0 is masked at the PIC.
    port::write_u8(PIT_CMD, 0x34);
    port::write_u8(PIT_CH0, 0xff);
    port::write_u8(PIT_CH0, 0xff);
    let give_up = crate::time::rdtsc().wrapping_add(20_000_000_000);
    let first = read_counter();
    // Start at a counter transition, so the window starts on a tick edge.
    let mut start = first;
    while start == first {
        if crate::time::rdtsc() > give_up {
            return None;
        }
        start = read_counter();
    }
    let tsc_start = crate::time::rdtsc();
    loop {
        let now = read_counter();
        // Mode 2 counts down and reloads at 1; u16 wrap-around keeps the
        // elapsed-tick arithmetic right across one reload.
        let elapsed = start.wrapping_sub(now);
        if (WINDOW_TICKS..u16::MAX / 2 + WINDOW_TICKS).contains(&elapsed) {
            let tsc_end = crate::time::rdtsc();
            let cycles = tsc_end - tsc_start;
            return Some(cycles * PIT_HZ / u64::from(elapsed));
        }
        if crate::time::rdtsc() > give_up {
            return None;
        }
    }
}

/// Masks every line of both legacy 8259 PICs: Cloister takes interrupts from
/// the local APIC only.
pub fn mask_legacy_pic() {
    // 0xff to the PIC data ports sets the interrupt mask; without a PIC the
    // writes go nowhere.
    port::write_u8(0x21, 0xff);
    port::write_u8(0xa1, 0xff);
}
