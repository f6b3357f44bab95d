//! The results side of `cloister bench compat`: parsing what
//! `compat_runner.py` prints (`@@compat OUTCOME SPAWNED TEST-ID` per test,
//! `@@compat-end STATUS` at the end), counting a module's run, comparing a
//! native run with a Cloister run, and the Markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passed (an expected failure counts: unittest calls it OK).
    Pass,
    /// Skipped (`skipTest`, a missing resource or module).
    Skip,
    /// Failed, errored, unexpectedly succeeded or had a failing subtest.
    Fail,
}

impl Outcome {
    fn parse(word: &str) -> Option<Self> {
        match word {
            "pass" | "xfail" => Some(Self::Pass),
            "skip" => Some(Self::Skip),
            "fail" => Some(Self::Fail),
            _ => None,
        }
    }
}

/// One module's run as the runner reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleRun {
    /// Each test's outcome, by test id (a test reported twice — a
    /// class-level error after its tests — keeps the worse outcome).
    pub tests: BTreeMap<String, Outcome>,
    /// Tests that tried to start a process.
    pub spawned: Vec<String>,
    /// regrtest's exit status, if the run got to the end.
    pub status: Option<i32>,
}

impl ModuleRun {
    /// Parses the runner's output (other lines are ignored).
    pub fn parse(output: &str) -> Self {
        let mut run = Self::default();
        for line in output.lines() {
            if let Some(rest) = line.strip_prefix("@@compat-end ") {
                run.status = rest.trim().parse().ok();
                continue;
            }
            let Some(rest) = line.strip_prefix("@@compat ") else {
                continue;
            };
            let mut words = rest.splitn(3, ' ');
            let (Some(outcome), Some(spawned), Some(id)) = (
                words.next().and_then(Outcome::parse),
                words.next(),
                words.next(),
            ) else {
                continue;
            };
            let id = id.trim().to_string();
            if spawned == "1" {
                run.spawned.push(id.clone());
            }
            let slot = run.tests.entry(id).or_insert(outcome);
            if outcome == Outcome::Fail {
                *slot = Outcome::Fail;
            }
        }
        run
    }

    /// Whether the run reached its end (no timeout, no crash).
    pub fn finished(&self) -> bool {
        self.status.is_some()
    }

    /// `(passed, failed, skipped)`.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for o in self.tests.values() {
            match o {
                Outcome::Pass => c.passed += 1,
                Outcome::Fail => c.failed += 1,
                Outcome::Skip => c.skipped += 1,
            }
        }
        c
    }

    /// The tests that passed.
    pub fn passed(&self) -> impl Iterator<Item = &str> {
        self.tests
            .iter()
            .filter(|(_, o)| **o == Outcome::Pass)
            .map(|(id, _)| id.as_str())
    }
}

/// Test counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Passed (with expected failures).
    pub passed: usize,
    /// Failed or errored.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
}

/// A module natively and in Cloister.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The module (`test_os`).
    pub module: String,
    /// The native run.
    pub native: ModuleRun,
    /// The Cloister run.
    pub cloister: ModuleRun,
}

impl Comparison {
    /// Natively passing tests that pass in Cloister too.
    pub fn kept(&self) -> usize {
        self.native
            .passed()
            .filter(|id| self.cloister.tests.get(*id) == Some(&Outcome::Pass))
            .count()
    }

    /// Natively passing tests that do not pass in Cloister (failed,
    /// skipped, or never reached), with what happened to each.
    pub fn lost(&self) -> Vec<(String, &'static str)> {
        self.native
            .passed()
            .filter_map(|id| {
                let what = match self.cloister.tests.get(id) {
                    Some(Outcome::Pass) => return None,
                    Some(Outcome::Fail) => "fails",
                    Some(Outcome::Skip) => "skipped",
                    None => "not run",
                };
                Some((id.to_string(), what))
            })
            .collect()
    }
}

/// `kept / total` as a percentage with one decimal, or `–` for none.
pub fn percent(kept: usize, total: usize) -> String {
    if total == 0 {
        return "–".into();
    }
    format!("{:.1} %", kept as f64 * 100.0 / total as f64)
}

