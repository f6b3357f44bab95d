//! The SEV-SNP attestation report (SEV-SNP firmware ABI #56860, table
//! "ATTESTATION_REPORT Structure"): 0x4A0 bytes signed by the chip's
//! VCEK (ECDSA P-384 over bytes 0..0x2A0). Cloister reads the fields a
//! verifier compares; checking the signature against AMD's certificate
//! chain is the verifier's job (not done here: no AMD keys are fetched).

/// Report bytes.
pub const REPORT_BYTES: usize = 0x4a0;

/// Field offsets.
#[allow(missing_docs, reason = "names follow the specification's table")]
pub mod offset {
    pub const VERSION: usize = 0x00;
    pub const GUEST_SVN: usize = 0x04;
    pub const POLICY: usize = 0x08;
    pub const FAMILY_ID: usize = 0x10;
    pub const IMAGE_ID: usize = 0x20;
    pub const VMPL: usize = 0x30;
    pub const SIGNATURE_ALGO: usize = 0x34;
    pub const CURRENT_TCB: usize = 0x38;
    pub const PLATFORM_INFO: usize = 0x40;
    pub const REPORT_DATA: usize = 0x50;
    pub const MEASUREMENT: usize = 0x90;
    pub const HOST_DATA: usize = 0xc0;
    pub const ID_KEY_DIGEST: usize = 0xe0;
    pub const AUTHOR_KEY_DIGEST: usize = 0x110;
    pub const REPORT_ID: usize = 0x140;
    pub const REPORT_ID_MA: usize = 0x160;
    pub const REPORTED_TCB: usize = 0x180;
    pub const CHIP_ID: usize = 0x1a0;
    pub const SIGNATURE: usize = 0x2a0;
}

/// Why a report was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportError {
    /// Not 0x4A0 bytes.
    Length(usize),
    /// A version this parser does not know (2 to 5 are).
    Version(u32),
}

/// A parsed report (borrowing the bytes).
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    bytes: &'a [u8; REPORT_BYTES],
}

/// Parses a report.
pub fn parse(bytes: &[u8]) -> Result<Report<'_>, ReportError> {
    let bytes: &[u8; REPORT_BYTES] = bytes
        .try_into()
        .map_err(|_| ReportError::Length(bytes.len()))?;
    let r = Report { bytes };
    if !(2..=5).contains(&r.version()) {
        return Err(ReportError::Version(r.version()));
    }
    Ok(r)
}

impl<'a> Report<'a> {
    fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes([
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ])
    }

    fn u64_at(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[at..at + 8]);
        u64::from_le_bytes(b)
    }

    /// Report format version.
    pub fn version(&self) -> u32 {
        self.u32_at(offset::VERSION)
    }
    /// The guest's security version number.
    pub fn guest_svn(&self) -> u32 {
        self.u32_at(offset::GUEST_SVN)
    }
    /// The guest policy.
    pub fn policy(&self) -> u64 {
        self.u64_at(offset::POLICY)
    }
    /// The VMPL that asked.
    pub fn vmpl(&self) -> u32 {
        self.u32_at(offset::VMPL)
    }
    /// The 64 bytes the guest bound into the report.
    pub fn report_data(&self) -> &'a [u8] {
        &self.bytes[offset::REPORT_DATA..offset::REPORT_DATA + 64]
    }
    /// The launch measurement (SHA-384).
    pub fn measurement(&self) -> &'a [u8] {
        &self.bytes[offset::MEASUREMENT..offset::MEASUREMENT + 48]
    }
    /// The host's data, fixed at launch.
    pub fn host_data(&self) -> &'a [u8] {
        &self.bytes[offset::HOST_DATA..offset::HOST_DATA + 32]
    }
    /// The TCB version the report was signed under.
    pub fn reported_tcb(&self) -> u64 {
        self.u64_at(offset::REPORTED_TCB)
    }
    /// The chip's identifier.
    pub fn chip_id(&self) -> &'a [u8] {
        &self.bytes[offset::CHIP_ID..offset::CHIP_ID + 64]
    }
    /// The signature (R and S, 72 bytes each, little-endian).
    pub fn signature(&self) -> &'a [u8] {
        &self.bytes[offset::SIGNATURE..offset::SIGNATURE + 144]
    }
    /// The signed bytes.
    pub fn signed_bytes(&self) -> &'a [u8] {
        &self.bytes[..offset::SIGNATURE]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_read_from_its_offset() {
        let mut b = [0u8; REPORT_BYTES];
        b[0..4].copy_from_slice(&2u32.to_le_bytes());
        b[4..8].copy_from_slice(&7u32.to_le_bytes());
        b[8..16].copy_from_slice(&0x3_0000u64.to_le_bytes());
        b[0x30..0x34].copy_from_slice(&1u32.to_le_bytes());
        for (i, x) in b[0x50..0x90].iter_mut().enumerate() {
            *x = i as u8;
        }
        b[0x90..0xc0].fill(0x11);
        b[0xc0..0xe0].fill(0x22);
        b[0x180..0x188].copy_from_slice(&0x0803_0000_0000_0003u64.to_le_bytes());
        b[0x1a0..0x1e0].fill(0x33);
        b[0x2a0..0x330].fill(0x44);
        let r = parse(&b).unwrap();
        assert_eq!(
            (r.version(), r.guest_svn(), r.policy(), r.vmpl()),
            (2, 7, 0x3_0000, 1)
        );
        assert_eq!(r.report_data()[0], 0);
        assert_eq!(r.report_data()[63], 63);
        assert_eq!(r.measurement(), &[0x11; 48]);
        assert_eq!(r.host_data(), &[0x22; 32]);
        assert_eq!(r.reported_tcb(), 0x0803_0000_0000_0003);
        assert_eq!(r.chip_id(), &[0x33; 64]);
        assert_eq!(r.signature(), &[0x44; 144]);
        assert_eq!(r.signed_bytes().len(), 0x2a0);
    }

    #[test]
    fn wrong_lengths_and_versions_are_refused() {
        assert_eq!(parse(&[0; 100]).unwrap_err(), ReportError::Length(100));
        let b = [0u8; REPORT_BYTES];
        assert_eq!(parse(&b).unwrap_err(), ReportError::Version(0));
        let mut b = b;
        b[0] = 9;
        assert_eq!(parse(&b).unwrap_err(), ReportError::Version(9));
    }
}
