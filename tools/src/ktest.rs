//! The host side of the in-guest tests: boots the test kernel, follows the
//! guest's test protocol (`kernel/src/ktest.rs`), and when a test brings the
//! guest down (panic, fatal exception, hang, triple fault) records it as
//! failed and boots again to run the tests after it.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::qemu::{self, Outcome, QemuConfig};

/// One failed test.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The test's name (or `<boot>` if the guest died outside a test).
    pub name: String,
    /// Why: the guest's failure line or the run's outcome.
    pub reason: String,
    /// Serial output from the test's start to the guest's end.
    pub output: Vec<String>,
}

/// The result of running a selection of in-guest tests.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Names of the tests that passed, in order.
    pub passed: Vec<String>,
    /// The tests that failed.
    pub failed: Vec<Failure>,
    /// Boots it took.
    pub boots: u32,
}

/// Something to report as it happens.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A test passed.
    Passed(&'a str),
    /// A test failed.
    Failed(&'a Failure),
    /// A line of guest output (for verbose display).
    Line(&'a str),
}

/// Parser state for one boot.
#[derive(Debug, Default)]
struct BootParse {
    current: Option<String>,
    /// Output since the current test began (or since boot).
    buffer: Vec<String>,
    failed_line: Option<String>,
}

/// The test name in `test NAME ... ok`/`FAILED`, with the verdict.
fn parse_result(line: &str) -> Option<(&str, bool)> {
    let rest = line.strip_prefix("test ")?;
    if let Some(name) = rest.strip_suffix(" ... ok") {
        return Some((name, true));
    }
    rest.strip_suffix(" ... FAILED").map(|name| (name, false))
}

/// Runs the tests `pattern` selects (see `kernel/src/ktest.rs`) in
/// `base` (kernel, accelerator, timeouts), reporting each event.
pub fn run(base: &QemuConfig, pattern: &str, mut report: impl FnMut(Event<'_>)) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut after: Option<String> = None;
    loop {
        summary.boots += 1;
        let mut config = base.clone();
        config.cmdline = match &after {
            Some(a) => format!("log=warn ktest={pattern} ktest.after={a}"),
            None => format!("log=warn ktest={pattern}"),
        };
        if !base.cmdline.is_empty() {
            config.cmdline = format!("{} {}", base.cmdline, config.cmdline);
        }
        let mut st = BootParse::default();
        let run = qemu::run(&config, |line, _| {
            report(Event::Line(line));
            if let Some(name) = line.strip_prefix("ktest: begin ") {
                st.current = Some(name.to_string());
                st.buffer.clear();
                return;
            }
            match parse_result(line) {
                Some((name, true)) => {
                    summary.passed.push(name.to_string());
                    report(Event::Passed(name));
                    st.current = None;
                    st.buffer.clear();
                }
                Some((_, false)) => st.failed_line = Some(line.to_string()),
                None => st.buffer.push(line.to_string()),
            }
        })?;
        match (&run.outcome, st.current.take()) {
            (Outcome::Success, None) => return Ok(summary),
            (outcome, Some(name)) => {
                let reason = st
                    .buffer
                    .iter()
                    .find(|l| l.starts_with("kernel panic") || l.starts_with("FATAL"))
                    .cloned()
                    .unwrap_or_else(|| outcome.to_string());
                let failure = Failure {
                    name: name.clone(),
                    reason,
                    output: st.buffer,
                };
                report(Event::Failed(&failure));
                summary.failed.push(failure);
                if after.as_deref() == Some(name.as_str()) {
                    bail!("the runner made no progress past {name}");
                }
                after = Some(name);
            }
            (outcome, None) => {
                let failure = Failure {
                    name: "<boot>".into(),
                    reason: format!("{outcome} outside any test"),
                    output: st.buffer,
                };
                report(Event::Failed(&failure));
                summary.failed.push(failure);
                if run.stderr.trim().is_empty() {
                    return Ok(summary);
                }
                bail!("QEMU: {}", run.stderr.trim());
            }
        }
    }
}

/// A configuration for test runs: the given kernel, timeouts suited to TCG
/// (a whole run within `CLOISTER_TEST_TIMEOUT` seconds, default 600; a test
/// silent for 60 s counts as hung), and a network card (user-mode, no
/// forwards) for the network tests — every other test runs with it too.
pub fn test_config(kernel: std::path::PathBuf) -> Result<QemuConfig> {
    let mut config = QemuConfig::new(kernel)?;
    config.nic = Some(crate::qemu::Nic::default());
    config.timeout = Duration::from_secs(
        std::env::var("CLOISTER_TEST_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(600),
    );
    config.idle_timeout = Duration::from_secs(60);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_result_lines() {
        assert_eq!(parse_result("test a::b ... ok"), Some(("a::b", true)));
        assert_eq!(parse_result("test a::b ... FAILED"), Some(("a::b", false)));
        assert_eq!(parse_result("test a::b ... "), None);
        assert_eq!(parse_result("ktest: begin a::b"), None);
    }
}
