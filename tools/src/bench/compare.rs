//! Samples of named metrics from two guests, their summaries, the
//! Cloister/Linux ratio of medians, and the Markdown table.
//!
//! A ratio needs at least [`MIN_RUNS_FOR_RATIO`] runs on each side: one run
//! on a shared, noisy machine says nothing, and the table says so instead
//! of printing a number.

use std::fmt::Write as _;

use anyhow::{Result, bail};

/// Fewer runs than this on either side and there is no ratio.
pub const MIN_RUNS_FOR_RATIO: usize = 2;

/// Whether smaller or larger values are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Times, latencies.
    Lower,
    /// Throughputs.
    Higher,
}

/// A metric's identity and unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    /// The figure it belongs to (`boot`, `syscall`, `openssl`, `files`).
    pub figure: &'static str,
    /// What it measures, as the table shows it.
    pub name: String,
    /// Its unit (`ms`, `ns/op`, `kB/s`).
    pub unit: &'static str,
    /// Which direction is better.
    pub better: Better,
}

/// Median, minimum and maximum of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The median (mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many values.
    pub count: usize,
}

/// The summary of `values`, or `None` if there are none.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = match n {
        0 => return None,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    };
    Some(Summary {
        median,
        min: v[0],
        max: v[n - 1],
        count: n,
    })
}

/// Cloister's median over Linux's, refused with fewer than
/// [`MIN_RUNS_FOR_RATIO`] runs on either side or a zero Linux median.
pub fn ratio(cloister: &[f64], linux: &[f64]) -> Result<f64> {
    if cloister.len() < MIN_RUNS_FOR_RATIO || linux.len() < MIN_RUNS_FOR_RATIO {
        bail!(
            "no ratio from {} Cloister and {} Linux runs: needs {MIN_RUNS_FOR_RATIO} of each",
            cloister.len(),
            linux.len()
        );
    }
    let (c, l) = (summarize(cloister), summarize(linux));
    match (c, l) {
        (Some(c), Some(l)) if l.median != 0.0 => Ok(c.median / l.median),
        _ => bail!("no ratio: the Linux median is zero"),
    }
}

/// Every metric's samples from both guests, in the order first seen.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    rows: Vec<Row>,
    /// Why a guest has no values for a figure (`figure`, `guest`, reason).
    pub failures: Vec<(String, String, String)>,
    /// Figures a guest was not asked to run yet (`figure`, `guest`, reason).
    pub pending: Vec<(String, String, String)>,
}

/// One metric's values from each side.
#[derive(Debug, Clone)]
struct Row {
    metric: Metric,
    linux: Vec<f64>,
    cloister: Vec<f64>,
    audited: Vec<f64>,
    against: Vec<f64>,
}

/// Which side of the comparison a value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The Linux guest.
    Linux,
    /// Cloister.
    Cloister,
    /// Cloister with the audit log on (`--audit`).
    Audited,
    /// Another Cloister build (`--against`).
    Against,
}

impl Samples {
    /// Records one value.
    pub fn add(&mut self, side: Side, metric: Metric, value: f64) {
        let i = match self.rows.iter().position(|r| r.metric == metric) {
            Some(i) => i,
            None => {
                self.rows.push(Row {
                    metric,
                    linux: Vec::new(),
                    cloister: Vec::new(),
                    audited: Vec::new(),
                    against: Vec::new(),
                });
                self.rows.len() - 1
            }
        };
        let row = &mut self.rows[i];
        match side {
            Side::Linux => row.linux.push(value),
            Side::Cloister => row.cloister.push(value),
            Side::Audited => row.audited.push(value),
            Side::Against => row.against.push(value),
        }
    }

    /// Records that `guest` produced nothing for `figure`, once per pair.
    pub fn fail(&mut self, figure: &str, guest: &str, reason: String) {
        if !self
            .failures
            .iter()
            .any(|(f, g, _)| f == figure && g == guest)
        {
            self.failures
                .push((figure.to_string(), guest.to_string(), reason));
        }
    }

    /// Records that `guest` was not run for `figure`, once per pair.
    pub fn pend(&mut self, figure: &str, guest: &str, reason: String) {
        if !self
            .pending
            .iter()
            .any(|(f, g, _)| f == figure && g == guest)
        {
            self.pending
                .push((figure.to_string(), guest.to_string(), reason));
        }
    }

