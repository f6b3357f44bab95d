//! What `cloister audit show` prints of the records: filters (by syscall
//! name, thread, time, failed calls) and the `--stats` summary (calls and
//! errors per syscall, record kinds, lost records).

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use audit::{DecodeError, Event, Kind, Record};
use libos::syscall::{syscall_name, syscall_number};

/// Which records to print. An empty filter passes everything; with any
/// syscall-specific condition (names, thread, errors) only syscall records
/// pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RecordFilter {
    /// Syscall numbers to keep (empty: any).
    pub syscalls: Vec<u32>,
    /// Keep only this thread's calls.
    pub tid: Option<u32>,
    /// Keep only calls that returned an error (a negative result).
    pub errors_only: bool,
    /// Keep records at or after this time (ns since boot).
    pub since_ns: Option<u64>,
    /// Keep records before this time (ns since boot).
    pub until_ns: Option<u64>,
}

impl RecordFilter {
    /// Builds a filter from the command line's values: syscall names
    /// (comma-separated lists allowed) and times in seconds since boot.
    pub(crate) fn new(
        syscalls: &[String],
        tid: Option<u32>,
        errors_only: bool,
        since_secs: Option<f64>,
        until_secs: Option<f64>,
    ) -> Result<Self> {
        let mut numbers = Vec::new();
        for name in syscalls.iter().flat_map(|s| s.split(',')) {
            let name = name.trim();
            let nr = match syscall_number(name) {
                Some(nr) => nr,
                None => match name.parse::<usize>() {
                    Ok(nr) => nr,
                    Err(_) => {
                        bail!("--syscall {name:?}: not an x86-64 Linux system call name or number")
                    }
                },
            };
            numbers.push(u32::try_from(nr)?);
        }
        let ns = |what: &str, s: Option<f64>| -> Result<Option<u64>> {
            match s {
                Some(s) if !(s >= 0.0 && s.is_finite()) => {
                    bail!("--{what} {s}: expected seconds since boot (0 or more)")
                }
                Some(s) => Ok(Some((s * 1e9) as u64)),
                None => Ok(None),
            }
        };
        Ok(RecordFilter {
            syscalls: numbers,
            tid,
            errors_only,
            since_ns: ns("since", since_secs)?,
            until_ns: ns("until", until_secs)?,
        })
    }

    fn syscall_specific(&self) -> bool {
        !self.syscalls.is_empty() || self.tid.is_some() || self.errors_only
    }

    /// Whether `record` (decoded as `event`) is printed.
    pub(crate) fn matches(
        &self,
        record: &Record<'_>,
        event: &Result<Event<'_>, DecodeError>,
    ) -> bool {
        if self.since_ns.is_some_and(|t| record.timestamp_ns < t)
            || self.until_ns.is_some_and(|t| record.timestamp_ns >= t)
        {
            return false;
        }
        if !self.syscall_specific() {
            return true;
        }
        let Ok(Event::Syscall(s)) = event else {
            return false;
        };
        (self.syscalls.is_empty() || self.syscalls.contains(&s.nr))
            && self.tid.is_none_or(|t| t == s.tid)
            && (!self.errors_only || s.result < 0)
    }
}

/// The name of syscall `nr`, or `nr` itself when unknown.
pub(crate) fn syscall_label(nr: u32) -> String {
    syscall_name(nr as usize).map_or_else(|| format!("syscall_{nr}"), str::to_string)
}

/// Counts for `--stats`.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Per syscall number: (calls, calls that returned an error).
    pub syscalls: BTreeMap<u32, (u64, u64)>,
    /// Per record kind name: records.
    pub kinds: BTreeMap<String, u64>,
    /// Unsupported syscalls by name: calls.
    pub unsupported: BTreeMap<String, u64>,
}

impl Stats {
    /// Counts one record that passed the filter.
    pub(crate) fn add(&mut self, record: &Record<'_>, event: &Result<Event<'_>, DecodeError>) {
        let kind = Kind::from_u8(record.kind)
            .map_or_else(|| format!("kind{}", record.kind), |k| k.name().to_string());
        *self.kinds.entry(kind).or_default() += 1;
        match event {
            Ok(Event::Syscall(s)) => {
                let e = self.syscalls.entry(s.nr).or_default();
                e.0 += 1;
                e.1 += u64::from(s.result < 0);
            }
            Ok(Event::UnsupportedSyscall { name, .. }) => {
                *self.unsupported.entry(name.to_string()).or_default() += 1;
            }
            _ => {}
        }
    }

    /// The text table: one line per syscall, busiest first.
    pub(crate) fn text_lines(&self) -> Vec<String> {
        let mut rows: Vec<(&u32, &(u64, u64))> = self.syscalls.iter().collect();
        rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
        let mut out = vec![format!(
            "{:<24} {:>10} {:>10}",
            "syscall", "calls", "errors"
        )];
        for (nr, (calls, errors)) in rows {
            out.push(format!(
                "{:<24} {calls:>10} {errors:>10}",
                syscall_label(*nr)
            ));
        }
        let kinds: Vec<String> = self.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        out.push(format!("records by kind: {}", kinds.join(", ")));
        if !self.unsupported.is_empty() {
            let u: Vec<String> = self
                .unsupported
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect();
            out.push(format!("unsupported syscalls: {}", u.join(", ")));
        }
        out
    }

    /// The JSON line.
    pub(crate) fn json_line(&self) -> String {
        let calls: Vec<String> = self
            .syscalls
            .iter()
            .map(|(nr, (c, e))| {
                format!(
                    r#"{{"nr":{nr},"name":"{}","calls":{c},"errors":{e}}}"#,
                    syscall_label(*nr)
                )
            })
            .collect();
        let kinds: Vec<String> = self
            .kinds
            .iter()
            .map(|(k, n)| format!(r#""{k}":{n}"#))
            .collect();
        let unsupported: Vec<String> = self
            .unsupported
            .iter()
            .map(|(k, n)| format!(r#""{}":{n}"#, super::render::json_str(k)))
            .collect();
        format!(
            r#"{{"type":"stats","syscalls":[{}],"kinds":{{{}}},"unsupported":{{{}}}}}"#,
            calls.join(","),
            kinds.join(","),
            unsupported.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_lists_are_accepted_and_bad_names_refused() {
        let f = RecordFilter::new(
            &["accept4,write".into(), "0".into()],
            None,
            false,
            None,
            None,
        )
        .unwrap();
        assert_eq!(f.syscalls, vec![288, 1, 0]);
        let e = RecordFilter::new(&["acept4".into()], None, false, None, None).unwrap_err();
        assert!(e.to_string().contains("acept4"), "{e}");
        assert!(RecordFilter::new(&[], None, false, Some(-1.0), None).is_err());
        let t = RecordFilter::new(&[], None, false, Some(1.5), Some(2.0)).unwrap();
        assert_eq!(
            (t.since_ns, t.until_ns),
            (Some(1_500_000_000), Some(2_000_000_000))
        );
    }

    #[test]
    fn labels_name_known_calls() {
        assert_eq!(syscall_label(288), "accept4");
        assert_eq!(syscall_label(100_000), "syscall_100000");
    }
}
