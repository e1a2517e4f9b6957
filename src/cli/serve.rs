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

/// Levels as other tools spell them, which a log filter would read as the
/// names of modules (and so show nothing but theirs), with the level meant.
const LEVEL_LOOKALIKES: [(&str, &str); 12] = [
    ("warning", "warn"),
    ("err", "error"),
    ("fatal", "error"),
    ("critical", "error"),
    ("crit", "error"),
    ("information", "info"),
    ("notice", "info"),
    ("verbose", "debug"),
    ("debugging", "debug"),
    ("all", "trace"),
    ("none", "off"),
    ("quiet", "off"),
];

/// Check TAME_LOG's directives before they are parsed. A word alone names a
/// module to show everything of, and nothing else: refused when it spells a
/// level the way other tools do, noted (the returned text) when it is not a
/// module of the server's own.
fn check_log_filter(given: &str) -> Result<Option<String>, String> {
    let mut others = Vec::new();
    for word in given.split(',').map(str::trim) {
        if word.is_empty() || word.contains(['=', '[', ':']) {
            continue;
        }
        let lower = word.to_ascii_lowercase();
        if ["off", "error", "warn", "info", "debug", "trace"].contains(&lower.as_str()) {
            continue;
        }
        if let Some((_, level)) = LEVEL_LOOKALIKES.iter().find(|(alias, _)| *alias == lower) {
            return Err(format!(
                "TAME_LOG={given:?}: {word:?} is not a level here (it would show only a module of that name); write {level}"
            ));
        }
        if word != "tame" {
            others.push(word);
        }
    }
    Ok((!others.is_empty()).then(|| {
        format!(
            "TAME_LOG={given:?}: {} taken as the name of a module, whose logs alone are shown; levels are error, warn, info, debug, trace",
            others
                .iter()
                .map(|w| format!("{w:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }))
}

/// Log to stderr at the level TAME_LOG gives (refused when unreadable).
fn init_logging(format: Option<&LogFormat>) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("TAME_LOG") {
        Ok(given) if !given.trim().is_empty() => {
            if let Some(note) = check_log_filter(&given)? {
                eprintln!("tame serve: {note}");
            }
            EnvFilter::try_new(&given).map_err(|e| {
                format!(
                    "TAME_LOG={given:?} cannot be read ({e}): give a level (error, warn, info, debug, trace) or directives such as info,tame=debug"
                )
            })?
        }
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

#[cfg(test)]
mod tests {
    use super::check_log_filter;

    #[test]
    fn levels_and_directives_pass_and_level_lookalikes_are_refused() {
        for ok in [
            "info",
            "WARN",
            "info,tame=debug",
            "tame",
            "tame::audit",
            "warn,[request]=debug",
            " debug , sqlx=warn ",
        ] {
            assert_eq!(check_log_filter(ok), Ok(None), "{ok}");
        }
        for (given, meant) in [
            ("warning", "write warn"),
            ("info,Verbose", "write debug"),
            ("fatal", "write error"),
        ] {
            let refused = check_log_filter(given).unwrap_err();
            assert!(refused.contains(meant), "{given}: {refused}");
        }
        let note = check_log_filter("info,hyper").unwrap().expect("a note");
        assert!(
            note.contains("\"hyper\" taken as the name of a module"),
            "{note}"
        );
    }
}