    /// The Linux and Cloister values of `metric` (for tests and reports).
    pub fn values(&self, name: &str) -> Option<(&[f64], &[f64])> {
        self.rows
            .iter()
            .find(|r| r.metric.name == name)
            .map(|r| (r.linux.as_slice(), r.cloister.as_slice()))
    }

    /// The audited Cloister values of `metric`.
    pub fn audited_values(&self, name: &str) -> Option<&[f64]> {
        self.rows
            .iter()
            .find(|r| r.metric.name == name)
            .map(|r| r.audited.as_slice())
    }

    /// The Markdown table: one row per metric.
    pub fn table(&self) -> String {
        let audit = self.rows.iter().any(|r| !r.audited.is_empty());
        let against = self.rows.iter().any(|r| !r.against.is_empty());
        let mut t = String::from(
            "| figure | metric | unit (better) | Linux median | Linux min–max | Cloister median | Cloister min–max | Cloister/Linux |",
        );
        let mut columns = 8;
        if audit {
            t.push_str(" Cloister+audit median | Cloister+audit min–max | audit cost |");
            columns += 3;
        }
        if against {
            t.push_str(" Cloister-B median | Cloister-B min–max | Cloister-B/Linux | Cloister/Cloister-B |");
            columns += 4;
        }
        t.push_str("\n|");
        t.push_str(&"---|".repeat(columns));
        t.push('\n');
        for row in &self.rows {
            let (m, linux, cloister) = (&row.metric, &row.linux, &row.cloister);
            let better = match m.better {
                Better::Lower => "lower",
                Better::Higher => "higher",
            };
            let (lm, lr) = cells(linux);
            let (cm, cr) = if cloister.is_empty() {
                let listed = |l: &[(String, String, String)]| {
                    l.iter().any(|(f, g, _)| f == m.figure && g == "Cloister")
                };
                let why = if listed(&self.failures) {
                    "failed"
                } else if listed(&self.pending) {
                    "pending"
                } else {
                    "–"
                };
                (why.to_string(), "–".to_string())
            } else {
                cells(cloister)
            };
            let r = match ratio(cloister, linux) {
                Ok(r) => format!("{r:.2}"),
                Err(_) if cloister.is_empty() => "–".into(),
                Err(_) => format!("n/a (runs {}/{})", cloister.len(), linux.len()),
            };
            let _ = write!(
                t,
                "| {} | {} | {} ({better}) | {lm} | {lr} | {cm} | {cr} | {r} |",
                m.figure, m.name, m.unit
            );
            if audit {
                let (am, ar) = cells(&row.audited);
                let cost = match audit_cost(m.better, cloister, &row.audited) {
                    Ok(c) => format!("{:+.1} %", c * 100.0),
                    Err(_) => "–".into(),
                };
                let _ = write!(t, " {am} | {ar} | {cost} |");
            }
            if against {
                let (bm, br) = cells(&row.against);
                let show = |r: Result<f64>| r.map_or("–".to_string(), |r| format!("{r:.2}"));
                let _ = write!(
                    t,
                    " {bm} | {br} | {} | {} |",
                    show(ratio(&row.against, linux)),
                    show(ratio(cloister, &row.against))
                );
            }
            t.push('\n');
        }
        t
    }
}

/// A run below this share of its median (higher-is-better; above the
/// inverse for lower-is-better) is marked in [`Samples::rounds_table`]:
/// issue 16's "every round within 0.8× of its median".
pub const SLOW_ROUND: f64 = 0.8;

