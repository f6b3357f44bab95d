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
