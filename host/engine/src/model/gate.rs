use super::ts;
use crate::clock::Micros;
use serde::Serialize;
use serde_json::{Value, json};

/// The full gate, token and inline channel secrets included (as v0.5 returns it).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    pub id: String,
    pub run_id: String,
    pub name: String,
    pub prompt: String,
    pub data: Value,
    pub status: String,
    pub decision: Option<String>,
    pub actor: Option<String>,
    pub decision_payload: Option<Value>,
    pub capability: Value,
    pub channels: Value,
    /// Empty (and then not serialised) in gates given to operators.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resolve_token: String,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
    #[serde(serialize_with = "ts::req")]
    pub updated_at: Micros,
    #[serde(serialize_with = "ts::opt")]
    pub resolved_at: Option<Micros>,
    /// Server-side timeout, enforced for gates of runs the host executes
    /// (v0.5, and so SDK-driven runs, validate it and ignore it).
    #[serde(skip)]
    pub timeout_ms: Option<i64>,
}

/// Status and decision of a gate of a host-executed run whose timeout passed.
pub const TIMED_OUT: &str = "timed_out";

impl Gate {
    pub fn is_pending(&self) -> bool {
        self.status == "pending"
    }

    /// When the gate's timeout runs out, if it has one. Saturates instead of
    /// overflowing on rows stored before timeouts were range-checked.
    pub fn deadline(&self) -> Option<Micros> {
        let ms = self.timeout_ms?;
        let at = ms
            .checked_mul(1000)
            .and_then(|us| self.created_at.checked_add(us));
        Some(at.unwrap_or(Micros::MAX))
    }

    /// The shape used in events and channel deliveries.
    pub fn public(&self, public_url: &str) -> Value {
        json!({
            "id": self.id,
            "runId": self.run_id,
            "name": self.name,
            "prompt": self.prompt,
            "data": self.data,
            "status": self.status,
            "decision": self.decision,
            "actor": self.actor,
            "capability": self.capability,
            "resolveUrl": format!("{public_url}/runs/{}/gates/{}/resolve", self.run_id, self.id),
            "resolveToken": self.resolve_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(created_at: Micros, timeout_ms: Option<i64>) -> Gate {
        Gate {
            id: "gate_x".into(),
            run_id: "run_x".into(),
            name: "g".into(),
            prompt: String::new(),
            data: json!({}),
            status: "pending".into(),
            decision: None,
            actor: None,
            decision_payload: None,
            capability: Value::Null,
            channels: json!([]),
            resolve_token: String::new(),
            created_at,
            updated_at: created_at,
            resolved_at: None,
            timeout_ms,
        }
    }

    #[test]
    fn deadlines_saturate_instead_of_overflowing() {
        assert_eq!(gate(5_000, None).deadline(), None);
        assert_eq!(gate(5_000, Some(2)).deadline(), Some(7_000));
        assert_eq!(gate(5_000, Some(i64::MAX)).deadline(), Some(Micros::MAX));
        assert_eq!(
            gate(Micros::MAX - 10, Some(1)).deadline(),
            Some(Micros::MAX)
        );
    }
}