impl Samples {
    /// Every run's value ÷ its side's median, in the order the runs came
    /// (round 1 first; a failed run leaves no entry, so the runs after it
    /// move up): a spell in which the host ran slowly shows as the same
    /// round low for every guest. Slow runs ([`SLOW_ROUND`]) are in bold.
    pub fn rounds_table(&self) -> String {
        let sides: [(&str, SideValues); 4] = [
            ("Linux", |r| &r.linux),
            ("Cloister", |r| &r.cloister),
            ("Cloister+audit", |r| &r.audited),
            ("Cloister-B", |r| &r.against),
        ];
        let present: Vec<_> = sides
            .iter()
            .filter(|(_, get)| self.rows.iter().any(|r| !get(r).is_empty()))
            .collect();
        let mut t = String::from("| figure | metric |");
        for (name, _) in &present {
            let _ = write!(t, " {name}, each run ÷ median |");
        }
        t.push_str("\n|");
        t.push_str(&"---|".repeat(2 + present.len()));
        t.push('\n');
        for row in &self.rows {
            let _ = write!(t, "| {} | {} |", row.metric.figure, row.metric.name);
            for (_, get) in &present {
                let _ = write!(t, " {} |", run_ratios(get(row), row.metric.better));
            }
            t.push('\n');
        }
        t
    }
}

/// Picks one side's values out of a [`Row`].
type SideValues = fn(&Row) -> &Vec<f64>;

/// `values` ÷ their median, two decimals each, slow ones in bold; `–`
/// for none.
fn run_ratios(values: &[f64], better: Better) -> String {
    let Some(median) = summarize(values).map(|s| s.median).filter(|&m| m != 0.0) else {
        return "–".into();
    };
    let shown: Vec<String> = values
        .iter()
        .map(|v| {
            let r = v / median;
            let slow = match better {
                Better::Higher => r < SLOW_ROUND,
                Better::Lower => r > 1.0 / SLOW_ROUND,
            };
            if slow {
                format!("**{r:.2}**")
            } else {
                format!("{r:.2}")
            }
        })
        .collect();
    shown.join(" ")
}

/// What the audit log costs on a metric, from the medians: the share of
/// throughput lost (higher-is-better) or of time added (lower-is-better);
/// negative when the audited runs were faster (noise).
pub fn audit_cost(better: Better, plain: &[f64], audited: &[f64]) -> Result<f64> {
    let (Some(p), Some(a)) = (summarize(plain), summarize(audited)) else {
        bail!("no audit cost: a side has no values");
    };
    if p.median == 0.0 || a.median == 0.0 {
        bail!("no audit cost: a median is zero");
    }
    Ok(match better {
        Better::Higher => 1.0 - a.median / p.median,
        Better::Lower => a.median / p.median - 1.0,
    })
}

