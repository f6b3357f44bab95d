//! `cloister bench compat`: CPython's own regression suite (Debian's
//! `libpython3.11-testsuite`) as a compatibility figure.
//!
//! Each module of the selection runs twice, as its own process with its own
//! time limit (so a hang costs one module): natively, and in Cloister
//! (`cloister run` of `/usr/bin/python3`, one boot per module). Both runs
//! go through `compat_runner.py`, which drives regrtest in-process as
//! `python3 -m test MODULE` does and reports every test's outcome
//! ([`super::compat_results`]). The figure is the share of the tests that
//! pass natively that also pass in Cloister; the per-module table and the
//! list of the lost tests go to `target/cloister-bench/compat/`, with each
//! run's whole output for diagnosis.
//!
//! Both sides get the same environment ([`ENV`]). The guest gets the
//! standard library with its tests, the shared libraries its extension
//! modules link (found with `ldd`), the C.UTF-8 locale, time zones and the
//! network files of `/etc` ([`HOST_FILES`]).
//!
//! The default selection is the checked-in list `compat_modules.txt`
//! ([`super::compat_selection`]), hand-picked from what [`survey`] keeps
//! by the rule written there (`cloister bench compat --survey`).

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::compat_results::{Comparison, ModuleRun, percent, table};
use crate::run::options::FileMapping;
use crate::run::{RunOptions, run};

/// The interpreter, natively and in the guest.
pub const PYTHON: &str = "/usr/bin/python3";
/// The standard library and its `test` package.
pub const STDLIB: &str = "/usr/lib/python3.11";
/// A file only the test-suite package installs.
const SUITE_MARKER: &str = "/usr/lib/python3.11/test/test_os.py";
/// The Debian package with the tests.
pub const SUITE_PACKAGE: &str = "libpython3.11-testsuite";
/// The runner script (written next to the logs, and into the guest).
const RUNNER: &str = include_str!("compat_runner.py");
/// Where the guest finds the runner.
const GUEST_RUNNER: &str = "/cloister-compat/runner.py";
/// The environment of both runs (nothing else from the host's).
pub const ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/"),
    ("LANG", "C.UTF-8"),
];
/// Host files both runs can see (the native run sees all of the host).
pub const HOST_FILES: &[&str] = &[
    STDLIB,
    "/usr/lib/locale/C.utf8",
    "/usr/share/zoneinfo",
    "/etc/hosts",
    "/etc/services",
    "/etc/protocols",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/mime.types",
];

/// Programs the tests start besides Python (`/bin/sh` for `shell=True`
/// and `os.system`, and the commands the selected modules name: `id -G`
/// in test_posix, `tar`, `zip` and `unzip` in test_shutil); the guest gets
/// those the host has, with their libraries (a test that finds one missing
/// skips natively too).
pub const PROGRAMS: &[&str] = &[
    "/bin/sh",
    "/usr/bin/true",
    "/usr/bin/false",
    "/usr/bin/echo",
    "/usr/bin/cat",
    "/usr/bin/ls",
    "/usr/bin/env",
    "/usr/bin/sleep",
    "/usr/bin/stty",
    "/usr/bin/bash",
    "/usr/bin/id",
    "/usr/bin/tar",
    "/usr/bin/zip",
    "/usr/bin/unzip",
];

pub use super::compat_selection::selection;

/// A module slower than this natively is left out by [`survey`].
pub const SURVEY_LIMIT: Duration = Duration::from_secs(10);

/// What a bench run needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Modules to run (default: [`selection`]).
    pub modules: Vec<String>,
    /// Time limit of a native run.
    pub native_timeout: Duration,
    /// Time limit of a Cloister run (one boot).
    pub cloister_timeout: Duration,
    /// Guest memory.
    pub memory_mib: u32,
    /// Where logs and the table go.
    pub out_dir: PathBuf,
    /// The kernel to boot.
    pub kernel: PathBuf,
}

