//! `cloister run` against the real kernel: the program's output and exit
//! status must equal the native command's. Ignored until the kernel side of
//! the run protocol (reading `/.cloister/argv`, COM2, `CLOISTER_EXIT`) has
//! landed; run them with `cargo test -p tools --test run_kernel -- --ignored`.

use std::process::Command;
use std::time::Duration;

use tools::run::{RunOptions, run};

/// Runs `argv` natively and in Cloister; returns (native, cloister) as
/// (stdout+stderr, exit status).
fn both(argv: &[&str]) -> ((Vec<u8>, i32), (Vec<u8>, i32)) {
    let native = Command::new(argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", "/")
        .output()
        .expect("run natively");
    let mut native_out = native.stdout;
    native_out.extend_from_slice(&native.stderr);
    let mut opts = RunOptions::new(argv[0], &argv[1..]);
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(120));
    let result = run(&opts).expect("cloister run");
    assert!(result.diagnosis.is_none(), "{result:#?}");
    let status = i32::from(result.exit_code());
    (
        (native_out, native.status.code().unwrap_or(-1)),
        (result.output, status),
    )
}

#[test]
#[ignore = "needs the kernel side of the run protocol (issue 5)"]
fn busybox_echo_matches_native() {
    let (native, cloister) = both(&["/bin/busybox", "echo", "hello", "world"]);
    assert_eq!(cloister, native);
}

#[test]
#[ignore = "needs the kernel side of the run protocol (issue 5)"]
fn glibc_true_and_false_exit_0_and_1() {
    let (_, (_, status)) = both(&["/usr/bin/true"]);
    assert_eq!(status, 0);
    let (_, (_, status)) = both(&["/usr/bin/false"]);
    assert_eq!(status, 1);
}
