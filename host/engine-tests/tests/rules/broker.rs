//! The credential broker API (issue 14): policy, grants and proxied calls,
//! driven as the HTTP door does, with agent sessions built directly.

mod grants;
mod policy;
mod proxy;

use crate::rig::Rig;
use serde_json::{Value, json};
use tidebase_engine::broker::{AgentSession, GrantRefusal, GrantRequest, ProxyCall};
use tidebase_engine::model::GrantRecord;
use tidebase_engine::{EngineError, NewResource, Resource};

/// An agent session of `agent` in tenant `principal`.
pub fn agent(agent: &str, principal: Option<&str>) -> AgentSession {
    AgentSession {
        agent_id: agent.into(),
        principal: principal.map(String::from),
    }
}

/// Connect the resource `name` of `principal` through the broker API,
/// changed by `f` (by default a nango resource: simulated in development).
pub async fn connect(
    rig: &Rig,
    principal: Option<&str>,
    name: &str,
    f: impl FnOnce(&mut NewResource),
) -> Resource {
    let mut r = NewResource {
        principal: principal.map(String::from),
        name: name.into(),
        provider: "nango".into(),
        keep_secret: true,
        ..NewResource::default()
    };
    f(&mut r);
    rig.engine.connect_resource(r).await.unwrap()
}

/// A request for `action` on `resource` with upstream's defaults.
pub fn ask(resource: &str, action: &str) -> GrantRequest {
    GrantRequest {
        resource: resource.into(),
        action: action.into(),
        reason: None,
        scopes: vec![],
        mode: "proxy".into(),
        ttl_seconds: 120,
        max_uses: 1,
    }
}

pub fn call(method: &str, path: &str) -> ProxyCall {
    ProxyCall {
        method: method.into(),
        path: path.into(),
        body: None,
    }
}

pub fn refusal<T: std::fmt::Debug>(r: Result<T, EngineError>) -> GrantRefusal {
    match r {
        Err(EngineError::Grant(refusal)) => refusal,
        other => panic!("expected a broker refusal, got {other:?}"),
    }
}

/// `(type, payload)` of a run's events whose type starts with `prefix`.
pub async fn events(rig: &Rig, run_id: &str, prefix: &str) -> Vec<(String, Value)> {
    let detail = rig.engine.run_detail(run_id).await.unwrap();
    (detail["events"].as_array().unwrap().iter())
        .filter(|e| e["type"].as_str().unwrap().starts_with(prefix))
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["payload"].clone(),
            )
        })
        .collect()
}

/// The grant as stored.
pub async fn stored(rig: &Rig, grant: &GrantRecord) -> GrantRecord {
    let mut r = rig.engine.store().read().await.unwrap();
    r.grant(&grant.run_id, &grant.id, false)
        .await
        .unwrap()
        .unwrap()
}

/// The tenant a run is claimed for.
pub async fn claimed_by(rig: &Rig, run_id: &str) -> Option<String> {
    let mut r = rig.engine.store().read().await.unwrap();
    r.grant_principal(run_id).await.unwrap()
}

/// A grant's `grant.*` receipt, as events carry it.
pub fn receipt(g: &GrantRecord, agent: Option<&str>) -> Value {
    json!({
        "grantId": g.id, "resource": g.resource, "action": g.action, "agentId": agent,
        "mode": g.mode, "status": g.status, "gateId": g.gate_id,
        "expiresAt": g.expires_at.map(tidebase_engine::clock::iso),
    })
}
