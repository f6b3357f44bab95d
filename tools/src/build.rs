//! Building the kernel ELF with a nested `cargo build` for
//! `x86_64-unknown-none` (stable cargo has no artifact dependencies, so the
//! host tools build it themselves; cargo releases its lock before running
//! tests, so this works from `cargo test`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The bare-metal target the kernel is built for.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";

/// Which kernel to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelBuild {
    /// Release profile (the demo, benchmarks) or dev (tests).
    pub release: bool,
    /// With the in-guest tests compiled in.
    pub ktest: bool,
}

/// The repository root (where the workspace `Cargo.toml` is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tools/ has a parent")
        .to_path_buf()
}

/// Makes sure the toolchain pinned by `rust-toolchain.toml` has the
/// bare-metal target. rustup adds the targets that file lists on first use
/// only when auto-install is on; machine images that set
/// `RUSTUP_AUTO_INSTALL=0` (as this project's do) leave it out, and the
/// first kernel build then fails with "can't find crate for `core`". So the
/// tools add it themselves (`rustup target add` is idempotent and quick when
/// the target is present). Without rustup the toolchain is the user's.
pub fn ensure_kernel_target() -> Result<()> {
    let root = workspace_root();
    if target_installed(&root) {
        return Ok(());
    }
    let Ok(status) = Command::new("rustup")
        .current_dir(&root)
        .args(["target", "add", KERNEL_TARGET])
        .stdout(Stdio::null())
        .status()
    else {
        bail!(
            "the Rust target {KERNEL_TARGET} is missing and rustup is not available: install it for the toolchain in rust-toolchain.toml"
        );
    };
    if !status.success() {
        bail!("`rustup target add {KERNEL_TARGET}` failed ({status})");
    }
    Ok(())
}

/// Whether the active toolchain's sysroot holds the kernel target's `core`.
fn target_installed(root: &Path) -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .current_dir(root)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|sysroot| {
            sysroot
                .join("lib/rustlib")
                .join(KERNEL_TARGET)
                .join("lib")
                .is_dir()
        })
}

/// `kernel` if given, else the release kernel, built now.
pub fn kernel_or_release(kernel: Option<&std::path::Path>) -> Result<PathBuf> {
    match kernel {
        Some(k) => Ok(k.to_path_buf()),
        None => build_kernel(KernelBuild {
            release: true,
            ktest: false,
        }),
    }
}

/// Builds the kernel and returns the path of its ELF.
pub fn build_kernel(spec: KernelBuild) -> Result<PathBuf> {
    ensure_kernel_target()?;
    let mut cmd = kernel_cargo(spec.release);
    if spec.ktest {
        cmd.args(["--features", "ktest"]);
    }
    let out = cmd
        .output()
        .context("cannot run cargo to build the kernel")?;
    if !out.status.success() {
        bail!(
            "building the kernel failed (cargo exited with {})",
            out.status
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    kernel_path_from_messages(&stdout)
        .context("cargo built the kernel but did not report its executable")
}

/// A `cargo build` of the kernel package for the bare-metal target, with
/// JSON messages on stdout (the artifacts' paths).
fn kernel_cargo(release: bool) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = workspace_root();
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--quiet",
            "-p",
            "kernel",
            "--target",
            KERNEL_TARGET,
        ])
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        // A RUSTFLAGS from the environment would replace the kernel's own
        // flags in .cargo/config.toml (static relocation model).
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .stderr(Stdio::inherit());
    if release {
        cmd.arg("--release");
    }
    cmd
}

/// Builds `kernel/examples/NAME` (an application linked with the kernel,
/// docs/RUNTIME.md) and returns the path of its ELF, which boots as the
/// kernel does (`cloister run --app`).
pub fn build_example(name: &str, release: bool) -> Result<PathBuf> {
    ensure_kernel_target()?;
    let mut cmd = kernel_cargo(release);
    cmd.args(["--example", name]);
    let out = cmd
        .output()
        .context("cannot run cargo to build the example")?;
    if !out.status.success() {
        bail!(
            "building the example {name} failed (cargo exited with {})",
            out.status
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    executable_from_messages(&stdout, name).with_context(|| {
        format!("cargo built the example {name} but did not report its executable")
    })
}

/// Finds the kernel executable in cargo's JSON messages.
fn kernel_path_from_messages(messages: &str) -> Option<PathBuf> {
    executable_from_messages(messages, "kernel")
}

/// Finds the executable of target `name` in cargo's JSON messages.
fn executable_from_messages(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_kernel_executable_among_messages() {
        let msgs = r#"{"reason":"compiler-artifact","target":{"name":"libos"},"executable":null}
not json
{"reason":"compiler-artifact","target":{"name":"kernel"},"executable":"/t/x86_64-unknown-none/debug/kernel"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            kernel_path_from_messages(msgs),
            Some(PathBuf::from("/t/x86_64-unknown-none/debug/kernel"))
        );
        assert_eq!(kernel_path_from_messages("{}"), None);
    }
}
