//! The reads and writes whose SQL is the same on every backend, written once.
//!
//! `queries!(Store, Database, Connection)` implements [`super::Queries`] for a backend's
//! store. Fixed statements are written with `?` placeholders and passed
//! through the backend module's `sql` function (which numbers them for
//! PostgreSQL); statements with optional filters are built with sqlx's
//! `QueryBuilder`, which writes each backend's placeholders itself. The
//! backend module also says how session rows are read (`SESSIONS`), how
//! decisions are matched to a session (`SESSION_MATCH`, one `?`), and how
//! its session tables are brought up to date before they are read
//! (`settle`). Two helpers of the
//! backends' own transactions come with it: `read_chain` and `seal`. Retention is shared too; it calls the backend's
//! `begin_chain` and `append_events`.

/// Record the chain's ends (`anchor_seq, anchor_hash, head_seq, head_hash, mac`).
pub(super) const SEAL: &str = "INSERT INTO chain_state (id, anchor_seq, anchor_hash, head_seq, head_hash, mac) VALUES (1, ?, ?, ?, ?, ?) \
     ON CONFLICT (id) DO UPDATE SET anchor_seq = excluded.anchor_seq, anchor_hash = excluded.anchor_hash, \
     head_seq = excluded.head_seq, head_hash = excluded.head_hash, mac = excluded.mac";
/// Where the chain stands.
pub(super) const READ_CHAIN: &str =
    "SELECT anchor_seq, anchor_hash, head_seq, head_hash, mac FROM chain_state WHERE id = 1";
/// A new approval, pending.
pub(super) const APPROVAL_CREATE: &str = "INSERT INTO approvals (id, log_id, session_id, tool_name, tool_args, args_digest, rule_name, reason, \
     policy_version, policy_hash, requested_by, status, created_at, expires_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// pending -> `status` (`status, by, comment, at, id, at`).
pub(super) const APPROVAL_RESOLVE: &str = "UPDATE approvals SET status = ?, resolved_by = ?, comment = ?, resolved_at = ? \
     WHERE id = ? AND status = 'pending' AND expires_at > ?";
/// approved -> used (`at, log_id, id, at`).
pub(super) const APPROVAL_CONSUME: &str = "UPDATE approvals SET consumed_at = ?, consumed_log_id = ? \
     WHERE id = ? AND status = 'approved' AND consumed_at IS NULL AND expires_at > ?";
/// pending past expiry -> expired (`at, id, at`).
pub(super) const APPROVAL_EXPIRE: &str = "UPDATE approvals SET status = 'expired', resolved_at = ? WHERE id = ? AND status = 'pending' AND expires_at <= ?";

