//! Boot time: from spawning QEMU to the kernel's `Cloister ready` line, per
//! accelerator, over several runs.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};

use super::stats::{Spread, ms, spread};
use crate::qemu::{self, Accel, QemuConfig};

/// The line the kernel prints when it is up.
pub const READY_LINE: &str = "Cloister ready";

/// Boots `kernel` `runs` times under `accel`; returns the time to the ready
/// line for each run.
pub fn measure(kernel: &Path, accel: Accel, runs: usize) -> Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut config = QemuConfig::new(kernel)?;
        config.accel = accel;
        config.cmdline = "log=warn demo.ticks=1".into();
        config.timeout = Duration::from_secs(60);
        config.idle_timeout = Duration::from_secs(30);
        let mut ready = None;
        let report = qemu::run(&config, |line, at| {
            if ready.is_none() && line.contains(READY_LINE) {
                ready = Some(at);
            }
        })?;
        match ready {
            Some(at) if report.outcome.is_success() => out.push(at),
            _ => bail!(
                "{} boot did not reach `{READY_LINE}`: {}",
                accel.name(),
                report.outcome
            ),
        }
    }
    Ok(out)
}

/// A Markdown table row for one accelerator's results.
pub fn row(accel: Accel, s: &Spread) -> String {
    format!(
        "| {} | {} | {} | {} | {} |",
        accel.name().to_uppercase(),
        s.count,
        ms(s.median),
        ms(s.min),
        ms(s.max)
    )
}

/// Runs the benchmark for each accelerator and prints the table. An
/// accelerator that fails (no `/dev/kvm`) is reported, not fatal.
pub fn run(kernel: &Path, accels: &[Accel], runs: usize) -> Result<()> {
    if runs < 3 {
        bail!("use at least 3 runs: a median of fewer says nothing on a noisy machine");
    }
    println!("| accelerator | runs | median ms | min ms | max ms |");
    println!("|---|---|---|---|---|");
    for &accel in accels {
        match measure(kernel, accel, runs) {
            Ok(samples) => {
                let s = spread(&samples).expect("runs >= 3");
                println!("{}", row(accel, &s));
            }
            Err(e) => println!("| {} | – | failed: {e} | | |", accel.name().to_uppercase()),
        }
    }
    Ok(())
}
