//! The GHCB MSR protocol (GHCB spec #56421, section 2.3.1 "GHCB MSR
//! Protocol"): a request or response is one 64-bit value in the GHCB MSR
//! (`0xC001_0130`), bits 11:0 saying what it is (`GHCBInfo`) and bits 63:12
//! carrying the data (`GHCBData`). The guest uses it before it has a GHCB
//! page (negotiating the protocol version, registering the page, making
//! that page shared) and for termination, which must work when nothing
//! else does.
//!
//! Values and bit positions follow the spec's table and Linux's
//! `arch/x86/include/asm/sev-common.h`; the tests check both.

use super::{Error, MsrProtocol, Result};

/// The GHCB MSR.
pub const MSR_GHCB: u32 = 0xc001_0130;

/// `GHCBInfo` codes (bits 11:0).
pub mod info {
    /// SEV information response (from the host).
    pub const SEV_INFO_RESP: u16 = 0x001;
    /// SEV information request.
    pub const SEV_INFO_REQ: u16 = 0x002;
    /// CPUID request.
    pub const CPUID_REQ: u16 = 0x004;
    /// CPUID response.
    pub const CPUID_RESP: u16 = 0x005;
    /// Preferred GHCB GPA request.
    pub const PREFERRED_GPA_REQ: u16 = 0x010;
    /// Preferred GHCB GPA response.
    pub const PREFERRED_GPA_RESP: u16 = 0x011;
    /// GHCB GPA registration request.
    pub const REGISTER_GPA_REQ: u16 = 0x012;
    /// GHCB GPA registration response.
    pub const REGISTER_GPA_RESP: u16 = 0x013;
    /// SNP page-state-change request.
    pub const PSC_REQ: u16 = 0x014;
    /// SNP page-state-change response.
    pub const PSC_RESP: u16 = 0x015;
    /// Hypervisor feature support request.
    pub const HV_FEATURES_REQ: u16 = 0x080;
    /// Hypervisor feature support response.
    pub const HV_FEATURES_RESP: u16 = 0x081;
    /// Termination request.
    pub const TERMINATE_REQ: u16 = 0x100;
}

/// Bits 11:0 of a GHCB MSR value.
const INFO_MASK: u64 = 0xfff;

/// The `GHCBInfo` field of `value`.
pub fn info_of(value: u64) -> u16 {
    (value & INFO_MASK) as u16
}

/// Checks that `value` is a response with code `expected`.
fn expect(value: u64, expected: u16) -> Result<()> {
    if info_of(value) == expected {
        Ok(())
    } else {
        Err(Error::Protocol(
            "unexpected GHCB MSR protocol response code",
        ))
    }
}

/// The GHCB protocol versions this guest speaks: 2 (SEV-SNP) only.
pub const PROTOCOL_MIN: u16 = 2;
/// See [`PROTOCOL_MIN`].
pub const PROTOCOL_MAX: u16 = 2;

/// The SEV information response: the protocol versions the hypervisor
/// supports and the C-bit position it reports. `GHCBData[63:48]` maximum,
/// `[47:32]` minimum, `[31:24]` C-bit position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SevInfo {
    /// Highest protocol version the hypervisor supports.
    pub max_protocol: u16,
    /// Lowest protocol version the hypervisor supports.
    pub min_protocol: u16,
    /// The encryption bit's position in a physical address.
    pub c_bit: u8,
}

impl SevInfo {
    /// The request (no data).
    pub const REQUEST: u64 = info::SEV_INFO_REQ as u64;

    /// Decodes a response.
    pub fn decode(value: u64) -> Result<Self> {
        expect(value, info::SEV_INFO_RESP)?;
        Ok(Self {
            max_protocol: (value >> 48) as u16,
            min_protocol: (value >> 32) as u16,
            c_bit: (value >> 24) as u8,
        })
    }

    /// Encodes the response (what a hypervisor sends; for mock hosts).
    pub fn encode(&self) -> u64 {
        (u64::from(self.max_protocol) << 48)
            | (u64::from(self.min_protocol) << 32)
            | (u64::from(self.c_bit) << 24)
            | u64::from(info::SEV_INFO_RESP)
    }

    /// The version to use: the highest both sides support, or an error
    /// if the ranges do not meet (the guest then terminates with reason
    /// set 0, code 1).
    pub fn negotiate(&self) -> Result<u16> {
        let version = self.max_protocol.min(PROTOCOL_MAX);
        if self.min_protocol > self.max_protocol || version < PROTOCOL_MIN.max(self.min_protocol) {
            return Err(Error::Unsupported("no common GHCB protocol version"));
        }
        Ok(version)
    }
}

/// Which register a CPUID request asks for (`GHCBData[31:30]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuidRegister {
    /// EAX.
    Eax = 0,
    /// EBX.
    Ebx = 1,
    /// ECX.
    Ecx = 2,
    /// EDX.
    Edx = 3,
}

/// A CPUID request for one register of `leaf` (sub-leaf 0 only: the MSR
/// protocol has no field for it). `GHCBData[63:32]` leaf, `[31:30]`
/// register.
pub fn cpuid_request(leaf: u32, register: CpuidRegister) -> u64 {
    (u64::from(leaf) << 32) | ((register as u64) << 30) | u64::from(info::CPUID_REQ)
}

/// Decodes a CPUID response for `register`: `GHCBData[63:32]` value,
/// `[31:30]` the register echoed.
pub fn decode_cpuid_response(value: u64, register: CpuidRegister) -> Result<u32> {
    expect(value, info::CPUID_RESP)?;
    if (value >> 30) & 0x3 != register as u64 {
        return Err(Error::Protocol("CPUID response for another register"));
    }
    Ok((value >> 32) as u32)
}

