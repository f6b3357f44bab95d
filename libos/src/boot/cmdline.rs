//! The kernel command line (`-append` under QEMU).
//!
//! Words are `key=value` or bare `key`, separated by spaces. Everything after
//! a lone `--` is the application's argument vector and is kept verbatim.
//! Unknown keys are kept, so later layers (the LibOS, the audit log) can read
//! their own settings with [`KernelArgs::get`] without this module knowing
//! them; [`KernelArgs::unknown_keys`] lets the kernel warn about typos.

/// Log verbosity, as the `log=` key names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `log=off`: nothing.
    Off,
    /// `log=error`.
    Error,
    /// `log=warn`.
    Warn,
    /// `log=info` (the default).
    Info,
    /// `log=debug`.
    Debug,
    /// `log=trace`.
    Trace,
}

impl LogLevel {
    /// Parses a level name; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "off" => Self::Off,
            "error" => Self::Error,
            "warn" => Self::Warn,
            "info" => Self::Info,
            "debug" => Self::Debug,
            "trace" => Self::Trace,
            _ => return None,
        })
    }
}

/// Keys this module understands; anything else is reported by
/// [`KernelArgs::unknown_keys`] unless a later layer claims it.
pub const KNOWN_KEYS: &[&str] = &[
    "log",
    "hz",
    "ktest",
    "ktest.after",
    "demo.ticks",
    "audit",
    "trace",
    "tsc_khz",
];

/// A parsed kernel command line. Borrows the original string.
#[derive(Debug, Clone, Copy)]
pub struct KernelArgs<'a> {
    options: &'a str,
    app: Option<&'a str>,
}

/// A value that did not parse, with the key it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadValue<'a> {
    /// The key, e.g. `hz`.
    pub key: &'a str,
    /// The offending value.
    pub value: &'a str,
    /// What was expected, e.g. "a number from 1 to 10000".
    pub expected: &'static str,
}

impl<'a> KernelArgs<'a> {
    /// Splits `cmdline` into kernel options and the application's arguments.
    pub fn parse(cmdline: &'a str) -> Self {
        let trimmed = cmdline.trim();
        let (options, app) = match find_separator(trimmed) {
            Some(pos) => (&trimmed[..pos], Some(trimmed[pos + 2..].trim())),
            None => (trimmed, None),
        };
        Self { options, app }
    }

    /// The words before `--`, as `(key, value)`; a bare word has value `None`.
    pub fn options(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        self.options
            .split_ascii_whitespace()
            .map(|word| match word.split_once('=') {
                Some((key, value)) => (key, Some(value)),
                None => (word, None),
            })
    }

    /// The value of the last occurrence of `key` (`Some("")` for a bare key).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.options()
            .filter(|(k, _)| *k == key)
            .last()
            .map(|(_, v)| v.unwrap_or(""))
    }

    /// Whether `key` is present at all.
    pub fn has(&self, key: &str) -> bool {
        self.options().any(|(k, _)| k == key)
    }

    /// The application's words after `--`, if any.
    pub fn app_args(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.app.unwrap_or("").split_ascii_whitespace()
    }

    /// `log=`: the log level; `Info` when absent.
    pub fn log_level(&self) -> Result<LogLevel, BadValue<'a>> {
        match self.get("log") {
            None => Ok(LogLevel::Info),
            Some(value) => LogLevel::from_name(value).ok_or(BadValue {
                key: "log",
                value,
                expected: "one of off, error, warn, info, debug, trace",
            }),
        }
    }

    /// `hz=`: the timer frequency in Hz; 100 when absent.
    pub fn timer_hz(&self) -> Result<u32, BadValue<'a>> {
        self.number("hz", 100, 1, 10_000, "a number from 1 to 10000")
    }

    /// `audit=`: the size of the audit region in bytes (`64M`, `1G`, `65536`).
    pub fn audit_region_bytes(&self) -> Result<Option<u64>, BadValue<'a>> {
        match self.get("audit") {
            None => Ok(None),
            Some(value) => parse_size(value).map(Some).ok_or(BadValue {
                key: "audit",
                value,
                expected: "a size such as 65536, 64K, 64M or 2G",
            }),
        }
    }

    /// `tsc_khz=`: the host's TSC frequency in kHz, a hint the kernel
    /// checks against its own measurement ([`super::tsc::choose_tsc_hz`]);
    /// `None` when absent.
    pub fn tsc_khz(&self) -> Result<Option<u32>, BadValue<'a>> {
        if self.get("tsc_khz").is_none() {
            return Ok(None);
        }
        self.number(
            "tsc_khz",
            0,
            1_000,
            20_000_000,
            "a frequency in kHz from 1000 to 20000000",
        )
        .map(Some)
    }

    /// Keys that are neither in [`KNOWN_KEYS`] nor in `extra`.
    pub fn unknown_keys<'s>(&'s self, extra: &'s [&str]) -> impl Iterator<Item = &'a str> + 's {
        self.options()
            .map(|(k, _)| k)
            .filter(move |k| !KNOWN_KEYS.contains(k) && !extra.contains(k))
    }

    fn number(
        &self,
        key: &'static str,
        default: u32,
        min: u32,
        max: u32,
        expected: &'static str,
    ) -> Result<u32, BadValue<'a>> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or(BadValue {
                    key,
                    value,
                    expected,
                }),
        }
    }
}

