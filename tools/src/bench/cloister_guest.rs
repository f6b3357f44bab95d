//! The Cloister side of the comparison: the release kernel booting the
//! image `cloister run` packs for a job ([`super::guest::pack_job`]), with
//! the same [`QemuSettings`] as the Linux guest.
//!
//! It boots the image as `cloister run` does (COM2 on a Unix socket for the
//! program's output, COM1 for the kernel) but watches the times itself:
//! the kernel's `starting <program>` log line (hence `log=info`) is the
//! start report, the first complete line on COM2 is the first output, and
//! `CLOISTER_EXIT=<status>` is the end report, after which QEMU gets
//! [`EXIT_GRACE`] to power off.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::guest::{Guest, GuestRun, Job, QemuSettings, pack_job};
use super::host_cpu::ThreadTimes;
use crate::qemu::{self, Flow, GuestObserver};
use crate::run::protocol::{ConsoleLine, LogLevel, classify};
use crate::run::runner::EXIT_GRACE;

/// The kernel's line of network stall counters (`kernel/src/net`), at the
/// program's exit or when the host stops it with an NMI.
pub const NET_COUNTERS_PREFIX: &str = "net counters:";

/// The kernel command line: `log=info` so the `starting` line is printed.
pub const CMDLINE: &str = "log=info";

/// The Cloister guest.
#[derive(Debug)]
pub struct CloisterGuest {
    kernel: PathBuf,
    settings: QemuSettings,
    image_dir: PathBuf,
    images: HashMap<String, PathBuf>,
    /// Which of the bench's Cloister guests this is.
    variant: Variant,
}

/// The bench's Cloister guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The kernel under test.
    Plain,
    /// The same kernel with the audit log on (`--audit`; see
    /// [`super::audited`]).
    Audited,
    /// Another kernel build, for a before/after comparison in one session
    /// (`--against`).
    Against,
}

/// The Cloister guest booting `kernel`, or the release kernel built now,
/// as `variant` says.
pub fn new(
    settings: &QemuSettings,
    image_dir: PathBuf,
    kernel: Option<&std::path::Path>,
    variant: Variant,
) -> Result<Box<dyn Guest>> {
    let kernel = crate::build::kernel_or_release(kernel)?;
    Ok(Box::new(CloisterGuest {
        kernel,
        settings: settings.clone(),
        image_dir,
        images: HashMap::new(),
        variant,
    }))
}

/// Collects the times of one run.
#[derive(Debug)]
struct Watch {
    start: Instant,
    run: GuestRun,
    pending: Vec<u8>,
}

impl Watch {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            run: GuestRun::default(),
            pending: Vec::new(),
        }
    }

    fn finish(mut self) -> GuestRun {
        if !self.pending.is_empty() {
            let rest = String::from_utf8_lossy(&self.pending).into_owned();
            self.run.output.push(rest);
        }
        self.run
    }
}

/// Whether a COM1 line is the kernel's report that the program starts.
fn is_start_line(line: &str) -> bool {
    matches!(classify(line), ConsoleLine::Log(LogLevel::Info, l) if l.contains(" starting /"))
}

impl GuestObserver for Watch {
    fn line(&mut self, line: &str, at: Duration) -> Flow {
        match classify(line) {
            ConsoleLine::Exit(status) => {
                if self.run.ended_at.is_none() {
                    if self.run.host_cpu.end.is_none() {
                        self.run.host_cpu.end = ThreadTimes::of_running_qemu();
                    }
                    self.run.ended_at = Some(at);
                    self.run.exit_status = Some(i32::from(status));
                }
                return Flow::Finish { grace: EXIT_GRACE };
            }
            _ if self.run.started_at.is_none() && is_start_line(line) => {
                self.run.host_cpu.start = ThreadTimes::of_running_qemu();
                self.run.started_at = Some(at);
            }
            _ if line.starts_with(NET_COUNTERS_PREFIX) => {
                // Printed after the program's end, just before the exit
                // line: QEMU may be gone by the time that one is read.
                if self.run.host_cpu.end.is_none() {
                    self.run.host_cpu.end = ThreadTimes::of_running_qemu();
                }
                self.run.net_counters = Some(line[NET_COUNTERS_PREFIX.len()..].trim().to_string());
            }
            _ => {}
        }
        Flow::Continue
    }

