//! Writing an attestation into the log: checkpoint (which seals the open
//! block), `REPORT_DATA` over the checkpoint, the report from the platform,
//! and the `attestation` record — the kernel's sequence, host-testable.

use super::binding::{ATTESTATION_FIXED_BYTES, AttestationRecord, REPORT_DATA_BYTES, report_data};
use super::report::SNP_REPORT_BYTES;
use crate::checkpoint::Checkpoint;
use crate::event::Event;
use crate::writer::{AppendError, AuditLog};

/// The largest report [`append`] records (an SEV-SNP report; the native
/// report and a TDREPORT are smaller).
pub const MAX_REPORT_BYTES: usize = SNP_REPORT_BYTES;

/// Why no attestation record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestError<E> {
    /// The checkpoint or the record could not be appended.
    Log(AppendError),
    /// The platform gave no report.
    Platform(E),
    /// The report is longer than [`MAX_REPORT_BYTES`].
    ReportTooLong(usize),
}

/// What [`append`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attested {
    /// The checkpoint the report binds.
    pub checkpoint: Checkpoint,
    /// The attestation record's sequence number.
    pub record_seq: u64,
}

/// Checkpoints `log`, asks `report` for a report binding the checkpoint and
/// `public_key`, and appends it as an `attestation` record.
pub fn append<E, R: AsRef<[u8]>>(
    log: &mut AuditLog<'_>,
    timestamp_ns: u64,
    cpu: u16,
    public_key: &[u8; 32],
    report: impl FnOnce(&[u8; REPORT_DATA_BYTES]) -> Result<R, E>,
) -> Result<Attested, AttestError<E>> {
    let checkpoint = log
        .checkpoint(timestamp_ns, cpu)
        .map_err(AttestError::Log)?;
    let data = report_data(&checkpoint.boot_id, Some(&checkpoint), public_key);
    let report = report(&data).map_err(AttestError::Platform)?;
    let report = report.as_ref();
    if report.len() > MAX_REPORT_BYTES {
        return Err(AttestError::ReportTooLong(report.len()));
    }
    let record = AttestationRecord {
        checkpoint,
        public_key: *public_key,
        report,
    };
    let mut buf = [0u8; ATTESTATION_FIXED_BYTES + MAX_REPORT_BYTES];
    let payload = &mut buf[..record.encoded_len()];
    // The length was checked above, so encoding cannot fail.
    record
        .encode(payload)
        .map_err(|_| AttestError::ReportTooLong(report.len()))?;
    let record_seq = log
        .append(&Event::Attestation { payload }, timestamp_ns, cpu)
        .map_err(AttestError::Log)?;
    Ok(Attested {
        checkpoint,
        record_seq,
    })
}
