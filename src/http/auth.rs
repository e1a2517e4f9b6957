//! Who is asking: an API key or a JWT becomes a typed [`Principal`] with a
//! role, then the principal's token bucket is charged.
//!
//! Keys are stored as SHA-256 hashes (they are long random strings, so a
//! fast hash is enough) and compared in constant time. With no key, no JWT
//! and a loopback address the server runs open: every caller is an admin,
//! limited per client address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::app::AppState;
use crate::config::{Limits, Rate, Settings};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Asks for decisions, reports results, reads its own sessions.
    Agent,
    /// Resolves approvals, reads sessions and logs.
    Approver,
    /// Everything, including policy reloads and keys.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "approver" => Some(Role::Approver),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `key:ID` (a key made by `tame keys`), `env:HASH` (the first 12 hex digits of
    /// the SHA-256 of a key from `TAME_API_KEYS`), `jwt:SUBJECT` or `open:ADDRESS`.
    pub id: String,
    pub role: Role,
}

impl Principal {
    /// Refuse unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::Forbidden(format!(
                "{what} needs the {} role; this key has the {} role",
                names.join(" or "),
                self.role.as_str()
            )))
        }
    }
}

/// SHA-256 of a key, hex: what is stored.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random key: `tame_` and 43 characters of base64url (256 bits).
pub fn new_key() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    format!(
        "tame_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    role: String,
}

type Limiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// Everything needed to authenticate and limit a request.
pub struct Auth {
    /// Key hash -> (principal id, role): the database's unrevoked keys and the environment's.
    keys: ArcSwap<HashMap<String, (String, Role)>>,
    env_keys: HashMap<String, (String, Role)>,
    jwt: Option<(DecodingKey, Validation)>,
    /// Auth explicitly disabled by configuration.
    disabled: bool,
    /// Auth disabled on purpose on an address other than loopback: requests
    /// addressed to any IP address are answered, not only to loopback.
    any_address: bool,
    /// A key or JWT has been configured at some point. Never unset: revoking
    /// the last key locks the server rather than opening it to everyone.
    closed: AtomicBool,
    limiters: HashMap<&'static str, Limiter>,
}

