//! SQL behind the broker's identity door: agents, sessions, the abuse
//! stores, and the audit ledger's read of the event log.

use super::rows::{AGENTS, EVENTS, SESSIONS};
use super::sql::{SqlTx, q};
use super::{AbuseRows, AgentRows, LedgerRows, Result, StoreError};
use crate::clock::Micros;
use crate::model::{AgentRecord, Event, SessionRecord};
use async_trait::async_trait;
use tidebase_engine::broker::LedgerQuery;

#[async_trait]
impl AgentRows for SqlTx {
    async fn upsert_agent(&mut self, a: &AgentRecord) -> Result<AgentRecord> {
        let sql = format!(
            "{} ON CONFLICT (principal, name) DO UPDATE SET \
             identity_kind = excluded.identity_kind, public_key = excluded.public_key, \
             metadata_json = excluded.metadata_json, status = 'active', \
             updated_at = excluded.updated_at",
            AGENTS.insert()
        );
        self.exec((AGENTS.bind)(q(&sql), a)).await?;
        let sql = format!(
            "SELECT {} FROM agents WHERE principal = $1 AND name = $2",
            AGENTS.select()
        );
        let query = q(&sql).bind(a.principal.clone()).bind(a.name.clone());
        self.one(query, AGENTS.decode)
            .await?
            .ok_or_else(|| StoreError::other("an upserted agent is missing"))
    }

    async fn agent(&mut self, id: &str) -> Result<Option<AgentRecord>> {
        let sql = format!("SELECT {} FROM agents WHERE id = $1", AGENTS.select());
        self.one(q(&sql).bind(id.to_string()), AGENTS.decode).await
    }

    async fn insert_session(&mut self, s: &SessionRecord) -> Result<()> {
        self.insert(&SESSIONS, s).await
    }

    async fn session_agent(
        &mut self,
        token_hash: &str,
        now: Micros,
    ) -> Result<Option<AgentRecord>> {
        let sql = format!(
            "SELECT {} FROM agent_sessions s JOIN agents a ON a.id = s.agent_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
             AND a.status = 'active'",
            AGENTS.select_from("a")
        );
        let query = q(&sql).bind(token_hash.to_string()).bind(now);
        self.one(query, AGENTS.decode).await
    }
}

#[async_trait]
impl AbuseRows for SqlTx {
    async fn consume_challenge(&mut self, hash: &str, expires_at: Micros) -> Result<bool> {
        let query = q(
            "INSERT INTO consumed_challenges (challenge_hash, expires_at) \
             VALUES ($1, $2) ON CONFLICT (challenge_hash) DO NOTHING",
        )
        .bind(hash.to_string())
        .bind(expires_at);
        Ok(self.exec(query).await? == 1)
    }

    async fn count_request(&mut self, bucket: &str, window_start: Micros) -> Result<i64> {
        // Both SET expressions read the row as it was before the update.
        let query = q(
            "INSERT INTO rate_limits (bucket, window_start, count) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket) DO UPDATE SET \
             count = CASE WHEN rate_limits.window_start = excluded.window_start \
               THEN rate_limits.count + 1 ELSE 1 END, \
             window_start = excluded.window_start \
             RETURNING CAST(count AS BIGINT)",
        )
        .bind(bucket.to_string())
        .bind(window_start);
        self.value(query).await
    }

    async fn sweep_abuse(&mut self, now: Micros, windows_before: Micros) -> Result<()> {
        self.exec(q("DELETE FROM consumed_challenges WHERE expires_at < $1").bind(now))
            .await?;
        self.exec(q("DELETE FROM rate_limits WHERE window_start < $1").bind(windows_before))
            .await?;
        Ok(())
    }
}

#[async_trait]
impl LedgerRows for SqlTx {
    async fn ledger(&mut self, f: &LedgerQuery) -> Result<Vec<Event>> {
        let json = self.dialect.json_string;
        let kinds = if f.egress {
            "(substr(e.type, 1, 6) = 'grant.' OR e.type = 'egress.call')"
        } else {
            "substr(e.type, 1, 6) = 'grant.'"
        };
        // $1…$5 are fixed; the types list follows as $6….
        let types = if f.types.is_empty() {
            String::new()
        } else {
            let params: Vec<String> = (0..f.types.len()).map(|i| format!("${}", i + 6)).collect();
            format!(" AND e.type IN ({})", params.join(", "))
        };
        let sql = format!(
            "SELECT {} FROM events e JOIN runs r ON r.id = e.run_id WHERE {kinds} \
             AND ($1 IS NULL OR e.run_id = $1) \
             AND ($2 IS NULL OR {} = $2) \
             AND ($3 IS NULL OR {} = $3) \
             AND ($4 IS NULL OR r.grant_principal = $4){types} \
             ORDER BY e.created_at DESC, e.id DESC LIMIT $5",
            EVENTS.select_from("e"),
            json("e.payload_json", "agentId"),
            json("e.payload_json", "resource"),
        );
        let mut query = q(&sql)
            .bind(f.run_id.clone())
            .bind(f.agent_id.clone())
            .bind(f.resource.clone())
            .bind(f.principal.clone())
            .bind(f.limit);
        for t in &f.types {
            query = query.bind(t.clone());
        }
        self.all(query, EVENTS.decode).await
    }
}
