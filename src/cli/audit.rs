//! `tame audit verify`: check the audit log's chain in the database.

use std::path::PathBuf;
use std::process::ExitCode;

use secrecy::ExposeSecret;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Settings file, to find the database and secret (TAME_… variables override it).
    #[arg(long, env = "TAME_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Walk the chain; exit 0 if every entry is intact, 1 naming the first broken one.
    Verify,
}

pub fn run(args: Args) -> ExitCode {
    let AuditCommand::Verify = args.command;
    super::with_store(
        "audit",
        args.config.as_deref(),
        super::Database::MustExist,
        |settings, store| async move {
            let secret: Vec<u8> = match &settings.audit_secret {
                Some(s) => s.expose_secret().as_bytes().to_vec(),
                None => match store.setting("audit_secret").await {
                    Ok(Some(s)) => s.into_bytes(),
                    Ok(None) => {
                        println!("the audit log is empty: nothing to verify");
                        return ExitCode::SUCCESS;
                    }
                    Err(e) => {
                        eprintln!("tame audit: {e}");
                        return ExitCode::FAILURE;
                    }
                },
            };
            match crate::audit::verify(&*store, &secret).await {
                Ok(v) if v.valid => {
                    println!(
                        "ok: {} entries verified (seq {} to {})",
                        v.checked,
                        v.first_seq.unwrap_or(0),
                        v.last_seq.unwrap_or(0)
                    );
                    ExitCode::SUCCESS
                }
                Ok(v) => {
                    let b = v.broken.expect("an invalid chain names its break");
                    println!(
                        "broken at seq {}{}: {}",
                        b.seq,
                        b.id.map(|i| format!(" (id {i})")).unwrap_or_default(),
                        b.problem
                    );
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("tame audit: {e}");
                    ExitCode::FAILURE
                }
            }
        },
    )
}
