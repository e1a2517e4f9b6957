//! Webhook notifications of new and resolved approvals.
//!
//! Each notification is a JSON body POSTed to the configured URL, signed so
//! the receiver can trust it: `X-Tame-Signature: sha256=<hex HMAC-SHA256 of
//! the body, keyed by approvals.webhook_secret>`. A failed delivery is retried
//! with exponential backoff; every attempt is recorded. Deliveries run in
//! their own tasks: a slow or failing receiver never delays or changes a
//! decision.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::Sha256;

use crate::app::AppState;
use crate::store::{ApprovalRow, Delivery, Store};
use crate::timefmt;

/// Where and how to deliver.
pub struct Webhook {
    pub url: String,
    /// The URL as logs and delivery records show it: scheme, host and port.
    /// Its user, password, path and query are left out, as receivers often
    /// take a token in them.
    pub shown: String,
    pub secret: SecretString,
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait before the second attempt; doubled after each failure.
    pub backoff: Duration,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(
        url: String,
        secret: SecretString,
        attempts: u32,
        backoff: Duration,
    ) -> Result<Webhook, String> {
        let shown = shown(&parse_url(&url)?);
        crate::tls::install_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        if secret.expose_secret().len() < 16 {
            tracing::warn!(
                "approvals.webhook_secret is shorter than 16 bytes: a receiver checking signatures against a short secret can be fooled; make one with `openssl rand -hex 32`"
            );
        }
        Ok(Webhook {
            url,
            shown,
            secret,
            attempts: attempts.max(1),
            backoff,
            client,
        })
    }
}

/// The receiver's URL, if it is one to POST to. The refusal does not repeat
/// it: it may hold a password or a token.
pub fn parse_url(url: &str) -> Result<reqwest::Url, String> {
    reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            "approvals.webhook_url (TAME_APPROVALS__WEBHOOK_URL) must be an http:// or https:// URL with a host"
                .into()
        })
}

/// `url` without what may be secret in it: `scheme://host[:port]`, and `/…`
/// when it had a path or query.
fn shown(url: &reqwest::Url) -> String {
    let mut text = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        text.push_str(&format!(":{port}"));
    }
    if url.path() != "/" || url.query().is_some() {
        text.push_str("/…");
    }
    text
}

/// `sha256=<hex>`: the signature of `body`.
pub fn signature(secret: &str, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Send `event` about `approval`, in the background.
pub fn notify(state: &AppState, event: &'static str, approval: &ApprovalRow) {
    let Some(hook) = state.webhook.clone() else {
        return;
    };
    let body = json!({
        "event": event,
        "delivery_id": uuid::Uuid::now_v7().to_string(),
        "sent_at": timefmt::format(Utc::now()),
        "approval": crate::approvals::to_json(approval),
    })
    .to_string();
    tokio::spawn(deliver(
        state.store.clone(),
        hook,
        event,
        approval.id.clone(),
        body,
    ));
}

/// How long after its resolution an undelivered `approval.resolved` is
/// still sent at start.
const RESEND_RESOLVED_WITHIN: chrono::Duration = chrono::Duration::hours(24);

/// At start: send again what a stop cut short. Retries live in the running
/// server, so one that stopped mid-retry (or before the first attempt) left
/// a notification no attempt delivered: `approval.requested` for each
/// unexpired pending approval, and `approval.resolved` for each resolved in
/// the last day, unless an attempt for it was delivered. (With replicas,
/// each one that starts does this: a receiver may get such a notification
/// twice, never none.)
pub async fn resend_undelivered(state: AppState) {
    if state.webhook.is_none() {
        return;
    }
    let now = Utc::now();
    // Whether `at` (and `by` after it) has passed.
    let passed = |at: Option<&str>, by: chrono::Duration| {
        at.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t + by <= now)
    };
    for status in ["pending", "approved", "denied", "expired"] {
        let rows = match state.store.approvals(Some(status), 1000).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for webhook notifications to send again");
                return;
            }
        };
        for row in rows {
            let event = match status {
                "pending" if passed(Some(&row.expires_at), chrono::Duration::zero()) => continue,
                "pending" => "approval.requested",
                _ if row.resolved_at.is_none()
                    || passed(row.resolved_at.as_deref(), RESEND_RESOLVED_WITHIN) =>
                {
                    continue;
                }
                _ => "approval.resolved",
            };
            match state.store.deliveries(&row.id).await {
                Ok(tried) if tried.iter().any(|d| d.event == event && d.error.is_none()) => {}
                Ok(_) => {
                    tracing::info!(approval = %row.id, event, "sending again a webhook notification that a stop cut short");
                    notify(&state, event, &row);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for webhook notifications to send again");
                    return;
                }
            }
        }
    }
}

async fn deliver(
    store: Arc<dyn Store>,
    hook: Arc<Webhook>,
    event: &'static str,
    approval_id: String,
    body: String,
) {
    let signature = signature(hook.secret.expose_secret(), &body);
    let mut wait = hook.backoff;
    for attempt in 1..=hook.attempts {
        let sent = hook
            .client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-tame-event", event)
            .header("x-tame-signature", &signature)
            .body(body.clone())
            .send()
            .await;
        let (status_code, error) = match &sent {
            Ok(r) if r.status().is_success() => (Some(i64::from(r.status().as_u16())), None),
            Ok(r) => (
                Some(i64::from(r.status().as_u16())),
                Some(format!("the receiver answered {}", r.status())),
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        let delivered = error.is_none();
        let record = Delivery {
            approval_id: approval_id.clone(),
            event: event.into(),
            attempt: i64::from(attempt),
            url: hook.shown.clone(),
            status_code,
            error,
            at: timefmt::format(Utc::now()),
        };
        if let Err(e) = store.record_delivery(&record).await {
            tracing::warn!(error = %e, "cannot record a webhook delivery");
        }
        metrics::counter!("tame_webhook_attempts_total", "outcome" => if delivered { "delivered" } else { "failed" }).increment(1);
        if delivered {
            return;
        }
        if attempt < hook.attempts {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    tracing::error!(approval = %approval_id, event, url = %hook.shown, "webhook not delivered after {} attempts", hook.attempts);
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_may_be_secret_in_the_url_is_not_shown() {
        for (url, shown) in [
            (
                "https://hooks.example.com/services/T0/B0/sEcReT",
                "https://hooks.example.com/…",
            ),
            (
                "http://user:hunter2@127.0.0.1:9000/h?token=x",
                "http://127.0.0.1:9000/…",
            ),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("https://example.com/", "https://example.com"),
        ] {
            assert_eq!(
                super::shown(&reqwest::Url::parse(url).unwrap()),
                shown,
                "{url}"
            );
        }
    }

    #[test]
    fn signatures_are_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
