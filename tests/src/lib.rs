//! Shared helpers for Cloister's integration tests (the tests themselves live
//! in `tests/tests/`).
#![forbid(unsafe_code)]
