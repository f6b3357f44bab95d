//! The server figures' jobs ([`super::figures`]): Redis and Nginx as one
//! process each (`redis`, `nginx`), and their multi-threaded and
//! multi-process forms for several vCPUs (`redis-io-threads`: Redis with
//! [`SERVER_THREADS`] I/O threads that also read, `io-threads N
//! io-threads-do-reads yes`; `nginx-workers`: an Nginx master with
//! [`SERVER_THREADS`] worker processes, `master_process on;
//! worker_processes N;`). Each job forwards one port; its
//! [`Client`] runs on the host ([`super::server`]).

use anyhow::Result;

use super::data;
use super::figures::{Check, Figure, FigureJob, bytes_file, job};
use super::guest::Serve;
use super::server::{Client, RedisBench, WrkRun, free_host_port};
use crate::qemu::PortForward;

/// Requests per test without pipelining (≈ 5–8 s per test at the
/// ≈ 5000–8000 requests/s both guests reach under TCG). At 8,000 a test
/// lasted 1–2 s, and one second of the host's steal (these machines are
/// VMs) could halve a round (docs/PERFORMANCE.md, "Stall counters").
pub const REDIS_REQUESTS: u32 = 40_000;
/// Requests per test with 16-request pipelines (≈ 3–5 s per test at
/// ≈ 40,000–60,000 requests/s; at 40,000 a test lasted under a second
/// and its rounds spread to 0.16× of their median in both guests).
pub const REDIS_PIPELINED_REQUESTS: u32 = 200_000;
/// The clients' connections by default (`--clients`): redis-benchmark's
/// and wrk's. With 50, QEMU 7.2's user networking stalls some of them
/// during the connection burst whichever guest serves (connections left in
/// FIN-WAIT with unsent bytes, then "Connection reset by peer"); 10 run
/// cleanly. The TAP network (`--net tap`) has no such limit.
pub const DEFAULT_CLIENTS: u32 = 10;
/// The `redis-benchmark` tests.
pub const REDIS_TESTS: &str = "set,get,incr,lpush,lpop";
/// Redis's port in the guest.
const REDIS_PORT: u16 = 6379;
/// Nginx's port in the guest.
const NGINX_PORT: u16 = 8080;
/// wrk's duration per file.
pub const WRK_SECONDS: u32 = 10;
/// Redis's I/O threads in `redis-io-threads` and Nginx's workers in
/// `nginx-workers` (issue 15: for 2 vCPUs).
pub const SERVER_THREADS: u32 = 2;
const MIB: usize = 1 << 20;

fn serve(guest_port: u16) -> Result<(u16, Serve)> {
    let host_port = free_host_port()?;
    Ok((
        host_port,
        Serve {
            forwards: vec![PortForward {
                host_port,
                guest_port,
            }],
            tap: None,
        },
    ))
}

/// The Redis job of `figure`: [`Figure::RedisIoThreads`] adds
/// `--io-threads` [`SERVER_THREADS`] `--io-threads-do-reads yes` (Redis
/// 7 otherwise writes only through its threads) and has the client read
/// the threads' counters (`INFO stats`) after the runs.
pub fn redis_job(figure: Figure, clients: u32) -> Result<FigureJob> {
    let (host_port, serve) = serve(REDIS_PORT)?;
    let port = REDIS_PORT.to_string();
    let threads = SERVER_THREADS.to_string();
    let mut args = vec![
        "--port",
        &port,
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
    ];
    let threaded = figure == Figure::RedisIoThreads;
    if threaded {
        args.extend(["--io-threads", &threads, "--io-threads-do-reads", "yes"]);
    }
    let mut j = job(figure.name(), "/usr/bin/redis-server", &args, vec![]);
    j.serve = Some(serve);
    let bench = |label: &str, requests, pipeline| RedisBench {
        label: label.into(),
        requests,
        clients,
        pipeline,
        tests: REDIS_TESTS.into(),
    };
    Ok(FigureJob {
        figure,
        job: j,
        check: Check::Redis,
        client: Some(Client::Redis {
            host_port,
            runs: vec![
                bench(&format!("{clients} clients"), REDIS_REQUESTS, 1),
                bench(
                    &format!("{clients} clients, pipeline 16"),
                    REDIS_PIPELINED_REQUESTS,
                    16,
                ),
            ],
            io_thread_stats: threaded,
        }),
    })
}

