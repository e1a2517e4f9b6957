//! `tame check`: load policy files the way the server would and say what is wrong.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::policy::Policy;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy files, or folders to search for *.yaml policy files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Exit non-zero on warnings too.
    #[arg(long)]
    deny_warnings: bool,
}

/// Exit 0 when every policy loads (and, with --deny-warnings, has no warning); 1 otherwise.
pub fn run(args: Args) -> ExitCode {
    let files = match super::policy_files(&args.paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("tame check: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut broken, mut warned) = (0, 0);
    for file in &files {
        match Policy::from_file(file) {
            Ok(policy) => {
                for w in &policy.warnings {
                    println!("{w}");
                }
                if !policy.warnings.is_empty() {
                    warned += 1;
                }
                println!(
                    "{}: ok: version {}, {} rules ({} enabled), sha256 {}",
                    file.display(),
                    policy.version,
                    policy.rules.len(),
                    policy.active_rules().count(),
                    &policy.hash[..12]
                );
            }
            Err(e) => {
                broken += 1;
                for d in &e.errors {
                    println!("{d}");
                }
                println!(
                    "{}: refused: {} error{}",
                    file.display(),
                    e.errors.len(),
                    if e.errors.len() == 1 { "" } else { "s" }
                );
            }
        }
    }
    println!(
        "{} checked: {} ok, {} refused, {} with warnings",
        files.len(),
        files.len() - broken,
        broken,
        warned
    );
    if broken > 0 || (args.deny_warnings && warned > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
