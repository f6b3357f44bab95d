//! Shared helpers for Cloister's integration tests, which boot real images
//! in QEMU (the tests themselves are in `tests/tests/`).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use tools::build::{KernelBuild, build_kernel};

/// The test kernel (dev profile, `ktest` feature), built once per process.
///
/// # Panics
/// If QEMU is missing and cannot be installed, or the kernel does not build:
/// no integration test can run then.
pub fn test_kernel() -> PathBuf {
    static KERNEL: OnceLock<PathBuf> = OnceLock::new();
    KERNEL
        .get_or_init(|| {
            if let Err(e) = tools::deps::ensure_qemu() {
                panic!("{e:#}");
            }
            build_kernel(KernelBuild {
                release: false,
                ktest: true,
            })
            .unwrap_or_else(|e| panic!("{e:#}"))
        })
        .clone()
}
