//! The SEV-SNP attestation report (SEV-SNP firmware ABI #56860, table
//! "ATTESTATION_REPORT Structure"; Linux `struct
//! snp_report` users and COCONUT-SVSM's `AttestationReport`): 0x4A0 bytes,
//! little endian, signed by the chip's VCEK/VLEK over bytes `0..0x2A0`.
//!
//! [`parse`] checks the length and the fields this guest relies on and
//! copies the rest out by offset; the signature is not verified here (that
//! is the relying party's work, with AMD's certificate chain).

use super::{Error, Result};

/// Bytes in a report.
pub const REPORT_BYTES: usize = 0x4a0;
/// The signed part: everything before the signature.
pub const SIGNED_BYTES: usize = 0x2a0;

/// Field offsets (table "ATTESTATION_REPORT Structure").
pub mod offset {
    #![allow(missing_docs, reason = "field names of the spec's table")]
    pub const VERSION: usize = 0x00;
    pub const GUEST_SVN: usize = 0x04;
    pub const POLICY: usize = 0x08;
    pub const FAMILY_ID: usize = 0x10;
    pub const IMAGE_ID: usize = 0x20;
    pub const VMPL: usize = 0x30;
    pub const SIGNATURE_ALGO: usize = 0x34;
    pub const CURRENT_TCB: usize = 0x38;
    pub const PLATFORM_INFO: usize = 0x40;
    pub const KEY_INFO: usize = 0x48;
    pub const REPORT_DATA: usize = 0x50;
    pub const MEASUREMENT: usize = 0x90;
    pub const HOST_DATA: usize = 0xc0;
    pub const ID_KEY_DIGEST: usize = 0xe0;
    pub const AUTHOR_KEY_DIGEST: usize = 0x110;
    pub const REPORT_ID: usize = 0x140;
    pub const REPORT_ID_MA: usize = 0x160;
    pub const REPORTED_TCB: usize = 0x180;
    pub const CHIP_ID: usize = 0x1a0;
    pub const COMMITTED_TCB: usize = 0x1e0;
    pub const LAUNCH_TCB: usize = 0x1f0;
    pub const SIGNATURE: usize = 0x2a0;
}

/// `SIGNATURE_ALGO` 1: ECDSA P-384 with SHA-384.
pub const SIGNATURE_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// A parsed attestation report (a private copy of its bytes and the
/// scalar fields).
#[derive(Clone, PartialEq, Eq)]
pub struct Report {
    bytes: [u8; REPORT_BYTES],
    /// Format version (2 and later are SNP reports).
    pub version: u32,
    /// The guest's security version number.
    pub guest_svn: u32,
    /// The guest policy the launch used.
    pub policy: u64,
    /// The VMPL the request came from.
    pub vmpl: u32,
    /// The signature algorithm ([`SIGNATURE_ALGO_ECDSA_P384_SHA384`]).
    pub signature_algo: u32,
    /// The current TCB version.
    pub current_tcb: u64,
    /// Platform information bits (SMT enabled, TSME enabled, …).
    pub platform_info: u64,
    /// Key information: bit 0 `AUTHOR_KEY_EN`, bit 1 `MASK_CHIP_KEY`,
    /// bits 4:2 `SIGNING_KEY` (0 VCEK, 1 VLEK).
    pub key_info: u32,
    /// The TCB the report was reported at.
    pub reported_tcb: u64,
    /// The committed TCB.
    pub committed_tcb: u64,
    /// The TCB at launch.
    pub launch_tcb: u64,
}

impl core::fmt::Debug for Report {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Report")
            .field("version", &self.version)
            .field("guest_svn", &self.guest_svn)
            .field("policy", &self.policy)
            .field("vmpl", &self.vmpl)
            .field("measurement", &self.measurement())
            .finish_non_exhaustive()
    }
}

fn u32_at(b: &[u8; REPORT_BYTES], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8; REPORT_BYTES], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | (u64::from(u32_at(b, at + 4)) << 32)
}

