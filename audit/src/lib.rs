//! Cloister's tamper-evident audit-log ring (see `docs/AUDIT.md`).
//!
//! The kernel hands a raw region (64 KiB .. several GiB) to
//! [`AuditLog::format`] and appends [`Event`]s to it; records are packed into
//! fixed-size blocks, each sealed by an keyed BLAKE3 chained to the previous
//! block under a forward-secure ratchet key. The host reads the same bytes
//! back with [`RegionView`] and checks them with [`verify`], which reports
//! every problem as a located [`Finding`].
//!
//! Modules: [`wire`] (byte layouts), `event` (payloads), `crypto` (keys,
//! MACs, ratchet), `writer` ([`AuditLog`]), `reader` ([`RegionView`]),
//! `verify` ([`verify`]), `scan` ([`find_region`]), `finding` ([`Finding`]), `checkpoint` ([`Checkpoint`]), [`attest`] (attestation binding and key release), [`simd`] (the scope BLAKE3 runs in).
//! Neighbours: `libos` and `kernel` write; `tools` (`cloister audit`) reads.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod attest;
mod checkpoint;
mod clmul;
mod crypto;
mod event;
mod finding;
mod mac;
mod reader;
mod scan;
pub mod simd;
mod verify;
pub mod wire;
mod writer;

pub use checkpoint::{CHECKPOINT_BYTES, Checkpoint};
pub use event::{CheckpointEvent, DecodeError, Event, GapEvent, GapReason, Kind, SyscallEvent};
pub use finding::{Finding, FindingKind, Location, Severity};
pub use reader::{
    BlockState, BlockView, HeaderError, Hints, Record, RecordError, RecordItem, Records,
    RegionHeader, RegionView,
};
pub use scan::find_region;
pub use verify::{Auth, NoVisitor, Summary, VerifyOptions, Visitor, verify};
pub use writer::{AppendError, AuditLog, Config, FormatError, OverflowPolicy, TextKind};
