//! The figures of the Linux-guest comparison: which programs run, with
//! which inputs, and what is read from each run.
//!
//! | figure | program (same binary in both guests) | metrics |
//! |---|---|---|
//! | `boot` | `/usr/bin/echo cloister-bench-ready` (Debian coreutils, dynamically linked) | QEMU start → the program's first output line on the host; QEMU start → the guest's end-of-program report |
//! | `syscall` | `tools/bench-guest/syscall_bench.c`, built `gcc -O2 -static` | ns per `getpid`, 1-byte `read` of `/dev/zero`, `open`+`close` (the program's own medians) |
//! | `process` | the same program, `syscall_bench procs 200`, with Debian's `/bin/true` (glibc-dynamic) and its libraries | ns per fork+exit+wait, fork+execve(`/bin/true`)+wait, fork+execve (itself, static, at once exiting)+wait, and 64 KiB written through a pipe to a reading child |
//! | `openssl` | `openssl speed -seconds 2 -evp aes-256-gcm sha256` | kB/s at 16, 1024 and 16384-byte blocks |
//! | `files` | `sha256sum` of 64 MiB of pseudo-random bytes; busybox `tar -cf` of 128 files × 256 KiB of text; busybox `gzip -k` of 8 MiB of text | program time: the guest's start report → its end report |
//!
//! OpenSSL 3.0 names the cipher only through `-evp` (`openssl speed …
//! aes-256-gcm` says "Unknown algorithm"), hence the `-evp`.
//!
//! Each job is one program started directly (no shell in between), so the
//! tar and gzip halves of the file workload are separate runs.
//!
//! | `redis` | `/usr/bin/redis-server --port 6379 --save '' --appendonly no --protected-mode no` | requests/s of `redis-benchmark` on the host through the port forward, per test: 10 clients, then 10 clients pipelining 16 |
//! | `nginx` | `/usr/sbin/nginx -c /etc/nginx/nginx.conf -e stderr` (generated config, one process, `sendfile on`) | `wrk -t1 -c10 -d10s` on the host: requests/s and MiB/s for a 4 KiB and a 1 MiB file |
//! | `redis-io-threads` (by name only) | `redis` plus `--io-threads 2 --io-threads-do-reads yes` | as `redis`, and the requests the I/O threads read and wrote (`INFO stats`); the host cores QEMU ran on and waited for during the clients' runs |
//! | `nginx-workers` (by name only) | `nginx` with `master_process on; worker_processes 2;` | as `nginx`; the host cores as above |
//!
//! The server jobs are built in [`super::server_jobs`]. The server
//! figures run through [`super::server`]: both guests get the
//! same network card and forwarded port, the Linux guest loads the
//! virtio-mmio and virtio-net modules first ([`super::linux_modules`]),
//! and the client runs on the host once the server answers.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::compare::{Better, Metric};
use super::data;
use super::guest::{FileSource, GuestRun, Job, JobFile};
use super::parse;
use super::server::{Client, REDIS_STATS_LABEL};
pub use super::server_jobs::{
    DEFAULT_CLIENTS, REDIS_PIPELINED_REQUESTS, REDIS_REQUESTS, REDIS_TESTS, SERVER_THREADS,
    WRK_SECONDS, nginx_conf,
};
use super::server_jobs::{nginx_job, redis_job};

/// One figure (a group of metrics) of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// Boot to the application's first line.
    Boot,
    /// System-call micro-benchmarks.
    Syscall,
    /// fork, exec and pipe micro-benchmarks.
    Process,
    /// `openssl speed`.
    Openssl,
    /// `sha256sum`, `tar`, `gzip` over files in the guest.
    Files,
    /// `redis-server` measured by `redis-benchmark` from the host.
    Redis,
    /// `nginx` measured by `wrk` from the host.
    Nginx,
    /// A CPU-bound hash loop in 1 and in 2 threads (`smp_hash`): thread
    /// scaling, meant for `--cpus 2`. Not in `all`: by name only.
    Smp,
    /// `redis-server` with 2 I/O threads that also read (`io-threads 2`,
    /// `io-threads-do-reads yes`), measured as [`Figure::Redis`]; meant for
    /// `--cpus 2`. By name only.
    RedisIoThreads,
    /// `nginx` as a master with 2 worker processes, measured as
    /// [`Figure::Nginx`]; meant for `--cpus 2`. By name only.
    NginxWorkers,
}

