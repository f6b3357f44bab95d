//! The `cloister` command: boot Cloister under QEMU, read audit regions.

use clap::{Parser, Subcommand};

/// Cloister: a Rust library OS for confidential VMs.
#[derive(Debug, Parser)]
#[command(name = "cloister", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode or verify an audit-log region image.
    Audit(tools::audit_cli::AuditArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Audit(args) => tools::audit_cli::run(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("cloister: error: {err:#}");
            std::process::exit(2);
        }
    }
}
