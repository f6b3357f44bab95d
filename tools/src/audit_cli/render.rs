//! Text and JSON-lines rendering of blocks, records, findings and the
//! summary. Output errors (a closed pipe) stop printing silently; they never
//! panic.

use std::fmt::Write as _;
use std::io::Write;

use audit::{
    Auth, BlockView, DecodeError, Event, Finding, GapEvent, Kind, Location, Record, Severity,
    Summary, Visitor,
};

use super::filter::{RecordFilter, Stats, syscall_label};
use super::key::hex;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

/// A [`Visitor`] that prints as it goes.
pub(crate) struct Printer<'o> {
    out: &'o mut dyn Write,
    format: Format,
    /// Print blocks and records (`show`), not only findings (`verify`).
    records: bool,
    /// Which records `show` prints.
    filter: RecordFilter,
    /// With `--stats`: count the records that pass instead of printing them.
    stats: Option<Stats>,
    broken: bool,
}

impl std::fmt::Debug for Printer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Escapes `s` as the inside of a JSON string.
pub(crate) fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

fn gap_fields(g: &GapEvent) -> (String, String) {
    let text = format!(
        "reason={} first_seq={} count={} lost_total={} evicted_block={} digest={}",
        g.reason.name(),
        g.first_seq,
        g.count,
        g.lost_total,
        g.block_seq,
        hex(&g.digest[..8])
    );
    let json = format!(
        r#""reason":"{}","first_seq":{},"count":{},"lost_total":{},"evicted_block":{},"digest":"{}""#,
        g.reason.name(),
        g.first_seq,
        g.count,
        g.lost_total,
        g.block_seq,
        hex(&g.digest)
    );
    (text, json)
}

