//! `cloister run --audit FILE`: the program runs with the audit log on, and
//! FILE ends up holding the region, ready for `cloister audit verify`.
//!
//! How: the guest's RAM is a host file (`-object memory-backend-file
//! ...,share=on` + `-machine memory-backend=`, so every guest write lands in
//! it), the kernel reserves the region in RAM with `audit=SIZE` and keys it
//! with `audit_key=`, and seals the open block on every way out — the
//! program's exit or fatal signal, a kernel panic or fatal exception, and
//! the host's stop request at a `--timeout` (an NMI through QMP). After
//! QEMU has exited, the region is found in the RAM file
//! ([`audit::find_region`]), copied to FILE, and the RAM file removed. On
//! `microvm` RAM starts at physical address 0, so file offsets are physical
//! addresses, but the search does not rely on it.
//!
//! The key: `--audit-key-file PATH` (32 raw bytes or 64 hex digits), or a
//! fresh random key written as hex to `FILE.key` (mode 0600). It reaches
//! the guest on the kernel command line, which the host sees anyway; in a
//! confidential VM the key is released to the guest after attestation
//! instead (docs/AUDIT.md, docs/CVM.md).

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::audit_cli::key::{hex, load};

/// The region size unless `--audit-size` says otherwise.
pub const DEFAULT_REGION_BYTES: u64 = 16 << 20;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSpec {
    /// Where the region goes when the run ends.
    pub file: PathBuf,
    /// The region's size.
    pub region_bytes: u64,
    /// The key's file; `None` generates one at `FILE.key`.
    pub key_file: Option<PathBuf>,
}

/// One audited run: the key, the RAM file, where the region goes.
#[derive(Debug)]
pub struct AuditRun {
    spec: AuditSpec,
    key: [u8; 32],
    /// The key's file (given, or generated).
    pub key_path: PathBuf,
    /// Whether the key was generated for this run.
    pub key_generated: bool,
    ram_file: PathBuf,
}

impl AuditRun {
    /// Loads or generates the key; the RAM file will sit next to FILE.
    pub fn prepare(spec: &AuditSpec) -> Result<Self> {
        if spec.region_bytes < 64 * 1024 {
            bail!("--audit-size: the region needs at least 64K");
        }
        let (key, key_path, key_generated) = match &spec.key_file {
            Some(path) => {
                let key = load(None, Some(path))?.context("no key")?;
                (key, path.clone(), false)
            }
            None => {
                let path = with_suffix(&spec.file, ".key");
                let key = random_key()?;
                write_private(&path, format!("{}\n", hex(&key)).as_bytes())?;
                (key, path, true)
            }
        };
        Ok(Self {
            spec: spec.clone(),
            key,
            key_path,
            key_generated,
            ram_file: with_suffix(&spec.file, ".ram"),
        })
    }

    /// Where the region goes.
    pub fn spec_file(&self) -> &Path {
        &self.spec.file
    }

    /// The kernel command-line words.
    pub fn cmdline(&self) -> String {
        format!(
            "audit={} audit_key={}",
            self.spec.region_bytes,
            hex(&self.key)
        )
    }

    /// QEMU arguments backing `memory_mib` of guest RAM with the RAM file.
    pub fn qemu_args(&self, memory_mib: u32) -> Vec<String> {
        vec![
            "-object".into(),
            format!(
                "memory-backend-file,id=cloister-ram,size={memory_mib}M,mem-path={},share=on",
                self.ram_file.display()
            ),
            "-machine".into(),
            "memory-backend=cloister-ram".into(),
        ]
    }

    /// After QEMU exited: copies the region out of the RAM file into FILE
    /// and removes the RAM file. Returns the region's size.
    pub fn extract(&self) -> Result<u64> {
        let result = self.copy_region();
        let _ = std::fs::remove_file(&self.ram_file);
        result
    }

    fn copy_region(&self) -> Result<u64> {
        let mut ram = Vec::new();
        std::fs::File::open(&self.ram_file)
            .and_then(|mut f| f.read_to_end(&mut ram))
            .with_context(|| {
                format!(
                    "cannot read the guest's RAM file {}",
                    self.ram_file.display()
                )
            })?;
        let Some(range) = audit::find_region(&ram) else {
            bail!(
                "the guest formatted no audit region (run with -v to see the kernel's audit lines)"
            );
        };
        let len = range.len() as u64;
        std::fs::write(&self.spec.file, &ram[range])
            .with_context(|| format!("cannot write the audit log {}", self.spec.file.display()))?;
        Ok(len)
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn random_key() -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .context("cannot read /dev/urandom for an audit key")?;
    Ok(key)
}

/// Writes `bytes` to a new or truncated file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the key file {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write the key file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_generated_key_is_private_and_reaches_the_command_line() {
        let dir = crate::run::fixture::Scratch::new("audit-key");
        let spec = AuditSpec {
            file: dir.0.join("redis.audit"),
            region_bytes: DEFAULT_REGION_BYTES,
            key_file: None,
        };
        let run = AuditRun::prepare(&spec).unwrap();
        assert!(run.key_generated);
        assert_eq!(run.key_path, dir.0.join("redis.audit.key"));
        let mode = std::fs::metadata(&run.key_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&run.key_path).unwrap();
        assert_eq!(load(None, Some(&run.key_path)).unwrap(), Some(run.key));
        assert!(run.cmdline().ends_with(text.trim()), "{}", run.cmdline());
        assert!(run.cmdline().starts_with("audit=16777216 "));
        let args = run.qemu_args(128).join(" ");
        assert!(args.contains("size=128M,mem-path="), "{args}");
        assert!(args.contains("redis.audit.ram,share=on"), "{args}");
        // A given key file is used as it is.
        let given = AuditRun::prepare(&AuditSpec {
            key_file: Some(run.key_path.clone()),
            ..spec.clone()
        })
        .unwrap();
        assert!(!given.key_generated);
        assert_eq!(given.key, run.key);
        assert!(
            AuditRun::prepare(&AuditSpec {
                region_bytes: 4096,
                ..spec
            })
            .is_err()
        );
    }

    #[test]
    fn extract_copies_the_region_and_removes_the_ram_file() {
        let dir = crate::run::fixture::Scratch::new("audit-extract");
        let spec = AuditSpec {
            file: dir.0.join("log"),
            region_bytes: 64 * 1024,
            key_file: None,
        };
        let run = AuditRun::prepare(&spec).unwrap();
        let mut region = vec![0u8; 64 * 1024];
        let config = audit::Config::new(run.key, [3; 16]);
        let mut log = audit::AuditLog::format(&mut region, &config).unwrap();
        log.append_fmt(audit::TextKind::Text, format_args!("hi"), 1, 0)
            .unwrap();
        log.seal();
        drop(log);
        let mut ram = vec![0u8; 8192];
        ram.extend_from_slice(&region);
        std::fs::write(&run.ram_file, &ram).unwrap();
        assert_eq!(run.extract().unwrap(), region.len() as u64);
        assert_eq!(std::fs::read(&spec.file).unwrap(), region);
        assert!(!run.ram_file.exists());
        // No region: a clear error, and the RAM file still goes.
        std::fs::write(&run.ram_file, [0u8; 8192]).unwrap();
        let e = run.extract().unwrap_err();
        assert!(e.to_string().contains("no audit region"), "{e}");
        assert!(!run.ram_file.exists());
    }
}