    fn app_output(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        while let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
            self.run
                .first_output_at
                .get_or_insert_with(|| self.start.elapsed());
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line);
            self.run
                .output
                .push(text.trim_end_matches(['\r', '\n']).to_string());
        }
    }
}

impl Guest for CloisterGuest {
    fn name(&self) -> &'static str {
        match self.variant {
            Variant::Plain => "Cloister",
            Variant::Audited => "Cloister+audit",
            Variant::Against => "Cloister-B",
        }
    }

    fn prepare(&mut self, job: &Job) -> Result<()> {
        let packed = pack_job(job)?;
        std::fs::create_dir_all(&self.image_dir)?;
        let path = self.image_dir.join(format!("cloister-{}.cpio", job.name));
        std::fs::write(&path, packed.image.to_cpio()?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.images.insert(job.name.clone(), path);
        Ok(())
    }

    fn run(&self, job: &Job) -> Result<GuestRun> {
        let image = self
            .images
            .get(&job.name)
            .with_context(|| format!("job {} was not prepared", job.name))?;
        let mut config = self.settings.config_for(&self.kernel, job)?;
        config.initrd = Some(image.clone());
        config.cmdline = CMDLINE.into();
        let socket = self
            .image_dir
            .join(format!("cloister-app-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        config.app_serial = Some(socket.clone());
        let audit = if self.variant == Variant::Audited {
            Some(super::audited::prepare(
                &self.image_dir,
                &job.name,
                &mut config,
            )?)
        } else {
            None
        };
        let mut watch = Watch::new();
        let report = qemu::run_observed(&config, &mut watch);
        let _ = std::fs::remove_file(&socket);
        let records = audit.as_ref().map(super::audited::check);
        let report = report?;
        if let Some(records) = records {
            let records = records.with_context(|| format!("audited run of {}", job.name))?;
            eprintln!("bench:   audit log verified: {records} records");
        }
        let mut run = watch.finish();
        run.total = report.duration;
        // A server may be stopped from the host (`super::server`).
        if run.ended_at.is_none() && job.serve.is_none() {
            let tail = report.lines[report.lines.len().saturating_sub(15)..].join("\n");
            bail!(
                "Cloister did not finish `{}` ({}); last kernel lines:\n{tail}",
                job.argv.join(" "),
                report.outcome
            );
        }
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_come_from_the_start_line_com2_lines_and_the_exit_line() {
        let mut w = Watch::new();
        let at = Duration::from_millis;
        assert_eq!(
            w.line("[    0.100000] INFO  memory map: 4 regions", at(100)),
            Flow::Continue
        );
        w.line(
            "[    0.200000] INFO  starting /usr/bin/echo (entry 0x401000, 200 MiB free)",
            at(200),
        );
        w.line(
            "net counters: tx_frames=2 tcp_retransmits=0 tx_deferred=0",
            at(250),
        );
        w.app_output(b"hel");
        assert_eq!(w.run.first_output_at, None);
        w.app_output(b"lo\r\nwor");
        assert!(w.run.first_output_at.is_some());
        assert_eq!(
            w.line("CLOISTER_EXIT=0", at(300)),
            Flow::Finish { grace: EXIT_GRACE }
        );
        w.app_output(b"ld");
        let run = w.finish();
        assert_eq!(run.output, ["hello", "world"]);
        assert_eq!(run.started_at, Some(at(200)));
        assert_eq!(run.ended_at, Some(at(300)));
        assert_eq!(run.exit_status, Some(0));
        assert_eq!(
            run.net_counters.as_deref(),
            Some("tx_frames=2 tcp_retransmits=0 tx_deferred=0")
        );
    }

    #[test]
    fn only_the_kernels_info_line_starts_the_program() {
        assert!(is_start_line(
            "[    0.200000] INFO  starting /bin/busybox (entry 0x1, 1 MiB free)"
        ));
        assert!(!is_start_line("starting /bin/busybox"));
        assert!(!is_start_line("[    0.200000] WARN  not starting /x"));
    }
}
