//! The GHCB MSR protocol (AMD GHCB specification #56421, section 2.3.1
//! "GHCB MSR Protocol"): requests and responses written to and read from
//! the GHCB MSR (`0xC001_0130`) around a `VMGEXIT`, before a GHCB page
//! exists or where none is needed. Bits 11:0 are GHCBInfo (the request or
//! response code), bits 63:12 GHCBData.
//!
//! Values match Linux's `arch/x86/include/asm/sev-common.h`.

/// The GHCB MSR.
pub const MSR_GHCB: u32 = 0xc001_0130;

const INFO_MASK: u64 = 0xfff;

/// GHCBInfo codes.
#[allow(missing_docs, reason = "names follow the specification")]
pub mod code {
    pub const SEV_INFO_RESP: u64 = 0x001;
    pub const SEV_INFO_REQ: u64 = 0x002;
    pub const CPUID_REQ: u64 = 0x004;
    pub const CPUID_RESP: u64 = 0x005;
    pub const AP_RESET_HOLD_REQ: u64 = 0x006;
    pub const AP_RESET_HOLD_RESP: u64 = 0x007;
    pub const PREFERRED_GPA_REQ: u64 = 0x010;
    pub const PREFERRED_GPA_RESP: u64 = 0x011;
    pub const REGISTER_GPA_REQ: u64 = 0x012;
    pub const REGISTER_GPA_RESP: u64 = 0x013;
    pub const PSC_REQ: u64 = 0x014;
    pub const PSC_RESP: u64 = 0x015;
    pub const HV_FEATURES_REQ: u64 = 0x080;
    pub const HV_FEATURES_RESP: u64 = 0x081;
    pub const TERM_REQ: u64 = 0x100;
}

/// What a response did not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsrError {
    /// The response code is not the one that answers the request.
    UnexpectedResponse {
        /// The code the request expects.
        expected: u64,
        /// The MSR's whole value.
        got: u64,
    },
    /// The hypervisor answered with an error code (page-state change).
    HostError(u32),
    /// The hypervisor registered another GHCB page than asked.
    WrongGpa,
    /// The protocol versions do not overlap what this guest speaks.
    Unsupported,
}

fn expect(value: u64, code: u64) -> Result<u64, MsrError> {
    if value & INFO_MASK == code {
        Ok(value >> 12)
    } else {
        Err(MsrError::UnexpectedResponse {
            expected: code,
            got: value,
        })
    }
}

/// The hypervisor's SEV information (response 0x001).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SevInfo {
    /// Highest GHCB protocol version it speaks.
    pub max_version: u16,
    /// Lowest.
    pub min_version: u16,
    /// The C-bit (encryption bit) position.
    pub c_bit: u8,
}

/// GHCB protocol versions this guest speaks (2: SEV-SNP).
pub const PROTOCOL_MIN: u16 = 2;
/// See [`PROTOCOL_MIN`].
pub const PROTOCOL_MAX: u16 = 2;

/// `SEV Information` request.
pub fn sev_info_request() -> u64 {
    code::SEV_INFO_REQ
}

/// Decodes the SEV information response.
pub fn sev_info_response(value: u64) -> Result<SevInfo, MsrError> {
    expect(value, code::SEV_INFO_RESP)?;
    Ok(SevInfo {
        max_version: (value >> 48) as u16,
        min_version: (value >> 32) as u16,
        c_bit: (value >> 24) as u8,
    })
}

impl SevInfo {
    /// The protocol version to use: the highest both sides speak.
    pub fn negotiate(&self) -> Result<u16, MsrError> {
        let v = self.max_version.min(PROTOCOL_MAX);
        if v < self.min_version.max(PROTOCOL_MIN) {
            return Err(MsrError::Unsupported);
        }
        Ok(v)
    }
}

/// A CPUID register (bits 31:30 of a CPUID request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuidReg {
    /// EAX.
    Eax = 0,
    /// EBX.
    Ebx = 1,
    /// ECX.
    Ecx = 2,
    /// EDX.
    Edx = 3,
}

/// CPUID request for one register of `leaf` (sub-leaf 0: the MSR protocol
/// cannot carry one).
pub fn cpuid_request(leaf: u32, reg: CpuidReg) -> u64 {
    code::CPUID_REQ | ((reg as u64) << 30) | (u64::from(leaf) << 32)
}

/// Decodes a CPUID response for `reg`: the register's value.
pub fn cpuid_response(value: u64, reg: CpuidReg) -> Result<u32, MsrError> {
    expect(value, code::CPUID_RESP)?;
    if (value >> 30) & 3 != reg as u64 {
        return Err(MsrError::UnexpectedResponse {
            expected: code::CPUID_RESP,
            got: value,
        });
    }
    Ok((value >> 32) as u32)
}

/// Register-GHCB-GPA request for the page at guest frame `gfn`.
pub fn register_ghcb_request(gfn: u64) -> u64 {
    code::REGISTER_GPA_REQ | ((gfn & ((1 << 52) - 1)) << 12)
}

