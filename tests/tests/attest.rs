//! Attestation that binds the audit log, end to end on the native backend
//! (`docs/CVM.md`, "Attestation and the audit log"):
//!
//! - a program run with `cloister run --audit FILE` leaves attestation
//!   records (at boot and at exit) whose unsigned native reports bind the
//!   image's boot id, a checkpoint of its chain and the guest's key;
//!   `cloister attest verify --audit FILE` passes and says the report is
//!   unsigned, and so does the exit's report taken from the console
//!   (`--report`); a flipped byte in the recorded report or checkpoint, the
//!   older boot report or a report from elsewhere fails with exit status 1;
//! - the attested key release: the test kernel with `audit.key_release`
//!   asks the host's test broker (`tools::attest::broker`) on COM1, opens
//!   the envelope with its ephemeral key and seals the log with the
//!   released key, which then verifies it; a broker that refuses leaves a
//!   log the broker's key does not verify.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use audit::VerifyOptions;
use tools::attest::broker;
use tools::ktest;
use tools::qemu::{self, Outcome, RunReport};
use tools::run::audit::{AuditSpec, DEFAULT_REGION_BYTES};
use tools::run::{RunOptions, run};
use vm_tests::cloister_cli;

/// The key the test broker releases.
const BROKER_KEY: [u8; 32] = [0x5c; 32];

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("attest")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn attest_verify(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(cloister_cli())
        .args(["attest", "verify"])
        .args(args)
        .output()
        .expect("cloister attest verify");
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn last_offset(image: &[u8], needle: &[u8]) -> usize {
    image
        .windows(needle.len())
        .rposition(|w| w == needle)
        .expect("a native report in the image")
}

#[test]
fn an_audited_run_carries_reports_that_bind_its_log() {
    let dir = scratch("run");
    let log = dir.join("echo.audit");
    let args: Vec<OsString> = ["echo", "attested"].iter().map(OsString::from).collect();
    let mut opts = RunOptions::new("/bin/busybox", &args);
    opts.capture = true;
    opts.timeout = Some(Duration::from_secs(300));
    opts.audit = Some(AuditSpec {
        file: log.clone(),
        region_bytes: DEFAULT_REGION_BYTES,
        key_file: None,
    });
    let result = run(&opts).expect("cloister run");
    assert_eq!(result.exit_code(), 0, "{result:#?}");
    let log_arg = log.to_str().unwrap();

    let (code, out) = attest_verify(&["--audit", log_arg]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("binding OK, report UNSIGNED — not a hardware attestation"),
        "{out}"
    );
    // The boot's report and the exit's; the newest is checked.
    assert!(out.contains("(newest of 2)"), "{out}");

    let image = std::fs::read(&log).unwrap();
    let report_at = last_offset(&image, b"CLOISTER-UNSIGNED-REPORT");
    // Report data, and the checkpoint's block MAC in the record before it.
    for (what, at) in [
        ("report", report_at + 100),
        ("checkpoint", report_at - 152 + 60),
    ] {
        let bad = dir.join(format!("flipped-{what}.audit"));
        let mut bytes = image.clone();
        bytes[at] ^= 0x01;
        std::fs::write(&bad, &bytes).unwrap();
        let (code, out) = attest_verify(&[
            "--audit",
            bad.to_str().unwrap(),
            "--key-file",
            &format!("{log_arg}.key"),
        ]);
        assert_eq!(code, Some(1), "a flipped byte in the {what} passed: {out}");
        assert!(out.contains("FAILED"), "{out}");
    }

    // The exit's report as the console showed it, kept out of band, binds
    // the image; the boot's (older) report does not bind its newest record.
    let reports: Vec<&str> = result
        .kernel_lines
        .iter()
        .filter_map(|l| l.strip_prefix("attest: report "))
        .collect();
    assert_eq!(reports.len(), 2, "{:#?}", result.kernel_lines);
    for (i, (report, want)) in reports.iter().zip([1, 0]).enumerate() {
        let file = dir.join(format!("console-{i}.report"));
        std::fs::write(&file, unhex(report)).unwrap();
        let (code, out) = attest_verify(&["--audit", log_arg, "--report", file.to_str().unwrap()]);
        assert_eq!(code, Some(want), "console report {i}: {out}");
    }

    // A genuine-looking report that binds something else.
    let elsewhere = dir.join("elsewhere.report");
    std::fs::write(
        &elsewhere,
        audit::attest::NativeReport {
            measurement: None,
            report_data: [7; 64],
        }
        .to_bytes(),
    )
    .unwrap();
    let (code, out) = attest_verify(&["--audit", log_arg, "--report", elsewhere.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("REPORT_DATA does not bind"), "{out}");

    let (code, out) = attest_verify(&["--audit", log_arg, "--key", &"ab".repeat(32)]);
    assert_eq!(code, Some(1), "a wrong key passed: {out}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn release(line: &str) -> Option<String> {
    broker::answer(
        line,
        &BROKER_KEY,
        broker::random_secret().expect("/dev/urandom"),
    )
}

fn refuse(line: &str) -> Option<String> {
    line.starts_with(broker::REQUEST_PREFIX)
        .then(|| "-\n".into())
}

/// Boots the test kernel with `audit.key_release` and an ivshmem region
/// backed by `file`, the test broker answering on COM1.
fn boot_with_broker(file: &Path, responder: fn(&str) -> Option<String>) -> RunReport {
    let mut config = ktest::test_config(vm_tests::test_kernel()).expect("config");
    config.machine = "q35".into();
    config.timeout = Duration::from_secs(300);
    config.cmdline = "log=warn demo.ticks=3 audit.key_release".into();
    config.com1_responder = Some(responder);
    config.extra_args.extend([
        "-object".into(),
        format!(
            "memory-backend-file,id=audit,size=64K,mem-path={},share=on",
            file.display()
        ),
        "-device".into(),
        "ivshmem-plain,memdev=audit".into(),
    ]);
    qemu::run(&config, |_, _| {}).expect("run QEMU")
}

fn verifies_with_broker_key(file: &Path) -> bool {
    let image = std::fs::read(file).expect("region file");
    let opts = VerifyOptions {
        key: Some(BROKER_KEY),
        checkpoint: None,
    };
    audit::verify(&image, &opts, &mut audit::NoVisitor)
        .expect("a readable region")
        .passed()
}

#[test]
fn the_broker_releases_the_audit_key_to_the_attested_guest() {
    let dir = scratch("release");
    let file = dir.join("released.img");
    let report = boot_with_broker(&file, release);
    assert_eq!(report.outcome, Outcome::Success, "{:#?}", report.lines);
    let request = report
        .lines
        .iter()
        .find(|l| l.starts_with(broker::REQUEST_PREFIX))
        .expect("the guest asked for its key");
    let request = broker::parse_request(request).expect("a well-formed request");
    assert!(broker::check(&request).is_ok());
    assert!(
        report
            .lines
            .iter()
            .any(|l| l.contains("key released by the owner's broker after attestation")),
        "{:#?}",
        report.lines
    );
    assert!(verifies_with_broker_key(&file));
    // The log's reports use the same ephemeral key as the release request.
    let (code, out) =
        attest_verify(&["--audit", file.to_str().unwrap(), "--key", &"5c".repeat(32)]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&hex(&request.public_key)), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_refused_release_leaves_a_log_the_broker_key_does_not_verify() {
    let dir = scratch("refused");
    let file = dir.join("refused.img");
    let report = boot_with_broker(&file, refuse);
    assert_eq!(report.outcome, Outcome::Success, "{:#?}", report.lines);
    assert!(
        report
            .lines
            .iter()
            .any(|l| l.contains("key release failed: the broker refused")),
        "{:#?}",
        report.lines
    );
    assert!(!verifies_with_broker_key(&file));
    let _ = std::fs::remove_dir_all(&dir);
}
