//! Parsers for what the benchmark programs print inside a guest.

use anyhow::{Context, Result, bail};

/// One line of `tools/bench-guest/syscall_bench.c`:
/// `NAME ns_per_op=X iterations=N`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyscallFigure {
    /// `getpid`, `read_dev_zero_1B`, `open_close`.
    pub name: String,
    /// Nanoseconds per operation (median of the program's 5 batches).
    pub ns_per_op: f64,
    /// Operations per batch.
    pub iterations: u64,
}

/// Parses the figure lines of `syscall_bench`, ignoring anything else;
/// fails if there are none.
pub fn syscall_bench(lines: &[String]) -> Result<Vec<SyscallFigure>> {
    let mut out = Vec::new();
    for line in lines {
        let mut words = line.split_whitespace();
        let (Some(name), Some(ns), Some(iters), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        let (Some(ns), Some(iters)) = (
            ns.strip_prefix("ns_per_op="),
            iters.strip_prefix("iterations="),
        ) else {
            continue;
        };
        out.push(SyscallFigure {
            name: name.to_string(),
            ns_per_op: ns
                .parse()
                .with_context(|| format!("bad ns_per_op in {line:?}"))?,
            iterations: iters
                .parse()
                .with_context(|| format!("bad iterations in {line:?}"))?,
        });
    }
    if out.is_empty() {
        bail!("no `NAME ns_per_op=X iterations=N` lines in the output: {lines:?}");
    }
    Ok(out)
}

/// One cell of `openssl speed`'s table.
#[derive(Debug, Clone, PartialEq)]
pub struct OpensslRate {
    /// The row name as printed (`sha256`, `AES-256-GCM`).
    pub algorithm: String,
    /// The block size of the column.
    pub block_bytes: u32,
    /// Throughput in 1000s of bytes per second.
    pub kbytes_per_s: f64,
}

/// Parses the table at the end of `openssl speed`:
///
/// ```text
/// type             16 bytes     64 bytes ... 16384 bytes
/// sha256          100916.80k   320830.55k ... 1558056.18k
/// ```
///
/// Every row after the `type` header whose last cells are `…k` values, one
/// per column, is read; rows may have spaces in their names.
pub fn openssl_speed(lines: &[String]) -> Result<Vec<OpensslRate>> {
    let header_at = lines
        .iter()
        .rposition(|l| l.starts_with("type ") && l.trim_end().ends_with("bytes"))
        .context("no `type … bytes` table header in the openssl speed output")?;
    let words: Vec<&str> = lines[header_at].split_whitespace().skip(1).collect();
    let sizes: Vec<u32> = words
        .chunks(2)
        .map(|pair| match pair {
            [n, "bytes"] => n
                .parse()
                .with_context(|| format!("bad block size {n:?} in the table header")),
            _ => bail!("unexpected table header {:?}", lines[header_at]),
        })
        .collect::<Result<_>>()?;
    let mut out = Vec::new();
    for line in &lines[header_at + 1..] {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() <= sizes.len() {
            continue;
        }
        let (name, cells) = words.split_at(words.len() - sizes.len());
        let values: Option<Vec<f64>> = cells
            .iter()
            .map(|c| c.strip_suffix('k')?.parse().ok())
            .collect();
        let Some(values) = values else { continue };
        for (&block_bytes, kbytes_per_s) in sizes.iter().zip(values) {
            out.push(OpensslRate {
                algorithm: name.join(" "),
                block_bytes,
                kbytes_per_s,
            });
        }
    }
    if out.is_empty() {
        bail!("the openssl speed table has no rows");
    }
    Ok(out)
}

/// The hash in the first line of `sha256sum FILE` output.
pub fn sha256sum(lines: &[String]) -> Result<String> {
    let first = lines
        .iter()
        .find(|l| !l.trim().is_empty())
        .context("sha256sum printed nothing")?;
    let hash = first.split_whitespace().next().unwrap_or("");
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("not a sha256sum line: {first:?}");
    }
    Ok(hash.to_ascii_lowercase())
}

/// One row of `redis-benchmark --csv`: the test and its requests per second.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisRate {
    /// The test as redis-benchmark names it (`SET`, `GET`, `LPUSH`, …).
    pub test: String,
    /// Requests per second.
    pub requests_per_s: f64,
}

