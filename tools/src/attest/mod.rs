//! `cloister attest verify`: checks that an attestation report recorded in
//! an audit image (or given with `--report`) binds that image: its boot id,
//! a checkpoint of its MAC chain and the guest's ephemeral public key
//! (`docs/CVM.md`, "Attestation and the audit log").
//!
//! - [`check`]: the verification, on bytes (host-testable);
//! - [`report`]: report kinds and their parsers (the SNP/TDX hook);
//! - [`broker`]: a test key broker answering the guest's key-release
//!   request (`audit.key_release`).
//!
//! Exit codes: 0 binding verified, 1 verification failed (the reason is
//! printed), 2 the image, report or arguments could not be used.

pub mod broker;
pub mod check;
pub mod report;

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::audit_cli::key;

/// Arguments of `cloister attest`.
#[derive(Debug, clap::Args)]
pub struct AttestArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AttestCommand,
}

/// `cloister attest` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AttestCommand {
    /// Check that the latest attestation report binds the audit image.
    Verify(VerifyArgs),
}

/// Options of `cloister attest verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The audit image (what `cloister run --audit FILE` writes).
    #[arg(long, value_name = "FILE")]
    pub audit: PathBuf,
    /// The audit master key as 64 hex digits.
    #[arg(long, value_name = "HEX", conflicts_with = "key_file")]
    pub key: Option<String>,
    /// File holding the master key (default: `<audit>.key`).
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// A report obtained out of band (raw bytes) to check instead of the
    /// one recorded in the image; it must bind the latest attestation
    /// record's checkpoint and key.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// Runs `cloister attest`; returns the exit code.
pub fn run(args: &AttestArgs) -> Result<i32> {
    let AttestCommand::Verify(v) = &args.command;
    let default_key_file = {
        let mut p = v.audit.clone().into_os_string();
        p.push(".key");
        PathBuf::from(p)
    };
    let key_file = match (&v.key, &v.key_file) {
        (None, None) => Some(default_key_file.as_path()),
        (_, f) => f.as_deref(),
    };
    let Some(key) = key::load(v.key.as_deref(), key_file)? else {
        anyhow::bail!("`cloister attest verify` needs the audit key: --key HEX or --key-file PATH");
    };
    let image = std::fs::read(&v.audit)
        .with_context(|| format!("cannot read audit image {}", v.audit.display()))?;
    let report = v
        .report
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("cannot read report {}", p.display())))
        .transpose()?;
    match check::check(&image, &key, report.as_deref()) {
        Ok(verdict) => {
            println!("{verdict}");
            Ok(0)
        }
        Err(check::Failure::Unusable(why)) => {
            eprintln!("cloister attest verify: {why}");
            Ok(2)
        }
        Err(check::Failure::Mismatch(why)) => {
            println!("attestation verification FAILED: {why}");
            Ok(1)
        }
    }
}
