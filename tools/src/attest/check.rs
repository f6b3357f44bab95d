//! The verification behind `cloister attest verify`, on bytes.
//!
//! 1. Verify the image with the key and collect its `attestation` records;
//!    take the newest.
//! 2. Its checkpoint must be of this image's boot (header boot id).
//! 3. Parse the report (the record's, or one given out of band), detect
//!    its kind and take its `REPORT_DATA`.
//! 4. Recompute `REPORT_DATA` from the image's boot id, the checkpoint and
//!    the recorded public key; they must be equal.
//! 5. Verify the image again *against the checkpoint*: its tag must verify
//!    under the key and the image must hold the checkpoint's block, sealed
//!    with the checkpoint's MAC, in an unbroken chain (so the report binds
//!    the chain up to there); the attestation record itself must be in a
//!    verified block.

use std::fmt;

use audit::attest::{AttestationRecord, ReportKind, report_data};
use audit::{Auth, DecodeError, Event, Finding, Record, Severity, VerifyOptions, Visitor};

use super::report;
use crate::audit_cli::key::hex;

/// Why verification did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The inputs cannot be used (not an audit image, no attestation
    /// record, unknown report format).
    Unusable(String),
    /// The binding or the chain does not verify.
    Mismatch(String),
}

/// A passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The report's kind.
    pub kind: ReportKind,
    /// Whether a hardware signature was checked (never for native).
    pub signature_verified: bool,
    /// Block the bound checkpoint seals.
    pub block_seq: u64,
    /// Records before the checkpoint.
    pub next_record_seq: u64,
    /// Sequence number of the attestation record used.
    pub record_seq: u64,
    /// Attestation records in the image.
    pub records: usize,
    /// The guest's public key.
    pub public_key: [u8; 32],
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "attestation record #{} (newest of {}): {} report",
            self.record_seq,
            self.records,
            self.kind.name()
        )?;
        writeln!(
            f,
            "  binds boot id, checkpoint of block {} ({} records) and guest key {}",
            self.block_seq,
            self.next_record_seq,
            hex(&self.public_key)
        )?;
        writeln!(f, "  audit chain verified up to and past the checkpoint")?;
        if self.signature_verified {
            write!(f, "binding OK, report signature verified")
        } else if self.kind == ReportKind::NativeUnsigned {
            write!(
                f,
                "binding OK, report UNSIGNED — not a hardware attestation"
            )
        } else {
            write!(
                f,
                "binding OK, report signature NOT checked (needs the vendor's certificates)"
            )
        }
    }
}

#[derive(Default)]
struct Collect {
    attestations: Vec<(u64, Auth, Vec<u8>)>,
    errors: Vec<String>,
}

impl Visitor for Collect {
    fn record(&mut self, r: &Record<'_>, event: Result<Event<'_>, DecodeError>, auth: Auth) {
        if let Ok(Event::Attestation { payload }) = event {
            self.attestations.push((r.seq, auth, payload.to_vec()));
        }
    }
    fn finding(&mut self, f: &Finding) {
        if f.severity == Severity::Error {
            self.errors.push(f.kind.to_string());
        }
    }
}

fn verify(image: &[u8], opts: &VerifyOptions) -> Result<Collect, Failure> {
    let mut c = Collect::default();
    let summary = audit::verify(image, opts, &mut c)
        .map_err(|e| Failure::Unusable(format!("not a readable audit image: {e}")))?;
    if summary.key_matched != Some(true) {
        return Err(Failure::Mismatch(
            "the key does not match the image (wrong key, or the header was altered)".into(),
        ));
    }
    if !summary.passed() {
        return Err(Failure::Mismatch(format!(
            "the audit chain does not verify: {}",
            c.errors.join("; ")
        )));
    }
    Ok(c)
}

