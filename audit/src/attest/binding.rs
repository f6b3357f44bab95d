//! The binding between an attestation report and the audit log.
//!
//! `REPORT_DATA = SHA-512("cloister-attest/v1/report-data" ‖ boot_id ‖
//! checkpoint ‖ public_key)`, where `checkpoint` is the 112-byte encoding of
//! the log's latest [`Checkpoint`] (boot id, block number, record count,
//! lost records, the block's MAC — the value of the hash chain — and its
//! tag), or 112 zero bytes before the log has one (the key-release report,
//! made before the log is formatted), and `public_key` is the guest's
//! ephemeral X25519 key. SHA-512 fills the 64 bytes SNP and TDX reserve for
//! it.
//!
//! The kernel records a report with those inputs as an `attestation`
//! record ([`AttestationRecord`]):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | version, 1 |
//! | 2 | 2 | report length in bytes |
//! | 4 | 4 | reserved, zero |
//! | 8 | 112 | checkpoint (`Checkpoint::to_bytes`) |
//! | 120 | 32 | guest X25519 public key |
//! | 152 | n | the report, as the platform returned it |

use sha2::{Digest, Sha512};

use crate::checkpoint::{CHECKPOINT_BYTES, Checkpoint};

/// Length of `REPORT_DATA` (SNP `REPORT_DATA`, TDX `REPORTDATA`).
pub const REPORT_DATA_BYTES: usize = 64;
/// Domain-separation tag of the binding hash.
pub const DOMAIN_REPORT_DATA: &[u8] = b"cloister-attest/v1/report-data";
/// Bytes of an attestation record's payload before the report.
pub const ATTESTATION_FIXED_BYTES: usize = 152;
const VERSION: u16 = 1;

/// `REPORT_DATA` for a report that binds `boot_id`, `checkpoint` (`None`
/// before the log has one) and the guest's ephemeral `public_key`.
pub fn report_data(
    boot_id: &[u8; 16],
    checkpoint: Option<&Checkpoint>,
    public_key: &[u8; 32],
) -> [u8; REPORT_DATA_BYTES] {
    let checkpoint = checkpoint.map_or([0; CHECKPOINT_BYTES], Checkpoint::to_bytes);
    let mut h = Sha512::new();
    h.update(DOMAIN_REPORT_DATA);
    h.update(boot_id);
    h.update(checkpoint);
    h.update(public_key);
    h.finalize().into()
}

/// An attestation record's payload: a report and the inputs of its
/// `REPORT_DATA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttestationRecord<'a> {
    /// The checkpoint the report binds.
    pub checkpoint: Checkpoint,
    /// The guest's ephemeral X25519 public key.
    pub public_key: [u8; 32],
    /// The report as the platform returned it (any [`ReportKind`](super::ReportKind)).
    pub report: &'a [u8],
}

/// Why an attestation payload does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// Shorter than its fixed part or its stated report length.
    Truncated,
    /// Longer than its stated report length.
    TrailingBytes,
    /// A version this reader does not know.
    UnknownVersion(u16),
    /// The checkpoint does not parse.
    BadCheckpoint,
    /// The report is longer than a record can carry.
    TooLong,
}

impl core::fmt::Display for RecordError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RecordError::Truncated => f.write_str("attestation record truncated"),
            RecordError::TrailingBytes => f.write_str("attestation record has trailing bytes"),
            RecordError::UnknownVersion(v) => write!(f, "attestation record version {v}"),
            RecordError::BadCheckpoint => f.write_str("attestation record checkpoint is malformed"),
            RecordError::TooLong => f.write_str("attestation report too long for a record"),
        }
    }
}

impl<'a> AttestationRecord<'a> {
    /// The payload's length.
    pub fn encoded_len(&self) -> usize {
        ATTESTATION_FIXED_BYTES + self.report.len()
    }

    /// Encodes into `out`, which must be [`Self::encoded_len`] bytes.
    pub fn encode(&self, out: &mut [u8]) -> Result<(), RecordError> {
        let len = u16::try_from(self.report.len()).map_err(|_| RecordError::TooLong)?;
        if out.len() != self.encoded_len() {
            return Err(RecordError::Truncated);
        }
        out[0..2].copy_from_slice(&VERSION.to_le_bytes());
        out[2..4].copy_from_slice(&len.to_le_bytes());
        out[4..8].fill(0);
        out[8..120].copy_from_slice(&self.checkpoint.to_bytes());
        out[120..152].copy_from_slice(&self.public_key);
        out[152..].copy_from_slice(self.report);
        Ok(())
    }

