//! The grant audit ledger, `GET /audit` (broker.md §3.10, §2.5): `grant.*`
//! events of the run event log, newest first, scoped to the caller's
//! tenant. The admin key also sees the `egress.call` receipts of every
//! brokered call (wasm steps' and proxied uses'), so one trail shows both
//! doors.

use super::{AgentSession, Caller};
use crate::clock::iso;
use crate::model::Event;
use crate::{Engine, Result};
use serde::Serialize;

/// The event type of a wasm egress receipt.
const EGRESS_CALL: &str = "egress.call";
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 200;

/// The filters of an audit read, as the caller gave them.
#[derive(Clone, Debug, Default)]
pub struct AuditFilters {
    pub run_id: Option<String>,
    /// The payload's `agentId`.
    pub agent_id: Option<String>,
    /// The payload's `resource` (the full resource string).
    pub resource: Option<String>,
    /// Event types, any of which matches; empty: any.
    pub types: Vec<String>,
    /// The raw `limit` parameter ([`audit_limit`]).
    pub limit: Option<String>,
}

/// What the store selects: [`AuditFilters`] plus the caller's scope.
#[derive(Clone, Debug)]
pub struct LedgerQuery {
    pub run_id: Option<String>,
    pub agent_id: Option<String>,
    pub resource: Option<String>,
    pub types: Vec<String>,
    pub scope: LedgerScope,
    /// Also `egress.call` events.
    pub egress: bool,
    pub limit: i64,
}

/// Whose runs an audit read covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerScope {
    /// Every run (the admin key).
    All,
    /// Runs whose `grant_principal` is this tenant; `None` matches runs no
    /// tenant claimed, as upstream's null matches null (an agent of no
    /// tenant never claims a run).
    Tenant(Option<String>),
}

/// One ledger line (§2.5), plus `runId` (our addition: upstream's entry
/// does not say which run it belongs to).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub grant_id: String,
    pub resource: String,
    pub action: String,
    pub agent_id: Option<String>,
    pub at: String,
    pub run_id: String,
}

impl From<Event> for AuditEntry {
    fn from(e: Event) -> AuditEntry {
        let text = |key: &str| e.payload[key].as_str().map(String::from);
        // A receipt's action is its call; a proxied use's receipt names its
        // grant and agent, a wasm call's neither.
        let action = if e.kind == EGRESS_CALL {
            match (text("method"), text("path")) {
                (Some(method), Some(path)) => format!("{method} {path}"),
                _ => String::new(),
            }
        } else {
            text("action").unwrap_or_default()
        };
        AuditEntry {
            seq: e.seq,
            resource: text("resource").unwrap_or_default(),
            grant_id: text("grantId").unwrap_or_default(),
            agent_id: text("agentId"),
            kind: e.kind,
            action,
            at: iso(e.created_at),
            run_id: e.run_id,
        }
    }
}

impl Engine {
    /// The ledger as `caller` may see it: an agent session only the runs
    /// its principal claimed; the admin key (or an open server) everything,
    /// wasm egress receipts included.
    pub async fn audit_ledger(&self, caller: &Caller, f: AuditFilters) -> Result<Vec<AuditEntry>> {
        let scope = match caller {
            Caller::Agent(AgentSession { principal, .. }) => LedgerScope::Tenant(principal.clone()),
            Caller::Admin | Caller::Open => LedgerScope::All,
        };
        let q = LedgerQuery {
            run_id: f.run_id,
            agent_id: f.agent_id,
            resource: f.resource,
            types: f.types,
            egress: scope == LedgerScope::All,
            scope,
            limit: audit_limit(f.limit.as_deref()),
        };
        let events = self.read().await?.ledger(&q).await?;
        Ok(events.into_iter().map(AuditEntry::from).collect())
    }
}

/// `limit` as upstream reads it: JavaScript's `Number()`, truncated toward
/// zero and clamped to 1…200; missing or not finite is 100.
pub fn audit_limit(text: Option<&str>) -> i64 {
    let n = text.map_or(f64::NAN, js_number);
    if !n.is_finite() {
        return DEFAULT_LIMIT;
    }
    n.trunc().clamp(1.0, MAX_LIMIT as f64) as i64
}

/// JavaScript's white space and line terminators (what `Number()` trims):
/// Unicode White_Space without U+0085, plus U+FEFF.
fn is_js_space(c: char) -> bool {
    (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}'
}

