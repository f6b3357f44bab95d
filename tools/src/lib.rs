//! Cloister host tools: building the kernel, running it under QEMU (the
//! runner `cargo test` and the `cloister` command share), the in-guest test
//! driver, and the audit-region reader.
#![forbid(unsafe_code)]

pub mod attest;
pub mod audit_cli;
pub mod bench;
pub mod build;
pub mod deps;
pub mod fuzz;
pub mod igvm;
pub mod ktest;
pub mod qemu;
pub mod run;