fn limiter(rate: Rate) -> Limiter {
    let per_second = NonZeroU32::new(rate.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(rate.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
}

impl Auth {
    pub fn new(settings: &Settings) -> Result<Auth, String> {
        let mut env_keys = HashMap::new();
        if let Some(list) = &settings.api_keys {
            for (n, pair) in list
                .expose_secret()
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .enumerate()
            {
                let Some((role, key)) = pair.split_once(':') else {
                    return Err(format!("TAME_API_KEYS entry {} is not role:key", n + 1));
                };
                let role = Role::parse(role.trim()).ok_or_else(|| {
                    format!(
                        "TAME_API_KEYS entry {}: unknown role {role:?} (agent, approver or admin)",
                        n + 1
                    )
                })?;
                if key.trim().len() < 16 {
                    return Err(format!(
                        "TAME_API_KEYS entry {}: a key must have at least 16 characters",
                        n + 1
                    ));
                }
                // The id comes from the key itself, so reordering the list never hands
                // one key's sessions and approvals to another.
                let hash = hash_key(key.trim());
                env_keys.insert(hash.clone(), (format!("env:{}", &hash[..12]), role));
            }
        }
        let jwt = jwt_decoder(settings)?;
        let l: &Limits = &settings.limits;
        let limiters = HashMap::from([
            ("agent", limiter(l.agent)),
            ("approver", limiter(l.approver)),
            ("admin", limiter(l.admin)),
            ("open", limiter(l.open)),
        ]);
        Ok(Auth {
            keys: ArcSwap::from_pointee(env_keys.clone()),
            closed: AtomicBool::new(!env_keys.is_empty() || jwt.is_some()),
            env_keys,
            jwt,
            disabled: settings.auth_disabled,
            any_address: settings.auth_disabled && !settings.is_loopback(),
            limiters,
        })
    }

    /// Re-read the database's keys (creation and revocation by `tame keys` take effect here).
    pub async fn refresh(&self, store: &dyn Store) -> Result<(), crate::store::StoreError> {
        let mut keys = self.env_keys.clone();
        let rows = store.keys().await?;
        // Any key ever created closes the server for good, revoked or not.
        if !rows.is_empty() {
            self.closed.store(true, Ordering::Release);
        }
        for k in rows {
            if k.revoked_at.is_none() {
                if let Some(role) = Role::parse(&k.role) {
                    keys.insert(k.hash, (format!("key:{}", k.id), role));
                }
            }
        }
        if !keys.is_empty() {
            self.closed.store(true, Ordering::Release);
        }
        self.keys.store(Arc::new(keys));
        for l in self.limiters.values() {
            l.retain_recent();
        }
        Ok(())
    }

    /// No key and no JWT ever configured, or auth disabled: every caller is let in.
    pub fn is_open(&self) -> bool {
        self.disabled || !self.closed.load(Ordering::Acquire)
    }

    fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        let key_match = || {
            self.keys
                .load()
                .get(&hash_key(token))
                .map(|(id, role)| Principal {
                    id: id.clone(),
                    role: *role,
                })
        };
        if let Some((key, validation)) = &self.jwt {
            if token.matches('.').count() == 2 {
                let data = match jsonwebtoken::decode::<Claims>(token, key, validation) {
                    Ok(data) => data,
                    // A key may contain two dots too: only if it is none is the token's error the answer.
                    Err(e) => {
                        return key_match().ok_or_else(|| {
                            ApiError::Unauthorized(format!("invalid token: {}", jwt_problem(&e)))
                        });
                    }
                };
                if data.claims.sub.trim().is_empty() {
                    return Err(ApiError::Unauthorized(
                        "invalid token: its sub (subject) is empty, so it names no caller; give each caller a subject of its own".into(),
                    ));
                }
                let role = Role::parse(&data.claims.role).ok_or_else(|| {
                    ApiError::Unauthorized(format!(
                        "token role {:?} is not agent, approver or admin",
                        data.claims.role
                    ))
                })?;
                return Ok(Principal {
                    id: format!("jwt:{}", data.claims.sub),
                    role,
                });
            }
        }
        // The lookup is by the SHA-256 of what was presented, so its timing
        // says nothing about how close a guess came to a real key.
        match self.keys.load().get(&hash_key(token)) {
            Some((id, role)) => Ok(Principal {
                id: id.clone(),
                role: *role,
            }),
            None => Err(ApiError::Unauthorized("invalid API key".into())),
        }
    }

    fn charge(&self, principal: &Principal, bucket: &'static str) -> Result<(), ApiError> {
        let Some(limiter) = self.limiters.get(bucket) else {
            return Ok(());
        };
        match limiter.check_key(&principal.id) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                metrics::counter!("tame_rate_limited_total", "role" => principal.role.as_str())
                    .increment(1);
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::RateLimited(
                    wait.as_secs_f64().ceil().max(1.0) as u64
                ))
            }
        }
    }
}

fn jwt_decoder(settings: &Settings) -> Result<Option<(DecodingKey, Validation)>, String> {
    let j = &settings.jwt;
    let (key, alg) = match (&j.hs256_secret, &j.rs256_public_key) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err("configure jwt.hs256_secret or jwt.rs256_public_key, not both".into());
        }
        (Some(secret), None) => (
            DecodingKey::from_secret(secret.expose_secret().as_bytes()),
            Algorithm::HS256,
        ),
        (None, Some(pem)) => {
            let text = if pem.contains("-----BEGIN") {
                pem.clone()
            } else {
                std::fs::read_to_string(pem)
                    .map_err(|e| format!("cannot read jwt.rs256_public_key {pem}: {e}"))?
            };
            let key = DecodingKey::from_rsa_pem(text.as_bytes()).map_err(|e| {
                format!("jwt.rs256_public_key is not an RSA public key in PEM: {e}")
            })?;
            (key, Algorithm::RS256)
        }
    };
    let mut validation = Validation::new(alg);
    match &j.issuer {
        Some(iss) => validation.set_issuer(&[iss]),
        None => return Err("jwt.issuer is required when JWTs are accepted".into()),
    }
    match &j.audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => return Err("jwt.audience is required when JWTs are accepted".into()),
    }
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    // exp and nbf are checked with a minute's allowance for clocks that
    // disagree (the library's default, stated here as the README states it).
    validation.leeway = 60;
    Ok(Some((key, validation)))
}

