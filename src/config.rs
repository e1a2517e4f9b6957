//! Settings, layered: built-in defaults, then a YAML file (`--config FILE`,
//! or `config/tame.yaml` when it exists), then `TAME_…` environment
//! variables (`TAME_JWT__ISSUER` for nested ones). Defaults need no file.
//! Secrets are typed so that `Debug` and logs never show them.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Yaml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address and port to listen on.
    pub bind: String,
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`.
    pub database_url: DatabaseUrl,
    /// How long an operation waits for a database connection before failing (503).
    pub database_timeout_secs: u64,
    /// Most connections one server opens to the database; unset, the
    /// backend's own number ([`crate::store::open`]).
    pub database_connections: Option<u32>,
    /// The policy file.
    pub policy_path: PathBuf,
    /// Reload the policy when its file changes.
    pub watch_policy: bool,
    /// Keys given by the environment: `role:key` pairs separated by commas.
    pub api_keys: Option<SecretString>,
    /// Serve without authentication even off loopback. Never the default.
    pub auth_disabled: bool,
    pub jwt: Jwt,
    /// Key of the audit chain's HMAC; generated once and kept in the database when unset.
    pub audit_secret: Option<SecretString>,
    /// `pretty` or `json`; `pretty` on a terminal, `json` otherwise, when unset.
    pub log_format: Option<LogFormat>,
    pub limits: Limits,
    pub audit: Audit,
    pub approvals: Approvals,
}

/// Approvals and their notifications.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approvals {
    /// Seconds an approval stays open when its rule sets no approval_ttl.
    pub ttl_secs: u64,
    /// Where to POST notifications of new and resolved approvals.
    pub webhook_url: Option<String>,
    /// Key of the notifications' HMAC signature; required with a URL.
    pub webhook_secret: Option<SecretString>,
    /// Delivery attempts in all.
    pub webhook_attempts: u32,
    /// Wait before the first retry, doubled after each failure.
    pub webhook_backoff_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A database URL; its password never prints.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl std::ops::Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // scheme://user:password@host… -> scheme://user:***@host…
        let text = &self.0;
        let masked = match (text.find("://"), text.rfind('@')) {
            (Some(start), Some(at)) if at > start => match text[start + 3..at].find(':') {
                Some(colon) => format!("{}:***{}", &text[..start + 3 + colon], &text[at..]),
                None => text.clone(),
            },
            _ => text.clone(),
        };
        f.debug_tuple("DatabaseUrl").field(&masked).finish()
    }
}

/// JSON Web Tokens accepted in place of keys.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Jwt {
    /// Shared secret for HS256 tokens.
    pub hs256_secret: Option<SecretString>,
    /// PEM public key (the text, or a path to it) for RS256 tokens.
    pub rs256_public_key: Option<String>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `aud`.
    pub audience: Option<String>,
}

/// Request limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub body_bytes: usize,
    /// Longest a request may take, in seconds.
    pub request_timeout_secs: u64,
    /// Requests per second (sustained) and burst, per principal, by role.
    pub agent: Rate,
    pub approver: Rate,
    pub admin: Rate,
    /// Per client address when auth is off.
    pub open: Rate,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// The audit writer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// Decisions waiting to be written before new ones wait for room.
    pub queue_capacity: usize,
    /// Most callers committed in one transaction.
    pub max_batch: usize,
    /// How long a decision waits for room in the queue before failing with 503.
    pub enqueue_timeout_ms: u64,
    /// Remove entries older than this many days (the removal is itself recorded).
    pub retention_days: Option<u32>,
}

/// The built-in defaults, as the layer every other one overrides.
fn defaults() -> serde_json::Value {
    serde_json::json!({
        "bind": "127.0.0.1:8000",
        "database_url": "sqlite://data/tame.db",
        "database_timeout_secs": 5,
        "database_connections": null,
        "policy_path": "policies/default.yaml",
        "watch_policy": true,
        "auth_disabled": false,
        "jwt": {},
        "limits": {
            "body_bytes": 1024 * 1024,
            "request_timeout_secs": 30,
            "agent": {"per_second": 200, "burst": 400},
            "approver": {"per_second": 50, "burst": 100},
            "admin": {"per_second": 50, "burst": 100},
            "open": {"per_second": 1000, "burst": 2000},
        },
        "audit": {"queue_capacity": 8192, "max_batch": 512, "enqueue_timeout_ms": 5000, "retention_days": null},
        "approvals": {"ttl_secs": 3600, "webhook_url": null, "webhook_attempts": 5, "webhook_backoff_ms": 1000},
    })
}

impl Settings {
    /// Load the layers. `file` is `--config`; without it `config/tame.yaml` is read if present.
    pub fn load(file: Option<&Path>) -> Result<Settings, String> {
        let mut figment = Figment::from(Serialized::defaults(defaults()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(format!("config file {} does not exist", path.display()));
                }
                figment = figment.merge(Yaml::file_exact(path));
            }
            None => {
                let default = Path::new("config/tame.yaml");
                if default.exists() {
                    figment = figment.merge(Yaml::file_exact(default));
                }
            }
        }
        // The SDK's variables (an agent's shell may also start a server) and the tests' are not settings.
        figment = figment.merge(Env::prefixed("TAME_").split("__").ignore(&[
            "config",
            "test_database_url",
            "test_backend",
            "log",
            "api_url",
            "api_key",
            "agent_id",
            "user_id",
            "session_id",
            "bypass_mode",
            "bin",
        ]));
        figment.extract().map_err(|e| {
            let mut text = String::new();
            for err in e {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&err.to_string());
            }
            format!("invalid configuration: {text}")
        })
    }

    /// The defaults with `overrides` merged over them, and nothing else: no
    /// file, no environment. For tests and embedding.
    pub fn from_overrides(overrides: serde_json::Value) -> Result<Settings, String> {
        Figment::from(Serialized::defaults(defaults()))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| format!("invalid configuration: {e}"))
    }

    /// Refuse values that cannot work (or would overflow a clock).
    pub fn check(&self) -> Result<(), String> {
        let over = |name: &str, value: u64, max: u64| -> Result<(), String> {
            if value > max {
                Err(format!("{name} is {value}; at most {max} is accepted"))
            } else {
                Ok(())
            }
        };
        over(
            "limits.body_bytes",
            self.limits.body_bytes as u64,
            64 * 1024 * 1024,
        )?;
        over(
            "limits.request_timeout_secs",
            self.limits.request_timeout_secs,
            3600,
        )?;
        over(
            "approvals.ttl_secs",
            self.approvals.ttl_secs,
            30 * 24 * 3600,
        )?;
        over(
            "approvals.webhook_attempts",
            u64::from(self.approvals.webhook_attempts),
            20,
        )?;
        over(
            "approvals.webhook_backoff_ms",
            self.approvals.webhook_backoff_ms,
            600_000,
        )?;
        over(
            "audit.retention_days",
            u64::from(self.audit.retention_days.unwrap_or(0)),
            36_500,
        )?;
        over(
            "audit.enqueue_timeout_ms",
            self.audit.enqueue_timeout_ms,
            600_000,
        )?;
        over(
            "database_connections",
            u64::from(self.database_connections.unwrap_or(0)),
            1000,
        )?;
        if self.database_connections == Some(0) {
            return Err(
                "database_connections (TAME_DATABASE_CONNECTIONS) must be at least 1 (on PostgreSQL, at least 3)"
                    .into(),
            );
        }
        if self.approvals.ttl_secs == 0 {
            return Err("approvals.ttl_secs must be at least 1".into());
        }
        self.check_bind()?;
        let at_least = |name: &str, value: u64, min: u64, hint: &str| -> Result<(), String> {
            if value < min {
                Err(format!(
                    "{name} is {value}; it must be at least {min}{hint}"
                ))
            } else {
                Ok(())
            }
        };
        at_least(
            "limits.body_bytes (TAME_LIMITS__BODY_BYTES)",
            self.limits.body_bytes as u64,
            1024,
            "",
        )?;
        for (role, rate) in [
            ("agent", self.limits.agent),
            ("approver", self.limits.approver),
            ("admin", self.limits.admin),
            ("open", self.limits.open),
        ] {
            for (field, value) in [("per_second", rate.per_second), ("burst", rate.burst)] {
                let upper = format!("{}__{}", role.to_uppercase(), field.to_uppercase());
                at_least(
                    &format!("limits.{role}.{field} (TAME_LIMITS__{upper})"),
                    u64::from(value),
                    1,
                    " (to lift the limit, set it high)",
                )?;
            }
        }
        if let Some(days) = self.audit.retention_days {
            at_least(
                "audit.retention_days (TAME_AUDIT__RETENTION_DAYS)",
                u64::from(days),
                1,
                "; leave it unset to keep the log for good",
            )?;
        }
        at_least(
            "approvals.webhook_attempts (TAME_APPROVALS__WEBHOOK_ATTEMPTS)",
            u64::from(self.approvals.webhook_attempts),
            1,
            " (the first attempt counts)",
        )?;
        if let Some(url) = &self.approvals.webhook_url {
            crate::webhook::parse_url(url)?;
            if self.approvals.webhook_secret.is_none() {
                return Err("approvals.webhook_url needs approvals.webhook_secret (TAME_APPROVALS__WEBHOOK_SECRET) to sign its notifications".into());
            }
        }
        if self
            .approvals
            .webhook_secret
            .as_ref()
            .is_some_and(|secret| secret.expose_secret().trim().is_empty())
        {
            return Err("approvals.webhook_secret (TAME_APPROVALS__WEBHOOK_SECRET) is empty: anyone could sign a notification with it; make one with `openssl rand -hex 32`".into());
        }
        if let Some(secret) = &self.jwt.hs256_secret {
            // RFC 7518: a key at least as long as the hash.
            at_least(
                "the length of jwt.hs256_secret (TAME_JWT__HS256_SECRET)",
                secret.expose_secret().len() as u64,
                32,
                " bytes (256 bits, as HS256 requires); make one with `openssl rand -hex 32`",
            )?;
        }
        Ok(())
    }

    /// The bind address is HOST:PORT.
    fn check_bind(&self) -> Result<(), String> {
        let well_formed = self.bind.parse::<std::net::SocketAddr>().is_ok()
            || self.bind.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok()
            });
        if well_formed {
            Ok(())
        } else {
            Err(format!(
                "bind (TAME_BIND) is {:?}: give HOST:PORT, such as 127.0.0.1:8000, 0.0.0.0:8000 or [::1]:8000",
                self.bind
            ))
        }
    }

    /// The bind address is a loopback one.
    pub fn is_loopback(&self) -> bool {
        self.bind
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip().is_loopback())
            .unwrap_or_else(|_| self.bind.to_ascii_lowercase().starts_with("localhost:"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file_and_secrets_do_not_print() {
        let s = figment::Figment::from(Serialized::defaults(defaults()))
            .merge(Serialized::default("audit_secret", "hunter2"))
            .extract::<Settings>()
            .unwrap();
        assert_eq!(s.bind, "127.0.0.1:8000");
        assert_eq!(&*s.database_url, "sqlite://data/tame.db");
        assert!(s.is_loopback());
        assert!(!format!("{s:?}").contains("hunter2"));
        let url = DatabaseUrl("postgres://tame:hunter2@db:5432/tame".into());
        assert_eq!(
            format!("{url:?}"),
            r#"DatabaseUrl("postgres://tame:***@db:5432/tame")"#
        );
    }
}