/// `GHCBData[63:12]` of all ones: "no preferred GPA" / registration
/// refused.
const GFN_NONE: u64 = (1 << 52) - 1;

/// The preferred GHCB GPA request (no data).
pub const PREFERRED_GPA_REQUEST: u64 = info::PREFERRED_GPA_REQ as u64;

/// Decodes the preferred GHCB GPA response: the GFN in `GHCBData[63:12]`,
/// `None` if the hypervisor has no preference (all ones).
pub fn decode_preferred_gpa(value: u64) -> Result<Option<u64>> {
    expect(value, info::PREFERRED_GPA_RESP)?;
    let gfn = value >> 12;
    Ok((gfn != GFN_NONE).then_some(gfn))
}

/// The GHCB GPA registration request for the page at frame number `gfn`.
pub fn register_gpa_request(gfn: u64) -> u64 {
    ((gfn & GFN_NONE) << 12) | u64::from(info::REGISTER_GPA_REQ)
}

/// Checks a registration response: it must echo `gfn`.
pub fn check_register_gpa_response(value: u64, gfn: u64) -> Result<()> {
    expect(value, info::REGISTER_GPA_RESP)?;
    if value >> 12 != gfn & GFN_NONE {
        return Err(Error::Protocol("the hypervisor refused the GHCB GPA"));
    }
    Ok(())
}

/// What a page-state change makes of a page (also the operation field of
/// a [`super::psc`] entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageState {
    /// Private (guest-owned, encrypted): assigned to the guest in the RMP.
    Private = 1,
    /// Shared with the host.
    Shared = 2,
}

/// The page-state-change request for frame `gfn` (`GHCBData[51:12]` GFN,
/// `[55:52]` operation). `None` if `gfn` does not fit 40 bits.
pub fn psc_request(gfn: u64, state: PageState) -> Option<u64> {
    if gfn >> 40 != 0 {
        return None;
    }
    Some(((state as u64) << 52) | (gfn << 12) | u64::from(info::PSC_REQ))
}

/// Checks a page-state-change response: `GHCBData[63:32]` is the error
/// code, 0 for success.
pub fn check_psc_response(value: u64) -> Result<()> {
    expect(value, info::PSC_RESP)?;
    match value >> 32 {
        0 => Ok(()),
        code => Err(Error::HostError(code)),
    }
}

/// Hypervisor feature bits (`GHCBData[63:12]` of the response).
pub mod hv_features {
    /// SEV-SNP is supported.
    pub const SNP: u64 = 1 << 0;
    /// SNP AP creation (`VMGEXIT` `0x8000_0013`).
    pub const SNP_AP_CREATION: u64 = 1 << 1;
    /// SNP multi-VMPL support.
    pub const SNP_MULTI_VMPL: u64 = 1 << 5;
}

/// The hypervisor feature request (no data).
pub const HV_FEATURES_REQUEST: u64 = info::HV_FEATURES_REQ as u64;

/// Decodes the hypervisor feature response into its bitmap
/// ([`hv_features`]).
pub fn decode_hv_features(value: u64) -> Result<u64> {
    expect(value, info::HV_FEATURES_RESP)?;
    Ok(value >> 12)
}

/// Reason-code set 0: the GHCB spec's general codes.
pub const REASON_SET_GENERAL: u8 = 0;
/// Set 0, code 0: general termination request.
pub const REASON_GENERAL: u8 = 0;
/// Set 0, code 1: the GHCB protocol version is not supported.
pub const REASON_PROTOCOL_UNSUPPORTED: u8 = 1;
/// Set 0, code 2: SEV-SNP features are not supported.
pub const REASON_SNP_UNSUPPORTED: u8 = 2;

/// The termination request: `GHCBData[15:12]` reason-code set (4 bits,
/// higher bits dropped), `[23:16]` reason code. The hypervisor does not
/// answer.
pub fn terminate_request(reason_set: u8, reason: u8) -> u64 {
    (u64::from(reason_set & 0xf) << 12) | (u64::from(reason) << 16) | u64::from(info::TERMINATE_REQ)
}

/// Negotiates the protocol version with the hypervisor (SEV information
/// request), returning the version and the C-bit position.
pub fn negotiate(host: &mut impl MsrProtocol) -> Result<(u16, u8)> {
    let info = SevInfo::decode(host.msr_exchange(SevInfo::REQUEST))?;
    Ok((info.negotiate()?, info.c_bit))
}

/// Asks the hypervisor for its features and checks that it supports SNP.
pub fn hypervisor_features(host: &mut impl MsrProtocol) -> Result<u64> {
    let features = decode_hv_features(host.msr_exchange(HV_FEATURES_REQUEST))?;
    if features & hv_features::SNP == 0 {
        return Err(Error::Unsupported(
            "the hypervisor does not support SEV-SNP",
        ));
    }
    Ok(features)
}

/// Registers the GHCB page at frame `gfn`.
pub fn register_ghcb(host: &mut impl MsrProtocol, gfn: u64) -> Result<()> {
    check_register_gpa_response(host.msr_exchange(register_gpa_request(gfn)), gfn)
}

/// Changes the state of the pages `[first_gfn, first_gfn + count)` one by
/// one through the MSR protocol (before the GHCB exists; the GHCB page
/// itself is made shared this way).
pub fn change_page_state(
    host: &mut impl MsrProtocol,
    first_gfn: u64,
    count: u64,
    state: PageState,
) -> Result<()> {
    let end = first_gfn.checked_add(count).ok_or(Error::InvalidArgument)?;
    for gfn in first_gfn..end {
        let request = psc_request(gfn, state).ok_or(Error::InvalidArgument)?;
        check_psc_response(host.msr_exchange(request))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "msr_protocol_tests.rs"]
mod tests;
