//! `cloister.toml`: a program's run described in a file, for `cloister run
//! --manifest` and `cloister build`.
//!
//! ```toml
//! [program]
//! path = "/usr/bin/redis-server"          # a path, or a name looked up in PATH
//! args = ["--save", "", "--protected-mode", "no"]
//! env = { REDIS_LOG = "warning" }         # on top of PATH and HOME
//! files = ["/etc/redis/redis.conf", "data:/data"]   # HOST[:GUEST], as --file
//!
//! [vm]
//! memory = "512M"
//! cpus = 1                                # vCPUs, 1 to 16 (threads run on all)
//! accel = "tcg"                           # or "kvm"
//! machine = "microvm"                     # or "q35" (PCI, as SEV-SNP/TDX guests)
//! publish = ["16379:6379"]                # 127.0.0.1:HOST -> guest port
//! timeout_secs = 0                        # 0: no limit
//!
//! [audit]
//! file = "redis.audit"
//! size = "16M"
//! key_file = "redis.key"                  # default: FILE.key, generated
//! ```
//!
//! Relative host paths (`files`, `audit.file`, `audit.key_file`) are taken
//! relative to the manifest's folder. Unknown keys are refused; every error
//! names the key and its line.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use toml::Spanned;

use super::audit::{AuditSpec, DEFAULT_REGION_BYTES};
use super::options::{FileMapping, Machine, RunOptions, parse_memory_mib};
use crate::qemu::{Accel, Nic, PortForward};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    program: Program,
    #[serde(default)]
    vm: Vm,
    audit: Option<Audit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Program {
    path: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    files: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vm {
    memory: Option<Spanned<String>>,
    cpus: Option<Spanned<u32>>,
    accel: Option<Spanned<String>>,
    machine: Option<Spanned<String>>,
    #[serde(default)]
    publish: Vec<Spanned<String>>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Audit {
    file: PathBuf,
    size: Option<Spanned<String>>,
    key_file: Option<PathBuf>,
}

/// Reads the manifest at `path` into run options.
pub fn load(path: &Path) -> Result<RunOptions> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the manifest {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))
}

