//! Applications linked with the kernel library (docs/RUNTIME.md), booted
//! with `cloister run --app` and driven by real clients from the host: the
//! examples in `kernel/examples/` — hello (output and exit status, and its
//! audit event in a sealed log that verifies), the
//! RESP key-value server (`redis-cli`, `redis-benchmark`) and the static
//! HTTP server (`curl`, byte-exact).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use tools::qemu::PortForward;
use tools::run::audit::{AuditSpec, DEFAULT_REGION_BYTES};
use tools::run::options::FileMapping;
use tools::run::{RunOptions, RunResult, run};
use vm_tests::{cloister_cli, connect, free_port};

/// The example `name`, built for the bare-metal target (dev profile).
fn example(name: &str) -> PathBuf {
    if let Err(e) = tools::deps::ensure_qemu() {
        panic!("{e:#}");
    }
    tools::build::build_example(name, false).unwrap_or_else(|e| panic!("{e:#}"))
}

/// A path of its own for this test (tests run in parallel threads).
fn unique(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("cloister-rt-{name}-{}-{n}", std::process::id()))
}

/// Options to boot `app` capturing its output, with a time limit.
fn app_options(app: &Path, kernel_args: &[&str]) -> RunOptions {
    let mut opts = RunOptions::new(app.as_os_str(), Vec::<String>::new());
    opts.app = Some(app.to_path_buf());
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(300));
    opts.kernel_args = kernel_args.iter().map(|w| w.to_string()).collect();
    opts
}

/// Boots `opts` in a thread with host port `host` forwarded to `guest`.
fn serve(mut opts: RunOptions, host: u16, guest: u16) -> thread::JoinHandle<RunResult> {
    opts.publish = vec![PortForward {
        host_port: host,
        guest_port: guest,
    }];
    thread::spawn(move || run(&opts).expect("cloister run --app"))
}

