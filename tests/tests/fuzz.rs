//! A short run of the in-tree syscall fuzzer (`cloister fuzz` runs it
//! long): four seeds of 25,000 random calls with edge-case arguments; none
//! may bring the kernel down (panic, fatal kernel exception, triple fault,
//! hang).

use tools::fuzz::{FuzzOptions, SeedOutcome, build, run_seed};

#[test]
fn random_syscalls_never_bring_the_kernel_down() {
    let dir = std::env::temp_dir().join(format!("cloister-fuzz-test-{}", std::process::id()));
    let opts = FuzzOptions::new(build(&dir).expect("build the fuzzer"), 25_000);
    let mut completed = 0;
    for seed in 1..=4u64 {
        let report = run_seed(&opts, seed).expect("run");
        assert!(
            !matches!(report.outcome, SeedOutcome::KernelFailure(_)),
            "seed {seed}: {report:?}"
        );
        completed += u32::from(report.outcome == SeedOutcome::Completed);
    }
    // The fuzzer keeps itself alive: most seeds must get through, or the
    // test would be exercising little.
    assert!(completed >= 3, "only {completed} of 4 seeds completed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_hang_is_a_kernel_failure_reported_with_its_last_call() {
    // A stand-in that reports progress, then stops: the host must call it
    // a kernel failure (no exit status), count the calls reported, and
    // name the call the replay announced last.
    let dir = std::env::temp_dir().join(format!("cloister-fuzz-hang-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("fuzz_hang");
    vm_tests::compile_program("fuzz_hang", &exe, &[]);
    let mut opts = FuzzOptions::new(exe, 25_000);
    opts.idle_timeout = std::time::Duration::from_secs(20);
    let report = run_seed(&opts, 9).expect("run");
    assert!(
        matches!(&report.outcome, SeedOutcome::KernelFailure(why) if why.contains("timed out") || why.contains("no output")),
        "{report:?}"
    );
    assert_eq!(report.calls, 10_000);
    assert_eq!(
        report.last_call.as_deref(),
        Some("call 10000: ftruncate (77) (0x3, 0xdead0000, 0, 0, 0, 0)")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