fn counts_cell(c: Counts) -> String {
    format!("{} / {} / {}", c.passed, c.failed, c.skipped)
}

/// The Markdown table: per module the native and Cloister counts, the
/// natively passing tests that pass in Cloister, and a total line.
pub fn table(rows: &[Comparison]) -> String {
    let mut out = String::from(
        "| module | native pass / fail / skip | Cloister pass / fail / skip | natively passing, passing in Cloister |\n\
         |--------|---------------------------|-----------------------------|--------------------------------------|\n",
    );
    let (mut kept_all, mut native_all) = (0, 0);
    for row in rows {
        let native_passed = row.native.counts().passed;
        let kept = row.kept();
        kept_all += kept;
        native_all += native_passed;
        let mut note = String::new();
        if !row.cloister.finished() {
            note.push_str(" (stopped: timeout or crash)");
        }
        if !row.native.finished() {
            // Only the tests reached natively are compared.
            note.push_str(" (native run stopped: timeout)");
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {kept} of {native_passed} ({}){note} |",
            row.module,
            counts_cell(row.native.counts()),
            counts_cell(row.cloister.counts()),
            percent(kept, native_passed),
        );
    }
    let _ = writeln!(
        out,
        "| **all {} modules** | | | **{kept_all} of {native_all} ({})** |",
        rows.len(),
        percent(kept_all, native_all)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NATIVE: &str = "noise\n\
        @@compat pass 0 test.test_x.A.test_one\n\
        @@compat xfail 0 test.test_x.A.test_two\n\
        @@compat skip 0 test.test_x.A.test_three\n\
        @@compat pass 1 test.test_x.A.test_spawn\n\
        more noise @@compat fail 0 not.at.line.start\n\
        @@compat-end 0\n";

    #[test]
    fn parses_outcomes_spawns_and_the_end() {
        let run = ModuleRun::parse(NATIVE);
        assert_eq!(
            run.counts(),
            Counts {
                passed: 3,
                failed: 0,
                skipped: 1
            }
        );
        assert_eq!(run.spawned, ["test.test_x.A.test_spawn"]);
        assert_eq!(run.status, Some(0));
        assert!(run.finished());
        // A stopped run: what was reported counts, no status.
        let cut = ModuleRun::parse("@@compat pass 0 a\n@@compat fail 0 b\n@@compat pass 0 b\n");
        assert!(!cut.finished());
        assert_eq!(cut.tests["b"], Outcome::Fail, "the worse outcome stays");
        assert_eq!(cut.counts().passed, 1);
    }

    #[test]
    fn compares_and_tabulates() {
        let cloister = "@@compat pass 0 test.test_x.A.test_one\n\
            @@compat skip 0 test.test_x.A.test_two\n\
            @@compat skip 0 test.test_x.A.test_three\n";
        let row = Comparison {
            module: "test_x".into(),
            native: ModuleRun::parse(NATIVE),
            cloister: ModuleRun::parse(cloister),
        };
        assert_eq!(row.kept(), 1);
        assert_eq!(
            row.lost(),
            [
                ("test.test_x.A.test_spawn".to_string(), "not run"),
                ("test.test_x.A.test_two".to_string(), "skipped"),
            ]
        );
        let t = table(core::slice::from_ref(&row));
        let natively_cut = Comparison {
            module: "test_y".into(),
            native: ModuleRun::parse("@@compat pass 0 a\n"),
            cloister: ModuleRun::parse("@@compat pass 0 a\n@@compat-end 0\n"),
        };
        assert!(
            table(&[natively_cut]).contains("| 1 of 1 (100.0 %) (native run stopped: timeout) |")
        );
        assert!(
            t.contains(
                "| test_x | 3 / 0 / 1 | 1 / 0 / 2 | 1 of 3 (33.3 %) (stopped: timeout or crash) |"
            ),
            "{t}"
        );
        assert!(t.contains("**1 of 3 (33.3 %)**"), "{t}");
        assert_eq!(percent(0, 0), "–");
    }
}