impl Figure {
    /// The figures run by name only, not in `all`.
    pub const BY_NAME: [Figure; 3] = [Self::Smp, Self::RedisIoThreads, Self::NginxWorkers];

    /// Whether it measures a server from the host.
    pub fn is_server(self) -> bool {
        matches!(
            self,
            Self::Redis | Self::Nginx | Self::RedisIoThreads | Self::NginxWorkers
        )
    }

    /// Every figure, in table order.
    pub const ALL: [Figure; 7] = [
        Self::Boot,
        Self::Syscall,
        Self::Process,
        Self::Openssl,
        Self::Files,
        Self::Redis,
        Self::Nginx,
    ];

    /// Its name on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Boot => "boot",
            Self::Syscall => "syscall",
            Self::Process => "process",
            Self::Openssl => "openssl",
            Self::Files => "files",
            Self::Redis => "redis",
            Self::Nginx => "nginx",
            Self::Smp => "smp",
            Self::RedisIoThreads => "redis-io-threads",
            Self::NginxWorkers => "nginx-workers",
        }
    }

    /// Parses a comma-separated list (`all` for every figure).
    pub fn parse_list(list: &str) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word == "all" {
                return Ok(Self::ALL.to_vec());
            }
            let f = Self::ALL
                .into_iter()
                .chain(Self::BY_NAME)
                .find(|f| f.name() == word)
                .with_context(|| {
                    format!("unknown figure {word:?}: use boot, syscall, process, openssl, files, redis, nginx, smp, redis-io-threads, nginx-workers or all")
                })?;
            if !out.contains(&f) {
                out.push(f);
            }
        }
        if out.is_empty() {
            bail!(
                "no figures given: use boot, syscall, process, openssl, files, redis, nginx, smp, redis-io-threads, nginx-workers or all"
            );
        }
        Ok(out)
    }
}

/// How a job's output is checked and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Prints [`READY_TEXT`]; boot times.
    Boot,
    /// `syscall_bench` lines.
    Syscall,
    /// The `openssl speed` table.
    Openssl,
    /// Prints this SHA-256; program time.
    Sha256(String),
    /// Exits 0; program time, named so.
    Timed(&'static str),
    /// `redis-benchmark --csv` output from the client; requests/s.
    Redis,
    /// `wrk` output from the client; requests/s and MiB/s.
    Wrk,
}

/// A job with its figure and check.
#[derive(Debug, Clone)]
pub struct FigureJob {
    /// The figure it belongs to.
    pub figure: Figure,
    /// What to run.
    pub job: Job,
    /// How to read the run.
    pub check: Check,
    /// For a server job: what measures it from the host.
    pub client: Option<Client>,
}

/// What the boot job prints.
pub const READY_TEXT: &str = "cloister-bench-ready";
/// Block sizes of the `openssl speed` table that go into the report.
const OPENSSL_BLOCKS: [u32; 3] = [16, 1024, 16384];
const MIB: usize = 1 << 20;

pub(super) fn job(name: &str, program: &str, args: &[&str], files: Vec<JobFile>) -> Job {
    let mut argv = vec![program.to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    Job {
        name: name.into(),
        program: PathBuf::from(program),
        argv,
        files,
        serve: None,
    }
}

pub(super) fn bytes_file(guest: &str, data: Vec<u8>) -> JobFile {
    JobFile {
        guest: guest.into(),
        source: FileSource::Bytes(data),
        perm: 0o644,
    }
}

/// The program the process figure's `fork_exec_true_wait` row executes:
/// the host's (Debian's) `/bin/true`, dynamically linked against glibc, at
/// `/bin/true` in both guests; [`super::guest::pack_job`] adds its
/// interpreter and libraries.
pub const TRUE_PROGRAM: &str = "/bin/true";

/// The process figure's job: `program` (the static `syscall_bench`) with
/// the argument `procs 200`, and [`TRUE_PROGRAM`] for it to execute.
pub fn process_job(program: PathBuf) -> Job {
    let true_program = JobFile {
        guest: TRUE_PROGRAM.into(),
        source: FileSource::Host(TRUE_PROGRAM.into()),
        perm: 0o755,
    };
    let mut j = job(
        "process",
        "/bench/syscall_bench",
        &["procs", "200"],
        vec![true_program],
    );
    j.program = program;
    j
}

/// Builds `tools/bench-guest/syscall_bench.c` with the host's gcc into
/// `cache`.
pub fn build_syscall_bench(cache: &Path) -> Result<PathBuf> {
    build_static(
        "tools/bench-guest/syscall_bench.c",
        &[],
        cache,
        "syscall_bench",
    )
}

/// Builds the workspace's C file `source` statically with the host's gcc
/// (and `flags`) into `cache/name`.
fn build_static(source: &str, flags: &[&str], cache: &Path, name: &str) -> Result<PathBuf> {
    let source = crate::build::workspace_root().join(source);
    std::fs::create_dir_all(cache)?;
    let out = cache.join(name);
    let status = Command::new("gcc")
        .args(["-O2", "-static"])
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&source)
        .status()
        .context("cannot run gcc (Debian: gcc and libc6-dev)")?;
    if !status.success() {
        bail!("gcc failed building {}", source.display());
    }
    Ok(out)
}