/// Nginx's configuration: in the foreground, errors on stderr, temporary
/// files under `/tmp`, static files from `/srv`; one process
/// (`master_process off`) with `workers` 0, else a master and `workers`
/// worker processes.
pub fn nginx_conf(port: u16, workers: u32) -> String {
    let processes = if workers == 0 {
        "master_process off;\nworker_processes 1;".to_string()
    } else {
        format!("master_process on;\nworker_processes {workers};")
    };
    format!(
        "user root;
daemon off;
{processes}
error_log stderr;
pid /tmp/nginx.pid;
events {{}}
http {{
    types {{ text/html html; application/octet-stream bin; }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    client_body_temp_path /tmp/nginx-body;
    proxy_temp_path /tmp/nginx-proxy;
    fastcgi_temp_path /tmp/nginx-fastcgi;
    uwsgi_temp_path /tmp/nginx-uwsgi;
    scgi_temp_path /tmp/nginx-scgi;
    server {{ listen {port}; root /srv; }}
}}
"
    )
}

/// The Nginx job of `figure`: one process, or with
/// [`Figure::NginxWorkers`] a master and [`SERVER_THREADS`] workers.
pub fn nginx_job(figure: Figure, clients: u32) -> Result<FigureJob> {
    let (host_port, serve) = serve(NGINX_PORT)?;
    let workers = if figure == Figure::NginxWorkers {
        SERVER_THREADS
    } else {
        0
    };
    let files = vec![
        bytes_file(
            "/etc/nginx/nginx.conf",
            nginx_conf(NGINX_PORT, workers).into_bytes(),
        ),
        bytes_file("/srv/index.html", b"cloister-bench\n".to_vec()),
        bytes_file("/srv/4k.bin", data::random_bytes(4, 4 << 10)),
        bytes_file("/srv/1m.bin", data::random_bytes(1, MIB)),
    ];
    let mut j = job(
        figure.name(),
        "/usr/sbin/nginx",
        &["-c", "/etc/nginx/nginx.conf", "-e", "stderr"],
        files,
    );
    j.serve = Some(serve);
    let wrk = |label: &str, path: &str| WrkRun {
        label: label.into(),
        path: path.into(),
        threads: 1,
        connections: clients,
        seconds: WRK_SECONDS,
    };
    Ok(FigureJob {
        figure,
        job: j,
        check: Check::Wrk,
        client: Some(Client::Wrk {
            host_port,
            runs: vec![
                wrk("GET 4 KiB file", "/4k.bin"),
                wrk("GET 1 MiB file", "/1m.bin"),
            ],
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threaded_redis_job_starts_io_threads_that_read() {
        let plain = redis_job(Figure::Redis, DEFAULT_CLIENTS).unwrap();
        assert_eq!(plain.job.name, "redis");
        assert!(!plain.job.argv.iter().any(|a| a == "--io-threads"));
        assert!(matches!(
            plain.client,
            Some(Client::Redis {
                io_thread_stats: false,
                ..
            })
        ));
        let threaded = redis_job(Figure::RedisIoThreads, DEFAULT_CLIENTS).unwrap();
        // Its own name: images are cached by job name.
        assert_eq!(threaded.job.name, "redis-io-threads");
        let argv = threaded.job.argv.join(" ");
        assert!(
            argv.ends_with("--io-threads 2 --io-threads-do-reads yes"),
            "{argv}"
        );
        assert!(matches!(
            threaded.client,
            Some(Client::Redis {
                io_thread_stats: true,
                ..
            })
        ));
    }

    #[test]
    fn the_nginx_workers_job_runs_a_master_and_two_workers() {
        assert!(nginx_conf(8080, 0).contains("master_process off;\nworker_processes 1;"));
        assert!(nginx_conf(8080, 2).contains("master_process on;\nworker_processes 2;"));
        let conf = |fj: &FigureJob| match &fj.job.files[0].source {
            super::super::guest::FileSource::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
            other => panic!("{other:?}"),
        };
        let plain = nginx_job(Figure::Nginx, DEFAULT_CLIENTS).unwrap();
        assert_eq!(plain.job.name, "nginx");
        assert!(conf(&plain).contains("master_process off;"));
        let workers = nginx_job(Figure::NginxWorkers, DEFAULT_CLIENTS).unwrap();
        assert_eq!(workers.job.name, "nginx-workers");
        assert!(conf(&workers).contains("worker_processes 2;"));
        assert_eq!(
            workers.job.files[0].guest,
            std::path::Path::new("/etc/nginx/nginx.conf")
        );
    }
}
