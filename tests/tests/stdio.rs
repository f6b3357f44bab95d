//! The program's stdin, stdout and stderr as on the host (`cloister run`
//! with real pipes): input flows in and ends, output and error stay apart,
//! and a pipe is not a terminal in the guest (`isatty` false, so no colour
//! escapes and no "cannot write to a terminal" refusals).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use vm_tests::cloister_cli;

/// `cloister run -- argv…` with `input` on its stdin and its stdout and
/// stderr captured (pipes, not terminals).
fn run(argv: &[&str], input: &[u8]) -> Output {
    run_with(&[], argv, input)
}

/// [`run`] with `options` for `cloister run` before the `--`.
fn run_with(options: &[&str], argv: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(cloister_cli())
        .arg("run")
        .args(options)
        .arg("--")
        .args(argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cloister run");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("cloister run");
    writer.join().expect("writer");
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn stdin_flows_in_and_ends() {
    let out = run(&["/usr/bin/sort", "-r"], b"a\nb\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "b\na\n");
}

#[test]
fn stdout_and_stderr_stay_apart() {
    let out = run(&["/bin/busybox", "sh", "-c", "echo out; echo err >&2"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert!(
        text(&out.stderr).starts_with("err\n"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn pipes_are_not_terminals() {
    let script =
        "for fd in 0 1 2; do if test -t $fd; then echo $fd tty; else echo $fd pipe; fi; done";
    let out = run(&["/bin/busybox", "sh", "-c", script], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "0 pipe\n1 pipe\n2 pipe\n");
    // jq colours its output only on a terminal.
    if std::path::Path::new("/usr/bin/jq").exists() {
        let out = run(&["/usr/bin/jq", "-n", "{\"a\": 1}"], b"");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            !out.stdout.contains(&0x1b),
            "escape bytes: {:?}",
            out.stdout
        );
        assert_eq!(text(&out.stdout), "{\n  \"a\": 1\n}\n");
    }
}

#[test]
fn binary_data_round_trips_through_two_runs() {
    // Every byte value, 0xff (the framing's escape) included, many times.
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 255) as u8).collect();
    // xz -9 needs about 674 MiB: more than a 512 MiB guest (or Linux on
    // one) can commit, so this guest gets 1 GiB.
    let packed = run_with(&["--mem", "1G"], &["/usr/bin/xz", "-9", "-c"], &data);
    assert_eq!(packed.status.code(), Some(0), "{}", text(&packed.stderr));
    assert!(packed.stdout.len() > 16 && packed.stdout.len() < data.len());
    let unpacked = run(&["/usr/bin/xz", "-d", "-c"], &packed.stdout);
    assert_eq!(
        unpacked.status.code(),
        Some(0),
        "{}",
        text(&unpacked.stderr)
    );
    assert!(unpacked.stdout == data, "the round trip changed the data");
}

#[test]
fn a_terminal_is_a_terminal_with_the_hosts_size() {
    // `script` (util-linux, Essential in Debian) gives the run a pseudo-terminal.
    let inner = format!(
        "stty cols 111 rows 33; {} run -- /bin/busybox sh -c 'for fd in 0 1 2; do test -t $fd && echo $fd tty; done; stty size'",
        cloister_cli().display()
    );
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let shown = text(&out.stdout).replace('\r', "");
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.starts_with("0 tty\n1 tty\n2 tty\n33 111\n"),
        "{shown}"
    );
}

#[test]
fn ctrl_c_on_the_terminal_is_sigint_for_the_program() {
    use std::io::Read;
    use std::sync::mpsc;
    let dir = std::env::temp_dir().join(format!("cloister-sigint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prog = dir.join("sigint");
    vm_tests::compile_program("sigint", &prog, &[]);
    // `script` gives the run a pseudo-terminal; a 0x03 typed into it is the
    // terminal's Ctrl-C, which its driver turns into SIGINT for the runner.
    // `exec`: the shell `script` starts must not stay in the terminal's
    // foreground group, or the SIGINT reaches it too and a shell such as
    // dash (`script`'s choice when SHELL is unset, as in CI) then exits 130
    // although the run ended with 0.
    let inner = format!(
        "exec {} run --no-learn -- {}",
        cloister_cli().display(),
        prog.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script");
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut b = [0u8; 256];
        while let Ok(n) = out.read(&mut b) {
            if n == 0 || tx.send(b[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    // The whole line: a press sent after "ready" but before its newline
    // is echoed (`^C`) between them, and the check below fails.
    while !String::from_utf8_lossy(&seen)
        .replace('\r', "")
        .contains("ready\n")
    {
        seen.extend(
            rx.recv_timeout(std::time::Duration::from_secs(240))
                .expect("ready"),
        );
    }
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    // A Ctrl-C that never arrives must fail the test, not hang the run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("script") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no exit 120 s after Ctrl-C: {}", text(&seen));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    while let Ok(more) = rx.recv_timeout(std::time::Duration::from_secs(5)) {
        seen.extend(more);
    }
    let shown = text(&seen).replace('\r', "");
    assert_eq!(status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("ready\n") && shown.contains("got signal 2\n"),
        "{shown}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