/// Ensures the test suite is installed: as root with apt-get (and
/// `CLOISTER_NO_INSTALL` unset) it installs [`SUITE_PACKAGE`], otherwise
/// it says how.
pub fn ensure_testsuite() -> Result<()> {
    if Path::new(SUITE_MARKER).exists() {
        return Ok(());
    }
    let hint = format!("install it with `sudo apt-get install {SUITE_PACKAGE}`");
    if std::env::var_os("CLOISTER_NO_INSTALL").is_some()
        || !super::host_deps::is_root()
        || !Path::new("/usr/bin/apt-get").exists()
    {
        bail!("the compatibility bench needs CPython's tests ({SUITE_PACKAGE}): {hint}");
    }
    eprintln!("bench: installing {SUITE_PACKAGE} (set CLOISTER_NO_INSTALL=1 to prevent this)");
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {SUITE_PACKAGE} >/dev/null"
        ))
        .status()
        .is_ok_and(|s| s.success());
    if !ok || !Path::new(SUITE_MARKER).exists() {
        bail!("installing {SUITE_PACKAGE} failed: {hint}");
    }
    Ok(())
}

/// Every module regrtest knows (`python3 -m test --list-tests`).
pub fn all_modules() -> Result<Vec<String>> {
    let out = Command::new(PYTHON)
        .args(["-m", "test", "--list-tests"])
        .env_clear()
        .envs(ENV.iter().copied())
        .output()
        .context("cannot run python3 -m test --list-tests")?;
    if !out.status.success() {
        bail!("python3 -m test --list-tests failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("test"))
        .map(String::from)
        .collect())
}

/// Writes the runner script into `dir`; returns its path.
pub fn write_runner(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("runner.py");
    std::fs::write(&path, RUNNER).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Runs `module` natively with `runner`, killing its process group after
/// `timeout`; returns the parsed run, the whole output and the time taken.
pub fn run_native(
    runner: &Path,
    module: &str,
    timeout: Duration,
) -> Result<(ModuleRun, String, Duration)> {
    use std::os::unix::process::CommandExt as _;
    let start = Instant::now();
    let mut child = Command::new(PYTHON)
        .arg(runner)
        .arg(module)
        .env_clear()
        .envs(ENV.iter().copied())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .context("cannot start python3")?;
    let mut stdout = child.stdout.take().context("no stdout pipe")?;
    let mut stderr = child.stderr.take().context("no stderr pipe")?;
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if start.elapsed() > timeout {
            // The whole group: a test may have started helpers.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = start.elapsed();
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let text = String::from_utf8_lossy(&out).into_owned();
    let run = ModuleRun::parse(&text);
    Ok((
        run,
        format!("{text}\n--- stderr ---\n{}", String::from_utf8_lossy(&err)),
        took,
    ))
}

/// The shared libraries the extension modules of the standard library
/// and [`PROGRAMS`] link, as `ldd` resolves them.
fn extension_libraries() -> Vec<PathBuf> {
    let dynload = std::fs::read_dir(Path::new(STDLIB).join("lib-dynload"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path());
    let programs = PROGRAMS.iter().map(PathBuf::from);
    let mut libs = BTreeSet::new();
    for object in dynload.chain(programs) {
        let Ok(out) = Command::new("ldd").arg(&object).output() else {
            continue;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((_, rest)) = line.split_once("=> ")
                && let Some(path) = rest.split_whitespace().next()
                && path.starts_with('/')
            {
                libs.insert(PathBuf::from(path));
            }
        }
    }
    libs.into_iter().collect()
}

/// The files of the guest image besides Python and its libraries.
pub fn guest_files(runner: &Path) -> Vec<FileMapping> {
    let mut files: Vec<FileMapping> = HOST_FILES
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .chain(PROGRAMS.iter().map(PathBuf::from).filter(|p| p.exists()))
        .chain(extension_libraries())
        .map(|host| FileMapping { host, guest: None })
        .collect();
    files.push(FileMapping {
        host: runner.to_path_buf(),
        guest: Some(PathBuf::from(GUEST_RUNNER)),
    });
    files
}

/// Runs `module` in Cloister: one boot of `python3 runner.py MODULE`.
pub fn run_cloister(
    opts: &Options,
    files: &[FileMapping],
    module: &str,
) -> Result<(ModuleRun, String, Duration)> {
    let mut run_opts = RunOptions::new(PYTHON, [GUEST_RUNNER, module]);
    run_opts.files = files.to_vec();
    run_opts.env = ENV
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    run_opts.capture = true;
    run_opts.memory_mib = opts.memory_mib;
    run_opts.timeout = Some(opts.cloister_timeout);
    run_opts.kernel = Some(opts.kernel.clone());
    let r = run(&run_opts)?;
    let stdout = String::from_utf8_lossy(&r.stdout).into_owned();
    let log = format!(
        "{stdout}\n--- stderr ---\n{}\n--- kernel ---\n{}\n--- unsupported ---\n{:?}\n{}",
        String::from_utf8_lossy(&r.stderr),
        r.kernel_lines.join("\n"),
        r.unsupported,
        r.diagnosis.unwrap_or_default()
    );
    Ok((ModuleRun::parse(&stdout), log, r.duration))
}

fn write_log(dir: &Path, name: &str, text: &str) {
    let _ = std::fs::write(dir.join(name), text);
}

/// Runs every module natively and in Cloister; prints the table and the
/// total, and writes `table.md`, `lost.txt` and the logs to `opts.out_dir`.
pub fn run_bench(opts: &Options) -> Result<Vec<Comparison>> {
    let logs = opts.out_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let runner = write_runner(&opts.out_dir)?;
    let files = guest_files(&runner);
    let mut rows = Vec::new();
    let mut lost = String::new();
    for (i, module) in opts.modules.iter().enumerate() {
        let (native, native_log, native_took) = run_native(&runner, module, opts.native_timeout)?;
        write_log(&logs, &format!("{module}.native.log"), &native_log);
        let (cloister, cloister_log, cloister_took) = run_cloister(opts, &files, module)?;
        write_log(&logs, &format!("{module}.cloister.log"), &cloister_log);
        let row = Comparison {
            module: module.clone(),
            native,
            cloister,
        };
        let native_passed = row.native.counts().passed;
        eprintln!(
            "bench: [{}/{}] {module}: {} of {native_passed} natively passing tests pass in Cloister ({:.1} s natively, {:.1} s in Cloister{})",
            i + 1,
            opts.modules.len(),
            row.kept(),
            native_took.as_secs_f64(),
            cloister_took.as_secs_f64(),
            if row.cloister.finished() {
                ""
            } else {
                ", stopped"
            }
        );
        for (id, what) in row.lost() {
            lost.push_str(&format!("{module}\t{what}\t{id}\n"));
        }
        rows.push(row);
    }
    let text = table(&rows);
    write_log(&opts.out_dir, "table.md", &text);
    write_log(&opts.out_dir, "lost.txt", &lost);
    println!("{text}");
    let kept: usize = rows.iter().map(Comparison::kept).sum();
    let total: usize = rows.iter().map(|r| r.native.counts().passed).sum();
    println!(
        "{kept} of {total} natively passing tests pass in Cloister ({}); lost tests in {}",
        percent(kept, total),
        opts.out_dir.join("lost.txt").display()
    );
    Ok(rows)
}

/// Why a module is left out of the selection, or `None` if it is in:
/// it must pass natively (regrtest status 0) with at least one passing
/// test and finish within `limit` (tests that start processes are in:
/// Cloister runs fork, exec and wait).
pub fn exclusion(run: &ModuleRun, took: Duration, limit: Duration) -> Option<&'static str> {
    if !run.finished() {
        Some("does not finish natively")
    } else if run.status != Some(0) {
        Some("fails natively")
    } else if run.counts().passed == 0 {
        Some("no test passes natively (skipped)")
    } else if took > limit {
        Some("slow natively")
    } else {
        None
    }
}

/// The selection rule applied to every module regrtest lists, natively:
/// prints each module's verdict and then the selected list.
pub fn survey(out_dir: &Path, native_timeout: Duration) -> Result<Vec<String>> {
    let runner = write_runner(out_dir)?;
    let mut selected = Vec::new();
    for module in all_modules()? {
        let (run, _, took) = run_native(&runner, &module, native_timeout)?;
        match exclusion(&run, took, SURVEY_LIMIT) {
            Some(why) => eprintln!("survey: {module}: left out: {why}"),
            None => {
                eprintln!(
                    "survey: {module}: selected ({} tests pass, {:.1} s)",
                    run.counts().passed,
                    took.as_secs_f64()
                );
                selected.push(module);
            }
        }
    }
    println!("{}", selected.join("\n"));
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_of_the_selection() {
        let limit = Duration::from_secs(10);
        let quick = Duration::from_secs(1);
        let ok = ModuleRun::parse("@@compat pass 0 a\n@@compat-end 0\n");
        assert_eq!(exclusion(&ok, quick, limit), None);
        assert_eq!(
            exclusion(&ok, Duration::from_secs(11), limit),
            Some("slow natively")
        );
        let spawns = ModuleRun::parse("@@compat pass 1 a\n@@compat-end 0\n");
        assert_eq!(exclusion(&spawns, quick, limit), None);
        let fails = ModuleRun::parse("@@compat fail 0 a\n@@compat-end 2\n");
        assert_eq!(exclusion(&fails, quick, limit), Some("fails natively"));
        let hangs = ModuleRun::parse("@@compat pass 0 a\n");
        assert!(exclusion(&hangs, quick, limit).is_some());
        let skipped = ModuleRun::parse("@@compat skip 0 a\n@@compat-end 0\n");
        assert!(exclusion(&skipped, quick, limit).is_some());
    }

    /// A test module with one test of each kind, for the runner.
    const PROBE: &str = r#"
import os
import unittest


class Probe(unittest.TestCase):
    def test_pass(self):
        pass

    def test_fail(self):
        self.assertEqual(1, 2)

    def test_error(self):
        raise RuntimeError("boom")

    def test_skip(self):
        self.skipTest("not here")

    @unittest.expectedFailure
    def test_xfail(self):
        self.assertEqual(1, 2)

    def test_subtest_fails(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertLess(i, 2)

    def test_spawns(self):
        os.system("true")


class BrokenFixture(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise RuntimeError("fixture")

    def test_never_runs(self):
        pass
"#;

    #[test]
    fn the_runner_reports_each_kind_of_outcome_natively() {
        use super::super::compat_results::Outcome;
        let dir = std::env::temp_dir().join(format!("cloister-compat-{}", std::process::id()));
        let tests = dir.join("tests");
        std::fs::create_dir_all(&tests).unwrap();
        std::fs::write(tests.join("test_cloister_probe.py"), PROBE).unwrap();
        let runner = write_runner(&dir).unwrap();
        // regrtest's --testdir takes the module from there.
        let mut child = Command::new(PYTHON);
        child
            .arg(&runner)
            .arg("test_cloister_probe")
            .arg("--testdir")
            .arg(&tests)
            .env_clear()
            .envs(ENV.iter().copied());
        let out = child.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let run = ModuleRun::parse(&text);
        let of = |t: &str| {
            run.tests
                .get(&format!("test_cloister_probe.Probe.{t}"))
                .copied()
        };
        assert_eq!(of("test_pass"), Some(Outcome::Pass), "{text}");
        assert_eq!(of("test_xfail"), Some(Outcome::Pass));
        assert_eq!(of("test_fail"), Some(Outcome::Fail));
        assert_eq!(of("test_error"), Some(Outcome::Fail));
        assert_eq!(of("test_subtest_fails"), Some(Outcome::Fail));
        assert_eq!(of("test_skip"), Some(Outcome::Skip));
        assert_eq!(of("test_spawns"), Some(Outcome::Pass));
        assert_eq!(run.spawned, ["test_cloister_probe.Probe.test_spawns"]);
        assert_eq!(
            run.tests
                .get("setUpClass (test_cloister_probe.BrokenFixture)"),
            Some(&Outcome::Fail)
        );
        assert_eq!(run.status, Some(2), "regrtest: tests failed");
        assert_eq!(
            exclusion(&run, Duration::ZERO, SURVEY_LIMIT),
            Some("fails natively")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
