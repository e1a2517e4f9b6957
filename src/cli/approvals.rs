//! `tame approvals list|show|approve|deny`: an approver's view of the queue,
//! through the running server's API (so waiting agents are woken at once).

use std::process::ExitCode;

use serde_json::{Value, json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server.
    #[arg(
        long,
        env = "TAME_API_URL",
        default_value = "http://127.0.0.1:8000",
        global = true
    )]
    url: String,
    /// An approver or admin key.
    #[arg(long, env = "TAME_API_KEY", hide_env_values = true, global = true)]
    key: Option<String>,
    /// Print the server's JSON instead of a summary.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ApprovalsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ApprovalsCommand {
    /// List approvals, newest first (default: the pending ones).
    List {
        /// pending, approved, denied or expired; "all" for every status.
        #[arg(long, default_value = "pending")]
        status: String,
        /// At most this many, newest first (1 to 1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
    },
    /// Show one approval and its history.
    Show { id: String },
    /// Approve: the agent may then run exactly the call it asked about, once.
    Approve {
        id: String,
        #[arg(long, short)]
        comment: Option<String>,
    },
    /// Deny.
    Deny {
        id: String,
        #[arg(long, short)]
        comment: Option<String>,
    },
}

fn line(a: &Value) -> String {
    // An approved approval keeps its status once used or past its time.
    let status = match (a["status"].as_str().unwrap_or(""), a["usable"].as_bool()) {
        ("approved", Some(false)) if a["consumed_at"].is_string() => "approved (used)".into(),
        ("approved", Some(false)) => "approved (expired unused)".into(),
        (status, _) => status.to_string(),
    };
    format!(
        "{}  {:<8}  {:<24}  {}  session {}  expires {}",
        a["id"].as_str().unwrap_or(""),
        status,
        a["tool_name"].as_str().unwrap_or(""),
        a["tool_args"],
        a["session_id"].as_str().unwrap_or(""),
        a["expires_at"].as_str().unwrap_or("")
    )
}

pub fn run(args: Args) -> ExitCode {
    crate::tls::install_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let client = reqwest::Client::new();
        let base = args.url.trim_end_matches('/');
        let Some(mut url) = reqwest::Url::parse(base)
            .ok()
            .filter(|u| !u.cannot_be_a_base())
        else {
            eprintln!("tame approvals: --url {base:?} is not an http(s) URL such as http://127.0.0.1:8000");
            return ExitCode::from(2);
        };
        // The id goes in as one path segment, escaped: whatever it holds
        // (`/`, `..`, `?`, `#`) cannot name another endpoint.
        let (method, id, action, body) = match &args.command {
            ApprovalsCommand::List { .. } => (reqwest::Method::GET, None, None, None),
            ApprovalsCommand::Show { id } => (reqwest::Method::GET, Some(id), None, None),
            ApprovalsCommand::Approve { id, comment } => (
                reqwest::Method::POST,
                Some(id),
                Some("approve"),
                Some(json!({"comment": comment})),
            ),
            ApprovalsCommand::Deny { id, comment } => (
                reqwest::Method::POST,
                Some(id),
                Some("deny"),
                Some(json!({"comment": comment})),
            ),
        };
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1", "approvals"]);
            path.extend(id).extend(action);
        }
        if let ApprovalsCommand::List { status, limit } = &args.command {
            let mut query = url.query_pairs_mut();
            if status != "all" {
                query.append_pair("status", status);
            }
            // One more than shown, to tell whether any are left out.
            query.append_pair("limit", &(limit + 1).min(1000).to_string());
        }
        let mut request = client.request(method, url);
        if let Some(key) = &args.key {
            request = request.bearer_auth(key);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("tame approvals: cannot reach {base}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body["error"]["message"].as_str().unwrap_or("no details");
            eprintln!("tame approvals: {status}: {message}");
            return ExitCode::FAILURE;
        }
        // Whether the list goes on past what is shown (it was asked for one more).
        let mut body = body;
        let mut more = false;
        if let (ApprovalsCommand::List { limit, .. }, Some(list)) =
            (&args.command, body["approvals"].as_array_mut())
        {
            more = list.len() > usize::from(*limit) || list.len() == 1000;
            list.truncate(usize::from(*limit));
        }
        if args.json {
            println!("{body}");
            return ExitCode::SUCCESS;
        }
        match &args.command {
            ApprovalsCommand::List { limit, .. } => {
                let list = body["approvals"].as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    println!("no approvals");
                }
                for a in &list {
                    println!("{}", line(a));
                }
                if more {
                    eprintln!(
                        "tame approvals: the newest {limit} shown; older ones may be left out (--limit up to 1000)"
                    );
                }
            }
            ApprovalsCommand::Show { .. } => {
                println!("{}", line(&body));
                println!(
                    "rule {}: {}",
                    body["rule_name"].as_str().unwrap_or("-"),
                    body["reason"].as_str().unwrap_or("")
                );
                for h in body["history"].as_array().cloned().unwrap_or_default() {
                    println!(
                        "  {}  {:<9} {:<9} by {}",
                        h["timestamp"].as_str().unwrap_or(""),
                        h["kind"].as_str().unwrap_or(""),
                        h["decision"].as_str().unwrap_or(""),
                        h["principal"].as_str().unwrap_or("")
                    );
                }
            }
            ApprovalsCommand::Approve { .. } | ApprovalsCommand::Deny { .. } => {
                println!(
                    "{} {}",
                    body["id"].as_str().unwrap_or(""),
                    body["status"].as_str().unwrap_or("")
                );
            }
        }
        ExitCode::SUCCESS
    })
}
