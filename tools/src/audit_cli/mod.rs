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

mod filter;
pub(crate) mod key;
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
    /// IMAGE is larger than the region (a dump of guest memory, or the file
    /// behind the guest's RAM): find the region in it at a 4 KiB boundary.
    #[arg(long)]
    pub scan: bool,
    /// `show`: only these syscalls (names or numbers; repeatable, or
    /// comma-separated).
    #[arg(long = "syscall", value_name = "NAME")]
    pub syscalls: Vec<String>,
    /// `show`: only this thread's syscalls.
    #[arg(long, value_name = "TID")]
    pub tid: Option<u32>,
    /// `show`: only syscalls that returned an error.
    #[arg(long)]
    pub errors: bool,
    /// `show`: only records from this many seconds after boot on.
    #[arg(long, value_name = "SECS")]
    pub since: Option<f64>,
    /// `show`: only records before this many seconds after boot.
    #[arg(long, value_name = "SECS")]
    pub until: Option<f64>,
    /// `show`: instead of the records, counts per syscall (calls, errors),
    /// per record kind and of unsupported syscalls, of the records the
    /// filters pass.
    #[arg(long)]
    pub stats: bool,
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
    let filter = filter::RecordFilter::new(
        &image_args.syscalls,
        image_args.tid,
        image_args.errors,
        image_args.since,
        image_args.until,
    )?;
    if !show && (filter != filter::RecordFilter::default() || image_args.stats) {
        anyhow::bail!(
            "--syscall, --tid, --errors, --since, --until and --stats select what `show` prints; `verify` checks the whole region"
        );
    }
    let mut image = std::fs::read(&image_args.image)
        .with_context(|| format!("cannot read region image {}", image_args.image.display()))?;
    if image_args.scan {
        let found = audit::find_region(&image).with_context(|| {
            format!(
                "{} holds no audit region at any 4 KiB boundary",
                image_args.image.display()
            )
        })?;
        image.truncate(found.end);
        image.drain(..found.start);
    }
    let format = if image_args.json {
        Format::Json
    } else {
        Format::Text
    };
    let mut out = std::io::stdout().lock();
    let mut printer = Printer::new(&mut out, format, show);
    printer.select(filter, image_args.stats);
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
