//! A short run of the in-tree syscall fuzzer (`cloister fuzz` runs it
//! long): a few seeds of random calls with edge-case arguments; none may
//! bring the kernel down (panic, fatal kernel exception, hang).

use std::time::Duration;

use tools::fuzz::{SeedOutcome, build, run_seed};

#[test]
fn random_syscalls_never_bring_the_kernel_down() {
    let dir = std::env::temp_dir().join(format!("cloister-fuzz-test-{}", std::process::id()));
    let exe = build(&dir).expect("build the fuzzer");
    let mut completed = 0;
    for seed in 1..=4u64 {
        let outcome = run_seed(&exe, seed, 25_000, None, Duration::from_secs(300)).expect("run");
        assert!(
            !matches!(outcome, SeedOutcome::KernelFailure(_)),
            "seed {seed}: {outcome:?}"
        );
        completed += u32::from(outcome == SeedOutcome::Completed);
    }
    // The fuzzer keeps itself alive: most seeds must get through, or the
    // test would be exercising little.
    assert!(completed >= 3, "only {completed} of 4 seeds completed");
    let _ = std::fs::remove_dir_all(&dir);
}
