//! `cloister run` as a user sees it: exit status, stdout and stderr of the
//! real binary, booting a stub guest (`tools::qemu::stub_guest`) that
//! speaks the run protocol instead of the kernel.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tools::qemu::stub_guest::{self, End};

const COM1: u16 = 0x3f8;
const COM2: u16 = 0x2f8;

/// A directory for one test, removed afterwards.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("cloister-run-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cloister_run(kernel: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloister"))
        .args([
            "run",
            "--accel",
            "tcg",
            "--mem",
            "64M",
            "--timeout",
            "60",
            "--kernel",
        ])
        .arg(kernel)
        .args(args)
        .output()
        .expect("run cloister")
}

fn stub(dir: &Scratch, writes: &[(u16, &[u8])], end: End) -> PathBuf {
    let path = dir.0.join("stub.elf");
    std::fs::write(&path, stub_guest::build(writes, end)).unwrap();
    path
}

#[test]
fn exits_with_the_programs_status_and_relays_its_output() {
    let dir = Scratch::new("status");
    let kernel = stub(
        &dir,
        &[
            (COM1, b"Cloister ready\r\n"),
            (COM1, b"[    0.100000] INFO  exec\r\n"),
            (COM1, b"[    0.200000] WARN  odd but harmless\r\n"),
            (COM1, b"[    0.250000] ERROR  something broke\r\n"),
            (COM2, b"hello\n"),
            (COM1, b"[trace] exit_group(7) = ?\r\n"),
            (COM1, b"CLOISTER_UNSUPPORTED=rseq:1,nr_999:2\r\n"),
            (COM1, b"CLOISTER_EXIT=7\r\n"),
        ],
        End::DebugExit(0x10),
    );
    let out = cloister_run(&kernel, &["--", "/usr/bin/true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert_eq!(out.stdout, b"hello\n");
    assert!(
        stderr.contains("cloister: [    0.250000] ERROR  something broke"),
        "{stderr}"
    );
    assert!(!stderr.contains("WARN"), "warnings only with -v: {stderr}");
    assert!(
        stderr.contains("cloister: the program called unsupported syscalls (each returned ENOSYS): rseq ×1, nr_999 ×2"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("CLOISTER_"),
        "control lines are not shown: {stderr}"
    );
    assert!(
        !stderr.contains("INFO") && !stderr.contains("Cloister ready"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("[trace]"),
        "trace lines only with --trace: {stderr}"
    );

    let out = cloister_run(&kernel, &["--trace", "-v", "--", "/usr/bin/true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[trace] exit_group(7) = ?"), "{stderr}");
    assert!(
        stderr.contains("cloister: [    0.100000] INFO  exec"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/lib/x86_64-linux-gnu/libc.so.6"),
        "-v lists the image: {stderr}"
    );
}

#[test]
fn a_guest_that_ends_without_a_status_exits_125_with_a_diagnosis() {
    let dir = Scratch::new("panic");
    let kernel = stub(
        &dir,
        &[
            (COM1, b"Cloister ready\r\n"),
            (COM1, b"kernel panic at src/x.rs:1: boom\r\n"),
        ],
        End::DebugExit(0x11),
    );
    let out = cloister_run(&kernel, &["--", "/usr/bin/true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("cloister: the guest ended without reporting the program's exit status: guest reported failure"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cloister:   Cloister ready"),
        "last kernel lines: {stderr}"
    );
}

#[test]
fn user_errors_exit_125_before_booting() {
    let dir = Scratch::new("errors");
    let kernel = dir.0.join("unused.elf");
    let out = cloister_run(&kernel, &["--", "/nonexistent/prog"]);
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cloister: error: cannot run /nonexistent/prog: it does not exist"),
        "{stderr}"
    );
    let out = cloister_run(&kernel, &["--file", "/nonexistent", "--", "/usr/bin/true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--file /nonexistent: it does not exist")
    );
}
