//! The audit log: every decision and every reported result, as an
//! append-only chain of events that the server answers only once committed.
//!
//! Each row carries `hash = HMAC(secret, its columns, prev_hash)`, so a row
//! altered, removed or inserted breaks the chain where it happened; the
//! chain's two ends are kept in `chain_state` under their own HMAC, so the
//! tail cannot be cut off quietly either. [`writer`] batches concurrent
//! appends into one transaction (group commit); [`verify`] walks the chain.

pub mod writer;

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::store::{Store, StoreError};

/// What kind of event a row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Decision,
    Result,
    /// Older rows were removed by retention; the row says which.
    Retention,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Decision => "decision",
            Kind::Result => "result",
            Kind::Retention => "retention",
        }
    }
}

/// One event as stored: every column as text, exactly what the HMAC covers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub ref_id: Option<String>,
    pub session_id: String,
    pub ts: String,
    pub tool_name: Option<String>,
    /// JSON text.
    pub tool_args: Option<String>,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    /// JSON text.
    pub metadata: Option<String>,
    pub decision: Option<String>,
    pub rule_name: Option<String>,
    pub reason: Option<String>,
    pub policy_version: Option<String>,
    pub policy_hash: Option<String>,
    /// Who asked: the principal's id (`key:ID`, `env:HASH`, `jwt:SUBJECT` or `open:ADDRESS`).
    pub principal: Option<String>,
    /// JSON text: the trace of a decision, the report of a result.
    pub body: String,
}

/// An event with its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub seq: i64,
    pub event: Event,
    pub prev_hash: String,
    pub hash: String,
}

