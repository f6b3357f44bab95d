//! The protocol between `cloister run` and the kernel.
//!
//! Host to guest, in the initramfs:
//! - [`ARGV_PATH`]: the program's arguments, each followed by a NUL byte;
//!   the first is the guest path of the program.
//! - [`ENVP_PATH`]: its environment, `K=V` entries each followed by a NUL.
//!
//! Guest to host:
//! - COM1 lines: kernel log records (`[    1.234567] WARN  text`), other
//!   kernel output (boot banner, panics), `[trace] ` lines (one per syscall,
//!   with `trace` on the command line) and the control line
//!   `CLOISTER_EXIT=<status>` (0–255; 128+signal for a fatal fault),
//!   before it `CLOISTER_UNSUPPORTED=name:count,…` when the program called
//!   syscalls Cloister does not implement; in a learning run (`learn` on
//!   the command line) `CLOISTER_MISSING=<path>` for each failed lookup.
//! - COM2: the program's stdout and stderr, raw bytes.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Where the kernel reads the program's arguments.
pub const ARGV_PATH: &str = "/.cloister/argv";
/// Where the kernel reads the program's environment.
pub const ENVP_PATH: &str = "/.cloister/envp";
/// The prefix of the control line that reports the program's exit.
pub const EXIT_PREFIX: &str = "CLOISTER_EXIT=";
/// The prefix of the control line listing unsupported syscalls.
pub const UNSUPPORTED_PREFIX: &str = "CLOISTER_UNSUPPORTED=";
/// The prefix of a learning run's line naming a path a lookup did not find.
pub const MISSING_PREFIX: &str = "CLOISTER_MISSING=";
/// The prefix of a syscall trace line.
pub const TRACE_PREFIX: &str = "[trace] ";

/// Encodes strings as the kernel reads them: each followed by a NUL byte.
/// Fails if one contains a NUL (it could not be passed to `execve` either).
pub fn encode_nul_terminated<'a>(
    items: impl IntoIterator<Item = &'a OsString>,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for item in items {
        let bytes = item.as_bytes();
        if bytes.contains(&0) {
            return Err(format!(
                "{:?} contains a NUL byte, which cannot be passed to a program",
                item
            ));
        }
        out.extend_from_slice(bytes);
        out.push(0);
    }
    Ok(out)
}

/// Decodes [`encode_nul_terminated`]'s format (for tests and tools that
/// inspect an image). `None` if the data does not end with a NUL.
pub fn decode_nul_terminated(data: &[u8]) -> Option<Vec<OsString>> {
    if data.is_empty() {
        return Some(Vec::new());
    }
    let body = data.strip_suffix(&[0])?;
    Some(
        body.split(|&b| b == 0)
            .map(|s| OsString::from_vec(s.to_vec()))
            .collect(),
    )
}

/// A kernel log level, as the kernel's logger prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `ERROR`
    Error,
    /// `WARN`
    Warn,
    /// `INFO`
    Info,
    /// `DEBUG`
    Debug,
    /// `TRACE`
    Trace,
}

