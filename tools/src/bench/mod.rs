//! Benchmarks run from the `cloister bench` command. Each prints a Markdown
//! table with medians and spread, ready for `docs/PERFORMANCE.md`.

pub mod boot;
pub mod stats;