    /// Decodes a payload, checking every length first.
    pub fn decode(p: &'a [u8]) -> Result<Self, RecordError> {
        let fixed = p
            .get(..ATTESTATION_FIXED_BYTES)
            .ok_or(RecordError::Truncated)?;
        let version = u16::from_le_bytes([fixed[0], fixed[1]]);
        if version != VERSION {
            return Err(RecordError::UnknownVersion(version));
        }
        let len = usize::from(u16::from_le_bytes([fixed[2], fixed[3]]));
        let report = &p[ATTESTATION_FIXED_BYTES..];
        if report.len() < len {
            return Err(RecordError::Truncated);
        }
        if report.len() > len {
            return Err(RecordError::TrailingBytes);
        }
        let checkpoint =
            Checkpoint::from_bytes(&fixed[8..120]).ok_or(RecordError::BadCheckpoint)?;
        let mut public_key = [0; 32];
        public_key.copy_from_slice(&fixed[120..152]);
        Ok(AttestationRecord {
            checkpoint,
            public_key,
            report,
        })
    }

    /// The `REPORT_DATA` a genuine report of this record must carry.
    pub fn expected_report_data(&self) -> [u8; REPORT_DATA_BYTES] {
        report_data(
            &self.checkpoint.boot_id,
            Some(&self.checkpoint),
            &self.public_key,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint::new_signed(&[7; 32], [1; 16], 3, 40, 0, [9; 32])
    }

    #[test]
    fn report_data_depends_on_every_input() {
        let c = checkpoint();
        let base = report_data(&[1; 16], Some(&c), &[2; 32]);
        assert_ne!(base, report_data(&[3; 16], Some(&c), &[2; 32]));
        assert_ne!(base, report_data(&[1; 16], None, &[2; 32]));
        assert_ne!(base, report_data(&[1; 16], Some(&c), &[4; 32]));
        let mut later = c;
        later.next_record_seq += 1;
        assert_ne!(base, report_data(&[1; 16], Some(&later), &[2; 32]));
        let mut other_chain = c;
        other_chain.block_mac[0] ^= 1;
        assert_ne!(base, report_data(&[1; 16], Some(&other_chain), &[2; 32]));
    }

    #[test]
    fn report_data_is_sha512_of_the_documented_concatenation() {
        let c = checkpoint();
        let mut input = Vec::new();
        input.extend_from_slice(b"cloister-attest/v1/report-data");
        input.extend_from_slice(&[1; 16]);
        input.extend_from_slice(&c.to_bytes());
        input.extend_from_slice(&[2; 32]);
        let want: [u8; 64] = Sha512::digest(&input).into();
        assert_eq!(report_data(&[1; 16], Some(&c), &[2; 32]), want);
    }

    #[test]
    fn record_round_trips_and_rejects_bad_lengths() {
        let report = [5u8; 40];
        let r = AttestationRecord {
            checkpoint: checkpoint(),
            public_key: [2; 32],
            report: &report,
        };
        let mut buf = vec![0; r.encoded_len()];
        r.encode(&mut buf).unwrap();
        assert_eq!(AttestationRecord::decode(&buf), Ok(r));
        assert_eq!(
            AttestationRecord::decode(&buf[..buf.len() - 1]),
            Err(RecordError::Truncated)
        );
        let mut longer = buf.clone();
        longer.push(0);
        assert_eq!(
            AttestationRecord::decode(&longer),
            Err(RecordError::TrailingBytes)
        );
        let mut bad = buf.clone();
        bad[0] = 2;
        assert_eq!(
            AttestationRecord::decode(&bad),
            Err(RecordError::UnknownVersion(2))
        );
        bad = buf.clone();
        bad[8] ^= 1;
        assert_eq!(
            AttestationRecord::decode(&bad),
            Err(RecordError::BadCheckpoint)
        );
        for cut in 0..buf.len() {
            let _ = AttestationRecord::decode(&buf[..cut]);
        }
    }
}