/// What a COM1 line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleLine<'a> {
    /// `CLOISTER_EXIT=<status>`: the program ended with this status.
    Exit(u8),
    /// `CLOISTER_MISSING=<path>`: a lookup found nothing there.
    Missing(&'a str),
    /// `CLOISTER_UNSUPPORTED=…`: the list after the prefix.
    Unsupported(&'a str),
    /// A `[trace] ` line, without the prefix.
    Trace(&'a str),
    /// A kernel log record at this level (the whole line).
    Log(LogLevel, &'a str),
    /// Anything else: the boot banner, a panic message.
    Other(&'a str),
}

impl ConsoleLine<'_> {
    /// Whether the line is worth showing to a user who did not ask for
    /// verbose output: errors, panics and fatal faults (warnings are for
    /// `-v`; the program's stderr is the user's).
    pub fn is_notable(&self) -> bool {
        match *self {
            Self::Log(level, _) => level <= LogLevel::Error,
            Self::Other(line) => {
                let lower = line.to_ascii_lowercase();
                lower.contains("panic") || lower.starts_with("fatal")
            }
            Self::Exit(_) | Self::Missing(_) | Self::Unsupported(_) | Self::Trace(_) => false,
        }
    }
}

/// The (name, calls) pairs of a `CLOISTER_UNSUPPORTED=` list; malformed
/// entries are skipped.
pub fn parse_unsupported(list: &str) -> Vec<(String, u64)> {
    list.split(',')
        .filter_map(|e| {
            let (name, count) = e.rsplit_once(':')?;
            Some((name.to_string(), count.parse().ok()?))
        })
        .collect()
}

/// Classifies a COM1 line (given without its line ending).
pub fn classify(line: &str) -> ConsoleLine<'_> {
    if let Some(rest) = line.strip_prefix(EXIT_PREFIX)
        && let Ok(status) = rest.trim_end().parse::<u8>()
    {
        return ConsoleLine::Exit(status);
    }
    if let Some(rest) = line.strip_prefix(MISSING_PREFIX) {
        return ConsoleLine::Missing(rest.trim_end_matches('\r'));
    }
    if let Some(rest) = line.strip_prefix(UNSUPPORTED_PREFIX) {
        return ConsoleLine::Unsupported(rest.trim_end());
    }
    if let Some(rest) = line.strip_prefix(TRACE_PREFIX) {
        return ConsoleLine::Trace(rest);
    }
    match log_level(line) {
        Some(level) => ConsoleLine::Log(level, line),
        None => ConsoleLine::Other(line),
    }
}

/// The level of a log record `[ secs.micros] LEVEL text`.
fn log_level(line: &str) -> Option<LogLevel> {
    let rest = line.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once(']')?;
    let stamp = stamp.trim_start();
    let (secs, micros) = stamp.split_once('.')?;
    if secs.is_empty()
        || micros.is_empty()
        || !secs
            .bytes()
            .chain(micros.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let word = rest.split_whitespace().next()?;
    Some(match word {
        "ERROR" => LogLevel::Error,
        "WARN" => LogLevel::Warn,
        "INFO" => LogLevel::Info,
        "DEBUG" => LogLevel::Debug,
        "TRACE" => LogLevel::Trace,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(items: &[&str]) -> Vec<OsString> {
        items.iter().map(OsString::from).collect()
    }

    #[test]
    fn argv_is_nul_terminated_strings_and_round_trips() {
        let argv = os(&["/bin/busybox", "echo", "", "a b"]);
        let bytes = encode_nul_terminated(&argv).unwrap();
        assert_eq!(bytes, b"/bin/busybox\0echo\0\0a b\0");
        assert_eq!(decode_nul_terminated(&bytes).unwrap(), argv);
        assert_eq!(encode_nul_terminated(&[]).unwrap(), b"");
        assert_eq!(decode_nul_terminated(b"").unwrap(), Vec::<OsString>::new());
        assert_eq!(decode_nul_terminated(b"no-nul"), None);
    }

    #[test]
    fn non_utf8_arguments_pass_through_and_nul_is_refused() {
        let arg = OsString::from_vec(vec![0xff, b'x']);
        assert_eq!(encode_nul_terminated(&[arg]).unwrap(), b"\xffx\0");
        let err = encode_nul_terminated(&[OsString::from("a\0b")]).unwrap_err();
        assert!(err.contains("NUL"), "{err}");
    }

    #[test]
    fn exit_lines_carry_a_status_of_0_to_255() {
        assert_eq!(classify("CLOISTER_EXIT=0"), ConsoleLine::Exit(0));
        assert_eq!(classify("CLOISTER_EXIT=139 "), ConsoleLine::Exit(139));
        assert_eq!(classify("CLOISTER_EXIT=255"), ConsoleLine::Exit(255));
        assert_eq!(
            classify("CLOISTER_EXIT=256"),
            ConsoleLine::Other("CLOISTER_EXIT=256")
        );
        assert_eq!(
            classify("CLOISTER_EXIT=-1"),
            ConsoleLine::Other("CLOISTER_EXIT=-1")
        );
        assert_eq!(
            classify(" CLOISTER_EXIT=1"),
            ConsoleLine::Other(" CLOISTER_EXIT=1")
        );
    }

    #[test]
    fn trace_log_and_other_lines_are_told_apart() {
        assert_eq!(
            classify("[trace] write(1, \"hi\\n\", 3) = 3"),
            ConsoleLine::Trace("write(1, \"hi\\n\", 3) = 3")
        );
        let warn = "[    1.250000] WARN  unsupported syscall 999";
        assert_eq!(classify(warn), ConsoleLine::Log(LogLevel::Warn, warn));
        let info = "[12345.000001] INFO  exec /bin/true";
        assert_eq!(classify(info), ConsoleLine::Log(LogLevel::Info, info));
        assert_eq!(
            classify("Cloister 0.1.0 booting (PVH)"),
            ConsoleLine::Other("Cloister 0.1.0 booting (PVH)")
        );
        assert_eq!(classify("[x.1] WARN y"), ConsoleLine::Other("[x.1] WARN y"));
    }

    #[test]
    fn only_warnings_errors_and_panics_are_notable() {
        assert!(classify("[    0.000001] ERROR  bad").is_notable());
        assert!(!classify("[    0.000001] WARN  odd").is_notable());
        assert!(!classify("[    0.000001] INFO  fine").is_notable());
        assert!(classify("kernel panic at src/main.rs:3: oops").is_notable());
        assert!(classify("FATAL: page fault at 0x0").is_notable());
        assert!(!classify("Cloister ready").is_notable());
        assert!(!classify("CLOISTER_EXIT=0").is_notable());
        assert!(!classify("[trace] getpid() = 1").is_notable());
        assert_eq!(
            classify("CLOISTER_UNSUPPORTED=rseq:1,nr_999:2"),
            ConsoleLine::Unsupported("rseq:1,nr_999:2")
        );
        assert_eq!(
            parse_unsupported("rseq:1,nr_999:2,bad"),
            vec![("rseq".to_string(), 1), ("nr_999".to_string(), 2)]
        );
    }
}
