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
        /// A note saying whose key it is.
        #[arg(long)]
        label: Option<String>,
    },
    /// List keys: id, role, label, created, revoked.
    List,
    /// Revoke a key by id.
    Revoke { id: String },
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
                            k.label.unwrap_or_default(),
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
