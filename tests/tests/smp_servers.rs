//! Servers on two vCPUs (issue 15): what `cloister bench linux --cpus 2
//! --figures redis-io-threads,nginx-workers` measures must first be right.
//!
//! - Debian's `redis-server` with `--io-threads 2 --io-threads-do-reads
//!   yes` on 2 vCPUs: 8 connections send bursts of pipelined `INCR`s; every
//!   reply must come back in order on its connection and the counter must
//!   end exact; Redis's own counters must show its I/O thread read and
//!   wrote requests, the kernel's exit line that both CPUs ran threads, and
//!   `SHUTDOWN NOSAVE` must end it with status 0.
//! - Debian's `nginx` as a master with 2 worker processes on 2 vCPUs,
//!   under a busybox script: the 4 KiB and 1 MiB files byte for byte, each
//!   reply from a worker (`X-Worker`, not the master); a last request makes
//!   the script stop nginx (`-s quit`): both workers exit 0, the master
//!   too, and both CPUs ran threads.
//!
//! Needs `redis-server`, `nginx`, `busybox-static`. Run with
//! `cargo test -p vm-tests --test smp_servers`.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use tools::qemu::PortForward;
use tools::run::options::FileMapping;
use tools::run::{RunOptions, RunResult, run};
use vm_tests::{REDIS_ARGS, Scratch, connect, free_port, http_reply, require, resp_command};

/// A run on 2 vCPUs with `host → guest` published.
fn options(prog: &str, args: &[&str], host: u16, guest: u16) -> RunOptions {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let mut opts = RunOptions::new(prog, &args);
    opts.cpus = Some(2);
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(400));
    opts.publish = vec![PortForward {
        host_port: host,
        guest_port: guest,
    }];
    opts
}

/// The kernel's exit line says every one of the 2 CPUs ran threads.
fn assert_both_cpus_ran_threads(r: &RunResult) {
    let runs: Vec<u64> = r
        .kernel_lines
        .iter()
        .find_map(|l| l.split("smp: thread runs per CPU").nth(1))
        .and_then(|l| l.split(';').next())
        .unwrap_or_else(|| panic!("no smp summary: {:#?}", r.kernel_lines))
        .split_whitespace()
        .map(|n| n.parse().expect("a count"))
        .collect();
    assert_eq!(runs.len(), 2, "{:#?}", r.kernel_lines);
    assert!(runs.iter().all(|&n| n > 0), "a CPU ran no thread: {runs:?}");
}

/// Reads one RESP reply line (without `\r\n`); `None` at the end.
fn reply_line(s: &mut TcpStream) -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if s.read(&mut b).ok()? == 0 {
            return None;
        }
        line.push(b[0]);
    }
    line.truncate(line.len() - 2);
    Some(String::from_utf8_lossy(&line).into_owned())
}

/// `INFO stats`'s field `name` (a bulk reply read to its end).
fn info_stat(s: &mut TcpStream, name: &str) -> u64 {
    s.write_all(&resp_command(&["INFO", "stats"]))
        .expect("send INFO");
    let head = reply_line(s).expect("INFO reply");
    let len: usize = head
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("INFO: {head}"));
    let mut body = vec![0u8; len + 2];
    s.read_exact(&mut body).expect("INFO body");
    let body = String::from_utf8_lossy(&body).into_owned();
    body.lines()
        .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

/// Connections of the Redis test, and `INCR`s per connection per burst.
const CONNECTIONS: usize = 8;
const PIPELINE: usize = 32;
/// Bursts at most: Redis hands requests to its I/O threads only while at
/// least 2 × io-threads clients wait for replies in one event-loop pass;
/// bursts go on until its counters show the threads did both.
const MAX_BURSTS: usize = 40;

#[test]
fn redis_with_two_io_threads_answers_exactly_on_two_vcpus() {
    require("/usr/bin/redis-server", "redis-server");
    let port = free_port();
    let opts = options(
        "/usr/bin/redis-server",
        &[
            &REDIS_ARGS[..],
            &["--io-threads", "2", "--io-threads-do-reads", "yes"],
        ]
        .concat(),
        port,
        6379,
    );
    let server = thread::spawn(move || run(&opts).expect("cloister run"));
    let mut admin = connect(port, |s| {
        s.write_all(&resp_command(&["PING"])).is_ok() && reply_line(s).as_deref() == Some("+PONG")
    });
    let mut conns: Vec<TcpStream> = (0..CONNECTIONS).map(|_| connect(port, |_| true)).collect();
    let burst = resp_command(&["INCR", "n"]).repeat(PIPELINE);
    let mut total = 0u64;
    let mut bursts = 0;
    let (mut reads, mut writes) = (0, 0);
    while bursts < MAX_BURSTS && (reads == 0 || writes == 0) {
        for c in &mut conns {
            c.write_all(&burst).expect("send a burst");
        }
        for c in &mut conns {
            let mut last = 0u64;
            for _ in 0..PIPELINE {
                let r = reply_line(c).expect("an INCR reply");
                let v: u64 = r
                    .strip_prefix(':')
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("INCR replied {r:?}"));
                // One connection's replies come in its requests' order.
                assert!(v > last, "{v} after {last}");
                last = v;
            }
        }
        total += (CONNECTIONS * PIPELINE) as u64;
        bursts += 1;
        reads = info_stat(&mut admin, "io_threaded_reads_processed");
        writes = info_stat(&mut admin, "io_threaded_writes_processed");
    }
    admin
        .write_all(&resp_command(&["GET", "n"]))
        .expect("send GET");
    let _len = reply_line(&mut admin).expect("GET reply");
    assert_eq!(reply_line(&mut admin), Some(total.to_string()));
    eprintln!("I/O threads after {bursts} bursts: {reads} reads, {writes} writes");
    assert!(
        reads > 0 && writes > 0,
        "after {bursts} bursts the I/O threads read {reads} and wrote {writes}"
    );
    // The server closes the connection instead of replying.
    admin
        .write_all(&resp_command(&["SHUTDOWN", "NOSAVE"]))
        .expect("send SHUTDOWN");
    assert_eq!(reply_line(&mut admin), None);
    let result = server.join().expect("run thread");
    let out = String::from_utf8_lossy(&result.output);
    assert!(result.diagnosis.is_none(), "{:?}\n{out}", result.diagnosis);
    assert_eq!(result.exit_code(), 0, "{out}");
    assert_both_cpus_ran_threads(&result);
}

