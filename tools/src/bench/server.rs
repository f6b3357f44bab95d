//! The host side of the server figures (Redis, Nginx): the client that
//! measures a server running in a guest, and [`run_served`], which runs
//! it alongside the guest.
//!
//! The guest boots with a network card and the job's port forwards
//! ([`super::guest::QemuSettings::config_for`]) — or, with `--net tap`, on
//! a TAP device in a network namespace made for the run, where the clients
//! run too ([`Endpoint::Tap`]) — while a host thread waits
//! until the server answers through the forward (Redis: `PING` → `+PONG`;
//! HTTP: any `HTTP/1.x` status line), runs the [`Client`]'s commands
//! (`redis-benchmark`, `wrk`) and then stops the server: Redis is asked to
//! `SHUTDOWN NOSAVE`, so that it exits and the guest reports its end;
//! whatever is still running [`EXIT_WAIT`] later (Nginx never exits by
//! itself) gets an NMI (QMP `inject-nmi`: Cloister prints its network
//! counters and exits) and, [`NMI_WAIT`] later, a QMP `quit` on the socket
//! both guests' QEMU listens on. Polling from the host needs nothing from either guest, so
//! the [`super::guest::Guest`] trait has no ready-line hook.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use super::guest::{Guest, GuestRun, Job, qmp_socket};
use super::host_cpu::{HostCpu, ThreadTimes};
use crate::qemu::tap::{self, TapNet};

/// Where the client reaches the server.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// 127.0.0.1:PORT on the host, a user-mode network forward.
    Forward(u16),
    /// The guest's address and this port inside a TAP namespace; the
    /// clients run in the namespace (`ip netns exec`).
    Tap(Arc<TapNet>, u16),
}

impl Endpoint {
    /// The address the client connects to.
    fn host(&self) -> String {
        match self {
            Self::Forward(_) => Ipv4Addr::LOCALHOST.to_string(),
            Self::Tap(..) => tap::GUEST_ADDR.to_string(),
        }
    }

    fn port(&self) -> u16 {
        match self {
            Self::Forward(p) | Self::Tap(_, p) => *p,
        }
    }

    /// `program`, run where it reaches the server.
    fn command(&self, program: &str) -> Command {
        match self {
            Self::Forward(_) => Command::new(program),
            Self::Tap(net, _) => net.command(program),
        }
    }

    fn connect(&self, timeout: Duration) -> Option<TcpStream> {
        match self {
            Self::Forward(port) => {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
                TcpStream::connect_timeout(&addr, timeout).ok()
            }
            Self::Tap(net, port) => net.connect(*port, timeout).ok(),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host(), self.port())?;
        if let Self::Tap(net, _) = self {
            write!(f, " in network namespace {}", net.namespace())?;
        }
        Ok(())
    }
}

/// How long a server may take to exit after it was asked to before QEMU
/// is stopped.
pub const EXIT_WAIT: Duration = Duration::from_secs(15);
/// How long a server that cannot be asked to exit (Nginx) gets after an
/// NMI before QEMU is stopped: Cloister then prints its network counters
/// and exits (`kernel/src/exit.rs`); Linux logs the NMI and goes on.
pub const NMI_WAIT: Duration = Duration::from_secs(5);
/// The label of Redis's `INFO stats` output among a run's client output
/// ([`Client::Redis`]'s `io_thread_stats`).
pub const REDIS_STATS_LABEL: &str = "INFO stats";
/// Between two readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// One `redis-benchmark` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisBench {
    /// Its name in metric names (`50 clients`).
    pub label: String,
    /// Requests per test (`-n`).
    pub requests: u32,
    /// Parallel connections (`-c`).
    pub clients: u32,
    /// Requests per pipeline (`-P`; 1 is no pipelining).
    pub pipeline: u32,
    /// The tests (`-t`), comma-separated.
    pub tests: String,
}

/// One `wrk` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrkRun {
    /// Its name in metric names (`GET 4 KiB file`).
    pub label: String,
    /// The URL path (`/4k.bin`).
    pub path: String,
    /// Threads (`-t`).
    pub threads: u32,
    /// Connections (`-c`).
    pub connections: u32,
    /// Duration in seconds (`-d`).
    pub seconds: u32,
}

/// What measures a server from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    /// `redis-benchmark` runs against Redis.
    Redis {
        /// The forwarded port on 127.0.0.1.
        host_port: u16,
        /// The runs, in order.
        runs: Vec<RedisBench>,
        /// After the runs, also read Redis's `INFO stats` (the I/O
        /// threads' counters), labelled [`REDIS_STATS_LABEL`].
        io_thread_stats: bool,
    },
    /// `wrk` runs against an HTTP server.
    Wrk {
        /// The forwarded port on 127.0.0.1.
        host_port: u16,
        /// The runs, in order.
        runs: Vec<WrkRun>,
    },
}

impl Client {
    fn host_port(&self) -> u16 {
        match self {
            Self::Redis { host_port, .. } | Self::Wrk { host_port, .. } => *host_port,
        }
    }

