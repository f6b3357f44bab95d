//! `cloister audit show|verify`: decode and verify an audit region image.
//! (Being written; see issue 4.)

use anyhow::{Result, bail};

/// Arguments of `cloister audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Raw arguments, until the subcommands land.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `cloister audit`.
pub fn run(_args: &AuditArgs) -> Result<i32> {
    bail!("`cloister audit` is not implemented yet")
}