/// Parses `redis-benchmark -q --csv` output:
///
/// ```text
/// "test","rps","avg_latency_ms",…
/// "SET","30303.03","1.029",…
/// ```
///
/// The header names the `rps` column; other lines (warnings) are ignored.
/// Fails if there is no header or no row.
pub fn redis_benchmark_csv(lines: &[String]) -> Result<Vec<RedisRate>> {
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .split(',')
            .map(|c| c.trim().trim_matches('"').to_string())
            .collect()
    };
    // The header is the line naming both the `test` and the `rps` column.
    let (header_at, test_col, rps_col) = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| {
            let header = cells(l);
            let col = |name: &str| header.iter().position(|c| c == name);
            Some((i, col("test")?, col("rps")?))
        })
        .context("no `\"test\",\"rps\",…` header in the redis-benchmark output")?;
    let mut out = Vec::new();
    for line in &lines[header_at + 1..] {
        if !line.trim_start().starts_with('"') {
            continue;
        }
        let row = cells(line);
        let (Some(test), Some(rps)) = (row.get(test_col), row.get(rps_col)) else {
            continue;
        };
        out.push(RedisRate {
            test: test.clone(),
            requests_per_s: rps
                .parse()
                .with_context(|| format!("bad rps in redis-benchmark row {line:?}"))?,
        });
    }
    if out.is_empty() {
        bail!("the redis-benchmark CSV has no rows: {lines:?}");
    }
    Ok(out)
}