    /// The commands to run against `at`, each with its label.
    pub fn commands(&self, at: &Endpoint) -> Vec<(String, Command)> {
        let port = at.port().to_string();
        let host = at.host();
        match self {
            Self::Redis { runs, .. } => runs
                .iter()
                .map(|r| {
                    let mut c = at.command("redis-benchmark");
                    c.args(["-h", &host, "-p", &port, "-q", "--csv"])
                        .args(["-n", &r.requests.to_string()])
                        .args(["-c", &r.clients.to_string()])
                        .args(["-P", &r.pipeline.to_string()])
                        .args(["-t", &r.tests]);
                    (r.label.clone(), c)
                })
                .collect(),
            Self::Wrk { runs, .. } => runs
                .iter()
                .map(|r| {
                    let mut c = at.command("wrk");
                    c.arg(format!("-t{}", r.threads))
                        .arg(format!("-c{}", r.connections))
                        .arg(format!("-d{}s", r.seconds))
                        .arg(format!("http://{host}:{port}{}", r.path));
                    (r.label.clone(), c)
                })
                .collect(),
        }
    }

    /// The command to run after the measured ones, with its label: Redis's
    /// `INFO stats` where asked for.
    fn after_runs(&self, at: &Endpoint) -> Option<(String, Command)> {
        match self {
            Self::Redis {
                io_thread_stats: true,
                ..
            } => {
                let mut c = at.command("redis-cli");
                c.args(["-h", &at.host(), "-p", &at.port().to_string()])
                    .args(["INFO", "stats"]);
                Some((REDIS_STATS_LABEL.into(), c))
            }
            _ => None,
        }
    }

