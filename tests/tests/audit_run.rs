//! `cloister run --audit`: Debian's `redis-server` runs with the audit log
//! on while the host's `redis-cli` sets a key; after the run the log file
//! verifies with the generated key, and `cloister audit show --syscall`
//! finds the `accept4` of the client's connection and the `write` of its
//! `+OK` reply. A `--timeout` stop seals the log too.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use tools::qemu::PortForward;
use tools::run::audit::{AuditSpec, DEFAULT_REGION_BYTES};
use tools::run::{RunOptions, run};
use vm_tests::{REDIS_ARGS, cloister_cli, free_port};

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("cloister-audit-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn audited(program: &str, args: &[&str], log: &Path) -> RunOptions {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let mut opts = RunOptions::new(program, &args);
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(300));
    opts.audit = Some(AuditSpec {
        file: log.to_path_buf(),
        region_bytes: DEFAULT_REGION_BYTES,
        key_file: None,
    });
    opts
}

fn redis_cli(port: u16, args: &[&str]) -> Output {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli (Debian package redis-tools, installed with redis-server)")
}

fn cli(args: &[&str], log: &Path) -> (Option<i32>, String) {
    let key = log.with_file_name(format!(
        "{}.key",
        log.file_name().unwrap().to_string_lossy()
    ));
    let mut cmd = Command::new(cloister_cli());
    cmd.arg("audit").args(&args[..1]).arg(log);
    cmd.arg("--key-file").arg(&key).args(&args[1..]);
    let out = cmd.output().expect("cloister audit");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn an_audited_redis_run_verifies_and_shows_the_clients_calls() {
    let dir = scratch("redis");
    let log = dir.join("redis.audit");
    let port = free_port();
    let mut opts = audited("/usr/bin/redis-server", &REDIS_ARGS, &log);
    opts.publish = vec![PortForward {
        host_port: port,
        guest_port: 6379,
    }];
    let server = thread::spawn(move || run(&opts).expect("cloister run"));
    let deadline = Instant::now() + Duration::from_secs(240);
    while String::from_utf8_lossy(&redis_cli(port, &["PING"]).stdout).trim() != "PONG" {
        assert!(Instant::now() < deadline, "redis never answered on {port}");
        thread::sleep(Duration::from_millis(500));
    }
    let set = redis_cli(port, &["SET", "audited", "yes"]);
    assert_eq!(String::from_utf8_lossy(&set.stdout).trim(), "OK");
    redis_cli(port, &["SHUTDOWN", "NOSAVE"]);
    let result = server.join().expect("run thread");
    assert_eq!(result.exit_code(), 0, "{result:#?}");

    let (code, out) = cli(&["verify"], &log);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("result: verified: 0 errors"), "{out}");
    assert!(
        out.contains("0 unsealed"),
        "the exit sealed every record: {out}"
    );

    let (code, accepts) = cli(&["show", "--syscall", "accept4"], &log);
    assert_eq!(code, Some(0), "{accepts}");
    // PING, SET and SHUTDOWN came on three connections: three accepted fds.
    let accepted: Vec<&str> = accepts
        .lines()
        .filter(|l| l.contains("syscall accept4") && !l.contains("result=-"))
        .collect();
    assert!(accepted.len() >= 3, "{accepts}");
    // Records keep the registers the call takes: accept4's four.
    for l in &accepted {
        let args = l.split("args=[").nth(1).and_then(|r| r.split(']').next());
        assert_eq!(args.map(|a| a.split(", ").count()), Some(4), "{l}");
    }
    let (_, writes) = cli(&["show", "--syscall", "write"], &log);
    assert!(
        writes
            .lines()
            .any(|l| l.contains("syscall write") && l.contains("result=5 ")),
        "the 5-byte `+OK\\r\\n` reply to SET: {writes}"
    );
    let (_, stats) = cli(&["show", "--stats"], &log);
    assert!(
        stats.lines().any(|l| l.starts_with("epoll_wait")),
        "{stats}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_stopped_at_its_timeout_leaves_a_sealed_log() {
    let dir = scratch("timeout");
    let log = dir.join("sleep.audit");
    let mut opts = audited("/bin/busybox", &["sleep", "1000"], &log);
    opts.timeout = Some(Duration::from_secs(15));
    let result = run(&opts).expect("cloister run");
    assert_eq!(result.status, None, "the program was stopped: {result:#?}");
    let (code, out) = cli(&["verify"], &log);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("0 unsealed"), "{out}");
    let (_, shown) = cli(&["show"], &log);
    assert!(shown.contains("stopped by the host (NMI)"), "{shown}");
    let _ = std::fs::remove_dir_all(&dir);
}
