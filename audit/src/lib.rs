//! Cloister's tamper-evident audit-log ring (see `docs/AUDIT.md`).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