macro_rules! queries {
    ($store:ty, $db:ty, $conn:ty) => {
        /// Where the chain stands, as of this transaction.
        async fn read_chain(conn: &mut $conn) -> Result<Option<ChainState>, sqlx::Error> {
            let row = sqlx::query(sql(super::queries::READ_CHAIN))
            .fetch_optional(&mut *conn)
            .await?;
            row.as_ref().map(super::rows::chain_state).transpose()
        }

        /// Record the chain's ends under their HMAC.
        async fn seal(conn: &mut $conn, secret: &[u8], s: &ChainState) -> Result<(), sqlx::Error> {
            let mac = crate::audit::state_mac(secret, s.anchor_seq, &s.anchor_hash, s.head_seq, &s.head_hash);
            sqlx::query(sql(super::queries::SEAL))
            .bind(s.anchor_seq)
            .bind(&s.anchor_hash)
            .bind(s.head_seq)
            .bind(&s.head_hash)
            .bind(mac)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        #[async_trait::async_trait]
        impl super::Queries for $store {
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query(sql("SELECT 1")).execute(&self.pool).await?;
                Ok(())
            }

            async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
                Ok(
                    sqlx::query_scalar(sql("SELECT value FROM settings WHERE key = ?"))
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
                sqlx::query(sql(
                    "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                ))
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await?;
                self.setting(key)
                    .await?
                    .ok_or_else(|| StoreError::Unavailable(format!("setting {key} vanished")))
            }

            async fn chain_state(&self) -> Result<Option<ChainState>, StoreError> {
                let mut conn = self.pool.acquire().await?;
                Ok(read_chain(&mut conn).await?)
            }

            async fn audit_page(&self, after: i64, limit: i64) -> Result<Vec<Stored>, StoreError> {
                let text = format!(
                    "SELECT seq, {}, prev_hash, hash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
                    super::EVENT_COLUMNS
                );
                let rows = sqlx::query(sql(&text))
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(super::rows::stored).collect::<Result<_, _>>()?)
            }

            async fn remove_before(
                &self,
                secret: &[u8],
                before: &str,
                event: Event,
            ) -> Result<u64, StoreError> {
                self.settle().await?;
                // In chunks, each its own transaction with the chain's start sealed
                // anew, so appends never wait long; then one event records it all.
                const CHUNK: i64 = 10_000;
                let mut removed = 0;
                loop {
                    let (mut tx, mut at) = begin_chain(&self.pool).await?;
                    // Only a prefix of the chain may go, so that what stays still links up.
                    let last: Option<(i64, String)> = sqlx::query_as(sql(
                        "SELECT seq, hash FROM audit_log WHERE seq < COALESCE((SELECT MIN(seq) FROM audit_log WHERE ts >= ?), \
                         (SELECT MAX(seq) + 1 FROM audit_log)) AND seq <= (SELECT MIN(seq) FROM audit_log) + ? - 1 \
                         ORDER BY seq DESC LIMIT 1",
                    ))
                    .bind(before)
                    .bind(CHUNK)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((last_seq, last_hash)) = last else {
                        tx.rollback().await?;
                        break;
                    };
                    removed += sqlx::query(sql("DELETE FROM audit_log WHERE seq <= ?"))
                        .bind(last_seq)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    (at.anchor_seq, at.anchor_hash) = (last_seq, last_hash);
                    seal(&mut tx, secret, &at).await?;
                    tx.commit().await?;
                }
                if removed > 0 {
                    let mut event = event;
                    if let Ok(mut body) = serde_json::from_str::<serde_json::Value>(&event.body) {
                        body["removed"] = removed.into();
                        event.body = body.to_string();
                    }
                    let (mut tx, mut at) = begin_chain(&self.pool).await?;
                    append_events(&mut tx, secret, &mut at, &[event]).await?;
                    seal(&mut tx, secret, &at).await?;
                    tx.commit().await?;
                }
                Ok(removed)
            }

            async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
                self.settle().await?;
                let text = format!("{SESSIONS} WHERE id = ?");
                let row = sqlx::query(sql(&text))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(super::rows::session).transpose()?)
            }

            async fn each_session_id(
                &self,
                each: &mut (dyn for<'a> FnMut(&'a str) + Send),
            ) -> Result<(), StoreError> {
                use futures::TryStreamExt as _;
                self.settle().await?;
                let mut ids =
                    sqlx::query_scalar::<_, String>(sql("SELECT id FROM sessions")).fetch(&self.pool);
                while let Some(id) = ids.try_next().await? {
                    each(&id);
                }
                Ok(())
            }

            async fn sessions(
                &self,
                f: &SessionFilter,
                offset: i64,
                limit: i64,
            ) -> Result<(Vec<SessionRow>, i64), StoreError> {
                self.settle().await?;
                let filter = |q: &mut sqlx::QueryBuilder<$db>| {
                    q.push(" WHERE 1 = 1");
                    for (column, value) in [
                        ("principal", &f.principal),
                        ("agent_id", &f.agent_id),
                        ("user_id", &f.user_id),
                    ] {
                        if let Some(v) = value {
                            q.push(format_args!(" AND {column} = ")).push_bind(v.clone());
                        }
                    }
                };
                let mut count = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM sessions");
                filter(&mut count);
                let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
                let mut q = sqlx::QueryBuilder::<$db>::new(SESSIONS);
                filter(&mut q);
                q.push(" ORDER BY last_at DESC, id LIMIT ")
                    .push_bind(limit)
                    .push(" OFFSET ")
                    .push_bind(offset);
                let rows = q.build().fetch_all(&self.pool).await?;
                Ok((
                    rows.iter().map(super::rows::session).collect::<Result<_, _>>()?,
                    total,
                ))
            }

            async fn session_entries(&self, session_id: &str) -> Result<Vec<Entry>, StoreError> {
                let text = format!(
                    "{} WHERE d.kind = 'decision' AND {SESSION_MATCH} ORDER BY d.seq",
                    super::ENTRY_SELECT
                );
                self.settle().await?;
                let rows = sqlx::query(sql(&text))
                    .bind(session_id)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(super::rows::entry).collect::<Result<_, _>>()?)
            }

            async fn entry(&self, log_id: &str) -> Result<Option<Entry>, StoreError> {
                let text = format!("{} WHERE d.kind = 'decision' AND d.id = ?", super::ENTRY_SELECT);
                let row = sqlx::query(sql(&text))
                    .bind(log_id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(super::rows::entry).transpose()?)
            }

            async fn entries(
                &self,
                f: &LogFilter,
                before: Option<i64>,
                limit: i64,
            ) -> Result<Vec<Entry>, StoreError> {
                let mut q = sqlx::QueryBuilder::<$db>::new(super::ENTRY_SELECT);
                q.push(" WHERE d.kind = 'decision'");
                if let Some(id) = &f.session_id {
                    self.settle().await?;
                    let (before, after) = SESSION_MATCH.split_once('?').unwrap_or((SESSION_MATCH, ""));
                    q.push(format_args!(" AND {before}")).push_bind(id.clone()).push(after);
                }
                for (column, value) in [
                    ("d.agent_id", &f.agent_id),
                    ("d.user_id", &f.user_id),
                    ("d.tool_name", &f.tool_name),
                    ("d.decision", &f.decision),
                ] {
                    if let Some(v) = value {
                        q.push(format_args!(" AND {column} = ")).push_bind(v.clone());
                    }
                }
                if let Some(since) = &f.since {
                    q.push(" AND d.ts >= ").push_bind(since.clone());
                }
                if let Some(until) = &f.until {
                    q.push(" AND d.ts < ").push_bind(until.clone());
                }
                if let Some(b) = before {
                    q.push(" AND d.seq < ").push_bind(b);
                }
                q.push(" ORDER BY d.seq DESC LIMIT ").push_bind(limit);
                let rows = q.build().fetch_all(&self.pool).await?;
                Ok(rows.iter().map(super::rows::entry).collect::<Result<_, _>>()?)
            }

            async fn count_decisions(&self) -> Result<i64, StoreError> {
                Ok(
                    sqlx::query_scalar(sql("SELECT COUNT(*) FROM audit_log WHERE kind = 'decision'"))
                        .fetch_one(&self.pool)
                        .await?,
                )
            }

            async fn count_pending_approvals(&self, now: &str) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(sql(
                    "SELECT COUNT(*) FROM approvals WHERE status = 'pending' AND expires_at > ?",
                ))
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn record_policy(&self, v: &PolicyVersion) -> Result<(), StoreError> {
                sqlx::query(sql(
                    "INSERT INTO policy_versions (hash, version, file, rules_count, loaded_at, source) VALUES (?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (hash) DO UPDATE SET loaded_at = excluded.loaded_at, file = excluded.file",
                ))
                .bind(&v.hash)
                .bind(&v.version)
                .bind(&v.file)
                .bind(v.rules_count)
                .bind(&v.loaded_at)
                .bind(&v.source)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError> {
                let rows = sqlx::query(sql("SELECT * FROM policy_versions ORDER BY loaded_at DESC"))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(super::rows::policy_version).collect::<Result<_, _>>()?)
            }

            async fn policy_version(&self, hash: &str) -> Result<Option<PolicyVersion>, StoreError> {
                let row = sqlx::query(sql("SELECT * FROM policy_versions WHERE hash = ?"))
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(super::rows::policy_version).transpose()?)
            }

            async fn approval(&self, id: &str) -> Result<Option<ApprovalRow>, StoreError> {
                let row = sqlx::query(sql("SELECT * FROM approvals WHERE id = ?"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(super::rows::approval).transpose()?)
            }

            async fn events_about(&self, id: &str) -> Result<Vec<Stored>, StoreError> {
                let text = format!(
                    "SELECT seq, {}, prev_hash, hash FROM audit_log WHERE ref_id = ? ORDER BY seq",
                    super::EVENT_COLUMNS
                );
                let rows = sqlx::query(sql(&text)).bind(id).fetch_all(&self.pool).await?;
                Ok(rows.iter().map(super::rows::stored).collect::<Result<_, _>>()?)
            }

            async fn approvals(
                &self,
                status: Option<&str>,
                limit: i64,
            ) -> Result<Vec<ApprovalRow>, StoreError> {
                let mut q = sqlx::QueryBuilder::<$db>::new("SELECT * FROM approvals");
                if let Some(st) = status {
                    q.push(" WHERE status = ").push_bind(st.to_string());
                }
                q.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(limit);
                let rows = q.build().fetch_all(&self.pool).await?;
                Ok(rows.iter().map(super::rows::approval).collect::<Result<_, _>>()?)
            }

            async fn overdue_approvals(&self, now: &str) -> Result<Vec<ApprovalRow>, StoreError> {
                let rows = sqlx::query(sql(
                    "SELECT * FROM approvals WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT 500",
                ))
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(super::rows::approval).collect::<Result<_, _>>()?)
            }

            async fn record_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
                sqlx::query(sql(
                    "INSERT INTO webhook_deliveries (approval_id, event, attempt, url, status_code, error, at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                ))
                .bind(&d.approval_id)
                .bind(&d.event)
                .bind(d.attempt)
                .bind(&d.url)
                .bind(d.status_code)
                .bind(&d.error)
                .bind(&d.at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn deliveries(&self, approval_id: &str) -> Result<Vec<Delivery>, StoreError> {
                let rows = sqlx::query(sql(
                    "SELECT * FROM webhook_deliveries WHERE approval_id = ? ORDER BY id",
                ))
                .bind(approval_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(super::rows::delivery).collect::<Result<_, _>>()?)
            }

            async fn insert_key(&self, k: &KeyRow) -> Result<(), StoreError> {
                sqlx::query(sql(
                    "INSERT INTO api_keys (id, hash, role, label, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
                ))
                .bind(&k.id)
                .bind(&k.hash)
                .bind(&k.role)
                .bind(&k.label)
                .bind(&k.created_at)
                .bind(&k.revoked_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
                let rows = sqlx::query(sql("SELECT * FROM api_keys ORDER BY created_at"))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(super::rows::key_row).collect::<Result<_, _>>()?)
            }

            async fn revoke_key(&self, id: &str, at: &str) -> Result<bool, StoreError> {
                let done = sqlx::query(sql(
                    "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                ))
                .bind(at)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(super) use queries;