/// The jobs of `figure`, with inputs generated under `cache`; the server
/// figures' clients open `clients` connections.
pub fn jobs(figure: Figure, cache: &Path, clients: u32) -> Result<Vec<FigureJob>> {
    let one = |job, check| FigureJob {
        figure,
        job,
        check,
        client: None,
    };
    Ok(match figure {
        Figure::Boot => vec![one(
            job("boot-echo", "/usr/bin/echo", &[READY_TEXT], vec![]),
            Check::Boot,
        )],
        Figure::Syscall => {
            let program = build_syscall_bench(cache)?;
            let mut j = job(
                "syscall",
                "/bench/syscall_bench",
                &["100000", "/etc/passwd"],
                vec![],
            );
            j.program = program;
            vec![one(j, Check::Syscall)]
        }
        Figure::Process => vec![one(
            process_job(build_syscall_bench(cache)?),
            Check::Syscall,
        )],
        Figure::Openssl => {
            let conf = JobFile {
                guest: "/usr/lib/ssl/openssl.cnf".into(),
                source: FileSource::Host("/usr/lib/ssl/openssl.cnf".into()),
                perm: 0o644,
            };
            vec![one(
                job(
                    "openssl",
                    "/usr/bin/openssl",
                    &["speed", "-seconds", "2", "-evp", "aes-256-gcm", "sha256"],
                    vec![conf],
                ),
                Check::Openssl,
            )]
        }
        Figure::Files => {
            let random = data::cached(&cache.join("random-64MiB.bin"), 64 * MIB, || {
                data::random_bytes(0xC105_7E12, 64 * MIB)
            })?;
            let hash = data::host_sha256(&random)?;
            let random_file = JobFile {
                guest: "/bench/random-64MiB.bin".into(),
                source: FileSource::Host(random),
                perm: 0o644,
            };
            let tree = (0..128u64)
                .map(|i| {
                    bytes_file(
                        &format!("/bench/tree/file-{i:03}.txt"),
                        data::text(i, 256 << 10),
                    )
                })
                .collect();
            let corpus = bytes_file("/bench/corpus.txt", data::text(1000, 8 * MIB));
            vec![
                one(
                    job(
                        "sha256sum",
                        "/usr/bin/sha256sum",
                        &["/bench/random-64MiB.bin"],
                        vec![random_file],
                    ),
                    Check::Sha256(hash),
                ),
                one(
                    job(
                        "tar",
                        "/bin/busybox",
                        &["tar", "-cf", "/tmp/tree.tar", "-C", "/bench", "tree"],
                        tree,
                    ),
                    Check::Timed("busybox tar -cf, 128 × 256 KiB files"),
                ),
                one(
                    job(
                        "gzip",
                        "/bin/busybox",
                        &["gzip", "-k", "-f", "/bench/corpus.txt"],
                        vec![corpus],
                    ),
                    Check::Timed("busybox gzip, 8 MiB of text"),
                ),
            ]
        }
        Figure::Redis | Figure::RedisIoThreads => vec![redis_job(figure, clients)?],
        Figure::Nginx | Figure::NginxWorkers => vec![nginx_job(figure, clients)?],
        Figure::Smp => {
            let program = build_smp_hash(cache)?;
            [
                ("smp-hash-1t", "1", SMP_HASH_ONE),
                ("smp-hash-2t", "2", SMP_HASH_TWO),
            ]
            .into_iter()
            .map(|(name, threads, what)| {
                let mut j = job(name, "/bench/smp_hash", &[threads, SMP_HASH_ROUNDS], vec![]);
                j.program = program.clone();
                one(j, Check::Timed(what))
            })
            .collect()
        }
    })
}