/// An HTTP/1.0 GET: (status line, `X-Worker`, body), `None` while
/// nothing answers.
fn get(port: u16, path: &str) -> Option<(String, String, Vec<u8>)> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    http_reply(&raw)
}

#[test]
fn nginx_with_two_workers_serves_on_two_vcpus() {
    require("/usr/sbin/nginx", "nginx");
    require("/bin/busybox", "busybox-static");
    let s = Scratch::new("smp-nginx");
    let srv = s.path("srv");
    std::fs::create_dir_all(&srv).expect("mkdir");
    let small: Vec<u8> = (0..4096u32).map(|i| b'a' + (i % 26) as u8).collect();
    let big: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(srv.join("small.txt"), &small).expect("write");
    std::fs::write(srv.join("big.bin"), &big).expect("write");
    let conf = s.path("nginx.conf");
    std::fs::write(
        &conf,
        "daemon off;\nmaster_process on;\nworker_processes 2;\nerror_log stderr notice;\n\
         pid /tmp/nginx.pid;\nevents { worker_connections 64; }\n\
         http {\n  access_log /tmp/access.log;\n  sendfile on;\n  client_body_temp_path /tmp;\n\
         proxy_temp_path /tmp;\n  fastcgi_temp_path /tmp;\n  uwsgi_temp_path /tmp;\n  scgi_temp_path /tmp;\n\
         server { listen 8080; root /srv; add_header X-Worker $pid; }\n}\n",
    )
    .expect("write conf");
    let script = s.path("serve.sh");
    std::fs::write(
        &script,
        "/usr/sbin/nginx -c /etc/nginx/nginx.conf &\n\
         master=$!\n\
         echo \"master $master\"\n\
         until grep -q 'GET /done' /tmp/access.log 2>/dev/null; do sleep 1; done\n\
         /usr/sbin/nginx -c /etc/nginx/nginx.conf -s quit\n\
         wait $master\n\
         echo \"nginx exited: $?\"\n",
    )
    .expect("write script");
    let port = free_port();
    let mut opts = options("/bin/busybox", &["sh", "/serve.sh"], port, 8080);
    let map = |host: &Path, guest: &str| FileMapping {
        host: host.to_path_buf(),
        guest: Some(guest.into()),
    };
    opts.files = vec![
        map(Path::new("/usr/sbin/nginx"), "/usr/sbin/nginx"),
        map(&conf, "/etc/nginx/nginx.conf"),
        map(&script, "/serve.sh"),
        map(&srv, "/srv"),
    ];
    let server = thread::spawn(move || run(&opts).expect("cloister run"));
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut workers = Vec::new();
    let first = loop {
        if let Some(r) = get(port, "/small.txt") {
            break r;
        }
        assert!(Instant::now() < deadline, "nginx never answered");
        thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(first.0, "HTTP/1.1 200 OK");
    assert!(first.2 == small, "small.txt differs");
    workers.push(first.1);
    for path in ["/big.bin", "/small.txt", "/big.bin"] {
        let (status, worker, body) = get(port, path).expect("a reply");
        assert_eq!(status, "HTTP/1.1 200 OK");
        let want = if path == "/big.bin" { &big } else { &small };
        assert!(body == *want, "{path} differs ({} bytes)", body.len());
        workers.push(worker);
    }
    let (status, _, _) = get(port, "/done").expect("the last request");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let result = server.join().expect("run thread");
    let script_out = String::from_utf8_lossy(&result.stdout);
    let log = String::from_utf8_lossy(&result.stderr);
    assert!(result.diagnosis.is_none(), "{:?}\n{log}", result.diagnosis);
    assert_eq!(result.exit_code(), 0, "{script_out}\n{log}");
    assert!(script_out.contains("nginx exited: 0"), "{script_out}");
    // Every reply came from a worker the master started, not the master.
    let master = script_out
        .lines()
        .find_map(|l| l.strip_prefix("master "))
        .expect("the master's pid");
    let started: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("start worker process ").nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(started.len(), 2, "{log}");
    assert!(
        workers
            .iter()
            .all(|w| started.contains(&w.as_str()) && w != master),
        "replies from {workers:?}, workers {started:?}, master {master}"
    );
    assert_eq!(log.matches("exited with code 0").count(), 2, "{log}");
    assert_both_cpus_ran_threads(&result);
}
