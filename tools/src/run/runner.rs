//! [`run`]: pack the image, boot Cloister with it, relay what the guest
//! says, and return the program's exit status.
//!
//! COM2 bytes go to stdout as they arrive; COM1 lines are sorted by
//! [`classify`]: `CLOISTER_EXIT=` ends the run (QEMU gets
//! [`EXIT_GRACE`] to power off by itself), `[trace]` lines go to stderr
//! with `--trace`, and kernel lines go to stderr prefixed `cloister: ` when
//! they are warnings, errors or panics (all of them with `-v`). A guest that
//! ends without `CLOISTER_EXIT` (panic, triple fault, hang past the
//! timeout) gets a one-line diagnosis and its last kernel lines, and the
//! run's exit code is [`NO_STATUS_EXIT`]. With [`RunOptions::capture`]
//! nothing is printed: everything is in the [`RunResult`].

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use super::audit::AuditRun;
use super::options::{FileMapping, NetMode, RunOptions};
use super::pack::{HostContext, Packed, describe_command, pack};
use super::protocol::{ConsoleLine, classify};
use crate::build::{KernelBuild, build_kernel};
use crate::qemu::{self, AppInput, Flow, GuestObserver, Nic, Outcome, QemuConfig};

/// The runner's exit code when the guest did not report the program's
/// status (as `docker run` uses 125 for its own failures).
pub const NO_STATUS_EXIT: u8 = 125;
/// How long QEMU may take to power off after `CLOISTER_EXIT`.
pub const EXIT_GRACE: Duration = Duration::from_secs(2);
/// Kernel lines repeated in a diagnosis.
const DIAGNOSIS_LINES: usize = 10;

/// How a run went.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The program's exit status from `CLOISTER_EXIT`, if the guest
    /// reported one.
    pub status: Option<u8>,
    /// The program's stdout and stderr as they arrived, interleaved, when
    /// capturing.
    pub output: Vec<u8>,
    /// Its stdout alone (COM2), when capturing.
    pub stdout: Vec<u8>,
    /// Its stderr alone (COM3), when capturing.
    pub stderr: Vec<u8>,
    /// COM1 lines that are neither control nor trace lines.
    pub kernel_lines: Vec<String>,
    /// `[trace] ` lines, without the prefix.
    pub trace_lines: Vec<String>,
    /// How QEMU ended.
    pub outcome: Outcome,
    /// Why there is no status, when there is none.
    pub diagnosis: Option<String>,
    /// Problems packing the image that did not stop the run.
    pub warnings: Vec<String>,
    /// The program's arguments as the guest got them.
    pub argv: Vec<std::ffi::OsString>,
    /// Unsupported syscalls the program called (name, calls), as the
    /// kernel reported them at exit.
    pub unsupported: Vec<(String, u64)>,
    /// In a learning run: the absolute paths lookups did not find.
    pub missing: Vec<String>,
    /// From starting QEMU to its end.
    pub duration: Duration,
}

impl RunResult {
    /// What `cloister run` exits with: the program's status, or
    /// [`NO_STATUS_EXIT`].
    pub fn exit_code(&self) -> u8 {
        self.status.unwrap_or(NO_STATUS_EXIT)
    }
}

/// Runs `opts.program` in Cloister (see the module docs), after the
/// learning pass when `opts.learn` is set.
pub fn run(opts: &RunOptions) -> Result<RunResult> {
    if let Some(app) = &opts.app {
        // A linked application is its own kernel (docs/RUNTIME.md).
        crate::deps::ensure_qemu()?;
        if !app.is_file() {
            anyhow::bail!(
                "--app {}: no such file (build it with `cargo build -p kernel --target x86_64-unknown-none --example NAME`)",
                app.display()
            );
        }
        return run_once(opts, app, false);
    }
    let kernel = match &opts.kernel {
        Some(k) => k.clone(),
        None => {
            crate::deps::ensure_qemu()?;
            build_kernel(KernelBuild {
                release: true,
                ktest: false,
            })?
        }
    };
    if !opts.learn {
        return run_once(opts, &kernel, false);
    }
    let verbose = opts.verbose && !opts.capture;
    let learned = super::learn::learn(
        opts,
        super::learn::cache_dir().as_deref(),
        |o| {
            let r = run_once(o, &kernel, true)?;
            Ok(r.missing.into_iter().map(PathBuf::from).collect())
        },
        |line| {
            if verbose {
                eprintln!("cloister: {line}");
            }
        },
    )?;
    let mut opts = opts.clone();
    opts.files.extend(
        learned
            .into_iter()
            .map(|host| FileMapping { host, guest: None }),
    );
    run_once(&opts, &kernel, false)
}

