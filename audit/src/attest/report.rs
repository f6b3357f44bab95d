//! Report kinds and the native backend's unsigned report.
//!
//! [`ReportKind::detect`] tells the three report formats apart by their
//! fixed fields, so a verifier can dispatch to the right parser: the native
//! report by its magic, an SEV-SNP `ATTESTATION_REPORT` (SEV-SNP ABI
//! specification, Table "ATTESTATION_REPORT Structure": 0x4A0 bytes,
//! `VERSION` at 0x00) by its length and version, a TDX `TDREPORT_STRUCT`
//! (TDX module ABI, 1024 bytes, `REPORTMACSTRUCT.REPORTTYPE.TYPE` = 0x81 at
//! offset 0) by its length and type.
//!
//! The native report (plain QEMU/KVM: no hardware root of trust) is
//! **unsigned**: anyone can write one, so it proves nothing about the
//! machine. It exists so the binding flow (report ↔ audit image ↔ verify)
//! runs and is tested without CVM hardware. Layout (little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 24 | magic `CLOISTER-UNSIGNED-REPORT` |
//! | 24 | 2 | version, 1 |
//! | 26 | 1 | platform: 0 native |
//! | 27 | 1 | measurement present: 0 no, 1 yes |
//! | 28 | 4 | reserved, zero |
//! | 32 | 48 | measurement (SHA-384), zero when absent |
//! | 80 | 64 | `REPORT_DATA` |
//! | 144 | 16 | reserved, zero |

use super::binding::REPORT_DATA_BYTES;

/// Magic of the native unsigned report.
pub const NATIVE_MAGIC: &[u8; 24] = b"CLOISTER-UNSIGNED-REPORT";
/// Length of a native report.
pub const NATIVE_REPORT_BYTES: usize = 160;
/// Length of an SEV-SNP attestation report (0x4A0).
pub const SNP_REPORT_BYTES: usize = 0x4a0;
/// Length of a TDX `TDREPORT_STRUCT`.
pub const TDX_REPORT_BYTES: usize = 1024;
const NATIVE_VERSION: u16 = 1;
/// `REPORTTYPE.TYPE` of a TDX report.
const TDX_REPORT_TYPE: u8 = 0x81;

/// The format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Cloister's unsigned native report.
    NativeUnsigned,
    /// An AMD SEV-SNP `ATTESTATION_REPORT`.
    SevSnp,
    /// An Intel TDX `TDREPORT_STRUCT`.
    TdxTdReport,
}

impl ReportKind {
    /// The kind of `report`, or `None` if it is none of the three.
    pub fn detect(report: &[u8]) -> Option<ReportKind> {
        if report.starts_with(NATIVE_MAGIC) {
            return Some(ReportKind::NativeUnsigned);
        }
        match report.len() {
            SNP_REPORT_BYTES => {
                let version = u32::from_le_bytes(report[0..4].try_into().ok()?);
                (2..=5).contains(&version).then_some(ReportKind::SevSnp)
            }
            TDX_REPORT_BYTES if report[0] == TDX_REPORT_TYPE => Some(ReportKind::TdxTdReport),
            _ => None,
        }
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::NativeUnsigned => "native (unsigned)",
            ReportKind::SevSnp => "SEV-SNP attestation report",
            ReportKind::TdxTdReport => "TDX TDREPORT",
        }
    }
}

/// Why a native report does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportError {
    /// Not [`NATIVE_REPORT_BYTES`] long.
    BadLength(usize),
    /// No `CLOISTER-UNSIGNED-REPORT` magic.
    BadMagic,
    /// A version this reader does not know.
    UnknownVersion(u16),
    /// A field that must be zero or a flag out of range.
    BadField(&'static str),
}

impl core::fmt::Display for ReportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReportError::BadLength(n) => {
                write!(f, "native report is {n} bytes, not {NATIVE_REPORT_BYTES}")
            }
            ReportError::BadMagic => f.write_str("no CLOISTER-UNSIGNED-REPORT magic"),
            ReportError::UnknownVersion(v) => write!(f, "native report version {v}"),
            ReportError::BadField(name) => write!(f, "native report field {name} is invalid"),
        }
    }
}

