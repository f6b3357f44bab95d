//! Running a guest under QEMU: the command line, a watchdog, streamed serial
//! output, and the mapping of QEMU's exit status to an [`Outcome`].
//!
//! The guest reports through `isa-debug-exit` (port 0xf4): QEMU exits with
//! 33 for success and 35 for failure (see `kernel/src/exit.rs`). QEMU runs
//! with `-no-reboot`, so a triple fault ends it with status 0, which is a
//! failure here. A guest that stops printing for `idle_timeout` or runs past
//! `timeout` is killed (QEMU itself, not a wrapper) and reported.
//!
//! COM1 (`-serial stdio`) is read line by line. With
//! [`QemuConfig::app_serial`] set, a second port, COM2, is read as raw
//! bytes from a Unix socket QEMU waits on (see `app_serial.rs`);
//! [`run_observed`] hands both to a [`GuestObserver`], which may also end
//! the run early once the guest has said all it will.
//!
//! `microvm` runs with `acpi=off`, and [`QemuConfig::nic`] gives the guest a
//! virtio-net card on user-mode networking with loopback-only port
//! forwards (see [`net`]), or on a TAP device in a namespace of its own
//! ([`tap`]), in which case QEMU runs inside that namespace.

mod accel;
mod app_serial;
pub mod host_tsc;
pub mod listen_queue;
pub mod net;
mod outcome;
pub mod qmp;
pub mod stub_guest;
pub mod tap;
pub mod time_sync;

use std::io::{BufRead, BufReader, Read, Write as _};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub use accel::Accel;
pub use app_serial::{AppInput, encode_input, send_interrupt};
pub use net::{Nic, PortForward};
pub use outcome::Outcome;

/// The COM1 line with which the kernel says its console's receive side is
/// set up, so [`QemuConfig::app_input`] may flow (`kernel/src/run`).
pub const STDIN_READY_LINE: &str = "CLOISTER_STDIN_READY";

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
    /// Words appended to [`QemuConfig::cmdline`] (after it, so they win):
    /// from `CLOISTER_KERNEL_ARGS` (whitespace-separated) and the run's
    /// `--kernel-arg`, e.g. `platform.mmio=emulate`.
    pub kernel_args: Vec<String>,
    /// TCG or KVM.
    pub accel: Accel,
    /// vCPUs (`-smp`): 1 unless `CLOISTER_CPUS` or the run says otherwise.
    /// The kernel starts the others and keeps them idle; programs run on
    /// the first (docs/ARCHITECTURE.md, "CPUs").
    pub cpus: u32,
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
    /// Give the guest a second serial port, COM2 (0x2f8, IRQ 3), whose
    /// output QEMU sends to a Unix socket it creates at this path (which
    /// must not exist); [`run_observed`] reads it.
    pub app_serial: Option<PathBuf>,
    /// What the guest reads on COM2 (with [`QemuConfig::app_serial`]),
    /// sent once COM1 shows [`STDIN_READY_LINE`].
    pub app_input: Option<AppInput>,
    /// A third serial port, COM3 (0x3e8), for the program's error stream,
    /// on a Unix socket QEMU creates at this path; [`run_observed`] hands
    /// its bytes to [`GuestObserver::app_error_output`].
    pub app_error_serial: Option<PathBuf>,
    /// A network card (user-mode networking, `restrict=on`, with its
    /// forwards, or a TAP device): virtio-mmio on `microvm`, virtio-pci
    /// elsewhere (see [`net`]).
    pub nic: Option<Nic>,
    /// Ask the guest to stop before killing it at a timeout: QEMU serves
    /// QMP at this path (which must not exist) and gets `inject-nmi` when
    /// the timeout expires; the kernel seals its audit log and exits
    /// (`kernel/src/exit.rs`), or is killed [`STOP_GRACE`] later.
    pub stop_socket: Option<PathBuf>,
    /// Answers guest requests on COM1: called with every COM1 line; an
    /// answer it returns is written to COM1's input at once (the line is
    /// still handed to the observer). For the test key broker
    /// (`attest::broker`).
    pub com1_responder: Option<fn(&str) -> Option<String>>,
}

