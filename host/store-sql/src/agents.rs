//! SQL behind the broker's identity door: agents, sessions, the abuse
//! stores, and the audit ledger's read of the event log.

use super::rows::{AGENTS, EVENTS, SESSIONS};
use super::sql::{SqlTx, q};
use super::{AbuseRows, AgentRows, LedgerRows, Result, StoreError};
use crate::clock::Micros;
use crate::model::{AgentRecord, Event, SessionRecord};
use async_trait::async_trait;
use tidebase_engine::broker::{LedgerQuery, LedgerScope};

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
        let mut conditions = vec![if f.egress {
            "(substr(e.type, 1, 6) = 'grant.' OR e.type = 'egress.call')".to_string()
        } else {
            "substr(e.type, 1, 6) = 'grant.'".to_string()
        }];
        let mut values: Vec<String> = Vec::new();
        /// Bind `value` as the next parameter; its placeholder.
        fn param(values: &mut Vec<String>, value: &str) -> String {
            values.push(value.to_string());
            format!("${}", values.len())
        }
        let filters = [
            ("e.run_id".to_string(), &f.run_id),
            (json("e.payload_json", "agentId"), &f.agent_id),
            (json("e.payload_json", "resource"), &f.resource),
        ];
        for (column, value) in filters {
            if let Some(v) = value {
                conditions.push(format!("{column} = {}", param(&mut values, v)));
            }
        }
        if !f.types.is_empty() {
            let list: Vec<String> = f.types.iter().map(|t| param(&mut values, t)).collect();
            conditions.push(format!("e.type IN ({})", list.join(", ")));
        }
        match &f.scope {
            LedgerScope::All => {}
            LedgerScope::Tenant(None) => conditions.push("r.grant_principal IS NULL".into()),
            LedgerScope::Tenant(Some(p)) => {
                conditions.push(format!("r.grant_principal = {}", param(&mut values, p)));
            }
        }
        let sql = format!(
            "SELECT {} FROM events e JOIN runs r ON r.id = e.run_id WHERE {} \
             ORDER BY e.created_at DESC, e.id DESC LIMIT ${}",
            EVENTS.select_from("e"),
            conditions.join(" AND "),
            values.len() + 1
        );
        let query = values.into_iter().fold(q(&sql), |query, v| query.bind(v));
        self.all(query.bind(f.limit), EVENTS.decode).await
    }
}