/// One boot. A learning run (see [`super::learn`]) gets no input, no
/// published ports and no audit log, prints nothing, and ends as soon as
/// the program looked for a file the host has.
fn run_once(opts: &RunOptions, kernel: &std::path::Path, learning: bool) -> Result<RunResult> {
    let learning_opts;
    let opts = if learning {
        let mut o = opts.clone();
        o.capture = true;
        o.stdin = Vec::new();
        o.publish = Vec::new();
        o.audit = None;
        o.trace = false;
        o.timeout = Some(super::learn::ROUND_LIMIT);
        learning_opts = o;
        &learning_opts
    } else {
        opts
    };
    let host = HostContext::current()?;
    let packed = pack(opts, &host)?;
    if !opts.capture {
        for warning in &packed.warnings {
            eprintln!("cloister: warning: {warning}");
        }
        if opts.verbose {
            describe_image(&packed);
        }
    }
    let scratch = ScratchDir::new()?;
    let image_path = opts
        .image
        .clone()
        .unwrap_or_else(|| scratch.path.join("initramfs.cpio"));
    std::fs::write(&image_path, packed.image.to_cpio()?)
        .with_context(|| format!("cannot write the image to {}", image_path.display()))?;

    let audit = opts.audit.as_ref().map(AuditRun::prepare).transpose()?;
    if let Some(a) = &audit
        && a.key_generated
        && !opts.capture
    {
        eprintln!(
            "cloister: audit key written to {} (keep it to verify the log)",
            a.key_path.display()
        );
    }
    let mut config = qemu_config(
        opts,
        kernel.to_path_buf(),
        image_path,
        scratch.path.join("app.sock"),
    )?;
    if learning {
        config.cmdline.push_str(" learn");
        config.idle_timeout = super::learn::ROUND_IDLE;
    }
    if let Some(a) = &audit {
        config.cmdline = format!("{} {}", config.cmdline, a.cmdline());
        config.extra_args.extend(a.qemu_args(config.memory_mib));
        config.stop_socket = Some(scratch.path.join("qmp.sock"));
    }
    if !opts.capture && !learning {
        forward_ctrl_c();
    }
    let mut observer = Relay::new(opts);
    observer.learning = learning;
    let report = qemu::run_observed(&config, &mut observer);
    let audit_bytes = audit.as_ref().map(AuditRun::extract);
    let report = report?;
    match (&audit, audit_bytes) {
        (Some(a), Some(Ok(bytes))) if !opts.capture => eprintln!(
            "cloister: audit log: {} ({} KiB); check it with `cloister audit verify {} --key-file {}`",
            a.spec_file().display(),
            bytes / 1024,
            a.spec_file().display(),
            a.key_path.display()
        ),
        (_, Some(Err(e))) => return Err(e.context("the audit log could not be saved")),
        _ => {}
    }
    let diagnosis = observer.status.is_none().then(|| {
        format!(
            "the guest ended without reporting the program's exit status: {}",
            report.outcome
        )
    });
    if let Some(d) = &diagnosis
        && !opts.capture
    {
        eprintln!("cloister: {d}");
        if !opts.verbose && !observer.recent.is_empty() {
            eprintln!("cloister: last kernel output:");
            for line in &observer.recent {
                eprintln!("cloister:   {line}");
            }
        }
    }
    if !opts.capture && !observer.unsupported.is_empty() {
        let list: Vec<String> = observer
            .unsupported
            .iter()
            .map(|(name, n)| format!("{name} ×{n}"))
            .collect();
        eprintln!(
            "cloister: the program called unsupported syscalls (each returned ENOSYS): {}",
            list.join(", ")
        );
    }
    Ok(RunResult {
        missing: observer.missing,
        unsupported: observer.unsupported,
        status: observer.status,
        output: observer.output,
        stdout: observer.stdout,
        stderr: observer.stderr,
        kernel_lines: observer.kernel_lines,
        trace_lines: observer.trace_lines,
        outcome: report.outcome,
        diagnosis,
        warnings: packed.warnings,
        argv: packed.argv,
        duration: report.duration,
    })
}

