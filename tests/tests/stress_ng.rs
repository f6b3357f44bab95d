//! Issue 12's stress-ng run: Debian's `stress-ng` (dynamically linked,
//! forking one worker per stressor) runs each stressor of [`STRESSORS`]
//! for two seconds with `--verify` (`mmap` and `qsort` on smaller sizes than
//! their defaults, whose single operation can take longer than two seconds
//! under TCG), one after another from a busybox `sh`
//! loop in one boot, in Cloister and natively. Every stressor must report
//! bogo-ops and nothing may fail or err, as natively. The throughputs are
//! not compared (TCG against the host CPU); the table in docs/TESTING.md
//! comes from the same command with longer runs.
//!
//! The `fork` and `clone` stressors try to drop capabilities with
//! `capset`, which Cloister refuses (`EPERM`: it enforces no capability,
//! so it cannot honour dropping one); stress-ng logs that as a failure and
//! goes on. That one line is tolerated in Cloister (the stressors still
//! must run and exit 0); any other failure line fails the test.
//!
//! Left out, with the reason: `exec` (stress-ng refuses to run it as
//! root, in both), `tree` (no bogo-op completes in a short run, natively
//! either). Needs `stress-ng` and `busybox-static`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tools::run::options::FileMapping;
use tools::run::{RunOptions, run};
use vm_tests::require;

const BUSYBOX: &str = "/bin/busybox";
const STRESS_NG: &str = "/usr/bin/stress-ng";

/// The stressors run.
const STRESSORS: &[&str] = &[
    "cpu", "matrix", "hash", "memcpy", "vm", "malloc", "pipe", "eventfd", "poll", "mmap", "switch",
    "qsort", "str", "crypt", "zlib", "fork", "sigchld", "clone", "epoll", "futex",
];

/// The loop `sh -c` runs.
fn script() -> String {
    format!(
        "for s in {}; do {STRESS_NG} --$s 1 --timeout 2s --verify --metrics-brief \
         --mmap-bytes 16M --qsort-size 16384 2>&1; \
         echo \"exit $s $?\"; done",
        STRESSORS.join(" ")
    )
}

/// Bogo-ops per stressor from `stress-ng: metrc: [pid] NAME OPS …` lines,
/// and every line that reports a failure or an error.
fn read(output: &str, tolerate_capset: bool) -> (Vec<(String, u64)>, Vec<String>) {
    let mut ops = Vec::new();
    let mut bad = Vec::new();
    for line in output.lines() {
        let capset =
            line.contains(": capset on pid ") && line.ends_with("(Operation not permitted)");
        if (line.contains(" fail: ") || line.contains(" error: ")) && !(tolerate_capset && capset) {
            bad.push(line.to_string());
        }
        if let Some(s) = line.strip_prefix("exit ")
            && !s.ends_with(" 0")
        {
            bad.push(line.to_string());
        }
        let Some(rest) = line.split("] ").nth(1).filter(|_| line.contains("metrc:")) else {
            continue;
        };
        let mut words = rest.split_whitespace();
        if let (Some(name), Some(n)) = (words.next(), words.next())
            && STRESSORS.contains(&name)
            && let Ok(n) = n.parse::<u64>()
        {
            ops.push((name.to_string(), n));
        }
    }
    (ops, bad)
}

fn check(side: &str, output: &str, tolerate_capset: bool) {
    let (ops, bad) = read(output, tolerate_capset);
    assert!(bad.is_empty(), "{side}: failures {bad:#?}\n{output}");
    for s in STRESSORS {
        let n = ops.iter().find(|(name, _)| name == s).map(|(_, n)| *n);
        assert!(
            n.is_some_and(|n| n > 0),
            "{side}: {s} reported {n:?} bogo-ops\n{output}"
        );
    }
}

#[test]
fn stress_ng_stressors_run_and_verify_as_natively() {
    require(BUSYBOX, "busybox-static");
    require(STRESS_NG, "stress-ng");
    let script = script();
    let (native, _) = vm_tests::native(&[BUSYBOX, "sh", "-c", &script]);
    check("native", &String::from_utf8_lossy(&native), false);

    let args: Vec<OsString> = ["sh", "-c", &script].iter().map(OsString::from).collect();
    let mut opts = RunOptions::new(BUSYBOX, &args);
    opts.capture = true;
    opts.memory_mib = 1024;
    opts.timeout = Some(Duration::from_secs(900));
    opts.files = [STRESS_NG, "/lib64/ld-linux-x86-64.so.2"]
        .iter()
        .map(|p| FileMapping {
            host: PathBuf::from(p),
            guest: Some(Path::new(p).to_path_buf()),
        })
        .collect();
    let r = run(&opts).expect("cloister run");
    assert!(r.diagnosis.is_none(), "no exit status: {:?}", r.diagnosis);
    let output = String::from_utf8_lossy(&r.output).into_owned();
    check("Cloister", &output, true);
    assert_eq!(r.exit_code(), 0, "{output}");
}
