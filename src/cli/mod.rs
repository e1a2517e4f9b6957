//! The command line: one subcommand per file.

mod approvals;
mod audit;
mod check;
mod keys;
mod serve;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Tame: the policy decision server for AI agents.
#[derive(Debug, Parser)]
#[command(name = "tame", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the decision server (settings: defaults, config/tame.yaml or --config, TAME_… variables).
    Serve(serve::Args),
    /// Create, list and revoke API keys.
    Keys(keys::Args),
    /// List, show, approve and deny approvals on a running server.
    Approvals(approvals::Args),
    /// Check the audit log's tamper evidence.
    Audit(audit::Args),
    /// Validate policy files: every error, with file, line, column and rule, and warnings.
    Check(check::Args),
    /// Run the tests written for policy files and report which rules no test covers.
    Test(test::Args),
}

/// Parse the command line, run the subcommand, turn its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Approvals(args) => approvals::run(args),
        Command::Check(args) => check::run(args),
        Command::Test(args) => test::run(args),
    }
}

/// Whether a command may make the database it is given, or only use one
/// that is there (a mistyped path must not become an empty log that
/// verifies, or a key store the server never reads).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Database {
    MayCreate,
    MustExist,
}

/// The SQLite file a URL names, when it is a file that is not there.
fn missing_sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr as _;
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let file = options.get_filename();
    (!file.exists()).then(|| file.to_path_buf())
}

/// Load the settings, open the store they name, and run `work` with both on
/// a small runtime; failures print as `tame NAME: …` (exit 2 for settings).
fn with_store<F, Fut>(name: &str, config: Option<&Path>, database: Database, work: F) -> ExitCode
where
    F: FnOnce(crate::config::Settings, std::sync::Arc<dyn crate::store::Store>) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    let settings = match crate::config::Settings::load(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tame {name}: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tame {name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let missing = match database {
        Database::MustExist => missing_sqlite_file(&settings.database_url),
        Database::MayCreate => None,
    };
    if let Some(file) = missing {
        eprintln!(
            "tame {name}: there is no database at {}: check TAME_DATABASE_URL (or --config); the server makes the file when it first starts",
            file.display()
        );
        return ExitCode::FAILURE;
    }
    runtime.block_on(async move {
        match crate::store::open(
            &settings.database_url,
            Duration::from_secs(settings.database_timeout_secs.max(1)),
            settings.database_connections,
        )
        .await
        {
            Ok(store) => work(settings, store).await,
            Err(e) => {
                eprintln!("tame {name}: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The policy files named by `paths`: files as given, folders searched for
/// `*.yaml` / `*.yml` (not `*.tests.yaml`), sorted.
fn policy_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            collect(path, &mut found)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if found.is_empty() {
                return Err(format!("no policy files (*.yaml) in {}", path.display()));
            }
            found.sort();
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(format!("{}: no such file or folder", path.display()));
        }
    }
    Ok(files)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            collect(&path, out)?;
        } else if (name.ends_with(".yaml") || name.ends_with(".yml"))
            && !name.ends_with(".tests.yaml")
            && !name.ends_with(".tests.yml")
        {
            out.push(path);
        }
    }
    Ok(())
}