/// Rounds of each `smp_hash` thread.
const SMP_HASH_ROUNDS: &str = "200000000";
const SMP_HASH_ONE: &str = "smp_hash, 1 thread × 2·10^8 rounds";
const SMP_HASH_TWO: &str = "smp_hash, 2 threads × 2·10^8 rounds";

/// Builds `tests/programs/smp_hash.c` statically into `cache`.
fn build_smp_hash(cache: &Path) -> Result<PathBuf> {
    build_static(
        "tests/programs/smp_hash.c",
        &["-pthread"],
        cache,
        "smp_hash",
    )
}

fn ms(figure: Figure, name: impl Into<String>) -> Metric {
    Metric {
        figure: figure.name(),
        name: name.into(),
        unit: "ms",
        better: Better::Lower,
    }
}

fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The multi-vCPU server figures' rows on the host's share: the host
/// cores QEMU's threads ran on, and waited for, on average while the
/// clients measured (host_cpu.rs) — whether the host gave the guest its
/// vCPUs' worth. Empty for other figures or without a reading.
fn clients_host_share(f: Figure, run: &GuestRun) -> Vec<(Metric, f64)> {
    let Some((spent, wall)) = run.client_host_cpu else {
        return vec![];
    };
    if !matches!(f, Figure::RedisIoThreads | Figure::NginxWorkers) || wall.is_zero() {
        return vec![];
    }
    let cores = |d: std::time::Duration| d.as_secs_f64() / wall.as_secs_f64();
    let row = |name: &str, better| Metric {
        figure: f.name(),
        name: name.into(),
        unit: "cores",
        better,
    };
    vec![
        (
            row("clients' runs: QEMU threads on a host core", Better::Higher),
            cores(spent.ran),
        ),
        (
            row(
                "clients' runs: QEMU threads waiting for a host core",
                Better::Lower,
            ),
            cores(spent.waited),
        ),
    ]
}

