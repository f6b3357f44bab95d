//! `cloister bench linux --audit`: a third guest, Cloister with the audit
//! log on, set up as `cloister run --audit` does it (guest RAM in a shared
//! host file, the region reserved and keyed on the kernel command line;
//! see `crate::run::audit`). After each run the region is taken out of the
//! RAM file and verified with its key: a run whose log is missing, fails
//! verification or holds no records is a failed run, not a figure.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::audit_cli::key::load;
use crate::qemu::QemuConfig;
use crate::run::audit::{AuditRun, AuditSpec, DEFAULT_REGION_BYTES};

/// Prepares an audited run of job `name` in `dir` (a fresh key each time)
/// and adds its kernel words and QEMU arguments to `config`.
pub fn prepare(dir: &Path, name: &str, config: &mut QemuConfig) -> Result<AuditRun> {
    let run = AuditRun::prepare(&AuditSpec {
        file: dir.join(format!("audit-{name}-{}.bin", std::process::id())),
        region_bytes: DEFAULT_REGION_BYTES,
        key_file: None,
    })?;
    config.cmdline = format!("{} {}", config.cmdline, run.cmdline());
    config.extra_args.extend(run.qemu_args(config.memory_mib));
    Ok(run)
}

/// After QEMU exited: extracts and verifies the log; returns its record
/// count. The log and key files are removed either way.
pub fn check(run: &AuditRun) -> Result<u64> {
    let result = (|| {
        run.extract()
            .context("the audit log could not be taken out")?;
        let image = std::fs::read(run.spec_file())?;
        let key = load(None, Some(&run.key_path))?.context("no key")?;
        let summary = audit::verify(
            &image,
            &audit::VerifyOptions {
                key: Some(key),
                ..Default::default()
            },
            &mut audit::NoVisitor,
        )
        .map_err(|e| anyhow::anyhow!("the audit region is unreadable: {e:?}"))?;
        if !summary.passed() {
            bail!(
                "the audit log failed verification ({} errors, key matched: {:?})",
                summary.errors,
                summary.key_matched
            );
        }
        if summary.records == 0 {
            bail!("the audit log holds no records");
        }
        Ok(summary.records)
    })();
    let _ = std::fs::remove_file(run.spec_file());
    let _ = std::fs::remove_file(&run.key_path);
    result
}
