//! The patched `cpufeatures` (audit/vendor/README.md) answers CPUID in the
//! kernel build, so every crate there that uses it must run inside the
//! audit crate's SIMD scope. Only `blake3` and the audit crate itself (its
//! block MAC's carry-less multiply, `src/clmul.rs`, called only inside the
//! scope) do; this test fails when another crate of the kernel build starts
//! depending on it.

use std::process::Command;

#[test]
fn only_blake3_and_audit_use_the_patched_cpufeatures_in_the_kernel_build() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(cargo)
        .args(["tree", "--locked", "--manifest-path", manifest])
        .args(["-p", "kernel", "--target", "x86_64-unknown-none"])
        .args(["-e", "normal", "--prefix", "none", "--depth", "1"])
        .args(["--invert", "cpufeatures@0.3.1"])
        .output()
        .expect("runs cargo tree");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("cpufeatures v0.3.1") && first.contains("audit/vendor/cpufeatures"),
        "the patch is not applied: {text}"
    );
    let users: Vec<&str> = lines.filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(users, ["audit", "blake3"], "{text}");
}
