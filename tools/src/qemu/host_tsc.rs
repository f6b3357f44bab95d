//! The host's TSC frequency, which a guest's TSC runs at under QEMU (TCG
//! reads the host's counter; KVM runs it at the host's rate): the Linux
//! guest of `cloister bench linux` gets it as `tsc_early_khz=`, Cloister
//! as `tsc_khz=` (a hint its kernel checks against its own PIT
//! measurement, `libos::boot::tsc`).

use anyhow::{Context, Result};

/// The host's TSC frequency in kHz, from the `cpu MHz` line of
/// `/proc/cpuinfo` (the host kernel's TSC calibration on machines with an
/// invariant TSC; on others the line is a core's current frequency, which
/// Cloister's kernel then refuses as too far from its measurement).
pub fn host_tsc_khz() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/cpuinfo").context("reading /proc/cpuinfo")?;
    tsc_khz_from_cpuinfo(&text)
        .context("no `cpu MHz` line in /proc/cpuinfo: pass the TSC frequency with --tsc-khz")
}

fn tsc_khz_from_cpuinfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu MHz"))?;
    let mhz: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
    (mhz > 0.0).then(|| (mhz * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_khz_comes_from_the_first_cpu_mhz_line() {
        let text =
            "processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2445.406\ncpu MHz\t\t: 1.0\n";
        assert_eq!(tsc_khz_from_cpuinfo(text), Some(2_445_406));
        assert_eq!(tsc_khz_from_cpuinfo("flags: tsc\n"), None);
        assert_eq!(tsc_khz_from_cpuinfo("cpu MHz : nan?\n"), None);
    }
}