/// The number of field `name` in Redis's `INFO` output (`name:123`
/// lines; `redis-cli` may leave a `\r`); `None` without it or with a
/// value that is no number.
pub fn redis_info_field(lines: &[String], name: &str) -> Option<f64> {
    lines.iter().find_map(|l| {
        let (key, value) = l.trim().split_once(':')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

/// What `wrk` reports at the end of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkSummary {
    /// Completed requests.
    pub requests: u64,
    /// `Requests/sec`.
    pub requests_per_s: f64,
    /// `Transfer/sec`, in bytes (wrk's units are powers of 1024).
    pub bytes_per_s: f64,
    /// Socket errors (connect + read + write + timeout), 0 without the line.
    pub socket_errors: u64,
    /// `Non-2xx or 3xx responses`, 0 without the line.
    pub bad_responses: u64,
}

/// A wrk size (`1.23MB`, `512.00KB`, `100B`) in bytes.
fn wrk_bytes(text: &str) -> Option<f64> {
    let t = text.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let factor = match unit {
        "B" | "" => 1.0,
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024.0f64.powi(4),
        _ => return None,
    };
    Some(number.parse::<f64>().ok()? * factor)
}

/// Parses wrk's summary (`N requests in …`, `Socket errors: …`,
/// `Non-2xx or 3xx responses: N`, `Requests/sec: X`, `Transfer/sec: Y`).
pub fn wrk(lines: &[String]) -> Result<WrkSummary> {
    let mut requests = None;
    let mut requests_per_s = None;
    let mut bytes_per_s = None;
    let mut socket_errors = 0u64;
    let mut bad_responses = 0u64;
    for line in lines {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            requests_per_s = Some(
                v.trim()
                    .parse::<f64>()
                    .with_context(|| format!("bad wrk line {l:?}"))?,
            );
        } else if let Some(v) = l.strip_prefix("Transfer/sec:") {
            bytes_per_s = Some(wrk_bytes(v).with_context(|| format!("bad wrk line {l:?}"))?);
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            for part in v.split(',') {
                let n = part
                    .split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse::<u64>().ok());
                socket_errors += n.with_context(|| format!("bad wrk line {l:?}"))?;
            }
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            bad_responses = v
                .trim()
                .parse()
                .with_context(|| format!("bad wrk line {l:?}"))?;
        } else if let Some((n, _)) = l.split_once(" requests in ") {
            requests = n.trim().parse().ok();
        }
    }
    match (requests, requests_per_s, bytes_per_s) {
        (Some(requests), Some(requests_per_s), Some(bytes_per_s)) => Ok(WrkSummary {
            requests,
            requests_per_s,
            bytes_per_s,
            socket_errors,
            bad_responses,
        }),
        _ => bail!(
            "no `N requests in`, `Requests/sec:` and `Transfer/sec:` lines in the wrk output: {lines:?}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    #[test]
    fn syscall_lines_are_parsed_and_other_lines_ignored() {
        let out = lines(
            "warming up\ngetpid ns_per_op=312.5 iterations=100000\nread_dev_zero_1B ns_per_op=1000.0 iterations=100000\nopen_close ns_per_op=4e3 iterations=25000\n",
        );
        let figs = syscall_bench(&out).unwrap();
        assert_eq!(figs.len(), 3);
        assert_eq!(
            figs[0],
            SyscallFigure {
                name: "getpid".into(),
                ns_per_op: 312.5,
                iterations: 100_000
            }
        );
        assert_eq!(figs[2].ns_per_op, 4000.0);
        assert!(syscall_bench(&lines("nothing here")).is_err());
        assert!(syscall_bench(&lines("getpid ns_per_op=fast iterations=1")).is_err());
    }

    const OPENSSL: &str = "Doing sha256 for 2s on 16 size blocks: 5046 sha256's in 2.00s
version: 3.0.19
The 'numbers' are in 1000s of bytes per second processed.
type             16 bytes     64 bytes    256 bytes   1024 bytes   8192 bytes  16384 bytes
sha256          100916.80k   320830.55k   794381.37k  1260144.94k  1538767.90k  1558056.18k
AES-256-GCM      37048.29k   139475.74k   504535.73k  1410097.69k  3123399.26k  3522150.40k
";

    #[test]
    fn the_openssl_table_gives_one_rate_per_cell() {
        let rates = openssl_speed(&lines(OPENSSL)).unwrap();
        assert_eq!(rates.len(), 12);
        assert_eq!(
            rates[0],
            OpensslRate {
                algorithm: "sha256".into(),
                block_bytes: 16,
                kbytes_per_s: 100916.80
            }
        );
        let last = rates.last().unwrap();
        assert_eq!(
            (last.algorithm.as_str(), last.block_bytes, last.kbytes_per_s),
            ("AES-256-GCM", 16384, 3522150.40)
        );
    }

    #[test]
    fn openssl_rows_with_spaces_and_broken_tables() {
        let t = "type 16 bytes 64 bytes\naes-256 cbc 1.00k 2.50k\nnot a row\n";
        let rates = openssl_speed(&lines(t)).unwrap();
        assert_eq!(rates[1].algorithm, "aes-256 cbc");
        assert_eq!(rates[1].kbytes_per_s, 2.5);
        assert!(openssl_speed(&lines("speed: Unknown algorithm aes-256-gcm")).is_err());
        assert!(openssl_speed(&lines("type 16 bytes\n")).is_err());
    }

    #[test]
    fn sha256sum_output_gives_the_hash() {
        let h = "a".repeat(64);
        assert_eq!(sha256sum(&[format!("{h}  /bench/random.bin")]).unwrap(), h);
        assert!(sha256sum(&["sha256sum: /x: No such file".into()]).is_err());
        assert!(sha256sum(&[]).is_err());
    }

    #[test]
    fn redis_info_fields_are_read_by_name() {
        let lines: Vec<String> = [
            "# Stats",
            "total_connections_received:12\r",
            "io_threaded_reads_processed:3456\r",
            "io_threaded_writes_processed:x",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            redis_info_field(&lines, "io_threaded_reads_processed"),
            Some(3456.0)
        );
        assert_eq!(
            redis_info_field(&lines, "io_threaded_writes_processed"),
            None
        );
        assert_eq!(redis_info_field(&lines, "io_threaded"), None);
    }

    #[test]
    fn redis_benchmark_csv_gives_requests_per_second_per_test() {
        let out = lines(
            "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\"\n\"SET\",\"30303.03\",\"1.029\",\"0.160\"\nWARNING: something\n\"LPUSH\",\"28571.43\",\"1.174\",\"0.344\"\n",
        );
        let rates = redis_benchmark_csv(&out).unwrap();
        assert_eq!(
            rates,
            [
                RedisRate {
                    test: "SET".into(),
                    requests_per_s: 30303.03
                },
                RedisRate {
                    test: "LPUSH".into(),
                    requests_per_s: 28571.43
                }
            ]
        );
        assert!(redis_benchmark_csv(&lines("Could not connect to Redis at 127.0.0.1:1")).is_err());
        assert!(redis_benchmark_csv(&lines("\"test\",\"rps\"\n")).is_err());
        assert!(redis_benchmark_csv(&lines("\"test\",\"rps\"\n\"SET\",\"fast\"")).is_err());
        // The rps column is found by name.
        let swapped = lines("\"rps\",\"test\"\n\"12.5\",\"GET\"");
        assert_eq!(
            redis_benchmark_csv(&swapped).unwrap()[0].requests_per_s,
            12.5
        );
    }

    const WRK: &str = "Running 10s test @ http://127.0.0.1:18080/4k.bin
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.12ms    1.01ms  20.00ms   90.00%
    Req/Sec     2.43k   100.00     2.60k    70.00%
  24213 requests in 10.00s, 100.47MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   2421.03
Transfer/sec:     10.05MB
";

    #[test]
    fn wrk_summaries_give_rates_and_errors() {
        let s = wrk(&lines(WRK)).unwrap();
        assert_eq!(
            s,
            WrkSummary {
                requests: 24213,
                requests_per_s: 2421.03,
                bytes_per_s: 10.05 * 1024.0 * 1024.0,
                socket_errors: 3,
                bad_responses: 4,
            }
        );
        let clean = WRK
            .lines()
            .filter(|l| !l.contains("errors") && !l.contains("Non-2xx"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("10.05MB", "512.50KB");
        let s = wrk(&lines(&clean)).unwrap();
        assert_eq!((s.socket_errors, s.bad_responses), (0, 0));
        assert_eq!(s.bytes_per_s, 512.5 * 1024.0);
        assert!(
            wrk(&lines(
                "unable to connect to 127.0.0.1:18080 Connection refused"
            ))
            .is_err()
        );
        assert!(wrk(&lines(&WRK.replace("10.05MB", "10.05XB"))).is_err());
    }
}
