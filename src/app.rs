//! Building the application (storage, policy, audit writer, auth, router)
//! and running it until a shutdown signal, then draining: in-flight requests
//! finish and every queued audit entry is committed before the process ends.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use crate::audit::writer::Writer;
use crate::config::Settings;
use crate::http::auth::Auth;
use crate::reload::LivePolicy;
use crate::session::Sessions;
use crate::store::{self, Store};

/// Shared by every request: cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub policy: LivePolicy,
    pub sessions: Sessions,
    pub writer: Writer,
    /// Key of the audit chain's HMAC.
    pub secret: Arc<[u8]>,
    pub auth: Auth,
    /// Requests waiting on approvals.
    pub waiters: crate::approvals::Waiters,
    /// Approval notifications, when configured.
    pub webhook: Option<Arc<crate::webhook::Webhook>>,
    /// Turns true when the server starts shutting down: long polls and event
    /// streams end then, so that draining does not wait on them.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Every committed decision and result, for live tails.
    pub events: broadcast::Sender<Arc<serde_json::Value>>,
    pub metrics: PrometheusHandle,
    pub started: Instant,
    /// Decisions in the log, counted for `/status`.
    pub decision_count: crate::http::ops::DecisionCount,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Whether the audit log's writers still take writes: the group-commit
    /// task and, where the store has one, its writing thread.
    pub fn audit_writing(&self) -> Result<(), crate::store::StoreError> {
        match self.writer.running() {
            true => self.store.writing(),
            false => Err(crate::audit::writer::stopped()),
        }
    }
}

/// The process-wide metrics recorder (installed once; tests start many apps).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    writer_task: tokio::task::JoinHandle<()>,
}

