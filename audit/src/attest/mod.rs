//! Attestation that binds the audit log (`docs/AUDIT.md`, "Attestation and
//! key release"; `docs/CVM.md`, "Attestation and the audit log").
//!
//! - [`binding`]: `REPORT_DATA` = SHA-512 over a domain tag, the log's boot
//!   id, its latest [`Checkpoint`](crate::Checkpoint) and the guest's
//!   ephemeral X25519 public key; the [`AttestationRecord`] (record kind
//!   `attestation`) that carries a report with those inputs in the log;
//! - [`report`]: detecting a report's kind ([`ReportKind`]) and the native
//!   backend's *unsigned* report ([`NativeReport`], magic
//!   `CLOISTER-UNSIGNED-REPORT`), which is not a hardware attestation;
//! - [`append`](mod@append): the kernel's sequence (checkpoint, report,
//!   record) as one host-testable call;
//! - [`release`]: the attested key release: the guest's ephemeral key
//!   ([`GuestKey`]), the broker's [`seal_key`] and the guest's
//!   [`GuestKey::open`].
//!
//! Neighbours: the kernel (`kernel/src/audit/attest.rs`) writes the record;
//! `cloister attest verify` (tools) checks it against an audit image.

pub mod append;
pub mod binding;
pub mod release;
pub mod report;

pub use append::{AttestError, Attested, MAX_REPORT_BYTES, append};
pub use binding::{
    ATTESTATION_FIXED_BYTES, AttestationRecord, REPORT_DATA_BYTES, RecordError, report_data,
};
pub use release::{ENVELOPE_BYTES, GuestKey, PUBLIC_KEY_BYTES, ReleaseError, seal_key};
pub use report::{NATIVE_REPORT_BYTES, NativeReport, ReportError, ReportKind};