/// The chain's ends.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainState {
    pub anchor_seq: i64,
    pub anchor_hash: String,
    pub head_seq: i64,
    pub head_hash: String,
    pub mac: String,
}

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl ChainState {
    /// The ends of a chain with no rows yet.
    pub fn empty() -> ChainState {
        ChainState {
            anchor_seq: 0,
            anchor_hash: GENESIS.into(),
            head_seq: 0,
            head_hash: GENESIS.into(),
            mac: String::new(),
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn mac_over(secret: &[u8], parts: &[Option<&str>]) -> String {
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
    for part in parts {
        // Length-prefixed, with a marker for absent columns, so no two rows serialize alike.
        match part {
            None => mac.update(b"\x00"),
            Some(text) => {
                mac.update(b"\x01");
                mac.update(&(text.len() as u64).to_be_bytes());
                mac.update(text.as_bytes());
            }
        }
    }
    hex::encode(mac.finalize().into_bytes())
}

/// What a panic said, for the log of a writer that failed.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// The hash of row `seq` holding `e` after `prev_hash`.
pub fn row_hash(secret: &[u8], seq: i64, e: &Event, prev_hash: &str) -> String {
    let seq = seq.to_string();
    mac_over(
        secret,
        &[
            Some("row"),
            Some(&seq),
            Some(&e.id),
            Some(&e.kind),
            e.ref_id.as_deref(),
            Some(&e.session_id),
            Some(&e.ts),
            e.tool_name.as_deref(),
            e.tool_args.as_deref(),
            e.agent_id.as_deref(),
            e.user_id.as_deref(),
            e.metadata.as_deref(),
            e.decision.as_deref(),
            e.rule_name.as_deref(),
            e.reason.as_deref(),
            e.policy_version.as_deref(),
            e.policy_hash.as_deref(),
            e.principal.as_deref(),
            Some(&e.body),
            Some(prev_hash),
        ],
    )
}

/// The HMAC that seals the chain's two ends.
pub fn state_mac(
    secret: &[u8],
    anchor_seq: i64,
    anchor_hash: &str,
    head_seq: i64,
    head_hash: &str,
) -> String {
    let (a, h) = (anchor_seq.to_string(), head_seq.to_string());
    mac_over(
        secret,
        &[
            Some("ends"),
            Some(&a),
            Some(anchor_hash),
            Some(&h),
            Some(head_hash),
        ],
    )
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub valid: bool,
    /// Rows checked.
    pub checked: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The first broken link, if any.
    pub broken: Option<Broken>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Broken {
    /// The row where the chain breaks (for a missing row: where it should be).
    pub seq: i64,
    /// That row's id, when the row exists.
    pub id: Option<String>,
    pub problem: String,
}

/// What verification says of a log whose recorded ends are gone.
pub const SEAL_MISSING: &str = "the record of the chain's ends (the chain_state table) is missing, yet the log holds rows: it was removed outside the server";

/// The first row of a log that holds rows without the record of its
/// chain's ends. The rows are read first: the server writes that record
/// in the same transaction as the first row and never removes it, so a
/// row seen before it is read means the record was there too.
async fn unsealed_row(store: &dyn Store) -> Result<Option<i64>, StoreError> {
    let Some(first) = store.audit_page(0, 1).await?.into_iter().next() else {
        return Ok(None);
    };
    Ok(store.chain_state().await?.is_none().then_some(first.seq))
}

/// Refuse a log that holds rows without the record of the chain's ends:
/// appending to it would start a new chain over the old rows.
pub async fn check_sealed(store: &dyn Store) -> Result<(), String> {
    match unsealed_row(store).await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(format!(
            "the audit log cannot be appended to: {SEAL_MISSING}. Run `tame audit verify`, and restore the database from a backup"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Walk the whole chain in order and report the first broken link.
pub async fn verify(store: &dyn Store, secret: &[u8]) -> Result<Verification, StoreError> {
    let unsealed = unsealed_row(store).await?;
    let state = store.chain_state().await?;
    let (anchor_seq, anchor_hash) = match &state {
        Some(s) => (s.anchor_seq, s.anchor_hash.clone()),
        None => (0, GENESIS.to_string()),
    };
    let mut v = Verification {
        valid: true,
        checked: 0,
        first_seq: None,
        last_seq: None,
        broken: None,
    };
    let fail = |v: &mut Verification, seq: i64, id: Option<String>, problem: String| {
        v.valid = false;
        v.broken = Some(Broken { seq, id, problem });
    };
    // Rows without the record of the chain's ends cannot be checked against anything.
    if let Some(seq) = unsealed {
        fail(&mut v, seq, None, SEAL_MISSING.into());
        return Ok(v);
    }
    if let Some(s) = &state {
        if state_mac(
            secret,
            s.anchor_seq,
            &s.anchor_hash,
            s.head_seq,
            &s.head_hash,
        ) != s.mac
        {
            fail(
                &mut v,
                s.head_seq,
                None,
                "the chain's recorded ends were altered".into(),
            );
            return Ok(v);
        }
    }
    let (mut expect_seq, mut prev) = (anchor_seq + 1, anchor_hash);
    // The walk ends at the head recorded when it began: rows the server
    // appends meanwhile are for the next verification, not a break.
    let end = state.as_ref().map_or(0, |s| s.head_seq);
    loop {
        let mut page = store.audit_page(expect_seq - 1, 1000).await?;
        let past_end = page.iter().position(|r| r.seq > end);
        if let Some(at) = past_end {
            page.truncate(at);
        }
        if page.is_empty() {
            if past_end.is_none() || expect_seq > end {
                break;
            }
            // The next row is past the recorded end, yet rows up to it are missing.
            fail(
                &mut v,
                expect_seq,
                None,
                format!("rows {expect_seq} to {end} are missing from the end of the log"),
            );
            return Ok(v);
        }
        for row in page {
            if row.seq != expect_seq {
                fail(
                    &mut v,
                    expect_seq,
                    None,
                    format!("row {expect_seq} is missing (the next row is {})", row.seq),
                );
                return Ok(v);
            }
            if row.prev_hash != prev {
                fail(
                    &mut v,
                    row.seq,
                    Some(row.event.id.clone()),
                    "does not link to the row before it (a row before it was altered or replaced)"
                        .into(),
                );
                return Ok(v);
            }
            if row_hash(secret, row.seq, &row.event, &row.prev_hash) != row.hash {
                fail(
                    &mut v,
                    row.seq,
                    Some(row.event.id.clone()),
                    "its contents do not match its hash (the row was altered)".into(),
                );
                return Ok(v);
            }
            v.first_seq.get_or_insert(row.seq);
            v.last_seq = Some(row.seq);
            v.checked += 1;
            prev = row.hash;
            expect_seq += 1;
        }
    }
    let (head_seq, head_hash) = match &state {
        Some(s) => (s.head_seq, s.head_hash.as_str()),
        None => (0, GENESIS),
    };
    let last = expect_seq - 1;
    if last != head_seq || prev != head_hash {
        let problem = if last < head_seq {
            format!(
                "rows {} to {head_seq} are missing from the end of the log",
                last + 1
            )
        } else {
            format!("rows after {head_seq} were added outside the server")
        };
        fail(&mut v, last.min(head_seq) + 1, None, problem);
    }
    Ok(v)
}
