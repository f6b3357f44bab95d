//! The host's wall clock for the guest: the kernel (with `time.host` on
//! its command line) writes [`REQUEST_LINE`] on COM1 and reads the answer,
//! `T<nanoseconds since the Unix epoch>\n`, on COM1's input, timing the
//! round trip with its TSC and taking the midpoint (as NTP does). The
//! CMOS clock it would read otherwise has whole seconds only, and QEMU's
//! starts at the host's time with the fraction dropped.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// The guest's request (a COM1 line of its own).
pub const REQUEST_LINE: &str = "CLOISTER_TIME?";

/// The answer to one request: `T<ns>\n`.
pub fn reply(now: SystemTime) -> String {
    let ns = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("T{ns}\n")
}

/// Writes the answer to COM1's input (QEMU's stdin). A guest that is gone
/// is no error here: the run's outcome says what happened.
pub fn answer(com1_in: &mut impl Write) {
    let _ = com1_in
        .write_all(reply(SystemTime::now()).as_bytes())
        .and_then(|()| com1_in.flush());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_reply_is_nanoseconds_since_the_epoch_on_one_line() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(reply(t), "T1700000000123456789\n");
        let parsed = libos::boot::host_time::parse_reply(reply(t).trim_end().as_bytes());
        assert_eq!(parsed, Some(1_700_000_000_123_456_789));
    }
}
