//! Turning a CMOS real-time-clock reading into Unix time.
//!
//! The kernel reads the RTC registers (seconds … year, in BCD or binary,
//! 12- or 24-hour) once at boot; [`RtcReading::unix_seconds`] does the
//! decoding and the calendar arithmetic, so it can be tested here.

/// Raw RTC register values as read from CMOS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcReading {
    /// Register 0x00.
    pub seconds: u8,
    /// Register 0x02.
    pub minutes: u8,
    /// Register 0x04 (bit 7 = PM in 12-hour mode).
    pub hours: u8,
    /// Register 0x07.
    pub day: u8,
    /// Register 0x08.
    pub month: u8,
    /// Register 0x09 (two digits).
    pub year: u8,
    /// Register 0x32 (the century, if the machine has it; 0 = unknown).
    pub century: u8,
    /// Status register B (bit 2: binary mode, bit 1: 24-hour mode).
    pub status_b: u8,
}

fn bcd(v: u8) -> u8 {
    (v >> 4) * 10 + (v & 0x0f)
}

/// Days from 1970-01-01 to `y-m-d` (proleptic Gregorian), after Howard
/// Hinnant's `days_from_civil`.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl RtcReading {
    /// Seconds since the Unix epoch, or `None` for an impossible reading.
    pub fn unix_seconds(&self) -> Option<u64> {
        let binary = self.status_b & 0x04 != 0;
        let h24 = self.status_b & 0x02 != 0;
        let conv = |v: u8| if binary { v } else { bcd(v) };
        let pm = !h24 && self.hours & 0x80 != 0;
        let mut hours = conv(self.hours & 0x7f);
        if !h24 {
            hours %= 12;
            if pm {
                hours += 12;
            }
        }
        let (s, mi, d, mo) = (
            conv(self.seconds),
            conv(self.minutes),
            conv(self.day),
            conv(self.month),
        );
        let century = match conv(self.century) {
            19..=99 => u32::from(conv(self.century)),
            _ => 20,
        };
        let year = century * 100 + u32::from(conv(self.year));
        if s > 59 || mi > 59 || hours > 23 || !(1..=31).contains(&d) || !(1..=12).contains(&mo) {
            return None;
        }
        let days = days_from_civil(i64::from(year), u32::from(mo), u32::from(d));
        let secs = days * 86_400 + i64::from(hours) * 3600 + i64::from(mi) * 60 + i64::from(s);
        u64::try_from(secs).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 23), 20_780);
    }

    #[test]
    fn bcd_24h() {
        // 2026-11-23 10:34:21 in BCD, 24-hour mode, as QEMU's RTC gives it.
        let r = RtcReading {
            seconds: 0x21,
            minutes: 0x34,
            hours: 0x10,
            day: 0x23,
            month: 0x11,
            year: 0x26,
            century: 0x20,
            status_b: 0x02,
        };
        assert_eq!(r.unix_seconds(), Some(1_795_430_061));
    }

    #[test]
    fn binary_12h_pm_and_garbage() {
        let r = RtcReading {
            seconds: 0,
            minutes: 0,
            hours: 0x80 | 1,
            day: 1,
            month: 1,
            year: 0,
            century: 0,
            status_b: 0x04,
        };
        // 2000-01-01 13:00:00
        assert_eq!(r.unix_seconds(), Some(946_731_600));
        assert_eq!(RtcReading { month: 13, ..r }.unix_seconds(), None);
    }
}