/// Runs a host command; its stdout, after checking it succeeded.
fn host(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn hello_prints_and_exits_with_its_status() {
    let app = example("hello");
    let result = run(&app_options(&app, &["app.status=42"])).expect("cloister run --app");
    assert!(result.diagnosis.is_none(), "{result:#?}");
    let out = String::from_utf8_lossy(&result.stdout);
    assert!(
        out.starts_with("hello from a linked Cloister application\n"),
        "{out:?}"
    );
    assert!(out.contains("sum from a thread: 55\n"), "{out:?}");
    assert!(out.contains("slept at least 10 ms: true\n"), "{out:?}");
    // A TCP connection and UDP datagrams to itself over 127.0.0.1.
    assert!(out.contains("tcp loopback: ok\n"), "{out:?}");
    assert!(out.contains("udp loopback: ok\n"), "{out:?}");
    assert_eq!(result.status, Some(42), "{result:#?}");
    assert_eq!(result.exit_code(), 42);
}

#[test]
fn hellos_audit_event_is_in_a_sealed_log_that_verifies() {
    let app = example("hello");
    let dir = unique("audit");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let log = dir.join("hello.audit");
    let mut opts = app_options(&app, &[]);
    opts.audit = Some(AuditSpec {
        file: log.clone(),
        region_bytes: DEFAULT_REGION_BYTES,
        key_file: None,
    });
    let result = run(&opts).expect("cloister run --app --audit");
    assert_eq!(result.status, Some(7), "{result:#?}");
    let key = dir.join("hello.audit.key");
    let audit = |args: &[&str]| {
        let out = Command::new(cloister_cli())
            .arg("audit")
            .arg(args[0])
            .arg(&log)
            .arg("--key-file")
            .arg(&key)
            .args(&args[1..])
            .output()
            .expect("cloister audit");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let verified = audit(&["verify"]);
    assert!(
        verified.contains("result: verified: 0 errors"),
        "{verified}"
    );
    assert!(verified.contains("0 unsealed"), "{verified}");
    let shown = audit(&["show"]);
    let started = shown.find("application started").expect(&shown);
    let event = shown.find("app: hello: done").expect(&shown);
    let exited = shown.find("program exited with status 7").expect(&shown);
    assert!(started < event && event < exited, "{shown}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_resp_example_serves_redis_cli_and_redis_benchmark() {
    let app = example("resp");
    let port = free_port();
    let server = serve(app_options(&app, &[]), port, 6379);
    let mut probe = connect(port, |s| {
        s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok() && {
            let mut b = [0u8; 7];
            s.read_exact(&mut b).is_ok() && &b == b"+PONG\r\n"
        }
    });
    let p = port.to_string();
    let cli = |args: &[&str]| {
        let mut all = vec!["-h", "127.0.0.1", "-p", &p];
        all.extend_from_slice(args);
        host("redis-cli", &all).trim_end().to_string()
    };
    assert_eq!(cli(&["SET", "counter", "10"]), "OK");
    assert_eq!(cli(&["INCR", "counter"]), "11");
    assert_eq!(cli(&["GET", "counter"]), "11");
    assert_eq!(cli(&["SET", "word", "cloister"]), "OK");
    assert_eq!(
        cli(&["INCR", "word"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(cli(&["DEL", "counter", "missing"]), "1");
    assert_eq!(cli(&["GET", "counter"]), "");
    // 10 clients: QEMU 7.2's user networking stalls some of 50 during the
    // connection burst whichever guest serves (tools/src/bench/figures.rs).
    let bench = host(
        "redis-benchmark",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "-t",
            "set,get,incr",
            "-n",
            "2000",
            "-c",
            "10",
            "-q",
            "--csv",
        ],
    );
    let rows: Vec<&str> = bench
        .lines()
        .filter(|l| !l.starts_with("\"test\""))
        .collect();
    for test in ["SET", "GET", "INCR"] {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("\"{test}\",")))
            .unwrap_or_else(|| panic!("no {test} row in {bench}"));
        let rps: f64 = row
            .split(',')
            .nth(1)
            .and_then(|v| v.trim_matches('"').parse().ok())
            .unwrap_or_else(|| panic!("no requests/s in {row}"));
        assert!(rps > 0.0, "{row}");
    }
    assert!(!bench.to_lowercase().contains("error"), "{bench}");
    // The benchmark's INCRs went to its own key: 2000 of them.
    assert_eq!(cli(&["GET", "counter:__rand_int__"]), "2000");
    // SHUTDOWN: no reply, the application exits with status 0.
    probe
        .write_all(b"*1\r\n$8\r\nSHUTDOWN\r\n")
        .expect("shutdown");
    let mut rest = Vec::new();
    let _ = probe.read_to_end(&mut rest);
    let result = server.join().expect("run thread");
    assert!(result.diagnosis.is_none(), "{result:#?}");
    assert_eq!(result.status, Some(0), "{result:#?}");
    let out = String::from_utf8_lossy(&result.stdout);
    assert!(out.starts_with("resp: listening on port 6379\n"), "{out:?}");
    assert!(out.contains("resp: shutting down with 3 keys"), "{out:?}");
}

#[test]
fn the_http_example_serves_a_static_file_byte_exact() {
    let app = example("http");
    let site = unique("site");
    std::fs::create_dir_all(&site).expect("site dir");
    std::fs::write(site.join("index.html"), b"<h1>linked</h1>\n").expect("index");
    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(site.join("data.bin"), &data).expect("data");
    let port = free_port();
    // Three connections: the probe, the file, a missing one.
    let mut opts = app_options(&app, &["app.requests=3"]);
    opts.files = vec![FileMapping {
        host: site.clone(),
        guest: Some(PathBuf::from("/www")),
    }];
    let server = serve(opts, port, 80);
    let mut probe = connect(port, |s| {
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok() && {
            let mut b = [0u8; 15];
            s.read_exact(&mut b).is_ok() && &b == b"HTTP/1.1 200 OK"
        }
    });
    let mut page = Vec::new();
    probe.read_to_end(&mut page).expect("index");
    assert!(page.ends_with(b"\r\n\r\n<h1>linked</h1>\n"), "{page:?}");
    drop(probe);
    let url = format!("http://127.0.0.1:{port}/data.bin");
    let out = site.join("fetched.bin");
    let code = host(
        "curl",
        &[
            "-sS",
            "--max-time",
            "120",
            "-o",
            out.to_str().expect("utf-8"),
            "-w",
            "%{http_code}",
            &url,
        ],
    );
    assert_eq!(code, "200");
    let fetched = std::fs::read(&out).expect("fetched file");
    assert!(
        fetched == data,
        "{} bytes fetched, {} served",
        fetched.len(),
        data.len()
    );
    let missing = host(
        "curl",
        &[
            "-sS",
            "--max-time",
            "120",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{port}/nope"),
        ],
    );
    assert_eq!(missing, "404");
    let result = server.join().expect("run thread");
    assert!(result.diagnosis.is_none(), "{result:#?}");
    assert_eq!(result.status, Some(0), "{result:#?}");
    assert!(
        String::from_utf8_lossy(&result.stdout).contains("http: served 3 connections"),
        "{result:#?}"
    );
    let _ = std::fs::remove_dir_all(&site);
}
