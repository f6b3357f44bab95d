//! Which TSC frequency the kernel's clocks run on: the one the kernel
//! measures against the PIT at boot, or the host's, passed as `tsc_khz=`
//! on the command line.
//!
//! Under QEMU the guest's TSC is the host's (TCG reads the host's counter,
//! KVM runs it at the host's rate unless told otherwise), so the host's
//! kernel's calibration — exact to a few parts per million — is the best
//! figure there is. The kernel's own measurement spans a 20 ms PIT window,
//! and a vCPU descheduled by a loaded host at either end of it makes the
//! clock run hundreds of ppm off (830 ppm fast in one CI rehearsal, which
//! the wall clock then carried until its next resync). The host's figure is
//! only a hint: the host may be wrong (`cpu MHz` on a host whose cores
//! change frequency is not the TSC's) or lie (on a CVM the host is not
//! trusted), so it is taken only when it agrees with the measurement to
//! within [`HINT_TOLERANCE_PPM`]; a hint that far off could at most make
//! the clocks run that much off, as a bad measurement could.

/// How far the host's figure may lie from the PIT measurement and still be
/// taken: 2 %, beyond any measurement error seen under TCG (0.1 %) and
/// within what a core's frequency scaling moves.
pub const HINT_TOLERANCE_PPM: u64 = 20_000;

/// Where the TSC frequency the clocks use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TscSource {
    /// The PIT measurement; no hint was given.
    Measured,
    /// The host's `tsc_khz=`, which agreed with the measurement.
    Host,
    /// The PIT measurement: the host's figure was too far from it.
    HintRejected,
}

/// The TSC frequency (Hz) to use, given the PIT `measured` one and the
/// host's `hint_khz` (kHz).
pub fn choose_tsc_hz(measured: u64, hint_khz: Option<u32>) -> (u64, TscSource) {
    let Some(khz) = hint_khz else {
        return (measured, TscSource::Measured);
    };
    let hinted = u64::from(khz) * 1000;
    let tolerance = u128::from(measured) * u128::from(HINT_TOLERANCE_PPM) / 1_000_000;
    if u128::from(hinted.abs_diff(measured)) <= tolerance {
        (hinted, TscSource::Host)
    } else {
        (measured, TscSource::HintRejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_figure_is_taken_only_near_the_measurement() {
        let measured = 2_602_158_000; // 830 ppm above the host's
        assert_eq!(
            choose_tsc_hz(measured, Some(2_599_998)),
            (2_599_998_000, TscSource::Host)
        );
        assert_eq!(
            choose_tsc_hz(measured, None),
            (measured, TscSource::Measured)
        );
        // A core's current frequency, not the TSC's: 30 % off.
        assert_eq!(
            choose_tsc_hz(measured, Some(3_400_000)),
            (measured, TscSource::HintRejected)
        );
        // The edge: 2 % exactly is still taken, just past it is not.
        assert_eq!(
            choose_tsc_hz(1_000_000_000, Some(1_020_000)).1,
            TscSource::Host
        );
        assert_eq!(
            choose_tsc_hz(1_000_000_000, Some(1_020_001)).1,
            TscSource::HintRejected
        );
        assert_eq!(
            choose_tsc_hz(1_000_000_000, Some(980_000)).1,
            TscSource::Host
        );
    }
}
