//! Confidential-VM guest protocols, as data and logic with no hardware
//! access, so that every encoder and decoder is tested on the host against
//! the specifications' layouts (`cargo test -p cvm`).
//!
//! The kernel's platform backends (`kernel/src/platform/{snp,tdx,native}`)
//! execute the privileged instructions (`VMGEXIT`, `PVALIDATE`, `TDCALL`)
//! and hand this crate the values to encode or the bytes to decode:
//!
//! - [`snp`]: the AMD GHCB protocol (MSR protocol, GHCB page, page-state
//!   changes), SNP guest messages and the attestation report;
//! - [`tdx`]: Intel TDX `TDCALL` leaves, `TDG.VP.VMCALL` register
//!   conventions, `#VE` information and the `TDREPORT`;
//! - [`insn`]: decoding the instruction that touched device memory, for
//!   `#VC`/`#VE` MMIO emulation and the native emulated-MMIO mode.
//!
//! Nothing here trusts the host: every value read from shared memory or a
//! host reply is checked and a violation is an error, never a panic.

#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod insn;
pub mod snp;
pub mod tdx;