/// JavaScript's `Number(text)`: decimal (with exponent), or `0x`/`0o`/`0b`
/// integers; blank is 0; anything else is NaN (`Infinity` is not finite
/// either way, so it needs no case of its own here).
fn js_number(text: &str) -> f64 {
    let t = text.trim_matches(is_js_space);
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        let digits = t
            .strip_prefix(prefix)
            .or_else(|| t.strip_prefix(&prefix.to_uppercase()));
        if let Some(digits) = digits {
            let values: Option<Vec<u32>> = digits.chars().map(|c| c.to_digit(radix)).collect();
            return match values {
                Some(v) if !v.is_empty() => v
                    .iter()
                    .fold(0.0, |n, d| n * f64::from(radix) + f64::from(*d)),
                _ => f64::NAN,
            };
        }
    }
    let decimal = t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if !decimal {
        return f64::NAN;
    }
    t.parse().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn limit_follows_javascript_number_rules() {
        let cases = [
            (None, 100),
            (Some(""), 1),
            (Some("0"), 1),
            (Some("1.9"), 1),
            (Some("500"), 200),
            (Some("abc"), 100),
            (Some("1e2"), 100),
            (Some("0x10"), 16),
            (Some(" 7 "), 7),
            (Some("\u{a0}\t12\n"), 12),
            (Some("\u{feff}3"), 3),
            (Some("\u{85}3"), 100),
            (Some("-5"), 1),
            (Some("-0.5"), 1),
            (Some("+42"), 42),
            (Some("42."), 42),
            (Some(".5e2"), 50),
            (Some("0o17"), 15),
            (Some("0B101"), 5),
            (Some("0x"), 100),
            (Some("-0x10"), 100),
            (Some("0x1g"), 100),
            (Some("Infinity"), 100),
            (Some("-Infinity"), 100),
            (Some("inf"), 100),
            (Some("NaN"), 100),
            (Some("1e400"), 100),
            (Some("1e300"), 200),
            (Some("12px"), 100),
            (Some("1_0"), 100),
            (Some("1e"), 100),
            (Some("."), 100),
        ];
        for (text, want) in cases {
            assert_eq!(audit_limit(text), want, "limit={text:?}");
        }
    }

    fn event(kind: &str, payload: Value) -> Event {
        Event {
            id: 1,
            run_id: "run_1".into(),
            seq: 4,
            kind: kind.into(),
            payload,
            created_at: 1_800_000_000_123_000,
        }
    }

    #[test]
    fn grant_events_become_entries_with_strings_or_blanks() {
        let e = event(
            "grant.used",
            json!({"grantId": "grant_1", "resource": "up:thing", "action": "item.update",
                   "agentId": "agent_1", "call": {"method": "PATCH"}}),
        );
        let entry = json!(AuditEntry::from(e));
        assert_eq!(
            entry,
            json!({"seq": 4, "type": "grant.used", "grantId": "grant_1", "resource": "up:thing",
                   "action": "item.update", "agentId": "agent_1",
                   "at": "2027-01-15T08:00:00.123Z", "runId": "run_1"})
        );
        let odd = AuditEntry::from(event(
            "grant.revoked",
            json!({"grantId": 5, "agentId": null}),
        ));
        assert_eq!(
            (odd.grant_id.as_str(), odd.resource.as_str(), odd.agent_id),
            ("", "", None)
        );
    }

    #[test]
    fn egress_receipts_become_entries_with_their_call() {
        let wasm = event(
            "egress.call",
            json!({"resource": "github", "method": "GET", "path": "/repos/a",
                   "grantId": null, "agentId": null}),
        );
        let entry = AuditEntry::from(wasm);
        assert_eq!(entry.grant_id, "");
        assert_eq!(entry.resource, "github");
        assert_eq!(entry.action, "GET /repos/a");
        assert_eq!(entry.agent_id, None);
        let proxied = event(
            "egress.call",
            json!({"resource": "github", "method": "POST", "path": "/x",
                   "grantId": "grant_1", "agentId": "agent_1"}),
        );
        let entry = AuditEntry::from(proxied);
        assert_eq!(
            (entry.grant_id.as_str(), entry.action.as_str()),
            ("grant_1", "POST /x")
        );
        assert_eq!(entry.agent_id.as_deref(), Some("agent_1"));
    }
}
