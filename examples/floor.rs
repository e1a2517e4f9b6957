//! The floor for `bench/load.sh`: the fastest an axum server on this machine
//! can answer an enforce request, so that tame's numbers can be read as a
//! ratio to it rather than as absolute figures that vary with the machine.
//!
//! It does the work every decision server must do and nothing else: accept
//! `POST /api/v1/enforce`, parse the body into a `serde_json::Value`, and
//! answer a fixed JSON decision shaped like tame's (same fields, similar
//! size). No auth, no rate limit, no policy, no session, no audit log.
//! `GET /health` answers so the script can wait for it.
//!
//! It runs on the same axum and tokio as tame (the crate's own
//! dependencies), on tokio's default multi-threaded runtime, as tame does.
//!
//! ```text
//! cargo run --release --example floor -- 127.0.0.1:8001
//! ```
//!
//! The address is the first argument, else `TAME_BIND`, else `127.0.0.1:8001`.

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

/// Parse the body as tame does (any JSON; 400 when it is not JSON), echo the
/// session id so the answer varies per request like tame's, and decide "allow".
async fn enforce(body: axum::body::Bytes) -> Result<Json<Value>, StatusCode> {
    let request: Value = serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let session_id = request
        .get("session_id")
        .and_then(Value::as_str)
        .unwrap_or("00000000-0000-0000-0000-000000000000");
    Ok(Json(json!({
        "session_id": session_id,
        "decision": "allow",
        "rule_name": "allow_temp_files",
        "reason": "Temporary files are open to agents",
        "policy_version": "1.0",
        "policy_hash": "0000000000000000000000000000000000000000000000000000000000000000",
        "log_id": "00000000-0000-7000-8000-000000000000",
        "timestamp": "2025-01-01T00:00:00.000000+00:00",
        "metadata": {},
        "approval_id": null,
    })))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("TAME_BIND").ok())
        .unwrap_or_else(|| "127.0.0.1:8001".into());
    let app = Router::new()
        .route("/api/v1/enforce", post(enforce))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }));
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    eprintln!("floor: serving on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
