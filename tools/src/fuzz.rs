//! `cloister fuzz`: random system calls against the kernel, seed by seed.
//!
//! The guest program is `tools/programs/sysfuzz.c` (built with the host's
//! gcc): from a seed it makes random calls with edge-case arguments and
//! keeps itself alive (see its header). Each seed is one boot of Cloister
//! through [`crate::run::run`]. A seed ends in one of three ways:
//! - the program finished its calls (exit status 0): the kernel stood;
//! - the program died (a signal it could not survive, a status other than
//!   0): the program's business, reported but not a failure;
//! - no exit status at all — a kernel panic, a fatal kernel exception, a
//!   triple fault or a hang past the seed's timeout: a **kernel failure**,
//!   reported with the seed, which replays the same calls (`cloister run
//!   --trace -- sysfuzz SEED CALLS` shows the last one).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::run::{RunOptions, run};

/// The fuzzer's source, built on the host at run time.
pub const SOURCE: &str = include_str!("../programs/sysfuzz.c");

/// How one seed ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedOutcome {
    /// All calls made; the kernel stood.
    Completed,
    /// The program ended early with this status (not a kernel failure).
    ProgramDied(u8),
    /// The guest ended without the program's status: the kernel failed.
    KernelFailure(String),
}

/// Builds the fuzzer into `dir` with gcc; returns the executable.
pub fn build(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let src = dir.join("sysfuzz.c");
    let exe = dir.join("sysfuzz");
    std::fs::write(&src, SOURCE)?;
    let status = std::process::Command::new("gcc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .context("cannot run gcc (Debian: apt-get install gcc libc6-dev)")?;
    if !status.success() {
        bail!("building the fuzzer failed ({status})");
    }
    Ok(exe)
}

/// Runs `calls` random calls from `seed` in Cloister (booting `kernel`, or
/// the release kernel), stopping the guest after `timeout`.
pub fn run_seed(
    exe: &Path,
    seed: u64,
    calls: u64,
    kernel: Option<&Path>,
    timeout: Duration,
) -> Result<SeedOutcome> {
    let mut opts = RunOptions::new(exe, [seed.to_string(), calls.to_string()]);
    opts.capture = true;
    opts.memory_mib = 256;
    opts.timeout = Some(timeout);
    opts.kernel = kernel.map(Path::to_path_buf);
    let r = run(&opts)?;
    Ok(match r.status {
        Some(0) => SeedOutcome::Completed,
        Some(status) => SeedOutcome::ProgramDied(status),
        None => {
            let tail: Vec<&str> = r
                .kernel_lines
                .iter()
                .rev()
                .take(8)
                .rev()
                .map(String::as_str)
                .collect();
            SeedOutcome::KernelFailure(format!(
                "{}\n  {}",
                r.diagnosis.unwrap_or_default(),
                tail.join("\n  ")
            ))
        }
    })
}

/// What [`fuzz`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Calls made by seeds that completed.
    pub calls: u64,
    /// Seeds whose program died early.
    pub program_deaths: u64,
    /// Seeds that brought the kernel down.
    pub kernel_failures: Vec<u64>,
}

/// `cloister fuzz`: seeds `start .. start + seeds`, `calls` each, printing
/// a line per seed.
pub fn fuzz(start: u64, seeds: u64, calls: u64, timeout: Duration) -> Result<Summary> {
    crate::deps::ensure_qemu()?;
    let kernel = crate::build::build_kernel(crate::build::KernelBuild {
        release: true,
        ktest: false,
    })?;
    let dir = std::env::temp_dir().join(format!("cloister-fuzz-{}", std::process::id()));
    let exe = build(&dir)?;
    let began = Instant::now();
    let mut summary = Summary::default();
    for seed in start..start + seeds {
        let t = Instant::now();
        let outcome = run_seed(&exe, seed, calls, Some(&kernel), timeout)?;
        summary.seeds += 1;
        match &outcome {
            SeedOutcome::Completed => summary.calls += calls,
            SeedOutcome::ProgramDied(_) => summary.program_deaths += 1,
            SeedOutcome::KernelFailure(_) => summary.kernel_failures.push(seed),
        }
        println!(
            "seed {seed}: {} in {:.1} s",
            match &outcome {
                SeedOutcome::Completed => format!("{calls} calls, kernel stood"),
                SeedOutcome::ProgramDied(s) => format!("program ended early with status {s}"),
                SeedOutcome::KernelFailure(why) => format!(
                    "KERNEL FAILURE (replay: cloister run --trace -- sysfuzz {seed} {calls}): {why}"
                ),
            },
            t.elapsed().as_secs_f64()
        );
    }
    println!(
        "fuzz: {} seeds, {} calls completed, {} early program exits, {} kernel failures, {:.0} s",
        summary.seeds,
        summary.calls,
        summary.program_deaths,
        summary.kernel_failures.len(),
        began.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(summary)
}
