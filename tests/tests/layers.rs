//! The kernel's layering, checked on its source (issue 10): hardware is
//! touched only in the hardware layer (`kernel/src/arch`, `kernel/src/platform`),
//! the rest of the kernel denies unsafe code, and every exception is one of
//! the named ones listed here and in docs/ARCHITECTURE.md ("Layers").
//!
//! `kernel/src/net` is, for now, one documented temporary exception
//! ([`TEMPORARY`]): its DMA memory moves behind the shared DMA pool (issue 10,
//! point 2), after which the lead removes the entry.

use std::path::{Path, PathBuf};

/// Source text that means a hardware access (or a way to one): inline
/// assembly, port I/O, volatile device access, control registers, MSRs,
/// page-table entry bits.
const HARDWARE: &[&str] = &[
    "asm!",
    "core::arch",
    "x86_64::instructions",
    "x86_64::registers",
    "x86_64::structures::paging",
    "instructions::port",
    "Port::new",
    "read_volatile",
    "write_volatile",
    "registers::control",
    "model_specific",
    "rdmsr",
    "wrmsr",
    "PageTableFlags",
    "PageTableEntry",
    "Cr3::",
    "Cr4::",
    "Cr0::",
];

/// Folders outside the hardware layer that are, for now, exempt from both
/// checks as a whole: (folder, why). Named in docs/ARCHITECTURE.md too.
const TEMPORARY: &[(&str, &str)] = &[(
    "net/",
    "virtio DMA memory (raw slices of DMA frames, the Hal's copies) and interrupt masking: \
     moves behind the shared DMA pool of issue 10 (point 2); remove this entry after that merge",
)];

/// `allow(unsafe_code` attributes outside the hardware layer: (file,
/// count). Each has its `reason` in the source; docs/ARCHITECTURE.md lists
/// them.
const UNSAFE_EXCEPTIONS: &[(&str, usize)] = &[
    // The modules `arch`, `platform` (the hardware layer) and `net` (the
    // temporary exception above).
    ("lib.rs", 3),
    // The `entry!` macro's two arms: the `#[unsafe(no_mangle)]` entry
    // symbol the boot calls, expanded in the application's crate.
    ("runtime/mod.rs", 2),
    // The test registry: the `ktest!` macro's link-section static, the
    // section's linker symbols and its reading as a slice.
    ("ktest.rs", 3),
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
        if TEMPORARY.iter().any(|(dir, _)| format!("{rel}/") == *dir) {
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
                if code.contains(pat) {
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
    // The library (the whole kernel) and the binary (the Linux-ABI mode).
    for root in ["lib.rs", "main.rs"] {
        let text = &files
            .iter()
            .find(|(f, _)| f == root)
            .unwrap_or_else(|| panic!("{root}"))
            .1;
        assert!(
            text.contains("#![deny(unsafe_code)]"),
            "{root} must deny unsafe code for the whole kernel"
        );
    }
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

/// Whether `code` holds the keyword `unsafe` (not `unsafe_code`).
fn has_unsafe_keyword(code: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    code.match_indices("unsafe").any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + "unsafe".len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// The lines of `text` that use `unsafe` outside an item carrying an
/// `#[allow(unsafe_code, …)]` (the item is followed by brace depth from
/// the attribute to the end of its body).
fn uncovered_unsafe(text: &str) -> Vec<usize> {
    let mut uncovered = Vec::new();
    let mut depth = 0i64;
    // An allow seen whose item has not opened its body yet.
    let mut pending = false;
    // The depth at which the allowed item's body opened.
    let mut covered: Option<i64> = None;
    let mut previous = "";
    for (line, code) in code_lines(text) {
        let trimmed = code.trim();
        if code.contains("allow(unsafe_code")
            || (trimmed.starts_with("unsafe_code") && previous.trim_end().ends_with("#[allow("))
        {
            pending = true;
        }
        if has_unsafe_keyword(code) && covered.is_none() && !pending {
            uncovered.push(line);
        }
        for c in code.chars() {
            match c {
                '{' => {
                    if pending && covered.is_none() {
                        covered = Some(depth);
                        pending = false;
                    }
                    depth += 1;
                }
                '}' => {
                    depth -= 1;
                    if covered == Some(depth) {
                        covered = None;
                    }
                }
                _ => {}
            }
        }
        // An allowed item without a body (`static X: T = f();`).
        if pending && covered.is_none() && trimmed.ends_with(';') && !trimmed.starts_with("#[") {
            pending = false;
        }
        previous = code;
    }
    uncovered
}

#[test]
fn unsafe_is_used_only_under_a_named_allow() {
    let mut found = Vec::new();
    for (file, text) in files() {
        for line in uncovered_unsafe(&text) {
            found.push(format!("kernel/src/{file}:{line}"));
        }
    }
    assert!(
        found.is_empty(),
        "`unsafe` outside the hardware layer without an `#[allow(unsafe_code, reason = …)]` on its item \
         (move it into kernel/src/arch or kernel/src/platform behind a safe API):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_unsafe_scan_sees_what_it_should() {
    let bad = "fn f() {\n    let x = unsafe { g() };\n}\n";
    assert_eq!(uncovered_unsafe(bad), vec![2]);
    let named = "#[allow(\n    unsafe_code,\n    reason = \"why\"\n)]\nfn f() {\n    let x = unsafe { g() };\n}\nfn h() {\n    unsafe { g() }\n}\n";
    assert_eq!(uncovered_unsafe(named), vec![9]);
    assert!(!has_unsafe_keyword("#![deny(unsafe_code)]"));
    assert!(has_unsafe_keyword("unsafe impl Send for T {}"));
}

#[test]
fn temporary_exceptions_still_exist() {
    // An exception for a folder that no longer needs one is stale: the
    // folder must exist and still use unsafe code or touch hardware.
    for (dir, why) in TEMPORARY {
        let path = kernel_src().join(dir);
        assert!(
            path.is_dir(),
            "kernel/src/{dir} ({why}) is gone: remove its entry"
        );
        let mut still_needed = false;
        for entry in std::fs::read_dir(&path).expect("read_dir") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).unwrap_or_default();
            still_needed |= code_lines(&text).any(|(_, code)| {
                has_unsafe_keyword(code) || HARDWARE.iter().any(|p| code.contains(p))
            });
        }
        assert!(
            still_needed,
            "kernel/src/{dir} no longer uses unsafe code or hardware: remove its entry from TEMPORARY"
        );
    }
}