/// Position of a `--` that stands alone as a word.
fn find_separator(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(rel) = s[start..].find("--") {
        let pos = start + rel;
        let before_ok = pos == 0 || bytes[pos - 1].is_ascii_whitespace();
        let after_ok = bytes.get(pos + 2).is_none_or(|b| b.is_ascii_whitespace());
        if before_ok && after_ok {
            return Some(pos);
        }
        start = pos + 2;
    }
    None
}

/// Parses `123`, `64K`, `64M`, `2G` (binary units) into bytes, with overflow
/// checks.
pub fn parse_size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 10),
        b'M' | b'm' => (&s[..s.len() - 1], 20),
        b'G' | b'g' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_options_and_app_args() {
        let args = KernelArgs::parse("log=debug ktest -- /bin/echo a --b");
        assert_eq!(args.get("log"), Some("debug"));
        assert_eq!(args.get("ktest"), Some(""));
        assert!(args.has("ktest"));
        assert!(!args.has("hz"));
        let app: Vec<_> = args.app_args().collect();
        assert_eq!(app, ["/bin/echo", "a", "--b"]);
    }

    #[test]
    fn separator_must_stand_alone() {
        let args = KernelArgs::parse("x=a--b y");
        assert_eq!(args.get("x"), Some("a--b"));
        assert_eq!(args.app_args().count(), 0);
        let args = KernelArgs::parse("--");
        assert_eq!(args.options().count(), 0);
    }

    #[test]
    fn last_occurrence_wins() {
        let args = KernelArgs::parse("log=warn log=trace");
        assert_eq!(args.log_level(), Ok(LogLevel::Trace));
    }

    #[test]
    fn defaults_and_errors() {
        let args = KernelArgs::parse("");
        assert_eq!(args.log_level(), Ok(LogLevel::Info));
        assert_eq!(args.timer_hz(), Ok(100));
        assert_eq!(args.audit_region_bytes(), Ok(None));
        let bad = KernelArgs::parse("log=loud hz=0 audit=12Q");
        assert_eq!(bad.log_level().unwrap_err().value, "loud");
        assert_eq!(bad.timer_hz().unwrap_err().key, "hz");
        assert_eq!(bad.audit_region_bytes().unwrap_err().key, "audit");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Some(65536));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
        assert_eq!(parse_size("17179869184G"), None);
    }

    #[test]
    fn the_hosts_tsc_frequency_is_a_checked_number() {
        assert_eq!(KernelArgs::parse("log=warn").tsc_khz(), Ok(None));
        assert_eq!(
            KernelArgs::parse("tsc_khz=2599998").tsc_khz(),
            Ok(Some(2_599_998))
        );
        for bad in [
            "tsc_khz=",
            "tsc_khz=0",
            "tsc_khz=2.6G",
            "tsc_khz=99999999999",
        ] {
            assert_eq!(
                KernelArgs::parse(bad).tsc_khz().unwrap_err().key,
                "tsc_khz",
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_reported() {
        let args = KernelArgs::parse("log=info lgo=debug net.port=80");
        let unknown: Vec<_> = args.unknown_keys(&["net.port"]).collect();
        assert_eq!(unknown, ["lgo"]);
    }
}
