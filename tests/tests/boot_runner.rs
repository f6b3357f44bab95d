//! The runner's own tests: guest tests that fail on purpose (the ignored
//! `kernel::selftest::*` ktests) must make the runner report failure, each in
//! the right way, and a hang must be cut off by the watchdog.

use std::time::Duration;

use tools::ktest::{self, Summary};
use tools::qemu::{self, Outcome};

fn run_selftest(name: &str, idle_timeout: Option<Duration>) -> Summary {
    let mut config = ktest::test_config(vm_tests::test_kernel()).expect("config");
    if let Some(t) = idle_timeout {
        config.idle_timeout = t;
    }
    ktest::run(&config, &format!("kernel::selftest::{name}"), |_| {}).expect("runner")
}

#[test]
fn a_passing_guest_test_passes() {
    let s = run_selftest("passes_when_named", None);
    assert_eq!(s.passed, ["kernel::selftest::passes_when_named"]);
    assert!(s.failed.is_empty());
}

#[test]
fn a_failing_guest_test_fails_the_run_with_its_panic_message() {
    let s = run_selftest("must_fail", None);
    assert!(s.passed.is_empty());
    assert_eq!(s.failed.len(), 1);
    assert_eq!(s.failed[0].name, "kernel::selftest::must_fail");
    assert!(
        s.failed[0].reason.contains("fails on purpose"),
        "{:?}",
        s.failed[0]
    );
}

#[test]
fn an_uncaught_exception_fails_the_run_naming_the_exception() {
    let s = run_selftest("uncaught_exception", None);
    assert_eq!(s.failed.len(), 1);
    let f = &s.failed[0];
    assert!(
        f.reason.contains("invalid opcode (#UD)") && f.reason.contains("RIP"),
        "{f:?}"
    );
}

#[test]
fn a_triple_fault_fails_the_run() {
    let s = run_selftest("triple_fault", None);
    assert_eq!(s.failed.len(), 1);
    assert!(s.failed[0].reason.contains("triple"), "{:?}", s.failed[0]);
}

#[test]
fn a_hung_guest_is_killed_and_reported() {
    let s = run_selftest("hang", Some(Duration::from_secs(5)));
    assert_eq!(s.failed.len(), 1);
    assert!(s.failed[0].reason.contains("hung"), "{:?}", s.failed[0]);
}

#[test]
fn a_kernel_without_tests_enabled_boots_to_ready_and_powers_off() {
    let mut config = ktest::test_config(vm_tests::test_kernel()).expect("config");
    config.cmdline = "demo.ticks=3".into();
    let report = qemu::run(&config, |_, _| {}).expect("run");
    assert_eq!(report.outcome, Outcome::Success, "{:?}", report.lines);
    assert!(report.lines.iter().any(|l| l == "Cloister ready"));
    assert!(report.lines.iter().any(|l| l.starts_with("memory map:")));
}

#[test]
fn the_same_kernel_boots_on_q35_too() {
    let mut config = ktest::test_config(vm_tests::test_kernel()).expect("config");
    config.machine = "q35".into();
    config.cmdline = "ktest=kernel::arch::ktests::timer".into();
    let report = qemu::run(&config, |_, _| {}).expect("run");
    assert_eq!(report.outcome, Outcome::Success, "{:?}", report.lines);
    assert!(
        report
            .lines
            .iter()
            .any(|l| l.ends_with("timer_ticks_advance_at_the_programmed_rate ... ok"))
    );
}

#[test]
fn a_missing_kernel_is_a_clear_error() {
    let config = qemu::QemuConfig::new("/nonexistent/kernel").expect("config");
    let err = qemu::run(&config, |_, _| {}).unwrap_err().to_string();
    assert!(
        err.contains("kernel") && err.contains("does not exist"),
        "{err}"
    );
}