impl Application {
    /// Open storage, load the policy, start the audit writer and bind.
    pub async fn build(settings: Settings) -> Result<Application, String> {
        settings.check()?;
        let auth = Auth::new(&settings)?;
        let store = store::open(
            &settings.database_url,
            Duration::from_secs(settings.database_timeout_secs.max(1)),
            settings.database_connections,
        )
        .await
        .map_err(|e| e.to_string())?;
        auth.refresh(&*store).await.map_err(|e| e.to_string())?;
        crate::audit::check_sealed(&*store).await?;
        if auth.is_open() && !settings.auth_disabled && !settings.is_loopback() {
            return Err(format!(
                "refusing to serve on {} without authentication: create a key (tame keys create --role admin), \
                 set TAME_API_KEYS or configure JWTs; or set TAME_AUTH_DISABLED=true to serve open on purpose",
                settings.bind
            ));
        }
        let secret: Arc<[u8]> = match &settings.audit_secret {
            Some(s) => {
                // Not refused: rows already written under it verify only with it.
                let bytes = s.expose_secret().len();
                if bytes < 16 {
                    tracing::warn!(
                        bytes,
                        "TAME_AUDIT_SECRET is short: anyone who can read the log could guess it and rewrite the chain; for a new log, use at least 16 bytes (openssl rand -hex 32)"
                    );
                }
                s.expose_secret().as_bytes().into()
            }
            None => {
                let mut bytes = [0u8; 32];
                rand::fill(&mut bytes);
                let kept = store
                    .setting_or_insert("audit_secret", &hex::encode(bytes))
                    .await
                    .map_err(|e| e.to_string())?;
                kept.into_bytes().into()
            }
        };
        let policy = LivePolicy::load(settings.policy_path.clone(), store.clone())
            .await
            .map_err(|e| e.to_string())?;
        let a = &settings.audit;
        let (writer, writer_task) = Writer::start(
            store.clone(),
            secret.clone(),
            a.queue_capacity.max(1),
            a.max_batch.max(1),
            Duration::from_millis(a.enqueue_timeout_ms),
        );
        let webhook = match (
            &settings.approvals.webhook_url,
            &settings.approvals.webhook_secret,
        ) {
            // (A URL without a secret is refused by Settings::check.)
            (None, _) | (Some(_), None) => None,
            (Some(url), Some(secret)) => Some(Arc::new(crate::webhook::Webhook::new(
                url.clone(),
                secret.clone(),
                settings.approvals.webhook_attempts,
                Duration::from_millis(settings.approvals.webhook_backoff_ms),
            )?)),
        };
        let listener = TcpListener::bind(&settings.bind)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", settings.bind))?;
        let sessions = Sessions::open(store.clone(), 100_000)
            .await
            .map_err(|e| e.to_string())?;
        let state = AppState(Arc::new(Inner {
            sessions,
            settings,
            store,
            policy,
            writer,
            secret,
            auth,
            waiters: crate::approvals::Waiters::default(),
            webhook,
            stopping: tokio::sync::watch::Sender::new(false),
            events: broadcast::channel(1024).0,
            metrics: metrics_handle(),
            started: Instant::now(),
            decision_count: Default::default(),
        }));
        Ok(Application {
            listener,
            state,
            writer_task,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` resolves, then drain requests and the audit
    /// queue. If an audit writer stops after a failure of its own, the
    /// server shuts down the same way and returns the error, so that
    /// whatever supervises it restarts it (nothing could be recorded until then).
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Application {
            listener,
            state,
            writer_task,
        } = self;
        let background = crate::http::spawn_background(state.clone());
        if state.auth.is_open() {
            tracing::warn!(
                bind = %state.settings.bind,
                "AUTHENTICATION IS OFF: no API key or JWT is configured, so every caller is an admin. \
                 Create a key with `tame keys create --role admin` or set TAME_API_KEYS."
            );
        }
        let policy = state.policy.current();
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| state.settings.bind.clone());
        tracing::info!(
            %address,
            database = state.store.backend(),
            policy = %state.policy.path().display(),
            version = %policy.policy.version,
            hash = %policy.policy.hash,
            "tame is serving"
        );
        drop(policy);
        let app = crate::http::router(state.clone());
        let stopping = state.stopping.clone();
        let watched = state.clone();
        let failure = Arc::new(std::sync::Mutex::new(None::<String>));
        let failed = failure.clone();
        let (give_up, given_up) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            tokio::select! {
                () = shutdown => {}
                cause = writer_failure(&watched) => {
                    tracing::error!(%cause, "shutting down: the audit log can no longer be written; a restart brings it back");
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(cause);
                    let _ = give_up.send(());
                }
            }
            // The writer ends only once every handle to it is gone.
            drop(watched);
            // Long polls and event streams end now, so that draining does not wait on them.
            stopping.send_replace(true);
        };
        let serving = std::future::IntoFuture::into_future(
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown),
        );
        tokio::pin!(serving);
        let served = tokio::select! {
            served = &mut serving => served,
            // Stopping by itself, nobody bounds the drain: it is bounded here.
            Ok(()) = given_up => match tokio::time::timeout(DRAIN, &mut serving).await {
                Ok(served) => served,
                Err(_) => {
                    tracing::error!("requests still open {} s after the audit writer stopped are cut off", DRAIN.as_secs());
                    Ok(())
                }
            },
        };
        for task in background {
            task.abort();
        }
        // The writer ends once the last handle is gone, after committing what is queued.
        let store = state.store.clone();
        drop(state);
        if tokio::time::timeout(DRAIN, writer_task).await.is_err() {
            let cause = format!(
                "the audit writer did not finish within {} s of shutdown",
                DRAIN.as_secs()
            );
            tracing::error!("{cause}");
            failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(cause);
        }
        // A writer that failed while committing the queue.
        if let Err(e) = store.writing() {
            failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e.to_string());
        }
        tracing::info!("stopped");
        let failed = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
        match failed {
            Some(cause) => Err(std::io::Error::other(format!(
                "stopped because the audit log could no longer be written: {cause}"
            ))),
            None => served,
        }
    }
}

/// The longest a shutdown waits for open requests (when the server stops by
/// itself) and then for the audit writer to commit what is queued.
const DRAIN: Duration = Duration::from_secs(30);

/// Resolves, saying why, once an audit writer has stopped after a failure
/// of its own (a stop at shutdown comes after the last handle is dropped,
/// so never while this runs).
async fn writer_failure(state: &AppState) -> String {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        if let Err(e) = state.audit_writing() {
            return e.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_writer_that_fails_stops_the_server_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::from_overrides(serde_json::json!({
            "bind": "127.0.0.1:0",
            "database_url": format!("sqlite://{}", dir.path().join("tame.db").display()),
            "watch_policy": false,
        }))
        .unwrap();
        let app = Application::build(settings).await.unwrap();
        let store = app.state().store.clone();
        let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!server.is_finished(), "the server stopped by itself");

        assert!(store.crash_writer(), "SQLite has a writer of its own");
        let ended = tokio::time::timeout(Duration::from_secs(15), server)
            .await
            .expect("the server went on without a writer")
            .unwrap();
        let error = ended.expect_err("a server that lost its writer exits with an error");
        assert!(
            error.to_string().contains("SQLite writer stopped"),
            "{error}"
        );
    }
}
