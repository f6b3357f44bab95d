//! `cloister fuzz`: random system calls against the kernel, seed by seed.
//!
//! The guest program is `tools/programs/sysfuzz.c` (built with the host's
//! gcc): from a seed it makes random calls with edge-case arguments and
//! keeps itself alive (see its header). Each seed is one boot of Cloister
//! through [`crate::run::run`]. A seed ends in one of three ways:
//! - the program finished its calls (exit status 0): the kernel stood;
//! - the program died (a signal it could not survive, a status other than
//!   0): the program's business, reported with the calls it had made, not
//!   a failure;
//! - no exit status at all (what `cloister run` reports as 125) — a kernel
//!   panic, a fatal kernel exception, a triple fault, or a hang (no output
//!   for [`FuzzOptions::idle_timeout`], or no end within
//!   [`FuzzOptions::timeout`]): a **kernel failure**. The seed is then
//!   replayed with the fuzzer announcing each call from its last progress
//!   report on, which names the call that brought the kernel down.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::run::{RunOptions, run};

/// The fuzzer's source, built on the host at run time.
pub const SOURCE: &str = include_str!("../programs/sysfuzz.c");

/// Builds the fuzzer into `dir` with gcc; returns the executable.
pub fn build(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let src = dir.join("sysfuzz.c");
    let exe = dir.join("sysfuzz");
    std::fs::write(&src, SOURCE)?;
    // No stack protector: a call may point the FS base elsewhere until the
    // fuzzer puts it back, and the canary lives behind FS.
    let status = std::process::Command::new("gcc")
        .args(["-O2", "-Wall", "-fno-stack-protector", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .context("cannot run gcc (Debian: apt-get install gcc libc6-dev)")?;
    if !status.success() {
        bail!("building the fuzzer failed ({status})");
    }
    Ok(exe)
}

/// How a fuzz run boots each seed.
#[derive(Debug, Clone)]
pub struct FuzzOptions {
    /// The fuzzer executable ([`build`]).
    pub exe: PathBuf,
    /// Calls per seed.
    pub calls_per_seed: u64,
    /// The kernel ELF; `None` builds the release kernel.
    pub kernel: Option<PathBuf>,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// A seed whose guest has not ended after this long is a hang.
    pub timeout: Duration,
    /// A seed whose guest prints nothing for this long is a hang (the
    /// fuzzer reports progress every 10,000 calls).
    pub idle_timeout: Duration,
}

impl FuzzOptions {
    /// Defaults: 256 MiB guests, a seed may take 10 minutes and be silent
    /// for 2 (generous for a loaded machine: 10,000 calls take about a
    /// second under TCG).
    pub fn new(exe: PathBuf, calls_per_seed: u64) -> Self {
        Self {
            exe,
            calls_per_seed,
            kernel: None,
            memory_mib: 256,
            timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

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

/// One seed's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// How it ended.
    pub outcome: SeedOutcome,
    /// Calls made: all of them when completed, else those up to the last
    /// progress report.
    pub calls: u64,
    /// For a kernel failure: the last call announced by the replay
    /// (`call N: nr (name) args`), if the replay got that far.
    pub last_call: Option<String>,
}

/// What the fuzzer printed: the last progress or final count of `seed`
/// (stdout also carries whatever the random calls wrote to fd 1).
fn calls_reported(stdout: &[u8], seed: u64) -> (u64, bool) {
    let text = String::from_utf8_lossy(stdout);
    let prefix = format!("sysfuzz seed {seed}: ");
    let mut best = (0, false);
    for (at, _) in text.match_indices(&prefix) {
        let rest = &text[at + prefix.len()..];
        let line = rest.lines().next().unwrap_or("");
        let (number, done) = match line.strip_prefix("progress ") {
            Some(n) => (n, false),
            None => (line.strip_suffix(" calls").unwrap_or(""), true),
        };
        if let Ok(n) = number.parse::<u64>()
            && (n, done) > best
        {
            best = (n, done);
        }
    }
    best
}

/// The last call announced in a replay's output, with its name.
fn last_announced(stdout: &[u8], seed: u64) -> Option<String> {
    let text = String::from_utf8_lossy(stdout);
    let prefix = format!("sysfuzz seed {seed} call ");
    let at = text.rfind(&prefix)?;
    let line = text[at + prefix.len()..].lines().next()?;
    let (index, rest) = line.split_once(": ")?;
    let mut words = rest.split_whitespace();
    let nr: i64 = words.next()?.parse().ok()?;
    let name = usize::try_from(nr)
        .ok()
        .and_then(libos::syscall::syscall_name)
        .unwrap_or("unknown");
    let args: Vec<&str> = words.collect();
    Some(format!("call {index}: {name} ({nr}) ({})", args.join(", ")))
}

fn boot(
    opts: &FuzzOptions,
    seed: u64,
    announce_from: Option<u64>,
) -> Result<crate::run::RunResult> {
    let mut args = vec![seed.to_string(), opts.calls_per_seed.to_string()];
    if let Some(from) = announce_from {
        args.push(from.to_string());
    }
    let mut run_opts = RunOptions::new(&opts.exe, args);
    run_opts.capture = true;
    run_opts.memory_mib = opts.memory_mib;
    run_opts.timeout = Some(opts.timeout);
    run_opts.idle_timeout = Some(opts.idle_timeout);
    run_opts.kernel.clone_from(&opts.kernel);
    run(&run_opts)
}

/// Runs one seed; a kernel failure is replayed to name the last call.
pub fn run_seed(opts: &FuzzOptions, seed: u64) -> Result<SeedReport> {
    let r = boot(opts, seed, None)?;
    let (reported, _) = calls_reported(&r.stdout, seed);
    let (outcome, calls) = match r.status {
        // Only the end of main returns 0: exit and exit_group are never
        // called, so every call was made.
        Some(0) => (SeedOutcome::Completed, opts.calls_per_seed),
        Some(status) => (SeedOutcome::ProgramDied(status), reported),
        None => {
            let tail: Vec<&str> = r
                .kernel_lines
                .iter()
                .rev()
                .take(8)
                .rev()
                .map(String::as_str)
                .collect();
            let why = format!(
                "{}\n  {}",
                r.diagnosis.unwrap_or_default(),
                tail.join("\n  ")
            );
            (SeedOutcome::KernelFailure(why), reported)
        }
    };
    let last_call = if matches!(outcome, SeedOutcome::KernelFailure(_)) {
        let replay = boot(opts, seed, Some(calls.max(1)))?;
        last_announced(&replay.stdout, seed)
    } else {
        None
    };
    Ok(SeedReport {
        seed,
        outcome,
        calls,
        last_call,
    })
}

/// What [`fuzz`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Calls made, by all seeds (those of early-ended ones up to their
    /// last progress report).
    pub calls: u64,
    /// Seeds whose program died early.
    pub program_deaths: Vec<u64>,
    /// Seeds that brought the kernel down.
    pub kernel_failures: Vec<u64>,
}

/// `cloister fuzz`: seeds `start .. start + seeds`, a line per seed, then a
/// summary. A seed may be silent for a fifth of `timeout`. The fuzzer is built in a temporary folder, kept (and named)
/// when a seed brought the kernel down so the replay command works.
pub fn fuzz(
    start: u64,
    seeds: u64,
    calls_per_seed: u64,
    timeout: Duration,
    memory_mib: u32,
) -> Result<Summary> {
    crate::deps::ensure_qemu()?;
    let kernel = crate::build::build_kernel(crate::build::KernelBuild {
        release: true,
        ktest: false,
    })?;
    let dir = std::env::temp_dir().join(format!("cloister-fuzz-{}", std::process::id()));
    let mut opts = FuzzOptions::new(build(&dir)?, calls_per_seed);
    opts.kernel = Some(kernel);
    opts.timeout = timeout;
    opts.idle_timeout = timeout / 5;
    opts.memory_mib = memory_mib;
    let began = Instant::now();
    let mut summary = Summary::default();
    for seed in start..start.saturating_add(seeds) {
        let t = Instant::now();
        let report = run_seed(&opts, seed)?;
        summary.seeds += 1;
        summary.calls += report.calls;
        let what = match &report.outcome {
            SeedOutcome::Completed => format!("{} calls, kernel stood", report.calls),
            SeedOutcome::ProgramDied(s) => {
                summary.program_deaths.push(seed);
                format!(
                    "program ended with status {s} after about {} calls (not a kernel failure)",
                    report.calls
                )
            }
            SeedOutcome::KernelFailure(why) => {
                summary.kernel_failures.push(seed);
                format!(
                    "KERNEL FAILURE after {} calls; last call {}; replay: cloister run --mem {memory_mib}M -- {} {seed} {calls_per_seed} {} (announces each call)\n  {why}",
                    report.calls,
                    report.last_call.as_deref().unwrap_or("unknown"),
                    opts.exe.display(),
                    report.calls.max(1),
                )
            }
        };
        println!("seed {seed}: {what} ({:.1} s)", t.elapsed().as_secs_f64());
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "fuzz: {} seeds, {} calls, {} early program exits {:?}, {} kernel failures {:?}, {secs:.0} s ({:.0} calls/s)",
        summary.seeds,
        summary.calls,
        summary.program_deaths.len(),
        summary.program_deaths,
        summary.kernel_failures.len(),
        summary.kernel_failures,
        summary.calls as f64 / secs.max(1e-9),
    );
    if summary.kernel_failures.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_and_final_counts_are_found_among_random_output() {
        let out = b"\x00junksysfuzz seed 7: progress 10000\nzz sysfuzz seed 7: progress 20000\n\
            sysfuzz seed 8: progress 90000\n";
        assert_eq!(calls_reported(out, 7), (20000, false));
        let out = b"sysfuzz seed 7: progress 90000\n\xffsysfuzz seed 7: 100000 calls\n";
        assert_eq!(calls_reported(out, 7), (100000, true));
        assert_eq!(calls_reported(b"nothing", 7), (0, false));
    }

    #[test]
    fn the_last_announced_call_is_named() {
        let out = b"sysfuzz seed 3 call 41: 1 0x1 0x2 0x3 0 0 0\n\
            garbage sysfuzz seed 3 call 42: 77 0xffff800000000000 0x1 0x0 0x0 0x0 0x0\n";
        assert_eq!(
            last_announced(out, 3).as_deref(),
            Some("call 42: ftruncate (77) (0xffff800000000000, 0x1, 0x0, 0x0, 0x0, 0x0)")
        );
        assert_eq!(last_announced(b"sysfuzz seed 3: progress 10", 3), None);
    }
}
