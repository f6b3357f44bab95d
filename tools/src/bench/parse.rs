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
}