/// (text, JSON fields) describing an event.
fn event_fields(event: &Result<Event<'_>, DecodeError>, raw: &Record<'_>) -> (String, String) {
    match event {
        Ok(Event::Boot {
            memory_bytes,
            cpu_count,
            cmdline,
        }) => (
            format!("memory_bytes={memory_bytes} cpus={cpu_count} cmdline={cmdline:?}"),
            format!(
                r#""memory_bytes":{memory_bytes},"cpu_count":{cpu_count},"cmdline":"{}""#,
                json_str(cmdline)
            ),
        ),
        Ok(Event::Panic { message }) => (
            format!("{message:?}"),
            format!(r#""message":"{}""#, json_str(message)),
        ),
        Ok(Event::CpuException {
            vector,
            error_code,
            rip,
            cr2,
        }) => (
            format!("vector={vector} error_code={error_code:#x} rip={rip:#x} cr2={cr2:#x}"),
            format!(r#""vector":{vector},"error_code":{error_code},"rip":{rip},"cr2":{cr2}"#),
        ),
        Ok(Event::Syscall(s)) => {
            let args = &s.args[..usize::from(s.arg_count.min(6))];
            let text_args: Vec<String> = args.iter().map(|a| format!("{a:#x}")).collect();
            let json_args: Vec<String> = args.iter().map(u64::to_string).collect();
            (
                format!(
                    "{} nr={} tid={} args=[{}] result={} duration_ns={}",
                    syscall_label(s.nr),
                    s.nr,
                    s.tid,
                    text_args.join(", "),
                    s.result,
                    s.duration_ns
                ),
                format!(
                    r#""name":"{}","nr":{},"tid":{},"args":[{}],"result":{},"duration_ns":{}"#,
                    syscall_label(s.nr),
                    s.nr,
                    s.tid,
                    json_args.join(","),
                    s.result,
                    s.duration_ns
                ),
            )
        }
        Ok(Event::UnsupportedSyscall { nr, name }) => (
            format!("nr={nr} name={name:?}"),
            format!(r#""nr":{nr},"name":"{}""#, json_str(name)),
        ),
        Ok(Event::Gap(g)) => gap_fields(g),
        Ok(Event::Checkpoint(c)) => (
            format!(
                "next_record_seq={} lost_total={} evicted_blocks={} sealed_blocks={}",
                c.next_record_seq, c.lost_total, c.evicted_blocks, c.sealed_blocks
            ),
            format!(
                r#""next_record_seq":{},"lost_total":{},"evicted_blocks":{},"sealed_blocks":{}"#,
                c.next_record_seq, c.lost_total, c.evicted_blocks, c.sealed_blocks
            ),
        ),
        Ok(Event::Text { text }) => (
            format!("{text:?}"),
            format!(r#""text":"{}""#, json_str(text)),
        ),
        Ok(Event::Attestation { payload }) => attestation_fields(payload),
        Err(e) => {
            let prefix = &raw.payload[..raw.payload.len().min(32)];
            (
                format!("<undecodable: {e}; payload {}>", hex(prefix)),
                format!(
                    r#""error":"{}","payload_hex":"{}""#,
                    json_str(&e.to_string()),
                    hex(raw.payload)
                ),
            )
        }
    }
}

/// An attestation record: the report's kind, the checkpoint it binds and
/// the guest key (`cloister attest verify` checks the binding).
fn attestation_fields(payload: &[u8]) -> (String, String) {
    match audit::attest::AttestationRecord::decode(payload) {
        Ok(r) => {
            let kind = audit::attest::ReportKind::detect(r.report)
                .map_or("unknown", audit::attest::ReportKind::name);
            (
                format!(
                    "report={kind:?} report_bytes={} checkpoint_block={} public_key={}",
                    r.report.len(),
                    r.checkpoint.block_seq,
                    hex(&r.public_key)
                ),
                format!(
                    r#""report_kind":"{}","report_hex":"{}","checkpoint_block":{},"public_key":"{}""#,
                    json_str(kind),
                    hex(r.report),
                    r.checkpoint.block_seq,
                    hex(&r.public_key)
                ),
            )
        }
        Err(e) => (
            format!("<undecodable attestation: {e}>"),
            format!(r#""error":"{}""#, json_str(&e.to_string())),
        ),
    }
}

fn kind_name(kind: u8) -> String {
    Kind::from_u8(kind).map_or_else(|| format!("kind{kind}"), |k| k.name().to_string())
}

fn location_json(l: &Location) -> String {
    format!(
        r#""block":{},"slot":{},"record":{},"offset":{}"#,
        opt(l.block_seq),
        opt(l.slot),
        opt(l.record_seq),
        opt(l.offset)
    )
}

impl<'o> Printer<'o> {
    pub(crate) fn new(out: &'o mut dyn Write, format: Format, records: bool) -> Self {
        Printer {
            out,
            format,
            records,
            filter: RecordFilter::default(),
            stats: None,
            broken: false,
        }
    }

    /// Prints only the records `filter` passes (block lines are left out
    /// when the filter is not empty); with `stats`, counts them instead and
    /// prints the counts before the summary.
    pub(crate) fn select(&mut self, filter: RecordFilter, stats: bool) {
        self.filter = filter;
        self.stats = stats.then(Stats::default);
    }

    fn line(&mut self, s: &str) {
        if !self.broken && writeln!(self.out, "{s}").is_err() {
            self.broken = true;
        }
    }

    /// Prints the final summary and verdict.
    pub(crate) fn summary(&mut self, s: &Summary, show: bool) {
        if let Some(stats) = self.stats.take() {
            match self.format {
                Format::Text => {
                    for line in stats.text_lines() {
                        self.line(&line);
                    }
                }
                Format::Json => self.line(&stats.json_line()),
            }
        }
        let h = &s.header;
        let verdict = match (s.key_matched, s.errors) {
            (Some(true), 0) => "verified",
            (None, 0) => "unverified (no key)",
            _ => "FAILED",
        };
        if self.format == Format::Json {
            let line = format!(
                concat!(
                    r#"{{"type":"summary","result":"{}","block_bytes":{},"block_count":{},"policy":"{}","#,
                    r#""boot_id":"{}","key_id":"{}","key_matched":{},"oldest_block":{},"newest_block":{},"#,
                    r#""blocks":{},"sealed_blocks":{},"verified_blocks":{},"records":{},"unsealed_records":{},"#,
                    r#""torn_records":{},"gap_records":{},"lost_records":{},"lost_records_hinted":{},"first_record":{},"last_record":{},"#,
                    r#""errors":{},"warnings":{}}}"#
                ),
                verdict,
                h.block_bytes,
                h.block_count,
                h.policy.name(),
                hex(&h.boot_id),
                hex(&h.key_id),
                s.key_matched.map_or("null".to_string(), |b| b.to_string()),
                opt(s.oldest_block),
                opt(s.newest_block),
                s.blocks,
                s.sealed_blocks,
                s.verified_blocks,
                s.records,
                s.unsealed_records,
                s.torn_records,
                s.gap_records,
                s.lost_records,
                s.lost_records_hinted,
                opt(s.first_record_seq),
                opt(s.last_record_seq),
                s.errors,
                s.warnings
            );
            self.line(&line);
            return;
        }
        if show {
            self.line("");
        }
        self.line(&format!(
            "region: {} blocks of {} bytes, policy {}, boot {}, key id {}",
            h.block_count,
            h.block_bytes,
            h.policy.name(),
            hex(&h.boot_id),
            hex(&h.key_id)
        ));
        let range = match (s.oldest_block, s.newest_block) {
            (Some(o), Some(n)) => format!("blocks {o}..={n}"),
            _ => "no blocks".to_string(),
        };
        let hinted = if s.lost_records_hinted > 0 {
            format!(
                " ({} of them only by the header's unauthenticated hint)",
                s.lost_records_hinted
            )
        } else {
            String::new()
        };
        self.line(&format!(
            "chain: {range}: {} blocks, {} sealed, {} verified; {} records ({} unsealed, {} torn skipped), {} gap records, {} records lost{hinted}",
            s.blocks, s.sealed_blocks, s.verified_blocks, s.records, s.unsealed_records, s.torn_records, s.gap_records, s.lost_records
        ));
        self.line(&format!(
            "result: {verdict}: {} errors, {} warnings",
            s.errors, s.warnings
        ));
    }
}

impl Visitor for Printer<'_> {
    fn block(&mut self, b: &BlockView<'_>, auth: Auth) {
        if !self.records || self.stats.is_some() || self.filter != RecordFilter::default() {
            return;
        }
        let state = if auth == Auth::Unsealed {
            "open"
        } else {
            "sealed"
        };
        let line = match self.format {
            Format::Text => format!(
                "-- block {} (slot {}, offset {:#x}): {state}, {}",
                b.seq(),
                b.slot,
                b.offset,
                auth.name()
            ),
            Format::Json => format!(
                r#"{{"type":"block","block":{},"slot":{},"offset":{},"state":"{state}","auth":"{}"}}"#,
                b.seq(),
                b.slot,
                b.offset,
                auth.name().to_lowercase()
            ),
        };
        self.line(&line);
    }

    fn record(&mut self, r: &Record<'_>, event: Result<Event<'_>, DecodeError>, auth: Auth) {
        if !self.records || !self.filter.matches(r, &event) {
            return;
        }
        if let Some(stats) = &mut self.stats {
            stats.add(r, &event);
            return;
        }
        let (text, json) = event_fields(&event, r);
        let line = match self.format {
            Format::Text => format!(
                "#{:<8} t={}ns cpu{} {} {} [{}]",
                r.seq,
                r.timestamp_ns,
                r.cpu,
                kind_name(r.kind),
                text,
                auth.name()
            ),
            Format::Json => format!(
                r#"{{"type":"record","seq":{},"time_ns":{},"cpu":{},"kind":"{}","auth":"{}","offset":{},{}}}"#,
                r.seq,
                r.timestamp_ns,
                r.cpu,
                kind_name(r.kind),
                auth.name().to_lowercase(),
                r.offset,
                json
            ),
        };
        self.line(&line);
    }

    fn finding(&mut self, f: &Finding) {
        let sev = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let line = match self.format {
            Format::Text => format!("{}: {}: {}", sev.to_uppercase(), f.location, f.kind),
            Format::Json => format!(
                r#"{{"type":"finding","severity":"{sev}","code":"{}",{},"message":"{}"}}"#,
                f.kind.code(),
                location_json(&f.location),
                json_str(&f.kind.to_string())
            ),
        };
        self.line(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_quotes_and_controls() {
        assert_eq!(json_str("a\"b\\c\nd\u{1}"), "a\\\"b\\\\c\\nd\\u0001");
    }
}
