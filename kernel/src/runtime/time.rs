//! Clocks for a linked application: [`monotonic`] (the TSC, from boot) and
//! [`wall_clock`] (Unix time: the CMOS clock, or the host's with
//! `time.host` on the command line, which `cloister run` passes), the same
//! clocks a Linux program in Cloister sees.

use core::time::Duration;

use libos::platform::Clock;

/// Time since boot; never goes back.
pub fn monotonic() -> Duration {
    Duration::from_nanos(crate::time::now_ns())
}

/// Time since the Unix epoch (1970-01-01 00:00 UTC).
pub fn wall_clock() -> Duration {
    Duration::from_nanos(super::state().platform.realtime_ns())
}
