//! Programs serving TCP from inside Cloister to the host, through
//! `cloister run --publish` (QEMU user networking, forwards on 127.0.0.1
//! only): a C echo server built in the test (epoll, non-blocking accept,
//! a loopback client thread in the guest), Debian's `redis-server` and
//! `nginx`. Each runs twice: as is, and with device registers trapped and
//! emulated by instruction decode (`platform.mmio=emulate`, the path a
//! confidential VM's `#VC`/`#VE` handler takes), where the kernel's count
//! of emulated accesses must show the run really went through it. The echo
//! server also runs on QEMU's `q35` machine (`--machine q35`), where the
//! card is a `virtio-net-pci` function, as on the machines SEV-SNP and TDX
//! guests run on.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use tools::qemu::PortForward;
use tools::run::{Machine, RunOptions, RunResult, run};
use vm_tests::{REDIS_ARGS, connect, free_port, http_reply};

/// The kernel words of the emulated-MMIO variants.
const EMULATE_MMIO: &[&str] = &["platform.mmio=emulate"];

/// The counts of emulated device-register accesses the kernel printed
/// (`kernel/src/platform/mmio_emulation.rs`): after boot, and at the
/// program's exit if it exited.
fn emulated_counts(result: &RunResult) -> Vec<u64> {
    result
        .kernel_lines
        .iter()
        .filter_map(|l| {
            let rest = l.split("mmio: emulated device-register accesses (platform.mmio=emulate): ");
            let n = rest.last().filter(|_| l.contains("mmio: emulated"))?;
            n.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

/// Checks that a run with [`EMULATE_MMIO`] emulated device accesses during
/// boot and, if `at_exit`, more of them while the program served (network
/// interrupts, queue notifications): the counts must grow.
fn assert_emulated(result: &RunResult, at_exit: bool) {
    let counts = emulated_counts(result);
    assert!(
        counts.first().is_some_and(|&n| n > 0),
        "no emulated device accesses reported: {:#?}",
        result.kernel_lines
    );
    if at_exit {
        assert!(
            counts.len() == 2 && counts[1] > counts[0],
            "the accesses while serving were not emulated: {counts:?}"
        );
    }
}

/// Starts `argv` in Cloister with `host → guest` published and
/// `kernel_args` on the kernel command line; returns the thread that ends
/// with the run's result.
fn serve(
    argv: &[&str],
    host: u16,
    guest: u16,
    kernel_args: &[&str],
) -> thread::JoinHandle<RunResult> {
    serve_on(Machine::Microvm, argv, host, guest, kernel_args)
}

/// [`serve`] on `machine`.
fn serve_on(
    machine: Machine,
    argv: &[&str],
    host: u16,
    guest: u16,
    kernel_args: &[&str],
) -> thread::JoinHandle<RunResult> {
    let args: Vec<OsString> = argv[1..].iter().map(OsString::from).collect();
    let mut opts = RunOptions::new(argv[0], &args);
    opts.machine = machine;
    opts.kernel_args = kernel_args.iter().map(|w| w.to_string()).collect();
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(300));
    opts.publish = vec![PortForward {
        host_port: host,
        guest_port: guest,
    }];
    thread::spawn(move || run(&opts).expect("cloister run"))
}

/// Writes `DIR/nginx.conf`: one worker, in the foreground, serving
/// `/srv` on port 8080, temporary files in `/tmp`.
fn nginx_conf(dir: &Path) -> PathBuf {
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log stderr notice;\n\
         pid /tmp/nginx.pid;\nevents { worker_connections 64; }\n\
         http {\n  access_log off;\n  sendfile on;\n  client_body_temp_path /tmp;\n  proxy_temp_path /tmp;\n\
         fastcgi_temp_path /tmp;\n  uwsgi_temp_path /tmp;\n  scgi_temp_path /tmp;\n\
         server { listen 8080; root /srv; }\n}\n",
    )
    .expect("write conf");
    conf
}

/// 1 MiB of varied bytes (a file to serve and compare).
fn megabyte() -> Vec<u8> {
    (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// The runner saw nginx start and the kernel logged no error or panic.
fn assert_nginx_ran_cleanly(result: &RunResult) {
    let out = String::from_utf8_lossy(&result.output);
    assert!(out.contains("nginx/"), "{out}");
    assert!(
        !result
            .kernel_lines
            .iter()
            .any(|l| l.contains("ERROR") || l.contains("panic")),
        "{:#?}",
        result.kernel_lines
    );
}

/// A path of its own for this test: tests run in parallel threads of one
/// process, and the plain and emulated-MMIO variants share their code.
fn unique(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("cloister-{name}-{}-{n}", std::process::id()))
}

fn compile(name: &str) -> PathBuf {
    let out = unique(name);
    vm_tests::compile_program(name, &out, &[]);
    out
}

fn read_exact_vec(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v).expect("read");
    v
}

/// Sends a mebibyte through the echo server on `s` while reading it back
/// (writer thread, reader here), checks it came back byte for byte and
/// closes; the bytes echoed.
fn echo_a_mebibyte(mut s: TcpStream) -> usize {
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut writer = s.try_clone().expect("clone");
    let sent = data.clone();
    let w = thread::spawn(move || writer.write_all(&sent).expect("write"));
    let back = read_exact_vec(&mut s, data.len());
    w.join().expect("writer");
    assert!(back == data, "the echo differs from what was sent");
    drop(s.shutdown(std::net::Shutdown::Both));
    data.len()
}

#[test]
fn a_c_echo_server_echoes_a_mebibyte_to_the_host_and_over_loopback() {
    echo_server(&[]);
}

#[test]
fn a_c_echo_server_works_with_emulated_mmio() {
    let result = echo_server(EMULATE_MMIO);
    assert_emulated(&result, true);
}

/// The echo server on `q35`, its card on PCI, device registers trapped and
/// emulated as on a confidential VM: the card is found on the bus, its
/// BARs as SeaBIOS placed them, and interrupts by MSI-X, taken.
#[test]
fn a_c_echo_server_on_q35_echoes_over_a_pci_card() {
    let result = echo_server_on(Machine::Q35, EMULATE_MMIO);
    assert_emulated(&result, true);
    let card = assert_card_on_pci(&result);
    assert!(
        card.contains(", msi-x vector ") && !card.contains("placed by the kernel"),
        "{card}"
    );
    assert_interrupts_taken(&result);
}

/// The same with the BARs placed by the kernel, as without a firmware
/// (an IGVM launch), and the INTx line instead of MSI-X.
#[test]
fn a_c_echo_server_on_q35_works_with_bars_the_kernel_placed_and_intx() {
    let args = [EMULATE_MMIO, &["net.pci_assign=always", "net.pci_irq=intx"]].concat();
    let result = echo_server_on(Machine::Q35, &args);
    assert_emulated(&result, true);
    let card = assert_card_on_pci(&result);
    assert!(
        card.contains("BARs placed by the kernel") && card.contains(", irq "),
        "{card}"
    );
    assert_interrupts_taken(&result);
}

/// The guest waited halted for the first connection: the card's interrupt
/// woke it (a busy transfer may be served by polling alone).
fn assert_interrupts_taken(result: &RunResult) {
    let interrupts = net_counter(result, "dev_interrupts").expect("dev_interrupts counted");
    assert!(interrupts > 0, "no interrupt from the PCI card");
}

/// The kernel's line about the card (`net: virtio-net …`).
fn card_line(result: &RunResult) -> &str {
    result
        .kernel_lines
        .iter()
        .find(|l| l.contains("net: virtio-net"))
        .expect("the card's line")
}

/// The kernel's card line says the card is a PCI function, notified with
/// one device access per notification, with an interrupt (not polled);
/// returns the line.
fn assert_card_on_pci(result: &RunResult) -> &str {
    let card = card_line(result);
    assert!(
        card.contains(" on PCI 00:")
            && card.contains("one write per notification")
            && !card.contains("polling"),
        "{card}"
    );
    card
}

fn echo_server(kernel_args: &[&str]) -> RunResult {
    echo_server_on(Machine::Microvm, kernel_args)
}

fn echo_server_on(machine: Machine, kernel_args: &[&str]) -> RunResult {
    let prog = compile("tcp_echo");
    let port = free_port();
    let server = serve_on(
        machine,
        &[prog.to_str().expect("utf-8"), "7000", "2"],
        port,
        7000,
        kernel_args,
    );
    // First connection: a small probe, which also waits for the guest.
    let first = connect(port, |s| {
        s.write_all(b"ping").is_ok() && {
            let mut b = [0u8; 4];
            s.read_exact(&mut b).is_ok() && &b == b"ping"
        }
    });
    drop(first.shutdown(std::net::Shutdown::Both));
    // Second: 1 MiB in both directions at once.
    let second = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    let echoed = echo_a_mebibyte(second);
    let result = server.join().expect("run thread");
    assert!(result.diagnosis.is_none(), "{result:#?}");
    let out = String::from_utf8_lossy(&result.output);
    assert_eq!(
        out,
        format!(
            "listening on 7000\nechoed {} bytes, loopback ok\n",
            4 + echoed + "loopback hello".len() + 1
        )
    );
    assert_eq!(result.exit_code(), 0);
    result
}

/// One RESP command, one reply line (`None` if the connection failed).
fn try_redis(s: &mut TcpStream, args: &[&str]) -> Option<String> {
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(cmd.as_bytes()).ok()?;
    let mut reply = Vec::new();
    let mut b = [0u8; 1];
    while !reply.ends_with(b"\r\n") {
        if s.read(&mut b).ok()? == 0 {
            return None;
        }
        reply.push(b[0]);
    }
    Some(String::from_utf8_lossy(&reply).trim_end().to_string())
}

fn redis(s: &mut TcpStream, args: &[&str]) -> String {
    try_redis(s, args).expect("redis reply")
}

#[test]
fn debian_redis_server_answers_the_host() {
    let result = redis_server(&[]);
    assert_frames_crossed_in_place(&result);
}

#[test]
fn debian_redis_server_works_with_emulated_mmio() {
    let result = redis_server(EMULATE_MMIO);
    assert_emulated(&result, true);
    assert_frames_crossed_in_place(&result);
}

/// Counter `name` of the kernel's `net counters:` line, printed at exit.
fn net_counter(result: &RunResult, name: &str) -> Option<u64> {
    let line = result
        .kernel_lines
        .iter()
        .find(|l| l.contains("net counters:"))?;
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// On the native backend smoltcp wrote every frame to send longer than
/// the copybreak straight into the card's transmit slots and copied only
/// the short ones (`libos::net::device`): the counters of the exit line
/// say so.
fn assert_frames_crossed_in_place(result: &RunResult) {
    let get = |name| {
        net_counter(result, name)
            .unwrap_or_else(|| panic!("no {name} in the net counters: {:#?}", result.kernel_lines))
    };
    let (tx, tx_in_place, tx_short) =
        (get("tx_frames"), get("tx_in_place"), get("tx_short_copied"));
    let deferred = get("tx_deferred");
    assert!(
        tx_in_place > 0 && tx_short > 0 && tx_in_place + tx_short + deferred == tx,
        "sent {tx}: {tx_in_place} in place, {tx_short} short ones copied, {deferred} held back"
    );
}

fn redis_server(kernel_args: &[&str]) -> RunResult {
    assert!(
        Path::new("/usr/bin/redis-server").exists(),
        "/usr/bin/redis-server is missing: install the Debian package redis-server (.ci/install-deps does)"
    );
    let port = free_port();
    let server = serve(
        &[&["/usr/bin/redis-server"][..], &REDIS_ARGS].concat(),
        port,
        6379,
        kernel_args,
    );
    let mut s = connect(port, |s| {
        try_redis(s, &["PING"]).as_deref() == Some("+PONG")
    });
    assert_eq!(redis(&mut s, &["SET", "cloister", "runs redis"]), "+OK");
    assert_eq!(redis(&mut s, &["GET", "cloister"]), "$10");
    let mut value = [0u8; 12];
    s.read_exact(&mut value).expect("value");
    assert_eq!(&value, b"runs redis\r\n");
    // A value longer than a short frame (`libos::net::COPYBREAK`): its
    // reply is written in place, where the card lends.
    let long: String = (0..2000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    assert_eq!(redis(&mut s, &["SET", "long", &long]), "+OK");
    assert_eq!(redis(&mut s, &["GET", "long"]), "$2000");
    let mut value = vec![0u8; 2002];
    s.read_exact(&mut value).expect("the long value");
    assert_eq!(&value[..2000], long.as_bytes());
    assert_eq!(redis(&mut s, &["INCRBY", "n", "41"]), ":41");
    assert_eq!(redis(&mut s, &["INCR", "n"]), ":42");
    // The server closes the connection instead of replying.
    assert_eq!(try_redis(&mut s, &["SHUTDOWN", "NOSAVE"]), None);
    let result = server.join().expect("run thread");
    assert!(result.diagnosis.is_none(), "{result:#?}");
    let out = String::from_utf8_lossy(&result.output);
    assert!(out.contains("Ready to accept connections"), "{out}");
    assert_eq!(result.exit_code(), 0, "{out}");
    result
}

/// An HTTP/1.0 GET; returns (status line, body).
fn http_get(port: u16, path: &str) -> Option<(String, Vec<u8>)> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    Some((head.lines().next()?.to_string(), raw[split + 4..].to_vec()))
}

#[test]
fn debian_nginx_serves_static_files_with_sendfile() {
    nginx(&[]);
}

#[test]
fn debian_nginx_works_with_emulated_mmio() {
    let result = nginx(EMULATE_MMIO);
    // nginx is killed, so only the boot count is printed.
    assert_emulated(&result, false);
}

fn nginx(kernel_args: &[&str]) -> RunResult {
    assert!(
        Path::new("/usr/sbin/nginx").exists(),
        "/usr/sbin/nginx is missing: install the Debian package nginx (.ci/install-deps does)"
    );
    let dir = unique("nginx");
    let srv = dir.join("srv");
    std::fs::create_dir_all(&srv).expect("mkdir");
    let small: Vec<u8> = (0..4096u32).map(|i| b'a' + (i % 26) as u8).collect();
    let big = megabyte();
    std::fs::write(srv.join("small.txt"), &small).expect("write");
    std::fs::write(srv.join("big.bin"), &big).expect("write");
    let conf = nginx_conf(&dir);
    let port = free_port();
    let args: Vec<OsString> = ["-c", "/etc/nginx/nginx.conf"]
        .iter()
        .map(OsString::from)
        .collect();
    let mut opts = RunOptions::new("/usr/sbin/nginx", &args);
    opts.kernel_args = kernel_args.iter().map(|w| w.to_string()).collect();
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(300));
    opts.publish = vec![PortForward {
        host_port: port,
        guest_port: 8080,
    }];
    opts.files = vec![
        tools::run::options::FileMapping {
            host: conf.clone(),
            guest: Some("/etc/nginx/nginx.conf".into()),
        },
        tools::run::options::FileMapping {
            host: srv.clone(),
            guest: Some("/srv".into()),
        },
    ];
    let server = thread::spawn(move || run(&opts).expect("cloister run"));
    let deadline = Instant::now() + Duration::from_secs(240);
    let small_reply = loop {
        if let Some(r) = http_get(port, "/small.txt") {
            break r;
        }
        assert!(Instant::now() < deadline, "nginx never answered");
        thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(small_reply.0, "HTTP/1.1 200 OK");
    assert!(small_reply.1 == small, "small.txt differs");
    let (status, body) = http_get(port, "/big.bin").expect("big.bin");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body == big, "big.bin differs ({} bytes)", body.len());
    let (status, _) = http_get(port, "/missing").expect("404");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    // nginx runs until signalled and the guest cannot be signalled from
    // the host: stop its QEMU (found by the unique forward) and check the
    // runner saw nginx start and no kernel error.
    let pattern = format!("hostfwd=tcp:127.0.0.1:{port}-");
    // SIGKILL: a harness may run us with SIGTERM blocked, which QEMU inherits.
    let _ = Command::new("pkill")
        .args(["-KILL", "-f", &pattern])
        .status();
    let result = server.join().expect("run thread");
    assert_nginx_ran_cleanly(&result);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Writes `DIR/nginx-VERSION.conf`: Debian's `master_process on;
/// worker_processes 2;` in the foreground, serving `/srv` on port 8080
/// with each reply naming its worker (`X-Worker: $pid`), `/version`
/// answering `VERSION`, and an access log the reload script watches.
fn nginx_master_conf(dir: &Path, version: &str) -> PathBuf {
    let conf = dir.join(format!("nginx-{version}.conf"));
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process on;\nworker_processes 2;\nerror_log stderr notice;\n\
             pid /tmp/nginx.pid;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log /tmp/access.log;\n  sendfile on;\n  client_body_temp_path /tmp;\n\
             proxy_temp_path /tmp;\n  fastcgi_temp_path /tmp;\n  uwsgi_temp_path /tmp;\n  scgi_temp_path /tmp;\n\
             server {{\n    listen 8080; root /srv; add_header X-Worker $pid;\n\
             location = /version {{ return 200 \"{version}\\n\"; }}\n  }}\n}}\n"
        ),
    )
    .expect("write conf");
    conf
}

/// `curl -i` of `http://127.0.0.1:PORT/PATH` on the host: (status line,
/// the `X-Worker` header, body), or `None` while nothing answers.
fn curl(port: u16, path: &str) -> Option<(String, String, Vec<u8>)> {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "60"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("run curl");
    if !out.status.success() {
        return None;
    }
    http_reply(&out.stdout)
}

/// Issue 12: nginx with a master and two worker processes (fork, the
/// channel socketpairs with `SCM_RIGHTS`, `FIOASYNC`/`F_SETOWN`, the
/// workers' `setgid`/`setuid` to nobody) serves the 4 KiB and 1 MiB files
/// to curl; then `nginx -s reload` (run in the guest by a busybox script
/// once the access log shows the 1 MiB request) makes the master re-read
/// its configuration, start two new workers and retire the old ones, while
/// the listening socket stays: a request after the reload is answered by a
/// new worker with the new configuration. A last request makes the script
/// stop nginx with `-s quit`, so the run ends by itself and the master's
/// log shows all four workers reaped.
#[test]
fn debian_nginx_master_with_two_workers_serves_and_reloads() {
    vm_tests::require("/usr/sbin/nginx", "nginx");
    vm_tests::require("/bin/busybox", "busybox-static");
    vm_tests::require("/usr/bin/curl", "curl");
    let dir = unique("nginx-master");
    let srv = dir.join("srv");
    std::fs::create_dir_all(&srv).expect("mkdir");
    let small: Vec<u8> = (0..4096u32).map(|i| b'a' + (i % 26) as u8).collect();
    let big = megabyte();
    std::fs::write(srv.join("small.txt"), &small).expect("write");
    std::fs::write(srv.join("big.bin"), &big).expect("write");
    let (v1, v2) = (nginx_master_conf(&dir, "v1"), nginx_master_conf(&dir, "v2"));
    let script = dir.join("reload.sh");
    std::fs::write(
        &script,
        "/usr/sbin/nginx -c /etc/nginx/nginx.conf &\n\
         master=$!\n\
         until grep -q 'GET /big.bin' /tmp/access.log 2>/dev/null; do sleep 1; done\n\
         cp /etc/nginx/nginx-v2.conf /etc/nginx/nginx.conf\n\
         /usr/sbin/nginx -c /etc/nginx/nginx.conf -s reload\n\
         echo \"reload sent: $?\"\n\
         until grep -q 'GET /done' /tmp/access.log; do sleep 1; done\n\
         /usr/sbin/nginx -c /etc/nginx/nginx.conf -s quit\n\
         wait $master\n\
         echo \"nginx exited: $?\"\n",
    )
    .expect("write script");
    let port = free_port();
    let mut opts = RunOptions::new("/bin/busybox", ["sh", "/reload.sh"]);
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(400));
    opts.publish = vec![PortForward {
        host_port: port,
        guest_port: 8080,
    }];
    let map = |host: &Path, guest: &str| tools::run::options::FileMapping {
        host: host.to_path_buf(),
        guest: Some(guest.into()),
    };
    // The script runs nginx: it goes in the image (its interpreter and
    // libraries are added by `cloister run`).
    opts.files = vec![
        map(Path::new("/usr/sbin/nginx"), "/usr/sbin/nginx"),
        map(&v1, "/etc/nginx/nginx.conf"),
        map(&v2, "/etc/nginx/nginx-v2.conf"),
        map(&script, "/reload.sh"),
        map(&srv, "/srv"),
    ];
    let server = thread::spawn(move || run(&opts).expect("cloister run"));
    let deadline = Instant::now() + Duration::from_secs(300);
    let (status, first, body) = loop {
        if let Some(r) = curl(port, "/small.txt") {
            break r;
        }
        assert!(Instant::now() < deadline, "nginx never answered");
        thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body == small, "small.txt differs");
    let (status, second, body) = curl(port, "/version").expect("version");
    assert_eq!(
        (status.as_str(), body.as_slice()),
        ("HTTP/1.1 200 OK", &b"v1\n"[..])
    );
    // This request makes the script reload nginx.
    let (status, third, body) = curl(port, "/big.bin").expect("big.bin");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body == big, "big.bin differs ({} bytes)", body.len());
    let old_workers = [first, second, third];
    assert!(old_workers.iter().all(|w| !w.is_empty()), "{old_workers:?}");
    // The same forwarded port, now answered by a new worker with the new
    // configuration.
    let new_worker = loop {
        let r = curl(port, "/version").expect("a request during the reload");
        assert_eq!(r.0, "HTTP/1.1 200 OK");
        if r.2 == b"v2\n" {
            break r.1;
        }
        assert!(Instant::now() < deadline, "nginx never reloaded");
        thread::sleep(Duration::from_millis(500));
    };
    assert!(
        !old_workers.contains(&new_worker),
        "v2 came from an old worker: {new_worker} in {old_workers:?}"
    );
    let (status, _, body) = curl(port, "/big.bin").expect("big.bin after the reload");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body == big, "big.bin differs after the reload");
    // This one makes the script stop nginx (`-s quit`): the master waits
    // for every worker, old and new, and the run ends by itself.
    let (status, _, _) = curl(port, "/done").expect("the last request");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let result = server.join().expect("run thread");
    assert_nginx_ran_cleanly(&result);
    let out = String::from_utf8_lossy(&result.output);
    assert_eq!(result.exit_code(), 0, "{out}");
    // The script's echoes are on stdout, nginx's log on stderr: each is
    // checked in its own stream (the interleaved output is merged on the
    // host as the two serial lines' bytes arrive, so a line of one can be
    // cut by a piece of the other).
    let script_out = String::from_utf8_lossy(&result.stdout);
    let out = String::from_utf8_lossy(&result.stderr);
    assert!(script_out.contains("reload sent: 0"), "{script_out}");
    assert!(out.contains("reconfiguring"), "{out}");
    // The master's handler learnt who sent SIGHUP (`si_pid`): the
    // `nginx -s reload` process.
    let signaller = out
        .lines()
        .find_map(|l| {
            l.split("#")
                .next()?
                .split("[notice] ")
                .nth(1)
                .filter(|_| l.ends_with(": signal process started"))
        })
        .expect("the signal process's pid");
    assert!(
        out.contains(&format!(
            "signal 1 (SIGHUP) received from {signaller}, reconfiguring"
        )),
        "{out}"
    );
    assert_eq!(out.matches("start worker process ").count(), 4, "{out}");
    assert!(out.contains("gracefully shutting down"), "{out}");
    assert_eq!(out.matches("exited with code 0").count(), 4, "{out}");
    assert!(script_out.contains("nginx exited: 0"), "{script_out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cloister run --net tap`'s path: nginx serves two files to curl run
/// inside a network namespace of the test's own, whose TAP device the
/// guest's card is on (`tools::qemu::tap`; the guest is 10.77.0.2 there
/// and gets its address from `net.ip=`); nothing leaves the namespace.
/// Needs root for `ip netns`; without it the test says it was skipped.
#[test]
fn debian_nginx_serves_files_to_curl_over_a_tap_network() {
    use tools::qemu::tap::{GUEST_ADDR, TapNet};
    let net = match TapNet::create() {
        Ok(net) => net,
        Err(e) => {
            eprintln!("SKIPPED debian_nginx_serves_files_to_curl_over_a_tap_network: {e:#}");
            return;
        }
    };
    assert!(
        Path::new("/usr/bin/curl").exists(),
        "/usr/bin/curl is missing: install the Debian package curl (.ci/install-deps does)"
    );
    let dir = unique("nginx-tap");
    let srv = dir.join("srv");
    std::fs::create_dir_all(&srv).expect("mkdir");
    let big = megabyte();
    std::fs::write(srv.join("index.html"), b"cloister over tap\n").expect("write");
    std::fs::write(srv.join("big.bin"), &big).expect("write");
    let conf = nginx_conf(&dir);
    let mut opts = RunOptions::new("/usr/sbin/nginx", ["-c", "/etc/nginx/nginx.conf"]);
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(300));
    opts.net = tools::run::NetMode::TapIn(net.clone());
    opts.files = vec![
        tools::run::options::FileMapping {
            host: conf,
            guest: Some("/etc/nginx/nginx.conf".into()),
        },
        tools::run::options::FileMapping {
            host: srv,
            guest: Some("/srv".into()),
        },
    ];
    let server = thread::spawn(move || run(&opts).expect("cloister run"));
    // curl in the namespace; the body, or None while nginx is not up.
    let curl = |path: &str| -> Option<Vec<u8>> {
        let out = net
            .command("curl")
            .args(["-sS", "--fail", "--max-time", "60"])
            .arg(format!("http://{GUEST_ADDR}:8080{path}"))
            .output()
            .expect("run curl in the namespace");
        out.status.success().then_some(out.stdout)
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    let index = loop {
        if let Some(body) = curl("/index.html") {
            break body;
        }
        assert!(Instant::now() < deadline, "nginx never answered over tap");
        thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(index, b"cloister over tap\n");
    let body = curl("/big.bin").expect("curl big.bin");
    assert!(body == big, "big.bin differs ({} bytes)", body.len());
    assert!(curl("/missing").is_none(), "a missing file was served");
    // nginx runs until killed: stop what runs in the test's namespace
    // (only this run's QEMU).
    let pids = Command::new("ip")
        .args(["netns", "pids", net.namespace()])
        .output()
        .expect("ip netns pids");
    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
    let result = server.join().expect("run thread");
    assert_nginx_ran_cleanly(&result);
    // The mebibyte crossed a card that finishes checksums and cuts long
    // frames (a wrong header would have failed the transfer above).
    assert_card_took_the_offloads(&result);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The kernel's card line says it took QEMU's TAP card's checksum and
/// segmentation offloads (`libos::net::offload`).
fn assert_card_took_the_offloads(result: &RunResult) {
    let card = card_line(result);
    assert!(
        card.contains("offloads: tcp checksum, segmentation"),
        "{card}"
    );
}

/// The C echo server on a TAP network (`cloister run --net tap`), where
/// QEMU's card finishes TCP checksums and cuts long frames: a mebibyte
/// sent from the test's namespace comes back intact, part of it in frames
/// the card cut (the exit line's `tx_segmented`). Needs root, as above.
#[test]
fn a_c_echo_server_echoes_a_mebibyte_over_tap_in_frames_the_card_cuts() {
    echo_over_tap(
        Machine::Microvm,
        "a_c_echo_server_echoes_a_mebibyte_over_tap_in_frames_the_card_cuts",
    );
}

/// The same on `q35`: the offloads through the PCI card.
#[test]
fn a_c_echo_server_on_q35_echoes_over_tap_in_frames_the_pci_card_cuts() {
    if let Some(result) = echo_over_tap(
        Machine::Q35,
        "a_c_echo_server_on_q35_echoes_over_tap_in_frames_the_pci_card_cuts",
    ) {
        assert_card_on_pci(&result);
    }
}

/// The echo server on a TAP network on `machine`; `None` (skipped) where
/// no TAP device can be made.
fn echo_over_tap(machine: Machine, test: &str) -> Option<RunResult> {
    use tools::qemu::tap::TapNet;
    let net = match TapNet::create() {
        Ok(net) => net,
        Err(e) => {
            eprintln!("SKIPPED {test}: {e:#}");
            return None;
        }
    };
    let prog = compile("tcp_echo");
    let mut opts = RunOptions::new(prog, ["7000", "1"]);
    opts.machine = machine;
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(300));
    opts.net = tools::run::NetMode::TapIn(net.clone());
    let server = thread::spawn(move || run(&opts).expect("cloister run"));
    let deadline = Instant::now() + Duration::from_secs(240);
    let s = loop {
        if let Ok(s) = net.connect(7000, Duration::from_secs(2)) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the echo server never answered over tap"
        );
        thread::sleep(Duration::from_millis(200));
    };
    echo_a_mebibyte(s);
    let result = server.join().expect("run thread");
    assert!(result.diagnosis.is_none(), "{result:#?}");
    assert_eq!(result.exit_code(), 0);
    assert_card_took_the_offloads(&result);
    let segmented = net_counter(&result, "tx_segmented").expect("tx_segmented counted");
    let sent = net_counter(&result, "tx_frames").expect("tx_frames counted");
    eprintln!("tx_frames={sent} tx_segmented={segmented}");
    assert!(segmented > 0, "no frame was cut by the card ({sent} sent)");
    Some(result)
}
