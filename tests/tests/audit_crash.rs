//! The audit log across a guest's death: boots the test kernel on q35 with
//! its audit region in QEMU's `ivshmem-plain` device backed by a host file,
//! lets it die in chosen ways (`audit.crash_test=`, see
//! `kernel/src/audit/crash.rs`), then reads the file with the `audit` crate
//! and with the real `cloister audit` binary. Also runs the in-guest audit
//! tests that need a RAM region (`audit=1M`).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use audit::{Auth, DecodeError, Event, Finding, FindingKind, Record, Summary, VerifyOptions};
use tools::ktest;
use tools::qemu::{self, Outcome, RunReport};

/// Must match `TEST_KEY_HEX` in `kernel/src/audit/ktests.rs`.
const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OTHER_KEY_HEX: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn key() -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&KEY_HEX[2 * i..2 * i + 2], 16).unwrap();
    }
    k
}

fn region_file(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("audit_crash");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Boots the test kernel on q35 with `cmdline` and an ivshmem region of
/// `size` (QEMU syntax) backed by `file`; returns when the guest is gone.
fn boot_with_file_region(cmdline: &str, file: &Path, size: &str) -> RunReport {
    let mut config = ktest::test_config(vm_tests::test_kernel()).expect("config");
    config.machine = "q35".into();
    config.timeout = Duration::from_secs(120);
    config.cmdline = cmdline.into();
    config.extra_args.extend([
        "-object".into(),
        format!(
            "memory-backend-file,id=audit,size={size},mem-path={},share=on",
            file.display()
        ),
        "-device".into(),
        "ivshmem-plain,memdev=audit".into(),
    ]);
    qemu::run(&config, |_, _| {}).expect("run QEMU")
}

/// One record as the verifier reported it.
#[derive(Debug, Clone)]
struct Rec {
    seq: u64,
    auth: Auth,
    event: OwnedEvent,
}

#[derive(Debug, Clone, PartialEq)]
enum OwnedEvent {
    Boot {
        cmdline: String,
    },
    Text(String),
    Panic(String),
    Exception {
        vector: u8,
        error_code: u64,
        rip: u64,
        cr2: u64,
    },
    Syscall {
        nr: u32,
        args: [u64; 6],
        result: i64,
        tid: u32,
    },
    Other(String),
}

#[derive(Default)]
struct Collect {
    records: Vec<Rec>,
    findings: Vec<Finding>,
}

impl audit::Visitor for Collect {
    fn record(&mut self, r: &Record<'_>, event: Result<Event<'_>, DecodeError>, auth: Auth) {
        let event = match event {
            Ok(Event::Boot { cmdline, .. }) => OwnedEvent::Boot {
                cmdline: cmdline.into(),
            },
            Ok(Event::Text { text }) => OwnedEvent::Text(text.into()),
            Ok(Event::Panic { message }) => OwnedEvent::Panic(message.into()),
            Ok(Event::CpuException {
                vector,
                error_code,
                rip,
                cr2,
            }) => OwnedEvent::Exception {
                vector,
                error_code,
                rip,
                cr2,
            },
            Ok(Event::Syscall(s)) => OwnedEvent::Syscall {
                nr: s.nr,
                args: s.args,
                result: s.result,
                tid: s.tid,
            },
            other => OwnedEvent::Other(format!("{other:?}")),
        };
        self.records.push(Rec {
            seq: r.seq,
            auth,
            event,
        });
    }

    fn finding(&mut self, f: &Finding) {
        self.findings.push(*f);
    }
}

fn read_back(file: &Path) -> (Summary, Collect) {
    let image = std::fs::read(file).expect("region file");
    let mut c = Collect::default();
    let opts = VerifyOptions {
        key: Some(key()),
        checkpoint: None,
    };
    let summary = audit::verify(&image, &opts, &mut c).expect("a readable region header");
    (summary, c)
}

fn cli(args: &[&str]) -> (i32, String) {
    let o: Output = std::process::Command::new(vm_tests::cloister_cli())
        .args(args)
        .output()
        .expect("run cloister");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

/// Records every boot starts with: boot, the kernel's text, then the boot
/// attestation's checkpoint and attestation record (`kernel/src/audit/attest.rs`).
const BOOT_RECORDS: usize = 4;

fn assert_boot_record(c: &Collect, cmdline_has: &str) {
    let OwnedEvent::Boot { cmdline } = &c.records[0].event else {
        panic!("record 0 is not a boot record: {:?}", c.records[0]);
    };
    assert_eq!(c.records[0].seq, 0);
    assert!(cmdline.contains(cmdline_has), "{cmdline}");
    assert!(cmdline.contains("audit_key=<redacted>"), "{cmdline}");
    assert!(!cmdline.contains(KEY_HEX), "the key leaked into the log");
    assert!(
        matches!(&c.records[1].event, OwnedEvent::Text(t) if t.starts_with("Cloister ")),
        "{:?}",
        c.records[1]
    );
    assert!(
        matches!(&c.records[2].event, OwnedEvent::Other(e) if e.contains("Checkpoint")),
        "record 2 is the boot attestation's checkpoint: {:?}",
        c.records[2]
    );
    assert!(
        matches!(&c.records[3].event, OwnedEvent::Other(e) if e.contains("Attestation")),
        "record 3 is the boot attestation: {:?}",
        c.records[3]
    );
}

#[test]
fn a_crash_mid_append_keeps_exactly_the_committed_records() {
    // Enough records (about 25 bytes each) to fill several 4 KiB blocks.
    const N: u64 = 400;
    let file = region_file("torn.img");
    let report = boot_with_file_region(
        &format!("log=warn audit.crash_test={N} audit_key={KEY_HEX}"),
        &file,
        "1M",
    );
    assert_eq!(report.outcome, Outcome::GuestFailure, "{:?}", report.lines);
    let said = format!("audit crash test: {N} records committed, record {N} torn");
    assert!(
        report.lines.iter().any(|l| l.starts_with(&said)),
        "{:?}",
        report.lines
    );

    let (summary, c) = read_back(&file);
    assert!(summary.passed(), "{summary:?}\n{:?}", c.findings);
    assert_eq!(summary.errors, 0);
    assert_eq!(summary.torn_records, 1, "the torn append is recognised");
    assert!(
        c.findings.iter().any(|f| f.kind == FindingKind::TornRecord),
        "{:?}",
        c.findings
    );
    // The boot records, then exactly the N committed ones.
    assert_boot_record(&c, &format!("audit.crash_test={N}"));
    let syscalls: Vec<&Rec> = c
        .records
        .iter()
        .filter(|r| matches!(r.event, OwnedEvent::Syscall { .. }))
        .collect();
    assert_eq!(syscalls.len() as u64, N);
    assert_eq!(
        c.records.len() as u64,
        N + BOOT_RECORDS as u64,
        "nothing after the torn record"
    );
    for (i, r) in syscalls.iter().enumerate() {
        let i = i as u64;
        assert_eq!(r.seq, BOOT_RECORDS as u64 + i);
        assert_eq!(
            r.event,
            OwnedEvent::Syscall {
                nr: 1000 + i as u32,
                args: [i, 2 * i, 3 * i, 4 * i, 5 * i, 6 * i],
                result: -(i as i64),
                tid: 7,
            }
        );
    }
    // The full blocks were sealed and verify, the last is open
    // (committed, unsealed).
    assert!(summary.verified_blocks >= 2, "{summary:?}");
    assert!(c.records.iter().any(|r| r.auth == Auth::Verified));
    assert!(c.records.iter().all(|r| r.auth != Auth::Failed));
    assert!(summary.unsealed_records > 0 && summary.unsealed_records < N);

    // The real CLI agrees.
    let path = file.to_string_lossy();
    let (code, out) = cli(&["audit", "verify", &path, "--key", KEY_HEX]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("result: verified: 0 errors"), "{out}");
    assert!(
        out.contains(&format!("{} records", N + BOOT_RECORDS as u64))
            && out.contains("1 torn skipped"),
        "{out}"
    );
    let (code, out) = cli(&["audit", "show", &path, "--key", KEY_HEX, "--json"]);
    assert_eq!(code, 0, "{out}");
    let syscall_lines = out
        .lines()
        .filter(|l| l.contains(r#""type":"record""#) && l.contains(r#""kind":"syscall""#))
        .count();
    assert_eq!(syscall_lines as u64, N, "{out}");
    assert!(out.contains(r#""code":"torn_record""#), "{out}");
    // And a wrong key is refused.
    let (code, out) = cli(&["audit", "verify", &path, "--key", OTHER_KEY_HEX]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("wrong_key") || out.contains("key"), "{out}");
}

/// The `RIP 0x…` the kernel printed on its FATAL line.
fn console_rip(report: &RunReport) -> u64 {
    let line = report
        .lines
        .iter()
        .find(|l| l.starts_with("FATAL: CPU exception"))
        .unwrap_or_else(|| panic!("no FATAL line: {:?}", report.lines));
    let hex = line
        .split("RIP 0x")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    u64::from_str_radix(hex, 16).unwrap()
}

/// Boots with `audit.crash_test={action}`, expects the guest to fail, and
/// returns the report and the verified records.
fn die_by(action: &str) -> (RunReport, Summary, Collect) {
    let file = region_file(&format!("{action}.img"));
    let report = boot_with_file_region(
        &format!("log=warn audit.crash_test={action} audit_key={KEY_HEX}"),
        &file,
        "64K",
    );
    assert_eq!(report.outcome, Outcome::GuestFailure, "{:?}", report.lines);
    let (summary, c) = read_back(&file);
    assert!(summary.passed(), "{summary:?}\n{:?}", c.findings);
    assert_eq!(summary.warnings, 0, "sealed at once: {:?}", c.findings);
    assert_eq!(summary.unsealed_records, 0);
    assert_boot_record(&c, &format!("audit.crash_test={action}"));
    assert_eq!(c.records.len(), BOOT_RECORDS + 1, "{:?}", c.records);
    assert!(c.records.iter().all(|r| r.auth == Auth::Verified));
    let (code, out) = cli(&["audit", "verify", &file.to_string_lossy(), "--key", KEY_HEX]);
    assert_eq!(code, 0, "{out}");
    (report, summary, c)
}

#[test]
fn an_invalid_opcode_in_the_kernel_is_recorded_and_sealed() {
    let (report, _, c) = die_by("ud");
    assert_eq!(
        c.records[BOOT_RECORDS].event,
        OwnedEvent::Exception {
            vector: 6,
            error_code: 0,
            rip: console_rip(&report),
            cr2: 0
        }
    );
}

#[test]
fn a_kernel_page_fault_is_recorded_with_its_address_and_sealed() {
    let (report, _, c) = die_by("pf");
    assert_eq!(
        c.records[BOOT_RECORDS].event,
        OwnedEvent::Exception {
            vector: 14,
            // Not present, read, supervisor.
            error_code: 0,
            rip: console_rip(&report),
            cr2: 0xffff_a000_0000_0000,
        }
    );
}

#[test]
fn a_panic_is_recorded_with_its_location_and_sealed() {
    let (_, _, c) = die_by("panic");
    let OwnedEvent::Panic(msg) = &c.records[BOOT_RECORDS].event else {
        panic!("{:?}", c.records[BOOT_RECORDS]);
    };
    assert!(
        msg.contains("panicking on purpose") && msg.contains("kernel/src/audit/crash.rs:"),
        "{msg}"
    );
}

#[test]
fn a_clean_power_off_leaves_boot_on_record_and_everything_sealed() {
    let file = region_file("clean.img");
    let report = boot_with_file_region(
        &format!("log=warn demo.ticks=3 audit_key={KEY_HEX}"),
        &file,
        "64K",
    );
    assert_eq!(report.outcome, Outcome::Success, "{:?}", report.lines);
    let (summary, c) = read_back(&file);
    assert!(summary.passed(), "{summary:?}\n{:?}", c.findings);
    assert_eq!(summary.warnings, 0, "{:?}", c.findings);
    assert_boot_record(&c, "demo.ticks=3");
    // The boot records, then the power-off attestation (checkpoint and
    // report), all sealed.
    assert_eq!(c.records.len(), BOOT_RECORDS + 2, "{:?}", c.records);
    assert!(c.records.iter().all(|r| r.auth == Auth::Verified));
}

#[test]
fn without_a_key_the_records_are_readable_but_not_verifiable() {
    let file = region_file("nokey.img");
    let report = boot_with_file_region("log=warn audit.crash_test=panic", &file, "64K");
    assert_eq!(report.outcome, Outcome::GuestFailure, "{:?}", report.lines);
    assert!(
        report
            .lines
            .iter()
            .any(|l| l.contains("no audit_key=: random per-boot key")),
        "{:?}",
        report.lines
    );
    let path = file.to_string_lossy();
    let (code, out) = cli(&["audit", "verify", &path, "--key", KEY_HEX]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("wrong_key") || out.contains("wrong key"),
        "{out}"
    );
    let (code, out) = cli(&["audit", "show", &path]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("panic \"audit crash test"), "{out}");
    assert!(out.contains("[unchecked]"), "{out}");
}

#[test]
fn in_guest_audit_tests_with_a_ram_region() {
    let mut config = ktest::test_config(vm_tests::test_kernel()).expect("config");
    config.cmdline = format!("audit=1M audit_key={KEY_HEX}");
    let names = [
        "region_frames_are_never_handed_out",
        "region_is_mapped_for_the_kernel_only_and_never_executable",
        "boot_and_syscall_records_verify_in_the_guest",
        "a_busy_log_makes_the_exception_path_count_a_miss_not_deadlock",
    ];
    for name in names {
        let full = format!("kernel::audit::ktests::{name}");
        let s = ktest::run(&config, &full, |_| {}).expect("runner");
        assert_eq!(s.passed, std::slice::from_ref(&full), "{:?}", s.failed);
        assert!(s.failed.is_empty(), "{:?}", s.failed);
    }
}
