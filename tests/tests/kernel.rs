//! `cargo test` entry for the in-guest tests: boots the test kernel under
//! QEMU (TCG, or `CLOISTER_ACCEL=kvm`), prints each guest test by name as
//! `cargo test` does, and ends with `ktest: N passed, N failed`.
//!
//! A filter given to `cargo test` (e.g. `cargo test -p tests --test kernel
//! -- timer`) selects guest tests whose name contains it.

use std::process::ExitCode;

use tools::ktest::{self, Event};

fn main() -> ExitCode {
    // `cargo test` passes libtest flags (`--quiet`, `--nocapture`, …) to
    // every test binary; the first word without a dash is the filter.
    let pattern = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let verbose = std::env::var_os("CLOISTER_VERBOSE").is_some();
    let kernel = vm_tests::test_kernel();
    let config = match ktest::test_config(kernel) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "\nrunning in-guest kernel tests under QEMU ({})",
        config.accel.name()
    );
    let result = ktest::run(&config, &pattern, |event| match event {
        Event::Passed(name) => println!("test {name} ... ok"),
        Event::Failed(f) => println!("test {} ... FAILED", f.name),
        Event::Line(line) if verbose => println!("    | {line}"),
        Event::Line(_) => {}
    });
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if !summary.failed.is_empty() {
        println!("\nfailures:");
        for f in &summary.failed {
            println!("\n---- {} ----\n{}", f.name, f.reason);
            for line in &f.output {
                println!("    | {line}");
            }
        }
    }
    let (passed, failed) = (summary.passed.len(), summary.failed.len());
    println!("\nktest: {passed} passed, {failed} failed");
    if failed == 0 && passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
