//! What `cloister bench linux` needs on the host besides QEMU, and
//! installing it from Debian's packages when we may (root, apt-get, and
//! `CLOISTER_NO_INSTALL` unset), as `crate::deps::ensure_qemu` does for
//! QEMU — so the one command works on a fresh Debian machine.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

/// A file the benchmark uses and the Debian package that provides it.
const NEEDS: &[(&str, &str)] = &[
    ("/bin/busybox", "busybox-static"),
    ("/usr/bin/gcc", "gcc"),
    ("/usr/lib/x86_64-linux-gnu/libc.a", "libc6-dev"),
    ("/usr/bin/openssl", "openssl"),
    ("/usr/bin/xz", "xz-utils"),
    ("/usr/bin/sha256sum", "coreutils"),
    ("/usr/bin/dpkg-deb", "dpkg"),
    // The server figures: the servers (run in the guests) and their clients.
    ("/usr/bin/redis-server", "redis-server"),
    ("/usr/bin/redis-benchmark", "redis-tools"),
    ("/usr/sbin/nginx", "nginx"),
    ("/usr/bin/wrk", "wrk"),
];

/// The packages whose files are missing, given a test for a file.
fn missing(exists: impl Fn(&str) -> bool) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = NEEDS
        .iter()
        .filter(|(file, _)| !exists(file))
        .map(|&(_, package)| package)
        .collect();
    out.dedup();
    out
}

/// Whether we run as root (and may install packages).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Ensures the host has busybox-static, gcc and libc6-dev (for the static
/// syscall benchmark), openssl, xz, dpkg, redis-server, redis-tools
/// (`redis-benchmark`), nginx and wrk, installing what is missing when
/// allowed. Debian's nginx package does not start a service where
/// `policy-rc.d` forbids it (containers); elsewhere it starts one on port
/// 80, which the benchmark does not use.
pub fn ensure() -> Result<()> {
    let packages = missing(|f| Path::new(f).exists());
    if packages.is_empty() {
        return Ok(());
    }
    let list = packages.join(" ");
    let hint = format!("install them with `sudo apt-get install {list}`");
    if std::env::var_os("CLOISTER_NO_INSTALL").is_some()
        || !is_root()
        || !Path::new("/usr/bin/apt-get").exists()
    {
        bail!("the Linux-guest benchmark needs {list}: {hint}");
    }
    eprintln!("bench: installing {list} (set CLOISTER_NO_INSTALL=1 to prevent this)");
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {list} >/dev/null"
        ))
        .status()
        .is_ok_and(|s| s.success());
    if !ok || !missing(|f| Path::new(f).exists()).is_empty() {
        bail!("installing {list} failed: {hint}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_packages_of_missing_files() {
        assert!(missing(|_| true).is_empty());
        let all = missing(|_| false);
        assert!(all.contains(&"busybox-static") && all.contains(&"libc6-dev"));
        assert_eq!(missing(|f| f != "/usr/bin/xz"), ["xz-utils"]);
    }
}
