//! Making sure the host has what Cloister needs (QEMU), installing it from
//! Debian's packages when we may, so the README's two commands work on a
//! fresh machine.

use std::process::Command;

use anyhow::{Result, bail};

/// Whether `program --version` runs.
fn runs(program: &std::path::Path) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Ensures QEMU is runnable. When it is missing and we are root on a Debian
/// system (and `CLOISTER_NO_INSTALL` is unset), installs `qemu-system-x86`
/// with apt-get; otherwise says what to run.
pub fn ensure_qemu() -> Result<()> {
    let qemu = crate::qemu::qemu_binary();
    if runs(&qemu) {
        return Ok(());
    }
    let hint = "install it with `sudo apt-get install qemu-system-x86` (Debian/Ubuntu) or point CLOISTER_QEMU at it";
    if std::env::var_os("CLOISTER_NO_INSTALL").is_some()
        || !is_root()
        || !std::path::Path::new("/usr/bin/apt-get").exists()
    {
        bail!("{} is not installed: {hint}", qemu.display());
    }
    eprintln!(
        "cloister: {} not found; installing Debian's qemu-system-x86 (set CLOISTER_NO_INSTALL=1 to prevent this)",
        qemu.display()
    );
    let ok = Command::new("sh")
        .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 >/dev/null"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok || !runs(&qemu) {
        bail!("installing QEMU failed: {hint}");
    }
    Ok(())
}