/// Checks one run of `fj` and reads its metrics.
pub fn measure(fj: &FigureJob, guest: &str, run: &GuestRun) -> Result<Vec<(Metric, f64)>> {
    let f = fj.figure;
    let rate = |name: String, unit| Metric {
        figure: f.name(),
        name,
        unit,
        better: Better::Higher,
    };
    // A server's exit status says nothing about the figure (Nginx is
    // stopped from outside); the client's output does.
    match &fj.check {
        Check::Redis => {
            let mut out = Vec::new();
            for (label, lines) in &run.client {
                if label == REDIS_STATS_LABEL {
                    // The I/O threads' share: proof that they ran.
                    for (field, what) in [
                        ("io_threaded_reads_processed", "reads"),
                        ("io_threaded_writes_processed", "writes"),
                    ] {
                        let n = parse::redis_info_field(lines, field)
                            .with_context(|| format!("{guest}: INFO stats has no {field}"))?;
                        out.push((rate(format!("{what} done by the I/O threads"), "count"), n));
                    }
                    continue;
                }
                for r in parse::redis_benchmark_csv(lines)
                    .with_context(|| format!("{guest}: redis-benchmark, {label}"))?
                {
                    out.push((
                        rate(format!("{}, {label}", r.test), "req/s"),
                        r.requests_per_s,
                    ));
                }
            }
            if out.is_empty() {
                bail!("{guest}: no redis-benchmark output");
            }
            out.extend(clients_host_share(f, run));
            return Ok(out);
        }
        Check::Wrk => {
            let mut out = Vec::new();
            for (label, lines) in &run.client {
                let s = parse::wrk(lines).with_context(|| format!("{guest}: wrk, {label}"))?;
                if s.bad_responses > 0 || s.requests == 0 {
                    bail!(
                        "{guest}: wrk {label}: {} requests, {} answered with an error status",
                        s.requests,
                        s.bad_responses
                    );
                }
                if s.socket_errors > 0 {
                    eprintln!(
                        "bench: {guest}: wrk {label}: {} socket errors",
                        s.socket_errors
                    );
                }
                out.push((
                    rate(format!("{label}, requests"), "req/s"),
                    s.requests_per_s,
                ));
                out.push((
                    rate(format!("{label}, transfer"), "MiB/s"),
                    s.bytes_per_s / MIB as f64,
                ));
            }
            if out.is_empty() {
                bail!("{guest}: no wrk output");
            }
            out.extend(clients_host_share(f, run));
            return Ok(out);
        }
        _ => run.check_success(guest, &fj.job)?,
    }
    let program_time = || {
        run.program_time().with_context(|| {
            format!("{guest} did not report both the start and the end of the program")
        })
    };
    Ok(match &fj.check {
        Check::Boot => {
            if !run.output.iter().any(|l| l.contains(READY_TEXT)) {
                bail!(
                    "{guest}: the boot job did not print {READY_TEXT:?}: {:?}",
                    run.output
                );
            }
            let first = run.first_output_at.context("no output time")?;
            let end = run.ended_at.context("no end time")?;
            vec![
                (
                    ms(f, "QEMU start → first output line of echo"),
                    millis(first),
                ),
                (ms(f, "QEMU start → end of echo reported"), millis(end)),
            ]
        }
        Check::Syscall => parse::syscall_bench(&run.output)?
            .into_iter()
            .map(|s| {
                (
                    Metric {
                        figure: f.name(),
                        name: s.name,
                        unit: "ns/op",
                        better: Better::Lower,
                    },
                    s.ns_per_op,
                )
            })
            .collect(),
        Check::Openssl => parse::openssl_speed(&run.output)?
            .into_iter()
            .filter(|r| OPENSSL_BLOCKS.contains(&r.block_bytes))
            .map(|r| {
                (
                    Metric {
                        figure: f.name(),
                        name: format!("{}, {} B blocks", r.algorithm, r.block_bytes),
                        unit: "kB/s",
                        better: Better::Higher,
                    },
                    r.kbytes_per_s,
                )
            })
            .collect(),
        Check::Sha256(expected) => {
            let got = parse::sha256sum(&run.output)?;
            if &got != expected {
                bail!("{guest}: sha256sum printed {got}, the host computed {expected}");
            }
            vec![(ms(f, "sha256sum, 64 MiB file"), millis(program_time()?))]
        }
        Check::Timed(what) => {
            let time = program_time()?;
            let mut out = vec![(ms(f, *what), millis(time))];
            // The scaling figure also says how much of the host's cores
            // the guest got (host_cpu.rs): the host's limit or the guest's.
            if let (Figure::Smp, Some(spent)) = (f, run.host_cpu.spent())
                && !time.is_zero()
            {
                let cores = |d: std::time::Duration| d.as_secs_f64() / time.as_secs_f64();
                // The work's cost in host CPU, whatever the host's load:
                // with no SMP overhead, 2 threads cost twice 1 thread.
                out.push((
                    Metric {
                        figure: f.name(),
                        name: format!("{what}: QEMU threads' host CPU time"),
                        unit: "ms",
                        better: Better::Lower,
                    },
                    millis(spent.ran),
                ));
                out.push((
                    rate(format!("{what}: QEMU threads on a host core"), "cores"),
                    cores(spent.ran),
                ));
                out.push((
                    Metric {
                        figure: f.name(),
                        name: format!("{what}: QEMU threads waiting for a host core"),
                        unit: "cores",
                        better: Better::Lower,
                    },
                    cores(spent.waited),
                ));
            }
            out
        }
        Check::Redis | Check::Wrk => unreachable!("server checks return above"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn figure_lists_parse() {
        assert_eq!(Figure::parse_list("all").unwrap(), Figure::ALL);
        assert_eq!(
            Figure::parse_list("files, boot,files").unwrap(),
            [Figure::Files, Figure::Boot]
        );
        assert_eq!(Figure::parse_list("redis").unwrap(), [Figure::Redis]);
        assert_eq!(Figure::parse_list("smp").unwrap(), [Figure::Smp]);
        assert!(!Figure::ALL.contains(&Figure::Smp));
        assert_eq!(
            Figure::parse_list("redis-io-threads,nginx-workers").unwrap(),
            [Figure::RedisIoThreads, Figure::NginxWorkers]
        );
        assert!(Figure::BY_NAME.iter().all(|f| !Figure::ALL.contains(f)));
        assert!(Figure::NginxWorkers.is_server() && !Figure::Smp.is_server());
        assert!(Figure::parse_list("postgres").is_err());
        assert!(Figure::parse_list(",").is_err());
    }

    fn run_with(output: &[&str], status: i32) -> GuestRun {
        GuestRun {
            output: output.iter().map(|s| s.to_string()).collect(),
            started_at: Some(Duration::from_millis(1000)),
            first_output_at: Some(Duration::from_millis(1100)),
            ended_at: Some(Duration::from_millis(1500)),
            exit_status: Some(status),
            total: Duration::from_millis(1600),
            client: vec![],
            net_counters: None,
            host_cpu: Default::default(),
            client_host_cpu: None,
        }
    }

    #[test]
    fn boot_and_timed_jobs_give_milliseconds() {
        let boot = jobs(Figure::Boot, Path::new("/nonexistent"), DEFAULT_CLIENTS).unwrap();
        let m = measure(&boot[0], "Linux", &run_with(&[READY_TEXT], 0)).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].1, 1100.0);
        assert_eq!(m[1].1, 1500.0);
        assert!(measure(&boot[0], "Linux", &run_with(&["oops"], 0)).is_err());
        assert!(measure(&boot[0], "Linux", &run_with(&[READY_TEXT], 1)).is_err());

        let timed = FigureJob {
            figure: Figure::Files,
            job: boot[0].job.clone(),
            check: Check::Timed("tar"),
            client: None,
        };
        let m = measure(&timed, "Cloister", &run_with(&[], 0)).unwrap();
        assert_eq!((m[0].0.name.as_str(), m[0].1), ("tar", 500.0));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn the_smp_figure_reports_the_host_cores_the_guest_got() {
        use super::super::host_cpu::ThreadTimes;
        let boot = jobs(Figure::Boot, Path::new("/nonexistent"), DEFAULT_CLIENTS).unwrap();
        let smp = FigureJob {
            figure: Figure::Smp,
            job: boot[0].job.clone(),
            check: Check::Timed("hash"),
            client: None,
        };
        let mut run = run_with(&[], 0);
        // Without both readings only the time.
        assert_eq!(measure(&smp, "Linux", &run).unwrap().len(), 1);
        run.host_cpu.start = Some(ThreadTimes::default());
        run.host_cpu.end = Some(ThreadTimes::from_iter([(
            7,
            super::super::host_cpu::HostCpu {
                ran: Duration::from_millis(900),
                waited: Duration::from_millis(100),
            },
        )]));
        // 500 ms of program: 1.8 cores ran, 0.2 waited.
        let m = measure(&smp, "Linux", &run).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!((m[1].0.unit, m[1].1), ("ms", 900.0));
        assert_eq!((m[2].0.unit, m[2].1), ("cores", 1.8));
        assert!((m[3].1 - 0.2).abs() < 1e-9, "{m:?}");
        assert!(m[3].0.name.contains("waiting"));
    }

    #[test]
    fn sha256_runs_must_print_the_host_hash() {
        let h = "0".repeat(64);
        let fj = FigureJob {
            figure: Figure::Files,
            job: jobs(Figure::Boot, Path::new("/x"), DEFAULT_CLIENTS).unwrap()[0]
                .job
                .clone(),
            check: Check::Sha256(h.clone()),
            client: None,
        };
        let line = format!("{h}  /bench/random-64MiB.bin");
        assert_eq!(
            measure(&fj, "Linux", &run_with(&[&line], 0)).unwrap()[0].1,
            500.0
        );
        let wrong = format!("{}  /bench/random-64MiB.bin", "1".repeat(64));
        assert!(measure(&fj, "Linux", &run_with(&[&wrong], 0)).is_err());
    }

    #[test]
    fn openssl_runs_keep_three_block_sizes() {
        let fj = FigureJob {
            figure: Figure::Openssl,
            job: jobs(Figure::Boot, Path::new("/x"), DEFAULT_CLIENTS).unwrap()[0]
                .job
                .clone(),
            check: Check::Openssl,
            client: None,
        };
        let run = run_with(
            &[
                "type 16 bytes 64 bytes 256 bytes 1024 bytes 8192 bytes 16384 bytes",
                "sha256 1.00k 2.00k 3.00k 4.00k 5.00k 6.00k",
            ],
            0,
        );
        let m = measure(&fj, "Linux", &run).unwrap();
        let names: Vec<&str> = m.iter().map(|(m, _)| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "sha256, 16 B blocks",
                "sha256, 1024 B blocks",
                "sha256, 16384 B blocks"
            ]
        );
        assert_eq!(m[2].1, 6.0);
        assert_eq!(m[0].0.better, Better::Higher);
    }

    #[test]
    fn server_jobs_forward_one_port_and_read_the_clients_output() {
        let redis = redis_job(Figure::Redis, DEFAULT_CLIENTS).unwrap();
        let serve = redis.job.serve.as_ref().unwrap();
        assert_eq!(serve.forwards[0].guest_port, 6379);
        assert!(redis.job.argv.contains(&String::new()), "--save ''");
        let Some(Client::Redis {
            host_port, runs, ..
        }) = &redis.client
        else {
            panic!("{:?}", redis.client)
        };
        assert_eq!(*host_port, serve.forwards[0].host_port);
        assert_eq!(runs.len(), 2);
        // No exit status needed: the figure comes from the client.
        let mut run = run_with(&[], 1);
        run.exit_status = None;
        run.client = vec![(
            "10 clients".into(),
            vec!["\"test\",\"rps\"".into(), "\"SET\",\"4000.00\"".into()],
        )];
        let m = measure(&redis, "Cloister", &run).unwrap();
        assert_eq!(m[0].0.name, "SET, 10 clients");
        assert_eq!((m[0].0.unit, m[0].1), ("req/s", 4000.0));
        // The threaded figure's `INFO stats` gives the I/O threads' counts.
        run.client.push((
            REDIS_STATS_LABEL.into(),
            vec![
                "io_threaded_reads_processed:120\r".into(),
                "io_threaded_writes_processed:80\r".into(),
            ],
        ));
        let m = measure(&redis, "Cloister", &run).unwrap();
        assert_eq!(m[1].0.name, "reads done by the I/O threads");
        assert_eq!((m[1].1, m[2].1), (120.0, 80.0));
        // The host's share while the clients ran: for the multi-vCPU
        // figures only.
        run.client_host_cpu = Some((
            super::super::host_cpu::HostCpu {
                ran: Duration::from_millis(3000),
                waited: Duration::from_millis(500),
            },
            Duration::from_millis(2000),
        ));
        assert_eq!(measure(&redis, "Cloister", &run).unwrap().len(), 3);
        let threaded = FigureJob {
            figure: Figure::RedisIoThreads,
            ..redis.clone()
        };
        let m = measure(&threaded, "Cloister", &run).unwrap();
        assert_eq!(m.len(), 5);
        assert_eq!((m[3].0.unit, m[3].1, m[4].1), ("cores", 1.5, 0.25));
        run.client_host_cpu = None;
        run.client[1].1.pop();
        assert!(measure(&redis, "Cloister", &run).is_err());
        run.client.clear();
        assert!(measure(&redis, "Cloister", &run).is_err());

        let nginx = nginx_job(Figure::Nginx, 50).unwrap();
        let Some(Client::Wrk { runs, .. }) = &nginx.client else {
            panic!("{:?}", nginx.client)
        };
        assert_eq!(runs[0].connections, 50);
        assert!(nginx_conf(8080, 0).contains("listen 8080;"));
        run.client = vec![(
            "GET 1 MiB file".into(),
            [
                "  100 requests in 10.00s, 100.00MB read",
                "Requests/sec:     10.00",
                "Transfer/sec:     10.00MB",
            ]
            .map(String::from)
            .to_vec(),
        )];
        let m = measure(&nginx, "Linux", &run).unwrap();
        assert_eq!(m[1].0.name, "GET 1 MiB file, transfer");
        assert_eq!((m[1].0.unit, m[1].1), ("MiB/s", 10.0));
        run.client[0].1.push("Non-2xx or 3xx responses: 100".into());
        assert!(measure(&nginx, "Linux", &run).is_err());
    }
}
