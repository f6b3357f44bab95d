//! Running a guest under QEMU: the command line, a watchdog, streamed serial
//! output, and the mapping of QEMU's exit status to an [`Outcome`].
//!
//! The guest reports through `isa-debug-exit` (port 0xf4): QEMU exits with
//! 33 for success and 35 for failure (see `kernel/src/exit.rs`). QEMU runs
//! with `-no-reboot`, so a triple fault ends it with status 0, which is a
//! failure here. A guest that stops printing for `idle_timeout` or runs past
//! `timeout` is killed (QEMU itself, not a wrapper) and reported.

mod accel;
mod outcome;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub use accel::Accel;
pub use outcome::Outcome;

/// QEMU exit status when the guest wrote 0x10 to the debug-exit port.
pub const EXIT_SUCCESS: i32 = 33;
/// QEMU exit status when the guest wrote 0x11 to the debug-exit port.
pub const EXIT_FAILURE: i32 = 35;

/// How to run one guest.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// The kernel ELF (booted through PVH).
    pub kernel: PathBuf,
    /// An initramfs passed as the PVH module, if any.
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    pub cmdline: String,
    /// TCG or KVM.
    pub accel: Accel,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Kill the guest after this long in total.
    pub timeout: Duration,
    /// Kill the guest after this long without a line of output.
    pub idle_timeout: Duration,
    /// Extra QEMU arguments (devices, memory backends).
    pub extra_args: Vec<String>,
    /// The machine type: `microvm` (default, fastest to start) or `q35`/`pc`.
    pub machine: String,
}

impl QemuConfig {
    /// A configuration with the defaults: TCG (or `CLOISTER_ACCEL`), 256 MiB,
    /// 10 minutes in total, 2 minutes idle.
    pub fn new(kernel: impl Into<PathBuf>) -> Result<Self> {
        Ok(Self {
            kernel: kernel.into(),
            initrd: None,
            cmdline: String::new(),
            accel: Accel::from_env()?,
            memory_mib: 256,
            timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(120),
            extra_args: Vec::new(),
            machine: "microvm".into(),
        })
    }

    /// The full QEMU argument list.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "-M".into(),
            self.machine.clone(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-serial".into(),
            "stdio".into(),
            "-no-reboot".into(),
            "-smp".into(),
            "1".into(),
            "-m".into(),
            format!("{}M", self.memory_mib),
            "-device".into(),
            "isa-debug-exit,iobase=0xf4,iosize=0x04".into(),
        ];
        a.extend(self.accel.qemu_args());
        a.push("-kernel".into());
        a.push(self.kernel.display().to_string());
        if !self.cmdline.is_empty() {
            a.push("-append".into());
            a.push(self.cmdline.clone());
        }
        if let Some(initrd) = &self.initrd {
            a.push("-initrd".into());
            a.push(initrd.display().to_string());
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }
}

/// What a finished run looked like.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// Every line of serial output.
    pub lines: Vec<String>,
    /// What QEMU printed on its stderr.
    pub stderr: String,
    /// From spawning QEMU to its end.
    pub duration: Duration,
}

/// The QEMU binary: `CLOISTER_QEMU` or `qemu-system-x86_64` on `PATH`.
pub fn qemu_binary() -> PathBuf {
    std::env::var_os("CLOISTER_QEMU")
        .map_or_else(|| PathBuf::from("qemu-system-x86_64"), PathBuf::from)
}

/// Runs the guest, calling `on_line` with each serial line as it arrives
/// (with the time since QEMU started).
pub fn run(config: &QemuConfig, mut on_line: impl FnMut(&str, Duration)) -> Result<RunReport> {
    check_file(&config.kernel, "kernel")?;
    if let Some(initrd) = &config.initrd {
        check_file(initrd, "initramfs")?;
    }
    let start = Instant::now();
    let mut child = Command::new(qemu_binary())
        .args(config.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {}: install QEMU (Debian: `apt-get install qemu-system-x86`) or set CLOISTER_QEMU",
                qemu_binary().display()
            )
        })?;
    let stdout = child.stdout.take().context("QEMU stdout")?;
    let mut stderr = child.stderr.take().context("QEMU stderr")?;
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        // Lines may hold non-UTF-8 bytes from a confused guest: keep going.
        while r
            .read_until(b'\n', &mut buf)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            buf.clear();
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    let mut lines = Vec::new();
    let mut last_output = Instant::now();
    let killed = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                on_line(&line, start.elapsed());
                lines.push(line);
                last_output = Instant::now();
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break None,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if start.elapsed() > config.timeout {
            break Some(Outcome::TimedOut {
                idle: false,
                after: config.timeout,
            });
        }
        if last_output.elapsed() > config.idle_timeout {
            break Some(Outcome::TimedOut {
                idle: true,
                after: config.idle_timeout,
            });
        }
    };
    if killed.is_some() {
        // Kill QEMU itself (a guest it cannot emulate pauses it, so it never
        // exits on its own).
        let _ = child.kill();
    }
    let status = child.wait().context("waiting for QEMU")?;
    let _ = reader.join();
    let stderr = err_reader.join().unwrap_or_default();
    let outcome = killed.unwrap_or_else(|| Outcome::from_status(status, &stderr));
    Ok(RunReport {
        outcome,
        lines,
        stderr,
        duration: start.elapsed(),
    })
}

fn check_file(path: &Path, what: &str) -> Result<()> {
    if !path.is_file() {
        anyhow::bail!("the {what} {} does not exist", path.display());
    }
    Ok(())
}
