//! `tame serve`: run the decision server until SIGINT or SIGTERM.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::app::Application;
use crate::config::{LogFormat, Settings};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Settings file (YAML); default config/tame.yaml when it exists. TAME_… variables override it.
    #[arg(long, env = "TAME_CONFIG")]
    config: Option<PathBuf>,
}

/// Log to stderr at the level TAME_LOG gives (refused when unreadable).
fn init_logging(format: Option<&LogFormat>) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("TAME_LOG") {
        Ok(given) if !given.trim().is_empty() => EnvFilter::try_new(&given).map_err(|e| {
            format!(
                "TAME_LOG={given:?} cannot be read ({e}): give a level (error, warn, info, debug, trace) or directives such as info,tame=debug"
            )
        })?,
        _ => EnvFilter::new("info,tower_http=warn,sqlx=warn"),
    };
    let json = match format {
        Some(f) => *f == LogFormat::Json,
        None => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests and flushing the audit log");
}

pub fn run(args: Args) -> ExitCode {
    let settings = match Settings::load(args.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tame serve: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logging(settings.log_format.as_ref()) {
        eprintln!("tame serve: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tame serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(e) => {
                tracing::error!("cannot start: {e}");
                eprintln!("tame serve: {e}");
                return ExitCode::FAILURE;
            }
        };
        match app.run_until_stopped(shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tame serve: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
