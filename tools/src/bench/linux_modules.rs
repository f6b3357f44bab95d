//! The kernel modules the Linux guest loads for the network figures, taken
//! from the unpacked kernel package ([`super::linux_kernel`]).
//!
//! Debian's kernel builds virtio, the virtio-mmio transport and virtio-net
//! as modules, and the package ships no `modules.dep` (`depmod` writes it
//! on installation). [`load_order`] therefore reads each module's own
//! `depends=` entry from its `.modinfo` strings (what `modinfo -F depends`
//! prints) and orders the modules so that every one comes after those it
//! depends on: for [`NET_MODULES`] that is `virtio`, `virtio_ring`,
//! `virtio_mmio`, `failover`, `net_failover`, `virtio_net` or an
//! equivalent order. busybox `insmod` loads them in that order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// What the Linux guest needs for its network card on `microvm`: the
/// virtio-mmio transport and the virtio-net driver.
pub const NET_MODULES: [&str; 2] = ["virtio_mmio", "virtio_net"];

/// The same on `q35` and `pc`: the virtio-pci transport (which brings its
/// modern and legacy device modules) and the virtio-net driver.
pub const NET_MODULES_PCI: [&str; 2] = ["virtio_pci", "virtio_net"];

/// The network modules for QEMU machine `machine` (`-M` value).
pub fn net_modules(machine: &str) -> &'static [&'static str] {
    if crate::qemu::net::is_microvm(machine) {
        &NET_MODULES
    } else {
        &NET_MODULES_PCI
    }
}

/// A module to load: its name and its file in the unpacked package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// The module name (`virtio_net`).
    pub name: String,
    /// Its `.ko` file.
    pub path: PathBuf,
}

/// The `depends=` entry of a module file's `.modinfo` strings: the modules
/// it needs, as named there (comma-separated, possibly empty).
pub fn modinfo_depends(ko: &[u8]) -> Option<Vec<String>> {
    // `.modinfo` is a run of NUL-terminated `key=value` strings; the key
    // `depends=` occurs nowhere else in a module.
    ko.split(|&b| b == 0).find_map(|entry| {
        let value = entry.strip_prefix(b"depends=")?;
        let text = std::str::from_utf8(value).ok()?;
        Some(
            text.split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(module_name)
                .collect(),
        )
    })
}

/// A module's canonical name (`-` and `_` are the same to the kernel).
fn module_name(name: &str) -> String {
    name.replace('-', "_")
}

/// Every `*.ko` under `dir`, by canonical name.
fn index(dir: &Path, out: &mut HashMap<String, PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            index(&path, out)?;
        } else if let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ko"))
        {
            out.insert(module_name(stem), path);
        }
    }
    Ok(())
}

/// `wanted` and everything they depend on, in a loadable order, given how
/// to read a module's dependencies.
pub fn order(
    wanted: &[&str],
    mut depends: impl FnMut(&str) -> Result<Vec<String>>,
) -> Result<Vec<String>> {
    fn visit(
        name: &str,
        depends: &mut dyn FnMut(&str) -> Result<Vec<String>>,
        on_path: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<()> {
        if out.iter().any(|n| n == name) {
            return Ok(());
        }
        if on_path.iter().any(|n| n == name) {
            bail!(
                "module dependency cycle: {} -> {name}",
                on_path.join(" -> ")
            );
        }
        on_path.push(name.to_string());
        for dep in depends(name)? {
            visit(&dep, depends, on_path, out)?;
        }
        on_path.pop();
        out.push(name.to_string());
        Ok(())
    }
    let mut out = Vec::new();
    for name in wanted {
        visit(&module_name(name), &mut depends, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

/// The modules of `wanted` and their dependencies from the kernel package
/// unpacked at `unpacked`, in load order.
pub fn load_order(unpacked: &Path, wanted: &[&str]) -> Result<Vec<Module>> {
    let modules_dir = unpacked.join("lib/modules");
    let mut files = HashMap::new();
    index(&modules_dir, &mut files)?;
    let names = order(wanted, |name| {
        let path = files.get(name).with_context(|| {
            format!(
                "the kernel package has no module {name} under {}",
                modules_dir.display()
            )
        })?;
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        modinfo_depends(&data)
            .with_context(|| format!("{} has no `depends=` modinfo entry", path.display()))
    })?;
    Ok(names
        .into_iter()
        .map(|name| {
            let path = files[&name].clone();
            Module { name, path }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_comes_from_the_modinfo_strings() {
        let ko = b"\x7fELF junk\0license=GPL\0depends=net_failover,virtio-ring\0vermagic=6.1\0";
        assert_eq!(
            modinfo_depends(ko).unwrap(),
            ["net_failover", "virtio_ring"]
        );
        assert_eq!(
            modinfo_depends(b"\0depends=\0name=virtio\0").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(modinfo_depends(b"no modinfo here"), None);
    }

    #[test]
    fn every_module_comes_after_its_dependencies() {
        let deps: HashMap<&str, &[&str]> = [
            ("virtio_mmio", &["virtio", "virtio_ring"][..]),
            ("virtio_net", &["net_failover", "virtio", "virtio_ring"][..]),
            ("net_failover", &["failover"][..]),
            ("failover", &[][..]),
            ("virtio", &[][..]),
            ("virtio_ring", &[][..]),
        ]
        .into_iter()
        .collect();
        let got = order(&NET_MODULES, |n| {
            Ok(deps[n].iter().map(|s| s.to_string()).collect())
        })
        .unwrap();
        assert_eq!(
            got,
            [
                "virtio",
                "virtio_ring",
                "virtio_mmio",
                "failover",
                "net_failover",
                "virtio_net"
            ]
        );
    }

    #[test]
    fn cycles_and_unknown_modules_are_refused() {
        let err = order(&["a"], |n| {
            Ok(vec![if n == "a" { "b" } else { "a" }.into()])
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("cycle"), "{err}");
        assert!(load_order(Path::new("/nonexistent"), &NET_MODULES).is_err());
    }

    #[test]
    fn pci_machines_load_the_pci_transport() {
        assert_eq!(net_modules("microvm,acpi=on"), NET_MODULES);
        assert_eq!(net_modules("q35"), NET_MODULES_PCI);
        assert_eq!(net_modules("q35,acpi=on"), NET_MODULES_PCI);
    }
}