/// Parses manifest `text`; relative host paths are relative to `base`.
pub fn parse(text: &str, base: &Path) -> Result<RunOptions> {
    let m: Manifest = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let at = |key: &str, span: Range<usize>, e: anyhow::Error| {
        anyhow::anyhow!("line {}: {key}: {e:#}", line_of(text, span.start))
    };
    let mut opts = RunOptions::new(&m.program.path, &m.program.args);
    opts.env = m
        .program
        .env
        .into_iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
    for f in &m.program.files {
        let mut mapping =
            FileMapping::parse(f.get_ref()).map_err(|e| at("program.files", f.span(), e))?;
        mapping.host = base.join(&mapping.host);
        opts.files.push(mapping);
    }
    if let Some(mem) = &m.vm.memory {
        opts.memory_mib =
            parse_memory_mib(mem.get_ref()).map_err(|e| at("vm.memory", mem.span(), e))?;
    }
    if let Some(cpus) = &m.vm.cpus {
        opts.cpus = Some(
            crate::qemu::check_cpus(*cpus.get_ref()).map_err(|e| at("vm.cpus", cpus.span(), e))?,
        );
    }
    if let Some(accel) = &m.vm.accel {
        opts.accel =
            Some(Accel::parse(accel.get_ref()).map_err(|e| at("vm.accel", accel.span(), e))?);
    }
    if let Some(machine) = &m.vm.machine {
        opts.machine =
            Machine::parse(machine.get_ref()).map_err(|e| at("vm.machine", machine.span(), e))?;
    }
    for p in &m.vm.publish {
        opts.publish
            .push(PortForward::parse(p.get_ref()).map_err(|e| at("vm.publish", p.span(), e))?);
    }
    if let Err(e) = Nic::with_forwards(opts.publish.clone()) {
        let span = m.vm.publish.last().map_or(0..0, Spanned::span);
        return Err(at("vm.publish", span, e));
    }
    opts.timeout =
        m.vm.timeout_secs
            .filter(|&s| s > 0)
            .map(Duration::from_secs);
    if let Some(a) = m.audit {
        let region_bytes = match &a.size {
            None => DEFAULT_REGION_BYTES,
            Some(s) => libos::boot::cmdline::parse_size(s.get_ref()).ok_or_else(|| {
                at(
                    "audit.size",
                    s.span(),
                    anyhow::anyhow!("{:?} is not a size such as 16M or 1G", s.get_ref()),
                )
            })?,
        };
        opts.audit = Some(AuditSpec {
            file: base.join(a.file),
            region_bytes,
            key_file: a.key_file.map(|k| base.join(k)),
        });
    }
    if opts.program.is_empty() {
        bail!("program.path is empty");
    }
    Ok(opts)
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[program]
path = "/usr/bin/redis-server"
args = ["--save", "", "--protected-mode", "no"]
env = { REDIS_LOG = "warning" }
files = ["conf/redis.conf:/etc/redis/redis.conf"]

[vm]
memory = "256M"
cpus = 1
accel = "tcg"
machine = "q35"
publish = ["16379:6379"]
timeout_secs = 60

[audit]
file = "redis.audit"
size = "8M"
"#;

    #[test]
    fn every_key_reaches_the_run_options() {
        let o = parse(FULL, Path::new("/srv/app")).unwrap();
        assert_eq!(o.program, "/usr/bin/redis-server");
        assert_eq!(o.args, ["--save", "", "--protected-mode", "no"]);
        assert_eq!(o.env, [("REDIS_LOG".into(), "warning".into())]);
        assert_eq!(o.files[0].host, Path::new("/srv/app/conf/redis.conf"));
        assert_eq!(
            o.files[0].guest.as_deref(),
            Some(Path::new("/etc/redis/redis.conf"))
        );
        assert_eq!(o.memory_mib, 256);
        assert_eq!(o.cpus, Some(1));
        assert_eq!(o.accel, Some(Accel::Tcg));
        assert_eq!(o.machine, Machine::Q35);
        assert_eq!(o.publish[0].host_port, 16379);
        assert_eq!(o.timeout, Some(Duration::from_secs(60)));
        let a = o.audit.unwrap();
        assert_eq!(a.file, Path::new("/srv/app/redis.audit"));
        assert_eq!(a.region_bytes, 8 << 20);
        assert_eq!(a.key_file, None);
    }

    #[test]
    fn the_program_alone_is_enough() {
        let o = parse("[program]\npath = \"ls\"\n", Path::new(".")).unwrap();
        assert_eq!(o.program, "ls");
        assert!(o.audit.is_none() && o.publish.is_empty());
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let err = |text: &str| parse(text, Path::new(".")).unwrap_err().to_string();
        let e = err("[program]\npath = \"ls\"\n[vm]\nmemry = \"1G\"\n");
        assert!(e.contains("line 4") && e.contains("memry"), "{e}");
        let e = err("[program]\npath = \"ls\"\n[vm]\nmemory = \"lots\"\n");
        assert!(e.contains("line 4: vm.memory"), "{e}");
        let e = err("[program]\npath = \"ls\"\n[vm]\n\ncpus = 40\n");
        assert!(
            e.contains("line 5: vm.cpus") && e.contains("1 to 16"),
            "{e}"
        );
        let e = err("[program]\npath = \"ls\"\n[vm]\nmachine = \"pc\"\n");
        assert!(e.contains("line 4: vm.machine") && e.contains("q35"), "{e}");
        let e = err("[program]\npath = \"ls\"\n[vm]\npublish = [\"70000:1\"]\n");
        assert!(e.contains("line 4: vm.publish"), "{e}");
        let e = err("[program]\npath = \"ls\"\n[audit]\nfile = \"a\"\nsize = \"big\"\n");
        assert!(e.contains("line 5: audit.size"), "{e}");
        let e = err("[vm]\nmemory = \"1G\"\n");
        assert!(e.contains("program"), "{e}");
        let e = err("[program]\npath = 3\n");
        assert!(e.contains("line 2"), "{e}");
    }
}
