//! `cloister audit show|verify <image>`: decode an audit region image (the
//! host file behind the guest's audit memory, or a dump of guest memory),
//! verify its MAC chain with the key, and print records and findings as
//! text or JSON lines.
//!
//! Exit codes: 0 verified (or, for `show` without a key, decoded without
//! structural errors); 1 verification failed — tampering, corruption or a
//! wrong key, each finding naming the block/record and why; 2 the image or
//! the arguments could not be used at all.
//!
//! Modules: `key` parses keys and checkpoints, `render` prints.

mod key;
mod render;

use std::path::PathBuf;

use anyhow::{Context, Result};
use audit::{VerifyOptions, verify};

use render::{Format, Printer};

/// Arguments of `cloister audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// What to do with the image.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// `cloister audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Print every record (and any findings); verifies too when given a key.
    Show(ImageArgs),
    /// Verify the MAC chain and accounting; print findings and a summary.
    Verify(ImageArgs),
}

/// Options shared by `show` and `verify`.
#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    /// Region image: the memory-backend file or a dump of guest memory.
    pub image: PathBuf,
    /// Master key as 64 hex digits.
    #[arg(long, value_name = "HEX", conflicts_with = "key_file")]
    pub key: Option<String>,
    /// File holding the master key: 32 raw bytes or 64 hex digits.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// An exported checkpoint (224 hex digits): fail if the image is older.
    #[arg(long, value_name = "HEX")]
    pub checkpoint: Option<String>,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cloister audit`; returns the exit code.
pub fn run(args: &AuditArgs) -> Result<i32> {
    let (image_args, show) = match &args.command {
        AuditCommand::Show(a) => (a, true),
        AuditCommand::Verify(a) => (a, false),
    };
    let key = key::load(image_args.key.as_deref(), image_args.key_file.as_deref())?;
    if !show && key.is_none() {
        anyhow::bail!("`cloister audit verify` needs the key: pass --key HEX or --key-file PATH");
    }
    let checkpoint = image_args
        .checkpoint
        .as_deref()
        .map(key::parse_checkpoint)
        .transpose()?;
    let image = std::fs::read(&image_args.image)
        .with_context(|| format!("cannot read region image {}", image_args.image.display()))?;
    let format = if image_args.json {
        Format::Json
    } else {
        Format::Text
    };
    let mut out = std::io::stdout().lock();
    let mut printer = Printer::new(&mut out, format, show);
    let opts = VerifyOptions { key, checkpoint };
    let summary = verify(&image, &opts, &mut printer).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a readable audit region: {e}",
            image_args.image.display()
        )
    })?;
    printer.summary(&summary, show);
    let ok = if key.is_some() {
        summary.passed()
    } else {
        summary.errors == 0
    };
    Ok(if ok { 0 } else { 1 })
}