/// A value with three significant figures or at least one decimal.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The median and `min–max (n=N)` cells of a sample.
fn cells(values: &[f64]) -> (String, String) {
    match summarize(values) {
        Some(s) => (
            number(s.median),
            format!("{}–{} (n={})", number(s.min), number(s.max), s.count),
        ),
        None => ("–".into(), "–".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str) -> Metric {
        Metric {
            figure: "boot",
            name: name.into(),
            unit: "ms",
            better: Better::Lower,
        }
    }

    #[test]
    fn another_build_gets_its_own_columns_and_the_ratio_between_builds() {
        let mut s = Samples::default();
        for v in [1.0, 1.1] {
            s.add(Side::Linux, metric("exit"), v * 300.0);
            s.add(Side::Cloister, metric("exit"), v * 100.0);
        }
        assert!(!s.table().contains("Cloister-B"), "no second build");
        s.add(Side::Against, metric("exit"), 200.0);
        s.add(Side::Against, metric("exit"), 220.0);
        let t = s.table();
        let header = t.lines().next().unwrap();
        assert!(header.ends_with(
            "| Cloister-B median | Cloister-B min–max | Cloister-B/Linux | Cloister/Cloister-B |"
        ));
        assert_eq!(t.lines().nth(1).unwrap().matches("---|").count(), 12);
        // Medians: Cloister 105, Cloister-B 210, Linux 315.
        let row = t.lines().nth(2).unwrap();
        assert!(
            row.ends_with("| 210 | 200–220 (n=2) | 0.67 | 0.50 |"),
            "{row}"
        );
    }

    #[test]
    fn each_run_is_shown_against_its_median_with_slow_rounds_in_bold() {
        let mut s = Samples::default();
        let rate = |name: &str| Metric {
            figure: "redis",
            name: name.into(),
            unit: "req/s",
            better: Better::Higher,
        };
        // Round 2 slow for both guests; Cloister-B and audit absent.
        for (l, c) in [(100.0, 200.0), (70.0, 150.0), (100.0, 200.0)] {
            s.add(Side::Linux, rate("GET"), l);
            s.add(Side::Cloister, rate("GET"), c);
        }
        for v in [10.0, 13.0, 10.0] {
            s.add(Side::Linux, metric("exit"), v);
        }
        let t = s.rounds_table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "| figure | metric | Linux, each run ÷ median | Cloister, each run ÷ median |"
        );
        assert_eq!(lines[1], "|---|---|---|---|");
        assert_eq!(
            lines[2],
            "| redis | GET | 1.00 **0.70** 1.00 | 1.00 **0.75** 1.00 |"
        );
        // Lower is better: 1.3 × the median is slow, and no Cloister runs.
        assert_eq!(lines[3], "| boot | exit | 1.00 **1.30** 1.00 | – |");
    }

    #[test]
    fn the_audit_cost_is_the_loss_against_the_plain_runs() {
        let c = audit_cost(Better::Higher, &[100.0, 100.0], &[97.0, 95.0]).unwrap();
        assert!((c - 0.04).abs() < 1e-9, "{c}");
        let c = audit_cost(Better::Lower, &[200.0, 200.0], &[210.0, 210.0]).unwrap();
        assert!((c - 0.05).abs() < 1e-9, "{c}");
        assert!(audit_cost(Better::Lower, &[], &[1.0]).is_err());
        let mut s = Samples::default();
        for v in [1.0, 1.0] {
            s.add(Side::Linux, metric("exit"), v * 300.0);
            s.add(Side::Cloister, metric("exit"), v * 100.0);
        }
        assert!(!s.table().contains("audit cost"), "no audited values");
        s.add(Side::Audited, metric("exit"), 110.0);
        let t = s.table();
        assert!(t.contains("audit cost"), "{t}");
        assert!(t.contains("| +10.0 % |"), "{t}");
        assert_eq!(s.audited_values("exit"), Some(&[110.0][..]));
    }

    #[test]
    fn summaries_of_odd_and_even_samples() {
        let s = summarize(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.count), (3.0, 1.0, 5.0, 3));
        assert_eq!(summarize(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn a_ratio_needs_two_runs_on_each_side() {
        assert_eq!(ratio(&[2.0, 4.0], &[1.0, 3.0]).unwrap(), 1.5);
        let err = ratio(&[2.0], &[1.0, 3.0]).unwrap_err().to_string();
        assert!(
            err.contains("1 Cloister") && err.contains("needs 2"),
            "{err}"
        );
        assert!(ratio(&[2.0, 2.0], &[5.0]).is_err());
        assert!(ratio(&[2.0, 2.0], &[0.0, 0.0]).is_err());
    }

    #[test]
    fn the_table_shows_pending_failed_and_refused_ratios() {
        let mut s = Samples::default();
        for v in [100.0, 120.0, 110.0] {
            s.add(Side::Linux, metric("ready"), v);
        }
        s.add(Side::Cloister, metric("ready"), 50.0);
        s.add(Side::Linux, metric("exit"), 200.0);
        s.add(Side::Linux, metric("exit"), 220.0);
        s.add(Side::Cloister, metric("exit"), 100.0);
        s.add(Side::Cloister, metric("exit"), 120.0);
        s.add(Side::Linux, metric("other"), 1.0);
        let t = s.table();
        let rows: Vec<&str> = t.lines().collect();
        assert_eq!(rows.len(), 5, "{t}");
        assert!(
            rows[2].contains("| 110 | 100–120 (n=3) | 50.0 | 50.0–50.0 (n=1) | n/a (runs 1/3) |"),
            "{t}"
        );
        assert!(rows[3].ends_with("| 0.52 |"), "{t}");
        assert!(rows[4].contains("| – | – | – |"), "{t}");
        s.pend("boot", "Cloister", "not yet".into());
        assert!(
            s.table()
                .lines()
                .nth(4)
                .unwrap()
                .contains("| pending | – | – |")
        );
        s.fail("boot", "Cloister", "no kernel".into());
        assert!(s.table().lines().nth(4).unwrap().contains("| failed |"));
        assert_eq!(s.values("exit").unwrap().1, &[100.0, 120.0]);
    }

    #[test]
    fn numbers_keep_three_significant_figures() {
        assert_eq!(number(1234.56), "1235");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(1.2345), "1.23");
    }
}
