//! Reading the CMOS real-time clock once at boot, for the wall clock.

use libos::boot::rtc::RtcReading;

use crate::platform::port;

fn read_register(reg: u8) -> u8 {
    // The CMOS index/data ports; bit 7 of the index keeps NMIs masked as
    // they are at this point, and reading a register has no side effect
    // besides the index selection.
    port::write_u8(0x70, 0x80 | reg);
    port::read_u8(0x71)
}

fn updating() -> bool {
    read_register(0x0a) & 0x80 != 0
}

/// Longest wait for an update to finish (an update takes under 2 ms; a
/// VMM whose RTC never clears the flag must not hang the boot).
const UPDATE_WAIT_NS: u64 = 10_000_000;

fn read_once() -> RtcReading {
    let deadline = crate::time::now_ns() + UPDATE_WAIT_NS;
    while updating() && crate::time::now_ns() < deadline {
        core::hint::spin_loop();
    }
    RtcReading {
        seconds: read_register(0x00),
        minutes: read_register(0x02),
        hours: read_register(0x04),
        day: read_register(0x07),
        month: read_register(0x08),
        year: read_register(0x09),
        century: read_register(0x32),
        status_b: read_register(0x0b),
    }
}

/// The RTC time in seconds since the Unix epoch (read twice until two
/// readings agree, so an update in between cannot tear it), or `None` if
/// the clock reads nonsense.
pub fn unix_seconds() -> Option<u64> {
    let mut last = read_once();
    for _ in 0..5 {
        let next = read_once();
        if next == last {
            return next.unix_seconds();
        }
        last = next;
    }
    last.unix_seconds()
}