/// Parses a report: exactly [`REPORT_BYTES`] (or more: a response buffer
/// may be padded, the rest is ignored), version 2 or later, a VMPL of 0–3
/// and a known signature algorithm.
pub fn parse(bytes: &[u8]) -> Result<Report> {
    let bytes: [u8; REPORT_BYTES] = bytes
        .get(..REPORT_BYTES)
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::Protocol("attestation report too short"))?;
    let report = Report {
        version: u32_at(&bytes, offset::VERSION),
        guest_svn: u32_at(&bytes, offset::GUEST_SVN),
        policy: u64_at(&bytes, offset::POLICY),
        vmpl: u32_at(&bytes, offset::VMPL),
        signature_algo: u32_at(&bytes, offset::SIGNATURE_ALGO),
        current_tcb: u64_at(&bytes, offset::CURRENT_TCB),
        platform_info: u64_at(&bytes, offset::PLATFORM_INFO),
        key_info: u32_at(&bytes, offset::KEY_INFO),
        reported_tcb: u64_at(&bytes, offset::REPORTED_TCB),
        committed_tcb: u64_at(&bytes, offset::COMMITTED_TCB),
        launch_tcb: u64_at(&bytes, offset::LAUNCH_TCB),
        bytes,
    };
    if report.version < 2 {
        return Err(Error::Protocol("attestation report version below 2"));
    }
    if report.vmpl > 3 {
        return Err(Error::Protocol("attestation report VMPL above 3"));
    }
    if report.signature_algo != SIGNATURE_ALGO_ECDSA_P384_SHA384 {
        return Err(Error::Protocol(
            "unknown attestation report signature algorithm",
        ));
    }
    Ok(report)
}

impl Report {
    fn field<const N: usize>(&self, at: usize) -> &[u8; N] {
        self.bytes[at..at + N]
            .try_into()
            .expect("offsets and sizes are constants inside the report")
    }

    /// All the bytes.
    pub fn as_bytes(&self) -> &[u8; REPORT_BYTES] {
        &self.bytes
    }

    /// `REPORT_DATA`: the 64 bytes the guest bound into the report.
    pub fn report_data(&self) -> &[u8; 64] {
        self.field(offset::REPORT_DATA)
    }

    /// `MEASUREMENT`: the launch digest (SHA-384).
    pub fn measurement(&self) -> &[u8; 48] {
        self.field(offset::MEASUREMENT)
    }

    /// `FAMILY_ID` from the ID block.
    pub fn family_id(&self) -> &[u8; 16] {
        self.field(offset::FAMILY_ID)
    }

    /// `IMAGE_ID` from the ID block.
    pub fn image_id(&self) -> &[u8; 16] {
        self.field(offset::IMAGE_ID)
    }

    /// `HOST_DATA`: what the host supplied at launch.
    pub fn host_data(&self) -> &[u8; 32] {
        self.field(offset::HOST_DATA)
    }

    /// `ID_KEY_DIGEST`: SHA-384 of the ID block's signing key.
    pub fn id_key_digest(&self) -> &[u8; 48] {
        self.field(offset::ID_KEY_DIGEST)
    }

    /// `AUTHOR_KEY_DIGEST`: SHA-384 of the author key.
    pub fn author_key_digest(&self) -> &[u8; 48] {
        self.field(offset::AUTHOR_KEY_DIGEST)
    }

    /// `REPORT_ID`: the guest's identifier for this launch.
    pub fn report_id(&self) -> &[u8; 32] {
        self.field(offset::REPORT_ID)
    }

    /// `REPORT_ID_MA`: the migration agent's report id.
    pub fn report_id_ma(&self) -> &[u8; 32] {
        self.field(offset::REPORT_ID_MA)
    }

    /// `CHIP_ID` (zero if the policy masks it).
    pub fn chip_id(&self) -> &[u8; 64] {
        self.field(offset::CHIP_ID)
    }

    /// The signature (ECDSA P-384: R at 0, S at 72, little endian, zero
    /// padded; 512 bytes).
    pub fn signature(&self) -> &[u8; REPORT_BYTES - offset::SIGNATURE] {
        self.field(offset::SIGNATURE)
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.bytes[..SIGNED_BYTES]
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
