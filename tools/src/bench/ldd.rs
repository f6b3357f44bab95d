//! The shared libraries a program needs, as the host's `ldd` reports them.
//!
//! A stopgap until `tools::run::resolve` (which reads `DT_NEEDED` itself,
//! without running anything) is on main: `ldd` runs the host's dynamic
//! loader in list mode, which is acceptable for the Debian binaries the
//! benchmark packs. Both guests get the files at the paths listed here,
//! so the Linux guest's loader finds them where the host's did.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The interpreter and libraries of `program` (empty for a static one).
pub fn dependencies(program: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(program)
        .output()
        .context("cannot run ldd (Debian: libc-bin)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // `ldd` says "not a dynamic executable" (exit 1) for static programs.
        if String::from_utf8_lossy(&out.stderr).contains("not a dynamic executable")
            || text.contains("not a dynamic executable")
            || text.contains("statically linked")
        {
            return Ok(Vec::new());
        }
        bail!(
            "ldd {} failed: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse(&text)
}

/// Parses `ldd` output: `name => /path (0x…)`, `/path (0x…)` for the
/// interpreter; the vDSO (no path) is skipped, a missing library is an
/// error.
pub fn parse(text: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("statically linked") {
            continue;
        }
        let target = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    bail!("ldd: {} not found on the host", name.trim());
                }
                rest
            }
            None => line,
        };
        let path = target.split(" (").next().unwrap_or("").trim();
        if path.starts_with('/') {
            let path = PathBuf::from(path);
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_libraries_and_the_interpreter_but_not_the_vdso() {
        let out = "\tlinux-vdso.so.1 (0x00007fcfb5b9f000)
\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007fcfb59f2000)
\tlibcrypto.so.3 => /lib/x86_64-linux-gnu/libcrypto.so.3 (0x00007fcfb5400000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fcfb521e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007fcfb5ba1000)
";
        let files = parse(out).unwrap();
        assert_eq!(
            files,
            [
                "/lib/x86_64-linux-gnu/libssl.so.3",
                "/lib/x86_64-linux-gnu/libcrypto.so.3",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn a_missing_library_is_an_error_and_static_programs_need_nothing() {
        let err = parse("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert!(err.to_string().contains("libfoo.so.1"), "{err}");
        assert!(parse("\tstatically linked\n").unwrap().is_empty());
    }
}
