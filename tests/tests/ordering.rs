//! Linux-faithful ordering seen through Debian's `redis-server` in
//! Cloister (issue 17): Redis serves clients in the order `epoll_wait`
//! returns them, which on Linux is the order their data arrived.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use tools::qemu::PortForward;
use tools::run::{RunOptions, RunResult, run};
use vm_tests::{REDIS_ARGS, free_port, resp_command};

/// `redis-server` in Cloister with `host → 6379` published.
fn serve_redis(host: u16) -> thread::JoinHandle<RunResult> {
    assert!(
        Path::new("/usr/bin/redis-server").exists(),
        "/usr/bin/redis-server is missing: install the Debian package redis-server (.ci/install-deps does)"
    );
    let args: Vec<OsString> = REDIS_ARGS.iter().map(OsString::from).collect();
    let mut opts = RunOptions::new("/usr/bin/redis-server", &args);
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(600));
    opts.publish = vec![PortForward {
        host_port: host,
        guest_port: 6379,
    }];
    thread::spawn(move || run(&opts).expect("cloister run"))
}

/// A client connection with RESP framing.
struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    /// Connects once the guest's Redis answers `PING` (slirp accepts and
    /// closes while nothing listens in the guest).
    fn connect(port: u16) -> Self {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            if let Ok(s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                s.set_nodelay(true).unwrap();
                let mut c = Client {
                    r: BufReader::new(s.try_clone().unwrap()),
                    w: s,
                };
                if c.w.write_all(&resp_command(&["PING"])).is_ok()
                    && c.try_reply().as_deref() == Some("PONG")
                {
                    return c;
                }
            }
            assert!(Instant::now() < deadline, "the guest never answered");
            thread::sleep(Duration::from_millis(500));
        }
    }

    fn send(&mut self, args: &[&str]) {
        self.w.write_all(&resp_command(args)).expect("send");
    }

    /// One reply, flattened: `PONG`, `1`, `[subscribe,ch,1]`, `nil`.
    fn try_reply(&mut self) -> Option<String> {
        let mut line = String::new();
        if self.r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        let (kind, rest) = line.split_at(1);
        Some(match kind {
            "+" | ":" | "-" => rest.to_string(),
            "$" if rest == "-1" => "nil".into(),
            "$" => {
                let len: usize = rest.parse().ok()?;
                let mut bulk = vec![0u8; len + 2];
                self.r.read_exact(&mut bulk).ok()?;
                bulk.truncate(len);
                String::from_utf8_lossy(&bulk).into_owned()
            }
            "*" => {
                let n: usize = rest.parse().ok()?;
                let items: Option<Vec<String>> = (0..n).map(|_| self.try_reply()).collect();
                format!("[{}]", items?.join(","))
            }
            _ => return None,
        })
    }

    fn reply(&mut self) -> String {
        self.try_reply().expect("a reply")
    }

    fn call(&mut self, args: &[&str]) -> String {
        self.send(args);
        self.reply()
    }
}

#[test]
fn redis_serves_clients_in_the_order_their_commands_arrived() {
    let port = free_port();
    let server = serve_redis(port);
    let mut a = Client::connect(port);
    let mut b = Client::connect(port);

    // B unsubscribes without waiting for the answer, then A publishes: on
    // Linux the PUBLISH reaches 0 subscribers every time (issue 17: with
    // epoll in fd order it reached 1 in 198 of 200 tries).
    assert_eq!(b.call(&["SUBSCRIBE", "ch"]), "[subscribe,ch,1]");
    let mut reached = 0;
    for _ in 0..200 {
        b.send(&["UNSUBSCRIBE", "ch"]);
        a.send(&["PUBLISH", "ch", "hello"]);
        let receivers = a.reply();
        if receivers == "1" {
            reached += 1;
            assert_eq!(b.reply(), "[message,ch,hello]");
        }
        assert_eq!(b.reply(), "[unsubscribe,ch,0]");
        assert_eq!(b.call(&["SUBSCRIBE", "ch"]), "[subscribe,ch,1]");
    }
    assert_eq!(reached, 0, "PUBLISH after UNSUBSCRIBE reached B");
    assert_eq!(b.call(&["UNSUBSCRIBE", "ch"]), "[unsubscribe,ch,0]");

    // Three clients block on BLPOP in the order they send it; pushes serve
    // them in that order. Connected in the opposite order, so that fd order
    // and arrival order disagree.
    let mut waiters: Vec<Client> = (0..3).map(|_| Client::connect(port)).collect();
    waiters.reverse();
    for w in &mut waiters {
        w.send(&["BLPOP", "q", "0"]);
    }
    // Wait until all three are blocked.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let info = a.call(&["INFO", "clients"]);
        if info.contains("blocked_clients:3") {
            break;
        }
        assert!(Instant::now() < deadline, "not all blocked: {info}");
        thread::sleep(Duration::from_millis(100));
    }
    for v in ["v0", "v1", "v2"] {
        assert_eq!(a.call(&["RPUSH", "q", v]), "1");
    }
    let served: Vec<String> = waiters.iter_mut().map(|w| w.reply()).collect();
    assert_eq!(served, ["[q,v0]", "[q,v1]", "[q,v2]"]);

    a.send(&["SHUTDOWN", "NOSAVE"]);
    let result = server.join().expect("run thread");
    assert_eq!(
        result.exit_code(),
        0,
        "{}",
        String::from_utf8_lossy(&result.output)
    );
}
