//! Shared helpers for Cloister's integration tests, which boot real images
//! in QEMU (the tests themselves are in `tests/tests/`).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use tools::build::{KernelBuild, build_kernel};

/// The test kernel (dev profile, `ktest` feature), built once per process.
///
/// # Panics
/// If QEMU is missing and cannot be installed, or the kernel does not build:
/// no integration test can run then.
pub fn test_kernel() -> PathBuf {
    static KERNEL: OnceLock<PathBuf> = OnceLock::new();
    KERNEL
        .get_or_init(|| {
            if let Err(e) = tools::deps::ensure_qemu() {
                panic!("{e:#}");
            }
            build_kernel(KernelBuild {
                release: false,
                ktest: true,
            })
            .unwrap_or_else(|e| panic!("{e:#}"))
        })
        .clone()
}

/// The `cloister` command-line tool (debug build), built once per process
/// with a nested `cargo build` so tests run the real binary even when
/// `cargo test` selects only this package.
///
/// # Panics
/// If it does not build.
pub fn cloister_cli() -> PathBuf {
    static CLI: OnceLock<PathBuf> = OnceLock::new();
    CLI.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let root = tools::build::workspace_root();
        let out = Command::new(cargo)
            .current_dir(&root)
            .args(["build", "--quiet", "-p", "tools", "--bin", "cloister"])
            .args(["--message-format", "json-render-diagnostics"])
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run cargo to build `cloister`: {e}"));
        assert!(out.status.success(), "building `cloister` failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "cloister")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo built `cloister` but did not report its executable")
    })
    .clone()
}

/// Builds `tests/programs/NAME.c` with the system gcc (`-O2 -Wall
/// -pthread` plus `extra`) into `out`.
///
/// # Panics
/// If gcc is missing (`.ci/install-deps` installs it) or the build fails.
pub fn compile_program(name: &str, out: &std::path::Path, extra: &[&str]) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("programs/{name}.c"));
    let ok = Command::new("gcc")
        .args(["-O2", "-Wall", "-pthread", "-o"])
        .arg(out)
        .arg(&src)
        .args(extra)
        .status()
        .unwrap_or_else(|e| panic!("gcc: {e} (install it: .ci/install-deps does)"))
        .success();
    assert!(ok, "gcc {name}.c failed");
}

/// A TCP port on 127.0.0.1 that is free right now.
///
/// # Panics
/// If no loopback port can be bound.
pub fn free_port() -> u16 {
    let l =
        std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Runs `argv` natively with the environment `cloister run` gives (an
/// empty environment but `PATH` and `HOME`) and, as a program in Cloister
/// starts, no signal blocked: stdout then stderr, and the exit status (-1
/// if killed).
///
/// A harness (CI's among them) may run the tests with every signal
/// blocked, a mask children inherit across exec: a native shell's `trap`
/// or a program waiting for `SIGCHLD` would then wait forever. The mask is
/// per thread, so only this call's thread unblocks, for the child's spawn.
///
/// # Panics
/// If the program cannot be started.
pub fn native(argv: &[&str]) -> (Vec<u8>, i32) {
    use nix::sys::signal::{SigSet, SigmaskHow};
    let old = SigSet::all()
        .thread_swap_mask(SigmaskHow::SIG_UNBLOCK)
        .expect("unblock signals");
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", "/")
        .output();
    old.thread_set_mask().expect("restore the signal mask");
    let out = out.expect("run natively");
    let mut bytes = out.stdout;
    bytes.extend_from_slice(&out.stderr);
    (bytes, out.status.code().unwrap_or(-1))
}

/// Connects to `127.0.0.1:port` once the guest answers: slirp accepts at
/// once and closes again while nothing listens in the guest, so a
/// connection counts only when `probe` succeeds on it.
///
/// # Panics
/// If the guest has not answered after 240 s.
pub fn connect(port: u16, probe: impl Fn(&mut std::net::TcpStream) -> bool) -> std::net::TcpStream {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port)) {
            s.set_read_timeout(Some(Duration::from_secs(60)))
                .expect("timeout");
            if probe(&mut s) {
                return s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the guest never answered on {port}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `redis-server`'s arguments in the tests that boot it: port 6379 (the
/// guest side of the published port), no persistence, and no protected
/// mode (clients come through QEMU's forwarding, not from loopback).
pub const REDIS_ARGS: [&str; 8] = [
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--protected-mode",
    "no",
];

/// One RESP command (an array of bulk strings), as a Redis client sends it.
pub fn resp_command(args: &[&str]) -> Vec<u8> {
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    cmd.into_bytes()
}

/// An HTTP reply read whole: its status line, its `X-Worker` header (the
/// answering Nginx worker in the tests' configurations; empty if absent)
/// and its body; `None` if the head has no end.
pub fn http_reply(raw: &[u8]) -> Option<(String, String, Vec<u8>)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let worker = head
        .lines()
        .find_map(|l| l.strip_prefix("X-Worker: "))
        .unwrap_or_default()
        .to_string();
    Some((
        head.lines().next()?.to_string(),
        worker,
        raw[split + 4..].to_vec(),
    ))
}

/// Fails the test, naming the Debian package, if `path` is missing.
///
/// # Panics
/// If `path` does not exist.
pub fn require(path: &str, package: &str) {
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: install the Debian package `{package}` (.ci/install-deps does)"
    );
}

/// A scratch directory of this process, removed when dropped.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh (emptied) `cloister-NAME-PID` under the temporary directory.
    ///
    /// # Panics
    /// If it cannot be created.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cloister-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    /// `p` inside it.
    pub fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