/// Why a token was refused, in words (the library's own names for the
/// common cases are not meant for readers).
fn jwt_problem(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "it has expired (exp)".into(),
        ErrorKind::ImmatureSignature => "it is not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "wrong issuer (iss)".into(),
        ErrorKind::InvalidAudience => "wrong audience (aud)".into(),
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidAlgorithm => {
            "it is signed with another algorithm than the server accepts".into()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("the claim {claim} is missing"),
        _ => e.to_string(),
    }
}

/// With auth off, a web page the operator visits must not be able to use
/// the server. Requests must be addressed to localhost or an IP address:
/// a web page can point a name of its own at this server (DNS rebinding),
/// not an address; and only to a loopback one unless `any_address`. And a
/// request that can change something must say it sends JSON: browsers send
/// other bodies, or none, across sites without asking.
fn refuse_browser_tricks(parts: &Parts, any_address: bool) -> Result<(), ApiError> {
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    let addressed = name.is_empty()
        || name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| any_address || ip.is_loopback());
    if !addressed {
        let served = if any_address {
            "localhost or an IP address"
        } else {
            "localhost"
        };
        return Err(ApiError::Forbidden(format!(
            "with authentication off the server only answers requests addressed to {served}, not {host:?}; configure keys to serve other names"
        )));
    }
    let safe = matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let content_type = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let json = content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !safe && !json {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send JSON with \"Content-Type: application/json\", not {content_type:?} (with authentication off, requests that change something must say so)"
        )));
    }
    Ok(())
}

/// The credential a request carries: `Authorization: Bearer …` or `X-API-Key: …`.
fn credential(parts: &Parts) -> Result<Option<String>, ApiError> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| ApiError::Unauthorized("Authorization header is not text".into()))?;
        // The scheme's name is case-insensitive.
        let token = match text.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token,
            _ => {
                return Err(ApiError::Unauthorized(
                    "Authorization must be \"Bearer <key>\"".into(),
                ));
            }
        };
        return Ok(Some(token.trim().to_string()));
    }
    if let Some(value) = parts.headers.get("x-api-key") {
        let text = value
            .to_str()
            .map_err(|_| ApiError::Unauthorized("X-API-Key header is not text".into()))?;
        return Ok(Some(text.trim().to_string()));
    }
    Ok(None)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Principal, ApiError> {
        let auth = &state.auth;
        if auth.is_open() {
            refuse_browser_tricks(parts, auth.any_address)?;
            // Open: any credentials sent are ignored; each client address has its own bucket.
            let addr = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or("unknown".to_string(), |c| c.0.ip().to_string());
            let principal = Principal {
                id: format!("open:{addr}"),
                role: Role::Admin,
            };
            auth.charge(&principal, "open")?;
            return Ok(principal);
        }
        let Some(token) = credential(parts)? else {
            return Err(ApiError::Unauthorized(
                "missing credentials: send \"Authorization: Bearer <key>\" or \"X-API-Key: <key>\""
                    .into(),
            ));
        };
        let principal = match auth.authenticate(&token) {
            Ok(p) => p,
            Err(e) => {
                // Failed attempts are limited per client address, so keys cannot be guessed at speed.
                let addr = parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map_or("unknown".to_string(), |c| c.0.ip().to_string());
                auth.charge(
                    &Principal {
                        id: format!("failed:{addr}"),
                        role: Role::Agent,
                    },
                    "open",
                )?;
                return Err(e);
            }
        };
        auth.charge(&principal, principal.role.as_str())?;
        Ok(principal)
    }
}