/// The QEMU configuration for a run.
fn qemu_config(
    opts: &RunOptions,
    kernel: PathBuf,
    image: PathBuf,
    socket: PathBuf,
) -> Result<QemuConfig> {
    let mut config = QemuConfig::new(kernel)?;
    if let Some(accel) = opts.accel {
        config.accel = accel;
    }
    config.memory_mib = opts.memory_mib;
    config.machine = opts.machine.qemu_name().into();
    if let Some(cpus) = opts.cpus {
        config.cpus = cpus;
    }
    config.initrd = Some(image);
    // The runner answers the kernel's request for the host's time
    // (qemu/time_sync.rs); a built image run by plain QEMU has no one to
    // answer, so `kernel_cmdline` (shared with `cloister build`) leaves it out.
    config.cmdline = format!("{} time.host", kernel_cmdline(opts));
    // The guest's TSC runs at the host's rate: the host kernel's figure
    // for it keeps the guest's clocks from running off by the error of a
    // PIT measurement taken on a loaded host (the kernel checks it against
    // its own, libos::boot::tsc).
    if let Ok(khz) = qemu::host_tsc::host_tsc_khz() {
        config.cmdline = format!("{} tsc_khz={khz}", config.cmdline);
    }
    config.kernel_args.extend(opts.kernel_args.iter().cloned());
    // Interactive programs may be silent for as long as they like.
    config.timeout = opts.timeout.unwrap_or(Duration::MAX);
    config.idle_timeout = opts.idle_timeout.unwrap_or(Duration::MAX);
    config.app_error_serial = Some(socket.with_extension("err.sock"));
    config.app_serial = Some(socket);
    config.app_input = Some(if opts.capture {
        AppInput::Bytes(opts.stdin.clone())
    } else {
        AppInput::HostStdin
    });
    config.nic = Some(match &opts.net {
        NetMode::User => Nic::with_forwards(opts.publish.clone())?,
        NetMode::Tap => tap_nic(qemu::tap::TapNet::create()?),
        NetMode::TapIn(net) => tap_nic(net.clone()),
    });
    if opts.net != NetMode::User {
        config.kernel_args.extend(qemu::tap::kernel_args());
    }
    config.cmdline = format!("{} {}", config.cmdline, stdio_words(opts.capture));
    Ok(config)
}

/// A card on `net`, announced on stderr: where the guest is and how to
/// reach it.
fn tap_nic(net: Arc<qemu::tap::TapNet>) -> Nic {
    eprintln!(
        "cloister: network namespace {ns} (TAP {dev}, {host}/{len}); the guest is {guest}: reach it with `ip netns exec {ns} …`",
        ns = net.namespace(),
        dev = qemu::tap::DEVICE,
        host = qemu::tap::HOST_ADDR,
        len = qemu::tap::PREFIX_LEN,
        guest = qemu::tap::GUEST_ADDR,
    );
    Nic::tap(net)
}

/// `log=warn` (`log=info` with `-v`), plus `trace` with `--trace`.
pub fn kernel_cmdline(opts: &RunOptions) -> String {
    let mut cmdline = String::from(if opts.verbose { "log=info" } else { "log=warn" });
    if opts.trace {
        cmdline.push_str(" trace");
    }
    cmdline
}

/// Ctrl-C on the host's terminal goes to the program as `SIGINT` (QEMU
/// runs in its own process group, so only the runner gets it). Before the
/// guest reads the host's stdin, or at the third press, Ctrl-C ends the
/// run (QEMU killed, status 130) as it did before.
///
/// A parent may start the runner with `SIGINT` blocked (the mask is
/// inherited across `exec`; some CI harnesses block it): the handler would
/// never run and a Ctrl-C would stay pending forever, so the runner
/// unblocks it on the calling thread, which threads started later inherit.
fn forward_ctrl_c() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut int = nix::sys::signal::SigSet::empty();
        int.add(nix::sys::signal::Signal::SIGINT);
        let _ = int.thread_unblock();
        let presses = AtomicU32::new(0);
        let _ = ctrlc::set_handler(move || {
            let n = presses.fetch_add(1, Ordering::Relaxed) + 1;
            if n >= 3 || !qemu::send_interrupt() {
                qemu::kill_running();
                qemu::tap::remove_all();
                std::process::exit(130);
            }
        });
    });
}

/// `console.tty=` (which of the host's fds 0–2 are terminals; none when
/// capturing) and `console.size=` (the terminal's rows and columns).
fn stdio_words(capture: bool) -> String {
    use std::io::IsTerminal;
    let ttys: String = if capture {
        String::new()
    } else {
        [
            std::io::stdin().is_terminal(),
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        ]
        .iter()
        .enumerate()
        .filter(|(_, t)| **t)
        .map(|(fd, _)| char::from(b'0' + fd as u8))
        .collect()
    };
    if ttys.is_empty() {
        return "console.tty=none".to_string();
    }
    match terminal_size() {
        Some((rows, cols)) => format!("console.tty={ttys} console.size={rows}x{cols}"),
        None => format!("console.tty={ttys}"),
    }
}

