//! The kernel's layering, checked on its source (issue 10): hardware is
//! touched only in the hardware layer (`kernel/src/arch`, `kernel/src/platform`),
//! the rest of the kernel denies unsafe code, and every exception is one of
//! the named ones listed here and in docs/ARCHITECTURE.md ("Layers").

use std::path::{Path, PathBuf};

/// Source text that means a hardware access (or a way to one): inline
/// assembly, port I/O, volatile device access, control registers, MSRs,
/// page-table entry bits.
const HARDWARE: &[&str] = &[
    "asm!",
    "instructions::port",
    "read_volatile",
    "write_volatile",
    "registers::control",
    "model_specific",
    "rdmsr",
    "wrmsr",
    "PageTableFlags",
    "Cr3::",
    "Cr4::",
    "Cr0::",
];

/// Hardware patterns allowed outside the hardware layer: (file, pattern,
/// why). Only tests that inspect what the hardware layer did.
const HARDWARE_EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "audit/ktests.rs",
    "PageTableFlags",
    "an in-guest test reads back the audit region's page flags",
)];

/// `allow(unsafe_code` outside the hardware layer: (file, count). Each has
/// its `reason` in the source; docs/ARCHITECTURE.md lists them.
const UNSAFE_EXCEPTIONS: &[(&str, usize)] = &[
    // `arch` and `platform` themselves, `ktest`, `net`, `task` (module
    // level), the entry point, the initramfs slice.
    ("main.rs", 7),
    // The test registry's link-section static (ktest feature only).
    ("ktest.rs", 1),
    // The audit region becomes the log's memory.
    ("audit/region.rs", 1),
];

fn kernel_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../kernel/src")
        .canonicalize()
        .expect("kernel/src")
}

/// Every `.rs` file under `dir`, relative to `root`, outside the hardware
/// layer.
fn outside_hardware_layer(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == "arch" || rel == "platform" {
            continue;
        }
        if path.is_dir() {
            outside_hardware_layer(root, &path, out);
        } else if rel.ends_with(".rs") {
            out.push((rel, std::fs::read_to_string(&path).expect("read")));
        }
    }
}

fn files() -> Vec<(String, String)> {
    let root = kernel_src();
    let mut out = Vec::new();
    outside_hardware_layer(&root, &root, &mut out);
    assert!(out.len() > 20, "found only {} files", out.len());
    out
}

/// Code lines: comments dropped (docs may name what they do not do).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let code = l.split("//").next().unwrap_or("");
        (!code.trim().is_empty()).then_some((i + 1, code))
    })
}

#[test]
fn hardware_is_touched_only_in_the_hardware_layer() {
    let mut found = Vec::new();
    for (file, text) in files() {
        for (line, code) in code_lines(&text) {
            for pat in HARDWARE {
                if code.contains(pat)
                    && !HARDWARE_EXCEPTIONS
                        .iter()
                        .any(|(f, p, _)| *f == file && p == pat)
                {
                    found.push(format!("kernel/src/{file}:{line}: {pat}: {}", code.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "hardware access outside kernel/src/arch and kernel/src/platform (move it behind the seam):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_kernel_denies_unsafe_code_but_for_named_exceptions() {
    let files = files();
    let main = &files
        .iter()
        .find(|(f, _)| f == "main.rs")
        .expect("main.rs")
        .1;
    assert!(
        main.contains("#![deny(unsafe_code)]"),
        "main.rs must deny unsafe code for the whole kernel"
    );
    let mut counts: Vec<(String, usize)> = Vec::new();
    for (file, text) in &files {
        // `#[allow(unsafe_code` or a multi-line `#[allow(\n unsafe_code,`.
        let flat: String = text.split_whitespace().collect();
        let n = flat.matches("#[allow(unsafe_code").count();
        if n > 0 {
            counts.push((file.clone(), n));
        }
        for (line, code) in code_lines(text) {
            assert!(
                !code.contains("#![allow(unsafe_code"),
                "kernel/src/{file}:{line}: a whole-module allow; name the exception where it is declared"
            );
        }
    }
    counts.sort();
    let mut expected: Vec<(String, usize)> = UNSAFE_EXCEPTIONS
        .iter()
        .map(|(f, n)| (f.to_string(), *n))
        .collect();
    expected.sort();
    assert_eq!(
        counts, expected,
        "unsafe-code exceptions outside the hardware layer changed: update the list here and in docs/ARCHITECTURE.md (\"Layers\")"
    );
    // Each exception says why.
    for (file, text) in &files {
        let flat: String = text.split_whitespace().collect();
        for (i, _) in flat.match_indices("#[allow(unsafe_code") {
            let rest = &flat[i..flat.len().min(i + 60)];
            assert!(
                rest.contains("reason="),
                "kernel/src/{file}: an unsafe-code exception without a reason"
            );
        }
    }
}

#[test]
fn the_trap_path_names_no_subsystem() {
    let trap = std::fs::read_to_string(kernel_src().join("arch/trap.rs")).expect("trap.rs");
    let mut found = Vec::new();
    for (line, code) in code_lines(&trap) {
        for subsystem in [
            "crate::net",
            "crate::mm",
            "crate::audit",
            "crate::ktest",
            "crate::task",
            "crate::run",
            "crate::time",
            "crate::exit",
            "crate::app_console",
        ] {
            if code.contains(subsystem) {
                found.push(format!("arch/trap.rs:{line}: {}", code.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the trap path must reach subsystems through arch::irq:\n{}",
        found.join("\n")
    );
}
