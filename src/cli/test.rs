//! `tame test`: run the tests written for policy files.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::policy::{Policy, read_text, suite};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy files, or folders to search for *.yaml policy files. Tests are
    /// read from the policy's own `tests:` list and from NAME.tests.yaml beside it.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Fail when an enabled rule decides none of the tests.
    #[arg(long)]
    require_coverage: bool,
}

/// Exit 0 when every test passes; 1 on any failure, a policy that does not
/// load, no tests at all, or (with --require-coverage) an uncovered rule.
pub fn run(args: Args) -> ExitCode {
    let files = match super::policy_files(&args.paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("tame test: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut passed, mut failed, mut uncovered_files) = (0, 0, 0);
    for file in &files {
        let source = match read_text(file) {
            Ok(s) => s,
            Err(e) => {
                println!("{e}");
                failed += 1;
                continue;
            }
        };
        let policy = match Policy::from_source(&file.display().to_string(), &source) {
            Ok(p) => p,
            Err(e) => {
                println!("{e}");
                println!(
                    "{}: the policy does not load; its tests cannot run",
                    file.display()
                );
                failed += 1;
                continue;
            }
        };
        let tests = match suite::load(file, &source) {
            Ok(t) => t,
            Err(errors) => {
                for e in errors {
                    println!("{e}");
                }
                failed += 1;
                continue;
            }
        };
        if tests.is_empty() {
            println!(
                "{}: no tests (add a tests: list, or {})",
                file.display(),
                suite::sibling_tests(file).display()
            );
            continue;
        }
        let report = suite::run(&policy, &tests);
        for f in &report.failures {
            println!("{f}");
        }
        if !report.uncovered.is_empty() {
            uncovered_files += 1;
            println!(
                "{}: no test is decided by: {}",
                file.display(),
                report.uncovered.join(", ")
            );
        }
        passed += report.passed;
        failed += report.failures.len();
    }
    if passed + failed == 0 {
        println!("no tests found");
        return ExitCode::FAILURE;
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 || (args.require_coverage && uncovered_files > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