/// Checks the newest attestation record of `image` (or `report` instead of
/// its report) under `key`.
pub fn check(image: &[u8], key: &[u8; 32], report: Option<&[u8]>) -> Result<Verdict, Failure> {
    let header = *audit::RegionView::new_checked(image)
        .map_err(|e| Failure::Unusable(format!("not a readable audit image: {e}")))?
        .header();
    let first = verify(
        image,
        &VerifyOptions {
            key: Some(*key),
            checkpoint: None,
        },
    )?;
    let records = first.attestations.len();
    let (seq, auth, payload) = first
        .attestations
        .into_iter()
        .max_by_key(|a| a.0)
        .ok_or_else(|| Failure::Unusable("the image holds no attestation record".into()))?;
    if auth != Auth::Verified {
        return Err(Failure::Mismatch(format!(
            "attestation record #{seq} is not in a verified (sealed) block"
        )));
    }
    let record = AttestationRecord::decode(&payload)
        .map_err(|e| Failure::Mismatch(format!("attestation record #{seq}: {e}")))?;
    let checkpoint = record.checkpoint;
    if checkpoint.boot_id != header.boot_id {
        return Err(Failure::Mismatch(format!(
            "attestation record #{seq} names a checkpoint of another boot"
        )));
    }
    let parsed = report::parse(report.unwrap_or(record.report)).map_err(Failure::Unusable)?;
    let expected = report_data(&header.boot_id, Some(&checkpoint), &record.public_key);
    if parsed.report_data != expected {
        return Err(Failure::Mismatch(format!(
            "REPORT_DATA does not bind this image: the report has {}…, the boot id, checkpoint of block {} and public key give {}…",
            hex(&parsed.report_data[..8]),
            checkpoint.block_seq,
            hex(&expected[..8])
        )));
    }
    verify(
        image,
        &VerifyOptions {
            key: Some(*key),
            checkpoint: Some(checkpoint),
        },
    )
    .map_err(|f| match f {
        Failure::Mismatch(why) => {
            Failure::Mismatch(format!("against the attested checkpoint: {why}"))
        }
        other => other,
    })?;
    Ok(Verdict {
        kind: parsed.kind,
        signature_verified: parsed.signature_verified,
        block_seq: checkpoint.block_seq,
        next_record_seq: checkpoint.next_record_seq,
        record_seq: seq,
        records,
        public_key: record.public_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit::attest::NativeReport;
    use audit::{AuditLog, Config};

    const KEY: [u8; 32] = [0x11; 32];

    fn native(data: &[u8; 64]) -> Result<[u8; 160], ()> {
        Ok(NativeReport {
            measurement: None,
            report_data: *data,
        }
        .to_bytes())
    }

    /// An image with a text record, an attestation, another text record
    /// and (if `seal`) everything sealed; returns it and the record's seq.
    fn image(seal: bool) -> (Vec<u8>, u64) {
        let mut region = vec![0u8; 64 * 1024];
        let mut log = AuditLog::format(&mut region, &Config::new(KEY, [3; 16])).unwrap();
        log.append(&Event::Text { text: "boot" }, 1, 0).unwrap();
        let a = audit::attest::append(&mut log, 2, 0, &[4; 32], native).unwrap();
        log.append(&Event::Text { text: "after" }, 3, 0).unwrap();
        if seal {
            log.seal();
        }
        drop(log);
        (region, a.record_seq)
    }

    fn offset_of(image: &[u8], needle: &[u8]) -> usize {
        image
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    }

    #[test]
    fn a_recorded_native_report_binds_its_image() {
        let (image, seq) = image(true);
        let v = check(&image, &KEY, None).unwrap();
        assert_eq!(v.kind, ReportKind::NativeUnsigned);
        assert_eq!(v.record_seq, seq);
        assert!(!v.signature_verified);
        assert!(
            v.to_string()
                .contains("report UNSIGNED — not a hardware attestation")
        );
    }

    #[test]
    fn a_flipped_byte_in_the_report_or_checkpoint_fails() {
        let (good, _) = image(true);
        let report_at = offset_of(&good, b"CLOISTER-UNSIGNED-REPORT");
        for at in [report_at + 100, report_at - 32 - 50] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            assert!(
                matches!(check(&bad, &KEY, None), Err(Failure::Mismatch(_))),
                "flip at {at} passed"
            );
        }
    }

    #[test]
    fn a_sealed_record_whose_report_binds_something_else_fails() {
        let mut region = vec![0u8; 64 * 1024];
        let mut log = AuditLog::format(&mut region, &Config::new(KEY, [3; 16])).unwrap();
        // The report binds another public key than the one recorded.
        audit::attest::append(&mut log, 2, 0, &[4; 32], |_| {
            native(&audit::attest::report_data(&[3; 16], None, &[4; 32]))
        })
        .unwrap();
        log.seal();
        drop(log);
        let err = check(&region, &KEY, None).unwrap_err();
        assert!(
            matches!(&err, Failure::Mismatch(why) if why.contains("REPORT_DATA does not bind")),
            "{err:?}"
        );
    }

    #[test]
    fn a_report_given_out_of_band_must_bind_the_image() {
        let (image, _) = image(true);
        let other = native(&[9; 64]).unwrap();
        let err = check(&image, &KEY, Some(&other)).unwrap_err();
        assert!(
            matches!(&err, Failure::Mismatch(why) if why.contains("REPORT_DATA does not bind")),
            "{err:?}"
        );
        assert!(matches!(
            check(&image, &KEY, Some(b"junk")),
            Err(Failure::Unusable(_))
        ));
    }

    #[test]
    fn wrong_key_unsealed_record_and_no_record_fail() {
        let (image, _) = image(true);
        assert!(matches!(
            check(&image, &[0x22; 32], None),
            Err(Failure::Mismatch(_))
        ));
        // Sealed only up to the checkpoint: the record sits in the open
        // block, unauthenticated.
        let (open, _) = self::image(false);
        assert!(matches!(
            check(&open, &KEY, None),
            Err(Failure::Mismatch(why)) if why.contains("not in a verified")
        ));
        let mut region = vec![0u8; 64 * 1024];
        let mut log = AuditLog::format(&mut region, &Config::new(KEY, [3; 16])).unwrap();
        log.append(&Event::Text { text: "boot" }, 1, 0).unwrap();
        log.seal();
        drop(log);
        assert!(matches!(
            check(&region, &KEY, None),
            Err(Failure::Unusable(_))
        ));
    }
}
