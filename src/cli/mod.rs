//! The command line: one subcommand per file.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tame: the policy decision server for AI agents.
#[derive(Debug, Parser)]
#[command(name = "tame", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {}

/// Parse the command line, run the subcommand, turn its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {}
}
