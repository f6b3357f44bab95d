//! AMD SEV-SNP guest protocols (AMD GHCB specification #56421 and the
//! SEV-SNP firmware ABI #56860):
//!
//! - [`msr_protocol`]: the GHCB MSR protocol (SEV information, CPUID,
//!   GHCB registration, page-state changes, hypervisor features,
//!   termination);
//! - [`ghcb`]: the GHCB page, exit codes and their outcome;
//! - [`psc`]: page-state-change descriptors and the hypervisor's progress;
//! - [`guest_msg`]: encrypted guest messages to the secure processor;
//! - [`report`]: the attestation report.

pub mod ghcb;
pub mod guest_msg;
pub mod msr_protocol;
pub mod psc;
pub mod report;