    /// Whether the server answers at `at`.
    fn is_ready(&self, at: &Endpoint) -> bool {
        let (request, answer): (&[u8], &[u8]) = match self {
            Self::Redis { .. } => (b"PING\r\n", b"+PONG"),
            Self::Wrk { .. } => (b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1."),
        };
        exchange(at, request, answer.len()).is_some_and(|reply| reply.starts_with(answer))
    }

    /// Asks the server to exit; whether it could be asked.
    fn ask_to_exit(&self, at: &Endpoint) -> bool {
        match self {
            Self::Redis { .. } => {
                exchange(at, b"SHUTDOWN NOSAVE\r\n", 1);
                true
            }
            Self::Wrk { .. } => false,
        }
    }
}

/// Sends `request` to `at` and reads up to `len` bytes of the
/// reply (less if the server closes first); `None` if nothing came back.
fn exchange(at: &Endpoint, request: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut s = at.connect(Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(request).ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 64];
    while reply.len() < len {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    (!reply.is_empty()).then_some(reply)
}

/// A TCP port on 127.0.0.1 that is free now (for a forward).
pub fn free_host_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("no free port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

/// Ends the QEMU listening on [`qmp_socket`] (QMP `quit`).
fn qmp_quit() -> Result<()> {
    crate::qemu::qmp::execute(&qmp_socket(), &["quit"])
}

/// Runs `cmd`, killing it after `limit`; its stdout lines, or an error
/// with its stderr.
fn run_command(mut cmd: Command, limit: Duration) -> Result<Vec<String>> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {shown} (Debian: redis-tools, wrk)"))?;
    let mut stdout = child.stdout.take().context("client stdout")?;
    let mut stderr = child.stderr.take().context("client stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    // redis-benchmark's progress lines end in `\r`, not `\n`.
    let tail: String = err
        .replace('\r', "\n")
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .join(" | ");
    match status {
        None => bail!(
            "{shown} ran past {} s and was killed: {tail}",
            limit.as_secs()
        ),
        Some(s) if !s.success() => bail!("{shown} failed ({s}): {tail}"),
        Some(_) => Ok(out.lines().map(str::to_string).collect()),
    }
}

/// What [`drive`] brings back: the client's output per command, and the
/// QEMU process's host CPU over the measured commands with their wall time.
type Driven = (Vec<(String, Vec<String>)>, Option<(HostCpu, Duration)>);

/// Waits for the server, runs the client and stops the server.
fn drive(
    client: &Client,
    at: &Endpoint,
    guest_done: &AtomicBool,
    limit: Duration,
) -> Result<Driven> {
    let measured = (|| {
        let start = Instant::now();
        while !client.is_ready(at) {
            if guest_done.load(Ordering::SeqCst) {
                bail!("the guest ended before the server answered on {at}");
            }
            if start.elapsed() > limit {
                bail!(
                    "the server did not answer on {at} within {} s",
                    limit.as_secs()
                );
            }
            std::thread::sleep(PROBE_INTERVAL);
        }
        eprintln!(
            "bench:   server ready after {:.1} s of probing",
            start.elapsed().as_secs_f64()
        );
        let mut out = Vec::new();
        // QEMU's threads over the measured commands (host_cpu.rs): did the
        // host give the guest its cores?
        let before = (ThreadTimes::of_running_qemu(), Instant::now());
        for (label, cmd) in client.commands(at) {
            out.push((label, run_command(cmd, limit)?));
        }
        let host_cpu = match (before, ThreadTimes::of_running_qemu()) {
            ((Some(start), t0), Some(end)) => end.since(&start).map(|spent| (spent, t0.elapsed())),
            _ => None,
        };
        if let Some((label, cmd)) = client.after_runs(at) {
            out.push((label, run_command(cmd, limit)?));
        }
        Ok((out, host_cpu))
    })();
    let wait = |limit: Duration| {
        let asked = Instant::now();
        while !guest_done.load(Ordering::SeqCst) && asked.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    if client.ask_to_exit(at) {
        wait(EXIT_WAIT);
    }
    if !guest_done.load(Ordering::SeqCst)
        && crate::qemu::qmp::execute(&qmp_socket(), &["inject-nmi"]).is_ok()
    {
        wait(NMI_WAIT);
    }
    if !guest_done.load(Ordering::SeqCst)
        && let Err(e) = qmp_quit()
    {
        eprintln!("bench: cannot stop QEMU through QMP ({e:#}); it runs until its timeout");
    }
    measured
}

/// Boots `guest` with the server `job` and measures it with `client`;
/// the client's output is in [`GuestRun::client`]. `limit` bounds the wait
/// for the server and each client command. With `tap` the run gets a TAP
/// namespace of its own (deleted when it ends) for the guest's card and
/// the clients; otherwise the clients use the job's forward on 127.0.0.1.
pub fn run_served(
    guest: &dyn Guest,
    job: &Job,
    client: &Client,
    limit: Duration,
    tap: bool,
) -> Result<GuestRun> {
    let Some(serve) = &job.serve else {
        bail!("job {} is not a server job", job.name);
    };
    let mut job = job.clone();
    let at = if tap {
        let guest_port = serve
            .forwards
            .first()
            .with_context(|| format!("job {} serves no port", job.name))?
            .guest_port;
        let net = TapNet::create()?;
        if let Some(serve) = &mut job.serve {
            serve.tap = Some(net.clone());
        }
        Endpoint::Tap(net, guest_port)
    } else {
        Endpoint::Forward(client.host_port())
    };
    let job = &job;
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let driver = s.spawn(|| drive(client, &at, &done, limit));
        let run = guest.run(job);
        done.store(true, Ordering::SeqCst);
        let measured = driver
            .join()
            .map_err(|_| anyhow!("the client thread panicked"))?;
        let mut run = run?;
        (run.client, run.client_host_cpu) = measured.with_context(|| {
            let tail = &run.output[run.output.len().saturating_sub(10)..];
            format!(
                "{}: measuring {} failed; the server's last lines: {tail:?}",
                guest.name(),
                job.name
            )
        })?;
        Ok(run)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_the_forwarded_port_and_the_options() {
        let redis = Client::Redis {
            host_port: 16379,
            runs: vec![RedisBench {
                label: "50 clients".into(),
                requests: 1000,
                clients: 50,
                pipeline: 16,
                tests: "set,get".into(),
            }],
            io_thread_stats: true,
        };
        let (label, cmd) = &redis.commands(&Endpoint::Forward(16379))[0];
        assert_eq!(label, "50 clients");
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(
            args.join(" "),
            "-h 127.0.0.1 -p 16379 -q --csv -n 1000 -c 50 -P 16 -t set,get"
        );
        let (label, cmd) = redis.after_runs(&Endpoint::Forward(16379)).unwrap();
        assert_eq!(label, REDIS_STATS_LABEL);
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(args.join(" "), "-h 127.0.0.1 -p 16379 INFO stats");
        let wrk = Client::Wrk {
            host_port: 18080,
            runs: vec![WrkRun {
                label: "GET 4 KiB file".into(),
                path: "/4k.bin".into(),
                threads: 1,
                connections: 10,
                seconds: 10,
            }],
        };
        let (_, cmd) = &wrk.commands(&Endpoint::Forward(18080))[0];
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(
            args,
            ["-t1", "-c10", "-d10s", "http://127.0.0.1:18080/4k.bin"]
        );
    }

    #[test]
    fn readiness_probes_a_real_socket() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 6];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"PING\r\n");
            s.write_all(b"+PONG\r\n").unwrap();
        });
        let client = Client::Redis {
            host_port: port,
            runs: vec![],
            io_thread_stats: false,
        };
        assert!(client.after_runs(&Endpoint::Forward(port)).is_none());
        assert!(client.is_ready(&Endpoint::Forward(port)));
        server.join().unwrap();
        // Nobody listens any more.
        assert!(!client.is_ready(&Endpoint::Forward(port)));
    }

    #[test]
    fn client_commands_fail_with_their_stderr_or_when_too_slow() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo a; echo b"]);
        assert_eq!(run_command(c, Duration::from_secs(10)).unwrap(), ["a", "b"]);
        let mut c = Command::new("sh");
        c.args(["-c", "echo Could not connect >&2; exit 1"]);
        let err = run_command(c, Duration::from_secs(10))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Could not connect"), "{err}");
        let mut c = Command::new("sleep");
        c.arg("10");
        let err = run_command(c, Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(err.contains("killed"), "{err}");
    }
}
