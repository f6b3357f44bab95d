//! Several vCPUs (issue 15's foundation): the in-guest SMP tests booted
//! with `-smp 1`, `-smp 2` and `-smp 4` (TCG with `thread=multi` above one).
//! Each boot must find as many CPUs in the firmware's MP table as QEMU was
//! given, bring every application processor online, and pass
//! `kernel::arch::smp::ktests` (every AP reports its APIC id, runs work on
//! its own stack and halts again). With 4 CPUs, the audit log must keep
//! sequence numbers gap-free while all of them append at once
//! (`kernel::audit::ktests::sequence_numbers_stay_gap_free_with_every_cpu_appending`).
//! The same SMP tests also boot where the CPUs come from the ACPI MADT
//! instead: `microvm` with ACPI on and `q35` (SeaBIOS).
//! Run with `cargo test -p vm-tests --test smp`.

use tools::ktest::{self, Event, Summary};

const SMP_TESTS: [&str; 3] = [
    "kernel::arch::smp::ktests::each_ap_runs_work_on_its_own_stack_and_reports_its_id",
    "kernel::arch::smp::ktests::every_cpu_in_the_firmware_table_is_online",
    "kernel::arch::smp::ktests::idle_aps_halt_again_after_work",
];
const AUDIT_TEST: &str =
    "kernel::audit::ktests::sequence_numbers_stay_gap_free_with_every_cpu_appending";
const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn boot(cpus: u32, cmdline: &str, pattern: &str) -> (Summary, Vec<String>) {
    boot_on("microvm", cpus, cmdline, pattern)
}

fn boot_on(machine: &str, cpus: u32, cmdline: &str, pattern: &str) -> (Summary, Vec<String>) {
    let mut config = ktest::test_config(vm_tests::test_kernel()).expect("config");
    config.machine = machine.into();
    config.cpus = cpus;
    config.cmdline = cmdline.into();
    let mut lines = Vec::new();
    let summary = ktest::run(&config, pattern, |event| {
        if let Event::Line(l) = event {
            lines.push(l.to_string());
        }
    })
    .expect("the guest ran");
    (summary, lines)
}

fn every_ap_comes_up_with(cpus: u32) {
    every_ap_comes_up_on("microvm", cpus, "MP table");
}

fn every_ap_comes_up_on(machine: &str, cpus: u32, source: &str) {
    let (summary, lines) = boot_on(machine, cpus, "", "kernel::arch::smp::ktests");
    assert!(summary.failed.is_empty(), "{summary:#?}\n{lines:#?}");
    assert_eq!(summary.passed, SMP_TESTS, "{lines:#?}");
    let found = format!("cpus: {cpus} found ({source})");
    assert!(lines.iter().any(|l| l.contains(&found)), "{lines:#?}");
    if cpus > 1 {
        let online = format!("cpus: {} application processors online", cpus - 1);
        assert!(lines.iter().any(|l| l.contains(&online)), "{lines:#?}");
        for index in 1..cpus {
            let ran = format!("smp: CPU {index} (APIC id {index}) ran on its stack");
            assert!(lines.iter().any(|l| l.contains(&ran)), "{lines:#?}");
        }
    } else {
        // One vCPU: nothing is started, as before SMP existed.
        assert!(
            !lines.iter().any(|l| l.contains("application processors")),
            "{lines:#?}"
        );
    }
}

#[test]
fn one_vcpu_starts_nothing() {
    every_ap_comes_up_with(1);
}

#[test]
fn two_vcpus_come_up() {
    every_ap_comes_up_with(2);
}

#[test]
fn four_vcpus_come_up() {
    every_ap_comes_up_with(4);
}

#[test]
fn four_vcpus_find_their_index_from_their_stack_without_rdtscp() {
    // The fallback for hypervisors that hide `rdtscp` (the software KVM on
    // these machines), forced where TCG has it.
    let (summary, lines) = boot(4, "smp.index=stack", "kernel::arch::smp::ktests");
    assert!(summary.failed.is_empty(), "{summary:#?}\n{lines:#?}");
    assert_eq!(summary.passed, SMP_TESTS, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("CPUs find their index from their stack")),
        "{lines:#?}"
    );
    let (summary, lines) = boot(
        4,
        &format!("smp.index=stack audit=1M audit_key={KEY_HEX}"),
        AUDIT_TEST,
    );
    assert_eq!(summary.passed, [AUDIT_TEST], "{summary:#?}\n{lines:#?}");
}

#[test]
fn the_madt_lists_the_cpus_on_microvm_with_acpi_and_on_q35() {
    every_ap_comes_up_on("microvm,acpi=on", 3, "ACPI MADT");
    every_ap_comes_up_on("q35", 2, "ACPI MADT");
}

#[test]
fn audit_sequence_is_gap_free_with_four_cpus_appending() {
    let cmdline = format!("audit=1M audit_key={KEY_HEX}");
    let (summary, lines) = boot(4, &cmdline, AUDIT_TEST);
    assert!(summary.failed.is_empty(), "{summary:#?}\n{lines:#?}");
    assert_eq!(summary.passed, [AUDIT_TEST], "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("audit: 1200 records from 4 CPUs")),
        "{lines:#?}"
    );
}
