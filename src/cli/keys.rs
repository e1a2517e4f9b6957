//! `tame keys create|list|revoke`: API keys in the server's database. A new
//! key is printed once; only its hash is stored. A running server picks up
//! changes within two seconds.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;

use crate::http::auth::{Role, hash_key, new_key};
use crate::store::KeyRow;
use crate::timefmt;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Settings file, to find the database (TAME_DATABASE_URL overrides it).
    #[arg(long, env = "TAME_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Create a key and print it (once).
    Create {
        /// agent (decisions and results), approver (approvals and logs) or admin (everything).
        #[arg(long, value_parser = ["agent", "approver", "admin"])]
        role: String,
        /// A note saying whose key it is (printable text, at most 200 characters).
        #[arg(long, value_parser = label)]
        label: Option<String>,
    },
    /// List keys: id, role, label, created, revoked.
    List,
    /// Revoke a key by id.
    Revoke { id: String },
}

/// A label as given: printable, so that listing keys prints only what it shows.
fn label(given: &str) -> Result<String, String> {
    if given.chars().any(char::is_control) {
        return Err("a label must not contain control characters (tabs, newlines, escapes)".into());
    }
    if given.chars().count() > 200 {
        return Err("a label must be at most 200 characters".into());
    }
    Ok(given.to_string())
}

/// `text` with any control character shown as its escape (a label stored
/// by other means may hold them), so that it cannot act on the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect()
}

pub fn run(args: Args) -> ExitCode {
    // A key made before the server ever ran makes the database; listing
    // or revoking keys needs the one the server uses.
    let database = match args.command {
        KeysCommand::Create { .. } => super::Database::MayCreate,
        KeysCommand::List | KeysCommand::Revoke { .. } => super::Database::MustExist,
    };
    super::with_store(
        "keys",
        args.config.as_deref(),
        database,
        |_settings, store| async move {
            let result = match args.command {
                KeysCommand::Create { role, label } => {
                    let role = Role::parse(&role).unwrap_or(Role::Agent);
                    let key = new_key();
                    let row = KeyRow {
                        id: uuid::Uuid::now_v7().to_string(),
                        hash: hash_key(&key),
                        role: role.as_str().into(),
                        label,
                        created_at: timefmt::format(Utc::now()),
                        revoked_at: None,
                    };
                    store.insert_key(&row).await.map(|()| {
                        println!("{key}");
                        eprintln!(
                            "created {} key {} (shown once: store it now)",
                            role.as_str(),
                            row.id
                        );
                    })
                }
                KeysCommand::List => store.keys().await.map(|keys| {
                    println!(
                        "{:<36}  {:<8}  {:<32}  {:<32}  revoked",
                        "id", "role", "created", "label"
                    );
                    for k in keys {
                        println!(
                            "{:<36}  {:<8}  {:<32}  {:<32}  {}",
                            k.id,
                            k.role,
                            k.created_at,
                            printable(&k.label.unwrap_or_default()),
                            k.revoked_at.unwrap_or_else(|| "-".into())
                        );
                    }
                }),
                KeysCommand::Revoke { id } => {
                    match store.revoke_key(&id, &timefmt::format(Utc::now())).await {
                        Ok(true) => {
                            println!("revoked {id}");
                            Ok(())
                        }
                        Ok(false) => {
                            eprintln!("tame keys: no unrevoked key {id:?} (see tame keys list)");
                            return ExitCode::FAILURE;
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tame keys: {e}");
                    ExitCode::FAILURE
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_label_is_printable_text_and_one_stored_otherwise_is_listed_escaped() {
        assert_eq!(super::label("ci-bot (Zoë)"), Ok("ci-bot (Zoë)".into()));
        for bad in ["a\tb", "bot\u{1b}[2J", "two\nlines"] {
            assert!(
                super::label(bad)
                    .unwrap_err()
                    .contains("control characters"),
                "{bad:?}"
            );
        }
        assert!(super::label(&"x".repeat(201)).is_err());
        assert_eq!(super::printable("bot\u{1b}[2J"), "bot\\u{1b}[2J");
    }
}
