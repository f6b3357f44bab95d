//! Cloister host tools: the QEMU runner used by `cargo test` and by the
//! `cloister` command, and the audit-region reader.
#![forbid(unsafe_code)]

pub mod audit_cli;