/// Checks the registration response names `gfn`.
pub fn register_ghcb_response(value: u64, gfn: u64) -> Result<(), MsrError> {
    if expect(value, code::REGISTER_GPA_RESP)? != gfn {
        return Err(MsrError::WrongGpa);
    }
    Ok(())
}

/// A page-state-change operation (also the operation of a PSC entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageOp {
    /// Make the page private (guest-owned).
    Private = 1,
    /// Make the page shared with the host.
    Shared = 2,
}

/// Page-state-change request for one 4 KiB page at `gfn`.
pub fn psc_request(gfn: u64, op: PageOp) -> u64 {
    code::PSC_REQ | ((op as u64) << 52) | ((gfn & ((1 << 40) - 1)) << 12)
}

/// Decodes a page-state-change response: its error code must be 0.
pub fn psc_response(value: u64) -> Result<(), MsrError> {
    expect(value, code::PSC_RESP)?;
    match (value >> 32) as u32 {
        0 => Ok(()),
        e => Err(MsrError::HostError(e)),
    }
}

/// Hypervisor-feature request.
pub fn hv_features_request() -> u64 {
    code::HV_FEATURES_REQ
}

/// Hypervisor features bit 0: SEV-SNP supported.
pub const HV_FEATURE_SNP: u64 = 1 << 0;

/// Decodes the features bitmap.
pub fn hv_features_response(value: u64) -> Result<u64, MsrError> {
    expect(value, code::HV_FEATURES_RESP)
}

/// Termination reason-code set 0: the GHCB specification's general codes.
pub const TERM_SET_GENERAL: u8 = 0;
/// Reason-code set 1: Cloister's own codes (`FailureReason::code`).
pub const TERM_SET_CLOISTER: u8 = 1;
/// Set 0, code 0: general termination request.
pub const TERM_GENERAL: u8 = 0;
/// Set 0, code 1: the protocol version is not supported.
pub const TERM_PROTOCOL_UNSUPPORTED: u8 = 1;
/// Set 0, code 2: SEV-SNP features not supported.
pub const TERM_SNP_UNSUPPORTED: u8 = 2;

/// Termination request with a reason code in a reason-code set.
pub fn termination_request(set: u8, reason: u8) -> u64 {
    code::TERM_REQ | (u64::from(set & 0xf) << 12) | (u64::from(reason) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_specifications_bit_layout() {
        // Linux: GHCB_CPUID_REQ(fn, reg) = 0x004 | (reg << 30) | (fn << 32).
        assert_eq!(
            cpuid_request(0x8000_001f, CpuidReg::Ebx),
            0x8000_001f_4000_0004
        );
        assert_eq!(cpuid_request(1, CpuidReg::Edx), 0x0000_0001_c000_0004);
        // GHCB_MSR_REG_GPA_REQ_VAL(gfn) = (gfn << 12) | 0x012.
        assert_eq!(register_ghcb_request(0x1234), 0x0123_4012);
        // GHCB_MSR_PSC_REQ_GFN(gfn, op) = (op << 52) | (gfn << 12) | 0x014.
        assert_eq!(psc_request(0xabcde, PageOp::Shared), 0x0020_0000_abcd_e014);
        assert_eq!(psc_request(1, PageOp::Private), 0x0010_0000_0000_1014);
        // GHCB_SEV_TERM_REASON(set, val) = (set << 12) | (val << 16) | 0x100.
        assert_eq!(
            termination_request(TERM_SET_GENERAL, TERM_SNP_UNSUPPORTED),
            0x2_0100
        );
        assert_eq!(termination_request(1, 4), 0x4_1100);
        assert_eq!(sev_info_request(), 2);
        assert_eq!(hv_features_request(), 0x80);
    }

    #[test]
    fn responses_are_checked_and_decoded() {
        // max 2, min 1, C-bit 51.
        let info = sev_info_response(0x0002_0001_3300_0001).unwrap();
        assert_eq!(
            info,
            SevInfo {
                max_version: 2,
                min_version: 1,
                c_bit: 51
            }
        );
        assert_eq!(info.negotiate(), Ok(2));
        let old = sev_info_response(0x0001_0001_3300_0001).unwrap();
        assert_eq!(old.negotiate(), Err(MsrError::Unsupported));
        assert!(matches!(
            sev_info_response(0x0002_0001_3300_0005),
            Err(MsrError::UnexpectedResponse { .. })
        ));
        assert_eq!(
            cpuid_response(0x1234_5678_4000_0005, CpuidReg::Ebx),
            Ok(0x1234_5678)
        );
        assert!(cpuid_response(0x1234_5678_0000_0005, CpuidReg::Ebx).is_err());
        assert_eq!(register_ghcb_response(0x0123_4013, 0x1234), Ok(()));
        assert_eq!(
            register_ghcb_response(0x0123_5013, 0x1234),
            Err(MsrError::WrongGpa)
        );
        assert_eq!(psc_response(0x015), Ok(()));
        assert_eq!(
            psc_response(0x0000_0007_0000_0015),
            Err(MsrError::HostError(7))
        );
        assert_eq!(hv_features_response(0x1081), Ok(1));
    }
}