/// Extra kernel command-line words for every guest this process starts:
/// `CLOISTER_KERNEL_ARGS`, split at whitespace (e.g.
/// `CLOISTER_KERNEL_ARGS=platform.mmio=emulate cargo cloister ktest`).
pub fn kernel_args_from_env() -> Vec<String> {
    std::env::var("CLOISTER_KERNEL_ARGS")
        .map(|v| v.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// The most vCPUs a guest gets (the kernel uses at most 16 CPUs).
pub const MAX_CPUS: u32 = 16;

/// Checks a vCPU count (`--cpus`, `vm.cpus`, `CLOISTER_CPUS`).
pub fn check_cpus(cpus: u32) -> Result<u32> {
    if (1..=MAX_CPUS).contains(&cpus) {
        Ok(cpus)
    } else {
        anyhow::bail!("{cpus} vCPUs: Cloister uses 1 to {MAX_CPUS}")
    }
}

/// The vCPU count for every guest this process starts: `CLOISTER_CPUS`,
/// or 1 (e.g. `CLOISTER_CPUS=4 cargo cloister ktest smp`).
pub fn cpus_from_env() -> Result<u32> {
    match std::env::var("CLOISTER_CPUS") {
        Ok(v) if !v.trim().is_empty() => {
            let n = v
                .trim()
                .parse::<u32>()
                .map_err(|_| anyhow::anyhow!("CLOISTER_CPUS={v:?}: expected a number of vCPUs"))?;
            check_cpus(n)
        }
        _ => Ok(1),
    }
}

/// How long a guest asked to stop at its timeout may take to exit.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

impl QemuConfig {
    /// A configuration with the defaults: TCG (or `CLOISTER_ACCEL`), 256 MiB,
    /// 10 minutes in total, 2 minutes idle.
    pub fn new(kernel: impl Into<PathBuf>) -> Result<Self> {
        Ok(Self {
            kernel: kernel.into(),
            initrd: None,
            cmdline: String::new(),
            kernel_args: kernel_args_from_env(),
            accel: Accel::from_env()?,
            cpus: cpus_from_env()?,
            memory_mib: 256,
            timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(120),
            extra_args: Vec::new(),
            machine: "microvm".into(),
            app_serial: None,
            app_input: None,
            app_error_serial: None,
            nic: None,
            stop_socket: None,
            com1_responder: None,
        })
    }

    /// The command line the kernel gets: [`QemuConfig::cmdline`], then
    /// [`QemuConfig::kernel_args`].
    pub fn full_cmdline(&self) -> String {
        let mut words = vec![self.cmdline.trim()];
        words.extend(self.kernel_args.iter().map(String::as_str));
        words.retain(|w| !w.is_empty());
        words.join(" ")
    }

    /// The full QEMU argument list.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "-M".into(),
            net::machine_arg(&self.machine),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-serial".into(),
            "stdio".into(),
            "-no-reboot".into(),
            "-smp".into(),
            self.cpus.to_string(),
            "-m".into(),
            format!("{}M", self.memory_mib),
            "-device".into(),
            "isa-debug-exit,iobase=0xf4,iosize=0x04".into(),
        ];
        a.extend(self.accel.qemu_args_for(self.cpus));
        a.push("-kernel".into());
        a.push(self.kernel.display().to_string());
        let cmdline = self.full_cmdline();
        if !cmdline.is_empty() {
            a.push("-append".into());
            a.push(cmdline);
        }
        if let Some(initrd) = &self.initrd {
            a.push("-initrd".into());
            a.push(initrd.display().to_string());
        }
        if let Some(socket) = &self.app_serial {
            a.extend(app_serial::qemu_args(socket));
        }
        if let Some(socket) = &self.app_error_serial {
            a.extend(app_serial::error_qemu_args(socket));
        }
        if let Some(nic) = &self.nic {
            a.extend(nic.qemu_args(&self.machine));
        }
        if let Some(socket) = &self.stop_socket {
            a.extend(qmp::qemu_args(socket));
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }
}

/// The PID of the QEMU [`run_observed`] started last (0: none).
static RUNNING_QEMU: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The PID of the QEMU [`run_observed`] started last, while it runs (for
/// readings of its threads' host CPU time, `bench::host_cpu`).
pub fn running_pid() -> Option<u32> {
    match RUNNING_QEMU.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        pid => Some(pid),
    }
}

/// Kills the QEMU [`run_observed`] started last, if it still runs (for a
/// runner that must exit at once: QEMU has its own process group, so the
/// terminal's Ctrl-C does not reach it).
pub fn kill_running() {
    let pid = RUNNING_QEMU.swap(0, std::sync::atomic::Ordering::Relaxed);
    if pid != 0 {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
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

/// What the observer wants after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep running.
    Continue,
    /// The guest has reported its end: give QEMU `grace` to exit by itself,
    /// then kill it (the outcome is then [`Outcome::Stopped`]).
    Finish {
        /// How long QEMU may take to exit.
        grace: Duration,
    },
}

/// Receives a running guest's output.
pub trait GuestObserver {
    /// A line of COM1 output (without its line ending), with the time since
    /// QEMU started.
    fn line(&mut self, line: &str, at: Duration) -> Flow;
    /// Bytes from COM2 (only with [`QemuConfig::app_serial`]), as they come.
    fn app_output(&mut self, bytes: &[u8]) {
        let _ = bytes;
    }
    /// Bytes from COM3 (only with [`QemuConfig::app_error_serial`]).
    fn app_error_output(&mut self, bytes: &[u8]) {
        self.app_output(bytes);
    }
}

/// What the reader threads send to the watchdog loop.
#[derive(Debug)]
enum Message {
    Line(String),
    App(Vec<u8>),
    AppErr(Vec<u8>),
}

/// Gives each of QEMU's port forwards a listen queue of more than one
/// connection ([`listen_queue`]), from a thread of its own (QEMU opens them
/// while it starts); a failure is reported and the run goes on.
fn widen_forward_queues(config: &QemuConfig, pid: u32) {
    let ports: Vec<u16> = config
        .nic
        .iter()
        .filter(|n| n.tap.is_none())
        .flat_map(|n| n.forwards.iter().map(|f| f.host_port))
        .collect();
    if ports.is_empty() {
        return;
    }
    std::thread::spawn(move || {
        for port in ports {
            if let Err(e) = listen_queue::widen(pid, port) {
                eprintln!(
                    "cloister: the forward on 127.0.0.1:{port} keeps QEMU's listen queue of one connection ({e:#}); clients that connect at once beyond two wait a second"
                );
            }
        }
    });
}

/// Runs the guest, calling `on_line` with each serial line as it arrives
/// (with the time since QEMU started).
pub fn run(config: &QemuConfig, on_line: impl FnMut(&str, Duration)) -> Result<RunReport> {
    struct Lines<F>(F);
    impl<F: FnMut(&str, Duration)> GuestObserver for Lines<F> {
        fn line(&mut self, line: &str, at: Duration) -> Flow {
            (self.0)(line, at);
            Flow::Continue
        }
    }
    run_observed(config, &mut Lines(on_line))
}

/// Runs the guest, handing its COM1 lines and COM2 bytes to `observer` as
/// they arrive. COM2 output that arrives after the last COM1 line (up to
/// QEMU closing the socket) is delivered before this returns.
pub fn run_observed(config: &QemuConfig, observer: &mut dyn GuestObserver) -> Result<RunReport> {
    check_file(&config.kernel, "kernel")?;
    if let Some(initrd) = &config.initrd {
        check_file(initrd, "initramfs")?;
    }
    let start = Instant::now();
    // On a TAP card QEMU runs in the card's namespace (`ip netns exec`
    // execs it: the child is QEMU itself, which kill and wait reach).
    let mut command = match config.nic.as_ref().and_then(|n| n.tap.as_ref()) {
        Some(net) => net.command(&qemu_binary().to_string_lossy()),
        None => Command::new(qemu_binary()),
    };
    let mut child = command
        .args(config.args())
        // Its own process group: Ctrl-C on the terminal reaches the runner
        // (which forwards it to the program), not QEMU.
        .process_group(0)
        // COM1's input: the host's time, when the guest asks (time_sync.rs).
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {}: install QEMU (Debian: `apt-get install qemu-system-x86`) or set CLOISTER_QEMU",
                qemu_binary().display()
            )
        })?;
    RUNNING_QEMU.store(child.id(), std::sync::atomic::Ordering::Relaxed);
    widen_forward_queues(config, child.id());
    let stdout = child.stdout.take().context("QEMU stdout")?;
    let mut com1_in = child.stdin.take().context("QEMU stdin")?;
    let mut stderr = child.stderr.take().context("QEMU stderr")?;
    let (tx, rx) = mpsc::channel::<Message>();
    let gate = Arc::new(app_serial::Gate::default());
    let app_reader = config.app_serial.clone().map(|socket| {
        let input = config.app_input.clone().map(|i| (i, gate.clone()));
        app_serial::Reader::spawn(socket, tx.clone(), Message::App, input)
    });
    let err_app_reader = config
        .app_error_serial
        .clone()
        .map(|socket| app_serial::Reader::spawn(socket, tx.clone(), Message::AppErr, None));
    let responder = config.com1_responder;
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
            // Answered here, at once: the guest times the round trip.
            if line == time_sync::REQUEST_LINE {
                time_sync::answer(&mut com1_in);
                continue;
            }
            if let Some(answer) = responder.and_then(|respond| respond(&line)) {
                // A guest that is gone is no error here (as for the time).
                let _ = com1_in
                    .write_all(answer.as_bytes())
                    .and_then(|()| com1_in.flush());
            }
            if tx.send(Message::Line(line)).is_err() {
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
    let mut finish_by: Option<Instant> = None;
    // A timeout that asked the guest to stop: the outcome, and when to kill.
    let mut stopping: Option<(Outcome, Instant)> = None;
    let killed = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Message::Line(line)) => {
                if line.trim_end() == STDIN_READY_LINE {
                    gate.open();
                    continue;
                }
                let flow = observer.line(&line, start.elapsed());
                lines.push(line);
                last_output = Instant::now();
                if let Flow::Finish { grace } = flow {
                    finish_by.get_or_insert(Instant::now() + grace);
                }
            }
            Ok(Message::App(bytes)) => {
                observer.app_output(&bytes);
                last_output = Instant::now();
            }
            Ok(Message::AppErr(bytes)) => {
                observer.app_error_output(&bytes);
                last_output = Instant::now();
            }
            // Every sender is gone: QEMU closed stdout, and COM2 too.
            Err(mpsc::RecvTimeoutError::Disconnected) => break None,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if reader.is_finished() && child.try_wait().ok().flatten().is_some() {
            // QEMU is gone; the COM2 reader drains its socket to EOF below.
            break stopping.map(|(outcome, _)| outcome);
        }
        if let Some((outcome, kill_at)) = &stopping {
            if Instant::now() > *kill_at {
                break Some(outcome.clone());
            }
            continue;
        }
        if finish_by.is_some_and(|t| Instant::now() > t) {
            break Some(Outcome::Stopped);
        }
        let timed_out = if start.elapsed() > config.timeout {
            Some(Outcome::TimedOut {
                idle: false,
                after: config.timeout,
            })
        } else if last_output.elapsed() > config.idle_timeout {
            Some(Outcome::TimedOut {
                idle: true,
                after: config.idle_timeout,
            })
        } else {
            None
        };
        if let Some(outcome) = timed_out {
            match &config.stop_socket {
                Some(socket) if qmp::execute(socket, &["inject-nmi"]).is_ok() => {
                    stopping = Some((outcome, Instant::now() + STOP_GRACE));
                }
                _ => break Some(outcome),
            }
        }
    };
    if killed.is_some() {
        // Kill QEMU itself (a guest it cannot emulate pauses it, so it never
        // exits on its own).
        let _ = child.kill();
    }
    let status = child.wait().context("waiting for QEMU")?;
    let _ = reader.join();
    for app in [app_reader, err_app_reader].into_iter().flatten() {
        app.finish();
    }
    // The tail: whatever the readers sent after the loop stopped.
    for message in rx.try_iter() {
        match message {
            Message::Line(line) => {
                // Too late to change the flow: QEMU has exited.
                let _ = observer.line(&line, start.elapsed());
                lines.push(line);
            }
            Message::App(bytes) => observer.app_output(&bytes),
            Message::AppErr(bytes) => observer.app_error_output(&bytes),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use stub_guest::End;

    /// A scratch directory for one test, removed afterwards.
    pub(crate) fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cloister-qemu-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn kernel_args_follow_the_command_line() {
        let mut config = QemuConfig::new("/k").unwrap();
        config.kernel_args.clear();
        assert!(!config.args().contains(&"-append".to_string()));
        config.kernel_args = vec!["platform.mmio=emulate".into()];
        assert_eq!(config.full_cmdline(), "platform.mmio=emulate");
        config.cmdline = "log=warn ktest=x ".into();
        let args = config.args();
        let at = args.iter().position(|a| a == "-append").expect("-append");
        assert_eq!(args[at + 1], "log=warn ktest=x platform.mmio=emulate");
    }

    #[test]
    fn com2_args_name_an_isa_serial_at_0x2f8() {
        let mut config = QemuConfig::new("/k").unwrap();
        config.app_serial = Some("/t/app.sock".into());
        let args = config.args().join(" ");
        assert!(
            args.contains("-chardev socket,id=app,path=/t/app.sock,server=on,wait=on -device isa-serial,chardev=app,iobase=0x2f8,irq=3"),
            "{args}"
        );
        config.app_serial = None;
        assert!(!config.args().join(" ").contains("0x2f8"));
    }

    #[derive(Default)]
    struct Collect {
        lines: Vec<String>,
        app: Vec<u8>,
        finish_on: Option<&'static str>,
    }

    impl GuestObserver for Collect {
        fn line(&mut self, line: &str, _: Duration) -> Flow {
            self.lines.push(line.to_string());
            if self.finish_on == Some(line) {
                Flow::Finish {
                    grace: Duration::from_millis(300),
                }
            } else {
                Flow::Continue
            }
        }
        fn app_output(&mut self, bytes: &[u8]) {
            self.app.extend_from_slice(bytes);
        }
    }

    fn stub_config(dir: &Path, writes: &[(u16, &[u8])], end: End) -> QemuConfig {
        let kernel = dir.join("stub.elf");
        std::fs::write(&kernel, stub_guest::build(writes, end)).unwrap();
        let mut config = QemuConfig::new(kernel).unwrap();
        config.accel = Accel::Tcg;
        config.memory_mib = 64;
        config.timeout = Duration::from_secs(60);
        config.idle_timeout = Duration::from_secs(30);
        config.app_serial = Some(dir.join("app.sock"));
        config
    }

    #[test]
    fn a_guest_writing_to_com2_reaches_the_observer_byte_for_byte() {
        let dir = scratch("com2");
        // Every byte value, and a tail longer than a pipe buffer's worth of
        // line-less output, written just before the guest exits.
        let all: Vec<u8> = (0..=255u8).collect();
        let tail = vec![b'x'; 100_000];
        let config = stub_config(
            &dir,
            &[(0x3f8, b"kernel line\r\n"), (0x2f8, &all), (0x2f8, &tail)],
            End::DebugExit(0x10),
        );
        let mut seen = Collect::default();
        let report = run_observed(&config, &mut seen).unwrap();
        assert_eq!(report.outcome, Outcome::Success, "{report:?}");
        assert_eq!(seen.lines, ["kernel line"]);
        assert_eq!(seen.app.len(), 256 + tail.len());
        assert_eq!(&seen.app[..256], &all[..]);
        assert!(seen.app[256..].iter().all(|&b| b == b'x'));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn finish_stops_a_guest_that_does_not_exit_after_the_grace_period() {
        let dir = scratch("finish");
        let config = stub_config(&dir, &[(0x2f8, b"out"), (0x3f8, b"done\n")], End::Hang);
        let mut seen = Collect {
            finish_on: Some("done"),
            ..Collect::default()
        };
        let report = run_observed(&config, &mut seen).unwrap();
        assert_eq!(report.outcome, Outcome::Stopped);
        assert_eq!(seen.app, b"out");
        assert!(report.duration < Duration::from_secs(20), "{report:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