/// The native backend's unsigned report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeReport {
    /// SHA-384 measurement of the kernel, if the kernel computed one.
    pub measurement: Option<[u8; 48]>,
    /// The bound data.
    pub report_data: [u8; REPORT_DATA_BYTES],
}

impl NativeReport {
    /// Encodes the report.
    pub fn to_bytes(&self) -> [u8; NATIVE_REPORT_BYTES] {
        let mut b = [0u8; NATIVE_REPORT_BYTES];
        b[0..24].copy_from_slice(NATIVE_MAGIC);
        b[24..26].copy_from_slice(&NATIVE_VERSION.to_le_bytes());
        b[26] = 0;
        if let Some(m) = &self.measurement {
            b[27] = 1;
            b[32..80].copy_from_slice(m);
        }
        b[80..144].copy_from_slice(&self.report_data);
        b
    }

    /// Parses a report, checking its length, magic, version and reserved
    /// fields.
    pub fn parse(b: &[u8]) -> Result<Self, ReportError> {
        if b.len() != NATIVE_REPORT_BYTES {
            return Err(ReportError::BadLength(b.len()));
        }
        if &b[0..24] != NATIVE_MAGIC {
            return Err(ReportError::BadMagic);
        }
        let version = u16::from_le_bytes([b[24], b[25]]);
        if version != NATIVE_VERSION {
            return Err(ReportError::UnknownVersion(version));
        }
        if b[26] != 0 {
            return Err(ReportError::BadField("platform"));
        }
        if b[28..32].iter().chain(&b[144..160]).any(|&x| x != 0) {
            return Err(ReportError::BadField("reserved"));
        }
        let mut m = [0u8; 48];
        m.copy_from_slice(&b[32..80]);
        let measurement = match b[27] {
            0 if m == [0; 48] => None,
            1 => Some(m),
            _ => return Err(ReportError::BadField("measurement")),
        };
        let mut report_data = [0u8; REPORT_DATA_BYTES];
        report_data.copy_from_slice(&b[80..144]);
        Ok(NativeReport {
            measurement,
            report_data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_report_round_trips_with_and_without_measurement() {
        for measurement in [None, Some([3u8; 48])] {
            let r = NativeReport {
                measurement,
                report_data: [9; 64],
            };
            let bytes = r.to_bytes();
            assert_eq!(&bytes[..24], b"CLOISTER-UNSIGNED-REPORT");
            assert_eq!(NativeReport::parse(&bytes), Ok(r));
            assert_eq!(ReportKind::detect(&bytes), Some(ReportKind::NativeUnsigned));
        }
    }

    #[test]
    fn native_report_rejects_malformed_input() {
        let good = NativeReport {
            measurement: None,
            report_data: [1; 64],
        }
        .to_bytes();
        assert_eq!(
            NativeReport::parse(&good[..159]),
            Err(ReportError::BadLength(159))
        );
        let mut b = good;
        b[0] = b'X';
        assert_eq!(NativeReport::parse(&b), Err(ReportError::BadMagic));
        b = good;
        b[24] = 2;
        assert_eq!(NativeReport::parse(&b), Err(ReportError::UnknownVersion(2)));
        b = good;
        b[150] = 1;
        assert_eq!(
            NativeReport::parse(&b),
            Err(ReportError::BadField("reserved"))
        );
        b = good;
        b[40] = 1;
        assert_eq!(
            NativeReport::parse(&b),
            Err(ReportError::BadField("measurement"))
        );
    }

    #[test]
    fn detects_snp_and_tdx_layouts_by_their_fixed_fields() {
        let mut snp = vec![0u8; SNP_REPORT_BYTES];
        snp[0] = 2;
        assert_eq!(ReportKind::detect(&snp), Some(ReportKind::SevSnp));
        snp[0] = 9;
        assert_eq!(ReportKind::detect(&snp), None);
        let mut tdx = vec![0u8; TDX_REPORT_BYTES];
        tdx[0] = 0x81;
        assert_eq!(ReportKind::detect(&tdx), Some(ReportKind::TdxTdReport));
        tdx[0] = 0;
        assert_eq!(ReportKind::detect(&tdx), None);
        assert_eq!(ReportKind::detect(&[]), None);
    }
}
