//! AMD SEV-SNP guest protocols (AMD GHCB specification #56421 and SEV-SNP
//! firmware ABI #56860), as data and logic the kernel's SNP backend
//! (`kernel/src/platform/snp`) drives.
//!
//! - [`msr_protocol`]: the GHCB MSR protocol (one 64-bit value in the GHCB
//!   MSR), used before a GHCB page exists and for termination;
//! - [`ghcb`]: the GHCB page, the SVM exit codes and the result check;
//! - [`calls`]: CPUID, port I/O, MSR and TSC requests through the GHCB;
//! - [`psc`]: page-state changes and `PVALIDATE` over ranges;
//! - [`vc`]: the `#VC` handler's dispatch over a register file;
//! - [`guest_msg`] and [`secrets`]: the encrypted guest-request channel to
//!   the AMD security processor (PSP) and the secrets page holding its keys;
//! - [`report`]: the attestation report layout;
//! - [`cpuid_page`]: the launch's CPUID page (the C-bit position the PSP
//!   checked).
//!
//! The hardware sits behind the small traits here ([`MsrProtocol`],
//! [`GhcbProtocol`], [`psc::Pvalidate`], [`guest_msg::GuestRequest`]): the
//! kernel implements them with `VMGEXIT` and `PVALIDATE`, the host tests
//! with mock hosts that misbehave on purpose.

pub mod calls;
pub mod cpuid_page;
pub mod ghcb;
pub mod guest_msg;
pub mod msr_protocol;
pub mod psc;
pub mod report;
pub mod secrets;
pub mod vc;

use ghcb::Ghcb;

/// Why an SNP protocol operation failed. Nothing the host answers makes
/// this crate panic: every violation ends up here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The host or the PSP refused; the value is its error code (GHCB
    /// `SW_EXITINFO2`, the MSR protocol's error field, the PSP status).
    HostError(u64),
    /// The host asked the guest to raise an exception (`SW_EXITINFO1` = 1
    /// with a valid event in `SW_EXITINFO2`): vector and error code.
    Exception {
        /// The exception vector (`#GP` = 13, `#UD` = 6).
        vector: u8,
        /// The error code, if the event carries one.
        error_code: Option<u32>,
    },
    /// The host answered something the protocol does not allow.
    Protocol(&'static str),
    /// An argument is out of range (unaligned range, oversized payload).
    InvalidArgument,
    /// The operation is not available (an instruction `#VC` does not
    /// emulate here, a feature the hypervisor lacks).
    Unsupported(&'static str),
    /// A guest message failed authentication or its sequence check; the
    /// channel refuses further use (see [`guest_msg::GuestChannel`]).
    MessageRejected(&'static str),
}

/// Result of an SNP protocol operation.
pub type Result<T> = core::result::Result<T, Error>;

/// The GHCB MSR protocol: write `request` to the GHCB MSR
/// (`0xC001_0130`), `VMGEXIT`, and return what the host left in the MSR.
pub trait MsrProtocol {
    /// One exchange (see the trait docs).
    fn msr_exchange(&mut self, request: u64) -> u64;
}

/// A GHCB exchange: the kernel copies `ghcb` into the shared GHCB page,
/// points the GHCB MSR at it, executes `VMGEXIT`, and copies the page back
/// into `ghcb` (one copy each way, so nothing the host changes later is
/// read twice). The result check is [`Ghcb::check_result`], done by the
/// caller.
pub trait GhcbProtocol {
    /// One exchange (see the trait docs).
    fn ghcb_exchange(&mut self, ghcb: &mut Ghcb);

    /// The guest-physical address of the shared GHCB page (requests that
    /// point into its shared buffer, like page-state changes, need it).
    fn ghcb_gpa(&self) -> u64;
}

#[cfg(test)]
mod hostile_tests;
