//! The live policy: an immutable compiled snapshot swapped atomically.
//!
//! A reload (SIGHUP, the file changing, or `POST /policy/reload`) reads and
//! compiles the file off the async workers; only a policy that loads whole
//! replaces the current one, and a decision always uses exactly one snapshot.
//! Every text loaded is kept in storage under its hash.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::Utc;

use crate::policy::{LoadError, Policy, read_text};
use crate::store::{PolicyVersion, Store, StoreError};
use crate::timefmt;

/// A compiled policy and when it was loaded.
pub struct Loaded {
    pub policy: Policy,
    pub loaded_at: String,
}

pub struct LivePolicy {
    current: ArcSwap<Loaded>,
    path: PathBuf,
    store: Arc<dyn Store>,
    /// Serializes reloads so that two never race to swap.
    reloading: tokio::sync::Mutex<()>,
}

/// Why a reload did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Policy(#[from] LoadError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

async fn compile(path: PathBuf) -> Result<(Policy, String), LoadError> {
    tokio::task::spawn_blocking(move || {
        let file = path.display().to_string();
        let source = read_text(&path).map_err(|message| LoadError {
            errors: vec![crate::policy::Diagnostic {
                file: file.clone(),
                line: 0,
                column: 0,
                rule: None,
                message,
                severity: crate::policy::Severity::Error,
            }],
        })?;
        let policy = Policy::from_source(&file, &source)?;
        Ok((policy, source))
    })
    .await
    .unwrap_or_else(|e| {
        Err(LoadError {
            errors: vec![crate::policy::Diagnostic {
                file: String::new(),
                line: 0,
                column: 0,
                rule: None,
                message: format!("policy compilation panicked: {e}"),
                severity: crate::policy::Severity::Error,
            }],
        })
    })
}

impl LivePolicy {
    /// Load the policy at start; any error is fatal there.
    pub async fn load(path: PathBuf, store: Arc<dyn Store>) -> Result<LivePolicy, ReloadError> {
        let (policy, source) = compile(path.clone()).await?;
        let loaded = record(&*store, policy, source).await?;
        Ok(LivePolicy {
            current: ArcSwap::from_pointee(loaded),
            path,
            store,
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// The snapshot to decide with.
    pub fn current(&self) -> Arc<Loaded> {
        self.current.load_full()
    }

    /// Re-read the file; on any error the current policy stays.
    pub async fn reload(&self) -> Result<Arc<Loaded>, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let result = async {
            let (policy, source) = compile(self.path.clone()).await?;
            if policy.hash == self.current().policy.hash {
                return Ok(self.current());
            }
            let loaded = Arc::new(record(&*self.store, policy, source).await?);
            self.current.store(loaded.clone());
            Ok(loaded)
        }
        .await;
        match &result {
            Ok(l) => {
                tracing::info!(version = %l.policy.version, hash = %l.policy.hash, rules = l.policy.rules.len(), "policy loaded")
            }
            Err(e) => {
                tracing::error!(error = %e, "policy reload refused; the previous policy stays in force")
            }
        }
        metrics::counter!("tame_policy_reloads_total", "outcome" => if result.is_ok() { "loaded" } else { "refused" }).increment(1);
        result
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

async fn record(store: &dyn Store, policy: Policy, source: String) -> Result<Loaded, StoreError> {
    let loaded_at = timefmt::format(Utc::now());
    store
        .record_policy(&PolicyVersion {
            hash: policy.hash.clone(),
            version: policy.version.clone(),
            file: policy.file.clone(),
            rules_count: policy.rules.len() as i64,
            loaded_at: loaded_at.clone(),
            source,
        })
        .await?;
    Ok(Loaded { policy, loaded_at })
}
