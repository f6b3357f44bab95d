//! Report kinds and their parsers: what the verifier needs from a report
//! is its kind, its `REPORT_DATA` and whether anything signed it.
//!
//! [`audit::attest::ReportKind::detect`] picks the kind; [`parse`]
//! dispatches. The native report is parsed here
//! ([`audit::attest::NativeReport`]). **Hook for the SEV-SNP and TDX
//! parsers** (`cvm::snp::report`, `cvm::tdx::report`): the two arms of
//! [`parse`] marked below; each must return the report's 64-byte
//! `REPORT_DATA` (SNP: offset 0x50; TDX: `REPORTMACSTRUCT.REPORTDATA`,
//! offset 128) after its own layout checks. Checking the signature (SNP:
//! VCEK/VLEK chain; TDX: a quote from the quoting enclave) is a further
//! step that needs the vendor's certificates and is not done here.

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
        // Hook: `cvm::snp::report` goes here.
        ReportKind::SevSnp => Err("an SEV-SNP report: its parser is not in this build".into()),
        // Hook: `cvm::tdx::report` goes here.
        ReportKind::TdxTdReport => Err("a TDX TDREPORT: its parser is not in this build".into()),
    }
}
