//! The egress broker (issue 10): decisions, secrets and the audit trail,
//! against local upstreams on 127.0.0.1. Each test drives a hosted run the
//! way the wasm door does: claim it, begin a step, take the step's
//! [`EgressCaller`] and hand requests to [`Engine::egress`].

mod decisions;
mod resources;
mod secrets;
pub mod upstream;

use crate::rig::Rig;
use serde_json::json;
use tidebase_engine::model::Run;
use tidebase_engine::{
    Activation, AuditQuery, Begun, DeployLimits, EgressRefusal, EgressRequest, EgressResponse,
    EngineError, Injection, NewResource, Receipt, Resource,
};

/// Has characters that URL-encode and base64 differently from plain text.
pub const SECRET: &str = "sk_live/9f8e+7d6c=5b4a";
pub const OWNER: &str = "worker-1";

/// Connect `name` at `base_url`, with [`SECRET`] injected by `injection`.
pub async fn connect_with(rig: &Rig, name: &str, base_url: &str, injection: Injection) -> Resource {
    let r = NewResource {
        name: name.into(),
        base_url: Some(base_url.into()),
        methods: vec![],
        paths: vec![],
        secret: Some(SECRET.into()),
        injection,
        ..NewResource::default()
    };
    rig.engine.connect_resource(r).await.unwrap()
}

/// Connect `name` at `base_url` with [`SECRET`] as a bearer token.
pub async fn connect(rig: &Rig, name: &str, base_url: &str) -> Resource {
    connect_with(rig, name, base_url, Injection::default()).await
}

/// Deploy limits that grant `names`.
pub fn allow(names: &[&str]) -> DeployLimits {
    DeployLimits {
        allow: names.iter().map(|n| n.to_string()).collect(),
        ..DeployLimits::default()
    }
}

/// A run of a workflow deployed with `limits`, claimed by [`OWNER`], with
/// its step `fetch` executing (idempotency key `fetch-key`).
pub async fn in_step(rig: &Rig, limits: DeployLimits) -> (Run, Activation) {
    let (run, mut act) = claimed(rig, limits).await;
    let options = json!({"input": {}, "idempotencyKey": "fetch-key"});
    let begun = act.begin_step("fetch".into(), options, None).await.unwrap();
    assert!(matches!(begun, Begun::Execute(_)));
    (run, act)
}

/// A run of a workflow deployed with `limits`, claimed by [`OWNER`]; no
/// step begun.
pub async fn claimed(rig: &Rig, limits: DeployLimits) -> (Run, Activation) {
    rig.engine
        .deploy("egress", b"component", limits)
        .await
        .unwrap();
    let run = rig
        .engine
        .create_run(tidebase_engine::NewRun::named("egress", json!({})))
        .await
        .unwrap();
    let claimed = rig.engine.claim_wasm_runs(OWNER, 1, Some(&run.id)).await;
    assert_eq!(claimed.unwrap().len(), 1);
    let act = rig.engine.activation(&run.id, OWNER).await.unwrap();
    (run, act)
}

pub fn request(method: &str, url: &str) -> EgressRequest {
    EgressRequest {
        method: method.into(),
        url: url.into(),
        headers: vec![],
        body: vec![],
    }
}

/// `req` sent for the activation's current step.
pub async fn send(
    rig: &Rig,
    act: &Activation,
    req: EgressRequest,
) -> Result<EgressResponse, EngineError> {
    let caller = act.egress_caller().unwrap();
    rig.engine.egress(caller, req).await
}

pub async fn get(rig: &Rig, act: &Activation, url: &str) -> Result<EgressResponse, EngineError> {
    send(rig, act, request("GET", url)).await
}

pub fn refused(r: Result<EgressResponse, EngineError>) -> EgressRefusal {
    match r {
        Err(EngineError::EgressRefused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The run's receipts, oldest first, after checking that each is also its
/// run's `egress.call` event, in the same order.
pub async fn receipts(rig: &Rig, run_id: &str) -> Vec<Receipt> {
    let q = AuditQuery {
        run_id: Some(run_id.into()),
        limit: 500,
        ..AuditQuery::default()
    };
    let mut receipts = rig.engine.audit(q).await.unwrap().receipts;
    receipts.reverse();
    let detail = rig.engine.run_detail(run_id).await.unwrap();
    let events: Vec<_> = (detail["events"].as_array().unwrap().iter())
        .filter(|e| e["type"] == "egress.call")
        .map(|e| e["payload"].clone())
        .collect();
    let as_json: Vec<_> = receipts.iter().map(|r| json!(r)).collect();
    assert_eq!(events, as_json, "every receipt is an egress.call event");
    receipts
}