/// The host terminal's size from `stty size` (which reads the terminal on
/// its stdin, ours).
fn terminal_size() -> Option<(u16, u16)> {
    let out = std::process::Command::new("stty")
        .arg("size")
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

/// Lists what went into the image on stderr (`-v`).
fn describe_image(packed: &Packed) {
    eprintln!("cloister: running {}", describe_command(&packed.argv));
    for file in &packed.resolution.files {
        eprintln!("cloister:   {} ({:?})", file.path.display(), file.role);
    }
    let (count, bytes) = packed.image.file_stats();
    eprintln!(
        "cloister: image: {count} files, {:.1} MiB",
        bytes as f64 / (1024.0 * 1024.0)
    );
}

/// Relays the guest's output as it comes and remembers what it needs.
#[derive(Debug)]
struct Relay {
    capture: bool,
    verbose: bool,
    trace: bool,
    status: Option<u8>,
    output: Vec<u8>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    kernel_lines: Vec<String>,
    trace_lines: Vec<String>,
    unsupported: Vec<(String, u64)>,
    /// A learning run: collect `CLOISTER_MISSING` and stop at the first
    /// path the host has.
    learning: bool,
    missing: Vec<String>,
    /// The last kernel lines, for a diagnosis.
    recent: VecDeque<String>,
}

impl Relay {
    fn new(opts: &RunOptions) -> Self {
        Self {
            capture: opts.capture,
            verbose: opts.verbose,
            trace: opts.trace,
            status: None,
            output: Vec::new(),
            stdout: Vec::new(),
            stderr: Vec::new(),
            kernel_lines: Vec::new(),
            trace_lines: Vec::new(),
            unsupported: Vec::new(),
            learning: false,
            missing: Vec::new(),
            recent: VecDeque::new(),
        }
    }
}

impl GuestObserver for Relay {
    fn line(&mut self, line: &str, _at: Duration) -> Flow {
        let kind = classify(line);
        match kind {
            ConsoleLine::Exit(status) => {
                self.status.get_or_insert(status);
                return Flow::Finish { grace: EXIT_GRACE };
            }
            ConsoleLine::Missing(path) => {
                self.missing.push(path.to_string());
                if self.learning && std::path::Path::new(path).symlink_metadata().is_ok() {
                    // A little longer, for the lookups that follow.
                    return Flow::Finish {
                        grace: super::learn::ROUND_GRACE,
                    };
                }
            }
            ConsoleLine::Unsupported(list) => {
                self.unsupported = super::protocol::parse_unsupported(list);
            }
            ConsoleLine::Trace(call) => {
                if self.trace && !self.capture {
                    eprintln!("{line}");
                }
                self.trace_lines.push(call.to_string());
            }
            ConsoleLine::Log(..) | ConsoleLine::Other(_) => {
                if !self.capture && (self.verbose || kind.is_notable()) {
                    eprintln!("cloister: {line}");
                }
                if self.recent.len() == DIAGNOSIS_LINES {
                    self.recent.pop_front();
                }
                self.recent.push_back(line.to_string());
                self.kernel_lines.push(line.to_string());
            }
        }
        Flow::Continue
    }

    fn app_output(&mut self, bytes: &[u8]) {
        if self.capture {
            self.output.extend_from_slice(bytes);
            self.stdout.extend_from_slice(bytes);
        } else {
            let mut out = std::io::stdout().lock();
            // A closed stdout (`| head`) must not stop the guest.
            let _ = out.write_all(bytes).and_then(|()| out.flush());
        }
    }

    fn app_error_output(&mut self, bytes: &[u8]) {
        if self.capture {
            self.output.extend_from_slice(bytes);
            self.stderr.extend_from_slice(bytes);
        } else {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(bytes).and_then(|()| err.flush());
        }
    }
}

/// A private temporary directory for the image and the COM2 socket,
/// removed when dropped.
#[derive(Debug)]
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn new() -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = std::env::temp_dir();
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("cloister-run-{}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create a temporary directory in {}", base.display())
                    });
                }
            }
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::stub_guest::{self, End};
    use crate::run::fixture::Scratch;

    /// Runs `/usr/bin/true`'s image with a stub guest that makes the given
    /// port writes instead of the real kernel.
    fn run_stub(name: &str, writes: &[(u16, &[u8])], end: End, timeout_secs: u64) -> RunResult {
        let s = Scratch::new(name);
        let kernel = s.0.join("stub.elf");
        std::fs::write(&kernel, stub_guest::build(writes, end)).unwrap();
        let mut opts = RunOptions::new("/usr/bin/true", ["x"]);
        opts.kernel = Some(kernel);
        opts.capture = true;
        opts.trace = true;
        opts.memory_mib = 64;
        opts.accel = Some(crate::qemu::Accel::Tcg);
        opts.timeout = Some(Duration::from_secs(timeout_secs));
        run(&opts).unwrap()
    }

    const COM1: u16 = 0x3f8;
    const COM2: u16 = 0x2f8;

    #[test]
    fn the_programs_output_and_exit_status_come_back() {
        let r = run_stub(
            "relay",
            &[
                (COM1, b"[    0.000100] INFO  exec /usr/bin/true\r\n"),
                (COM2, b"hello from the app\n"),
                (COM1, b"[trace] exit_group(3) = ?\r\n"),
                (COM1, b"CLOISTER_EXIT=3\r\n"),
            ],
            End::DebugExit(0x10),
            60,
        );
        assert_eq!(r.status, Some(3), "{r:?}");
        assert_eq!(r.exit_code(), 3);
        assert_eq!(r.output, b"hello from the app\n");
        assert_eq!(r.trace_lines, ["exit_group(3) = ?"]);
        assert_eq!(r.kernel_lines, ["[    0.000100] INFO  exec /usr/bin/true"]);
        assert_eq!(r.outcome, Outcome::Success);
        assert_eq!(r.diagnosis, None);
        assert_eq!(r.argv, ["/usr/bin/true", "x"]);
    }

    #[test]
    fn a_guest_that_dies_without_an_exit_line_is_diagnosed() {
        let r = run_stub(
            "panic",
            &[
                (COM2, b"partial"),
                (COM1, b"kernel panic at src/x.rs:1: boom\r\n"),
            ],
            End::DebugExit(0x11),
            60,
        );
        assert_eq!(r.status, None);
        assert_eq!(r.exit_code(), NO_STATUS_EXIT);
        assert_eq!(r.output, b"partial");
        let d = r.diagnosis.as_deref().unwrap();
        assert!(
            d.contains("without reporting") && d.contains("guest reported failure"),
            "{d}"
        );
        assert_eq!(r.kernel_lines, ["kernel panic at src/x.rs:1: boom"]);
    }

    #[test]
    fn a_guest_still_running_after_its_exit_line_is_stopped() {
        let r = run_stub("linger", &[(COM1, b"CLOISTER_EXIT=0\r\n")], End::Hang, 60);
        assert_eq!(r.status, Some(0));
        assert_eq!(r.outcome, Outcome::Stopped);
        assert!(r.duration < Duration::from_secs(30), "{r:?}");
    }

    #[test]
    fn a_hung_guest_is_cut_off_by_the_timeout() {
        let r = run_stub("hang", &[(COM1, b"Cloister ready\r\n")], End::Hang, 2);
        assert_eq!(r.exit_code(), NO_STATUS_EXIT);
        let d = r.diagnosis.as_deref().unwrap();
        assert!(d.contains("2 s limit"), "{d}");
    }

    #[test]
    fn a_run_always_has_a_restricted_card_and_publishes_on_loopback() {
        let mut opts = RunOptions::new("x", Vec::<String>::new());
        let config = qemu_config(&opts, "/k".into(), "/i".into(), "/s".into()).unwrap();
        let args = config.args().join(" ");
        assert!(args.contains("-M microvm,acpi=off"), "{args}");
        assert!(
            args.contains("-netdev user,id=n0,restrict=on -device virtio-net-device,netdev=n0"),
            "{args}"
        );
        opts.publish = vec![crate::qemu::PortForward {
            host_port: 18080,
            guest_port: 80,
        }];
        let config = qemu_config(&opts, "/k".into(), "/i".into(), "/s".into()).unwrap();
        let args = config.args().join(" ");
        assert!(
            args.contains("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:18080-:80 "),
            "{args}"
        );
    }

    #[test]
    fn the_kernel_command_line_follows_the_flags() {
        let mut opts = RunOptions::new("x", Vec::<String>::new());
        assert_eq!(kernel_cmdline(&opts), "log=warn");
        opts.verbose = true;
        opts.trace = true;
        assert_eq!(kernel_cmdline(&opts), "log=info trace");
    }
}
