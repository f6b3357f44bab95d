//! Report kinds and their parsers: what the verifier needs from a report
//! is its kind, its `REPORT_DATA` and whether anything signed it.
//!
//! [`audit::attest::ReportKind::detect`] picks the kind; [`parse`]
//! dispatches: the native report to [`audit::attest::NativeReport`], an
//! SEV-SNP report to `cvm::snp::report` (`REPORT_DATA` at 0x50), a TDX
//! TDREPORT to `cvm::tdx::report` (`REPORTMACSTRUCT.REPORTDATA` at 128) —
//! a new report parser plugs in as one more arm of [`parse`]. Checking a
//! hardware report's signature (SNP: the VCEK/VLEK certificate chain to
//! AMD's root; TDX: a quote from the quoting enclave, since the TDREPORT's
//! MAC is checkable only on the same CPU) needs the vendor's certificates
//! and is not done here: such a report's binding is checked, its
//! signature reported as not checked.

use audit::attest::{NativeReport, REPORT_DATA_BYTES, ReportKind};

/// What the verifier learns from a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedReport {
    /// Its format.
    pub kind: ReportKind,
    /// The data it binds.
    pub report_data: [u8; REPORT_DATA_BYTES],
    /// Whether its signature was checked against a hardware root of trust
    /// (never, for the native report).
    pub signature_verified: bool,
}

/// Detects the kind of `bytes` and parses it.
pub fn parse(bytes: &[u8]) -> Result<ParsedReport, String> {
    let kind = ReportKind::detect(bytes).ok_or_else(|| {
        format!(
            "the report ({} bytes) is neither a native unsigned report, an SEV-SNP report nor a TDX TDREPORT",
            bytes.len()
        )
    })?;
    match kind {
        ReportKind::NativeUnsigned => {
            let r = NativeReport::parse(bytes).map_err(|e| format!("native report: {e}"))?;
            Ok(ParsedReport {
                kind,
                report_data: r.report_data,
                signature_verified: false,
            })
        }
        ReportKind::SevSnp => {
            let r = cvm::snp::report::parse(bytes).map_err(|e| format!("SEV-SNP report: {e:?}"))?;
            hardware(kind, r.report_data())
        }
        ReportKind::TdxTdReport => {
            let r = cvm::tdx::report::parse(bytes).map_err(|e| format!("TDX TDREPORT: {e:?}"))?;
            hardware(kind, r.report_data())
        }
    }
}

/// A hardware report's data; its signature is not checked here.
fn hardware(kind: ReportKind, data: &[u8]) -> Result<ParsedReport, String> {
    let report_data = data
        .try_into()
        .map_err(|_| format!("{}: REPORT_DATA is not 64 bytes", kind.name()))?;
    Ok(ParsedReport {
        kind,
        report_data,
        signature_verified: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_dispatched_to_its_parser_and_yields_its_report_data() {
        let native = NativeReport {
            measurement: None,
            report_data: [1; 64],
        }
        .to_bytes();
        let p = parse(&native).unwrap();
        assert_eq!(
            (p.kind, p.report_data),
            (ReportKind::NativeUnsigned, [1; 64])
        );

        let mut snp = vec![0u8; 0x4a0];
        snp[0] = 2;
        snp[0x34] = 1; // SIGNATURE_ALGO: ECDSA P-384 with SHA-384
        snp[0x50..0x90].fill(2);
        let p = parse(&snp).unwrap();
        assert_eq!((p.kind, p.report_data), (ReportKind::SevSnp, [2; 64]));
        assert!(!p.signature_verified);

        let mut tdx = vec![0u8; 1024];
        tdx[0] = 0x81;
        tdx[128..192].fill(3);
        let p = parse(&tdx).unwrap();
        assert_eq!((p.kind, p.report_data), (ReportKind::TdxTdReport, [3; 64]));
        assert!(!p.signature_verified);

        assert!(parse(&[0; 100]).is_err());
        let mut bad_native = native;
        bad_native[150] = 1;
        assert!(parse(&bad_native).is_err());
    }
}
