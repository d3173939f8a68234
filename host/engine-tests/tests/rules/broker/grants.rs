//! Grant requests, approval through a gate, revocation and expiry.

use super::{agent, ask, call, claimed_by, connect, events, receipt, refusal, stored};
use crate::rig::{Rig, T0};
use serde_json::json;
use tidebase_engine::broker::{GrantRefusal, GrantRequest};
use tidebase_engine::{Decision, EngineError, Entity, GateResolve};

const SECOND: i64 = 1_000_000;

#[tokio::test]
async fn an_allowed_action_is_active_at_once_with_its_receipts() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    connect(&rig, Some("acme"), "github", |_| {}).await;
    let me = agent("agent_1", Some("acme"));
    let req = GrantRequest {
        ttl_seconds: 30,
        max_uses: 2,
        ..ask("github:repo:acme/app", "pull_request.create")
    };
    let g = rig.engine.request_grant(&me, &run.id, req).await.unwrap();
    assert_eq!(
        (g.status.as_str(), g.mode.as_str(), g.gate_id.as_deref()),
        ("active", "proxy", None)
    );
    assert_eq!(g.resource, "github:repo:acme/app");
    assert_eq!(
        (g.issued_at, g.expires_at),
        (Some(T0), Some(T0 + 30 * SECOND))
    );
    assert_eq!((g.max_uses, g.used_count), (2, 0));
    let snapshot = stored(&rig, &g).await.policy;
    assert_eq!(
        snapshot,
        json!({"provider": "dev-reference", "effect": "allow", "matchedRule": "allow-standard",
               "requiresApproval": false, "forcedProxy": false, "requestedMode": "proxy",
               "scopesCeiling": []})
    );
    let r = receipt(&g, Some("agent_1"));
    assert_eq!(
        events(&rig, &run.id, "grant.").await,
        [
            ("grant.requested".into(), r.clone()),
            ("grant.approved".into(), r)
        ]
    );
    assert_eq!(claimed_by(&rig, &run.id).await.as_deref(), Some("acme"));
}

#[tokio::test]
async fn a_sensitive_action_waits_on_an_ordinary_gate_and_its_approval_activates_it() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    connect(&rig, None, "cloud", |_| {}).await;
    let me = agent("agent_1", None);
    let req = GrantRequest {
        reason: Some("ship it".into()),
        scopes: vec!["deploy".into()],
        mode: "mint".into(),
        ttl_seconds: 60,
        ..ask("cloud:prod", "deploy.delete")
    };
    let g = rig.engine.request_grant(&me, &run.id, req).await.unwrap();
    assert_eq!((g.status.as_str(), g.mode.as_str()), ("pending", "proxy"));
    assert_eq!(
        (g.issued_at, g.expires_at),
        (None, Some(T0 + 3600 * SECOND))
    );
    assert_eq!(stored(&rig, &g).await.policy["forcedProxy"], true);
    let gate_id = g.gate_id.clone().unwrap();
    let gates = rig.engine.pending_gates(&run.id).await.unwrap();
    assert_eq!(gates.len(), 1);
    let gate = &gates[0];
    assert_eq!(gate.id, gate_id);
    let uuid = gate.name.strip_prefix("grant:deploy.delete:").unwrap();
    assert_eq!((uuid.len(), uuid.matches('-').count()), (36, 4));
    assert_eq!(gate.prompt, "Approve deploy.delete on cloud:prod");
    assert_eq!(gate.data, json!({"reason": "ship it"}));
    assert_eq!(
        gate.capability,
        json!({"name": "cloud:prod", "scopes": ["deploy"], "reason": "ship it"})
    );
    assert_eq!(gate.channels, json!([]));
    let kinds: Vec<String> = (events(&rig, &run.id, "").await.into_iter())
        .map(|(kind, _)| kind)
        .filter(|k| k.starts_with("gate.") || k.starts_with("grant."))
        .collect();
    assert_eq!(kinds, ["grant.requested", "gate.created"]);
    let pending_use = rig
        .engine
        .use_grant(&me, &run.id, &g.id, call("DELETE", "/x"))
        .await;
    assert_eq!(refusal(pending_use), GrantRefusal::GrantUnusable);

    rig.advance(10 * SECOND);
    let resolve = GateResolve {
        token: gate.resolve_token.clone(),
        decision: "approved".into(),
        actor: Some("alice".into()),
        payload: json!({}),
    };
    rig.engine
        .resolve_gate(&run.id, &gate_id, resolve)
        .await
        .unwrap();
    let active = stored(&rig, &g).await;
    assert_eq!(active.status, "active");
    let now = T0 + 10 * SECOND;
    assert_eq!(
        (active.issued_at, active.expires_at),
        (Some(now), Some(now + 60 * SECOND))
    );
    let tail = events(&rig, &run.id, "").await;
    let tail: Vec<&str> = tail.iter().rev().take(2).map(|(k, _)| k.as_str()).collect();
    assert_eq!(tail, ["grant.approved", "gate.resolved"]);
    let (used, response) = rig
        .engine
        .use_grant(&me, &run.id, &g.id, call("DELETE", "/x"))
        .await
        .unwrap();
    assert_eq!(used.status, "used");
    assert!(response.simulated);
}

#[tokio::test]
async fn a_gate_rejected_or_canceled_denies_and_a_late_approval_expires() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    connect(&rig, None, "bank", |_| {}).await;
    let me = agent("agent_1", None);
    let mut grants = Vec::new();
    for _ in 0..3 {
        let g = rig
            .engine
            .request_grant(&me, &run.id, ask("bank", "billing.charge"));
        grants.push(g.await.unwrap());
    }
    let gate_name = |i: usize| {
        let id = grants[i].gate_id.clone().unwrap();
        let rig = &rig;
        let run_id = run.id.clone();
        async move {
            let gates = rig.engine.pending_gates(&run_id).await.unwrap();
            gates.into_iter().find(|g| g.id == id).unwrap().name
        }
    };
    let decide = |d: &str| Decision {
        decision: d.into(),
        actor: Some("ops".into()),
        payload: json!({}),
    };
    let (first, second, third) = (gate_name(0).await, gate_name(1).await, gate_name(2).await);
    let engine = &rig.engine;
    engine
        .resolve_gate_as_operator(&run.id, &first, decide("rejected"))
        .await
        .unwrap();
    engine
        .resolve_gate_as_operator(&run.id, &second, decide("canceled"))
        .await
        .unwrap();
    for g in &grants[..2] {
        let denied = stored(&rig, g).await;
        assert_eq!(
            (denied.status.as_str(), denied.expires_at),
            ("denied", g.expires_at)
        );
    }
    // Past the approval window, before any reconciler tick.
    rig.advance(3600 * SECOND + 1);
    engine
        .resolve_gate_as_operator(&run.id, &third, decide("approved"))
        .await
        .unwrap();
    assert_eq!(stored(&rig, &grants[2]).await.status, "expired");
    let kinds: Vec<String> = (events(&rig, &run.id, "grant.").await.into_iter())
        .map(|(k, _)| k)
        .skip(3)
        .collect();
    assert_eq!(kinds, ["grant.denied", "grant.denied", "grant.expired"]);
}

#[tokio::test]
async fn requests_are_checked_in_upstreams_order() {
    let rig = Rig::new().await;
    let me = agent("agent_1", Some("acme"));
    let run = rig.run().await;
    let missing = rig
        .engine
        .request_grant(&me, "run_nope", ask("gh", "x.read"));
    assert!(matches!(
        missing.await,
        Err(EngineError::NotFound(Entity::Run))
    ));
    connect(&rig, Some("acme"), "gh", |r| {
        r.scopes = vec!["repo".into(), "read:org".into()];
    })
    .await;
    connect(&rig, Some("other"), "theirs", |_| {}).await;
    let not_connected = |resource: &str| {
        let r = rig
            .engine
            .request_grant(&me, &run.id, ask(resource, "x.read"));
        async { refusal(r.await) }
    };
    assert_eq!(
        not_connected("theirs").await,
        GrantRefusal::ResourceNotConnected
    );
    assert_eq!(not_connected("g").await, GrantRefusal::ResourceNotConnected);
    let scoped = GrantRequest {
        scopes: vec!["admin".into(), "repo".into(), "write".into()],
        ..ask("gh:acme/app", "repo.read")
    };
    assert_eq!(
        refusal(rig.engine.request_grant(&me, &run.id, scoped).await),
        GrantRefusal::ScopesExceedCeiling(vec!["admin".into(), "write".into()])
    );
    let destroy = rig
        .engine
        .request_grant(&me, &run.id, ask("gh", "database.destroy"));
    assert_eq!(
        refusal(destroy.await),
        GrantRefusal::PolicyDenied {
            reason: "matched rule deny-destructive".into()
        }
    );
    let mint = GrantRequest {
        mode: "mint".into(),
        ..ask("gh", "repo.read")
    };
    let mint = rig.engine.request_grant(&me, &run.id, mint).await;
    assert_eq!(refusal(mint), GrantRefusal::MintUnavailable);
    // No refusal wrote anything.
    assert_eq!(events(&rig, &run.id, "grant.").await, []);
    assert_eq!(claimed_by(&rig, &run.id).await, None);

    rig.engine.cancel_run(&run.id, None, None).await.unwrap();
    let cancelled = rig
        .engine
        .request_grant(&me, &run.id, ask("gh", "repo.read"));
    assert!(matches!(cancelled.await, Err(EngineError::RunCancelled(_))));
}

/// Ours: only an issued grant claims a run for a tenant.
#[tokio::test]
async fn a_run_belongs_to_the_first_tenant_that_got_a_grant_on_it() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    connect(&rig, Some("acme"), "gh", |_| {}).await;
    connect(&rig, Some("evil"), "gh", |_| {}).await;
    connect(&rig, None, "gh", |_| {}).await;
    let (acme, evil, nobody) = (
        agent("a1", Some("acme")),
        agent("e1", Some("evil")),
        agent("n1", None),
    );
    let refused = rig
        .engine
        .request_grant(&evil, &run.id, ask("nope", "x.read"));
    assert_eq!(refusal(refused.await), GrantRefusal::ResourceNotConnected);
    assert_eq!(
        claimed_by(&rig, &run.id).await,
        None,
        "a refusal claims nothing"
    );
    // A tenant-less agent leaves the run unclaimed.
    rig.engine
        .request_grant(&nobody, &run.id, ask("gh", "x.read"))
        .await
        .unwrap();
    assert_eq!(claimed_by(&rig, &run.id).await, None);
    rig.engine
        .request_grant(&acme, &run.id, ask("gh", "x.read"))
        .await
        .unwrap();
    assert_eq!(claimed_by(&rig, &run.id).await.as_deref(), Some("acme"));
    for other in [&evil, &nobody] {
        let r = rig
            .engine
            .request_grant(other, &run.id, ask("gh", "x.read"));
        assert_eq!(refusal(r.await), GrantRefusal::CrossTenant);
    }
    let colleague = agent("a2", Some("acme"));
    let again = rig
        .engine
        .request_grant(&colleague, &run.id, ask("gh", "x.list"));
    assert!(again.await.is_ok(), "another agent of the same tenant");
}

#[tokio::test]
async fn only_the_runs_tenant_revokes_and_only_once() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    connect(&rig, Some("acme"), "gh", |_| {}).await;
    let (owner, colleague) = (agent("a1", Some("acme")), agent("a2", Some("acme")));
    let g = rig
        .engine
        .request_grant(&owner, &run.id, ask("gh", "x.read"));
    let g = g.await.unwrap();
    let stranger = agent("e1", Some("evil"));
    let r = rig.engine.revoke_grant(&stranger, &run.id, &g.id).await;
    assert_eq!(refusal(r), GrantRefusal::CrossTenant);
    let r = rig
        .engine
        .revoke_grant(&agent("n", None), &run.id, &g.id)
        .await;
    assert_eq!(refusal(r), GrantRefusal::CrossTenant);
    for (run_id, grant_id) in [(run.id.as_str(), "grant_nope"), ("run_nope", g.id.as_str())] {
        let r = rig.engine.revoke_grant(&owner, run_id, grant_id).await;
        assert!(
            matches!(r, Err(EngineError::NotFound(Entity::Grant))),
            "{r:?}"
        );
    }
    rig.advance(SECOND);
    let revoked = rig.engine.revoke_grant(&colleague, &run.id, &g.id).await;
    let revoked = revoked.unwrap();
    assert_eq!(
        (revoked.status.as_str(), revoked.revoked_at),
        ("revoked", Some(T0 + SECOND))
    );
    let last = events(&rig, &run.id, "grant.").await.pop().unwrap();
    assert_eq!(
        last,
        ("grant.revoked".into(), receipt(&revoked, Some("a2")))
    );
    let again = rig.engine.revoke_grant(&owner, &run.id, &g.id).await;
    assert_eq!(refusal(again), GrantRefusal::GrantFinal("revoked".into()));
    let r = rig
        .engine
        .use_grant(&owner, &run.id, &g.id, call("GET", "/"))
        .await;
    assert_eq!(refusal(r), GrantRefusal::GrantUnusable);
}

#[tokio::test]
async fn revoking_a_resource_revokes_its_live_grants() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    let res = connect(&rig, None, "gh", |_| {}).await;
    let me = agent("a1", None);
    let grant = |action: &str| rig.engine.request_grant(&me, &run.id, ask("gh", action));
    let active = grant("x.read").await.unwrap();
    let pending = grant("x.delete").await.unwrap();
    let used = grant("x.list").await.unwrap();
    rig.engine
        .use_grant(&me, &run.id, &used.id, call("GET", "/"))
        .await
        .unwrap();
    assert_eq!(rig.engine.revoke_resource_by_id(&res.id).await.unwrap(), 2);
    for g in [&active, &pending] {
        let g = stored(&rig, g).await;
        assert_eq!((g.status.as_str(), g.revoked_at), ("revoked", Some(T0)));
        let mut r = receipt(&g, Some("a1"));
        r["cause"] = json!("resource_revoked");
        assert!(
            events(&rig, &run.id, "grant.revoked")
                .await
                .contains(&("grant.revoked".into(), r))
        );
    }
    assert_eq!(stored(&rig, &used).await.status, "used");
    assert_eq!(
        rig.engine.pending_gates(&run.id).await.unwrap().len(),
        1,
        "its gate stays"
    );
    assert_eq!(rig.engine.revoke_resource_by_id(&res.id).await.unwrap(), 0);
    let unknown = rig.engine.revoke_resource_by_id("res_nope").await;
    assert!(matches!(
        unknown,
        Err(EngineError::NotFound(Entity::Resource))
    ));
    let r = rig
        .engine
        .request_grant(&me, &run.id, ask("gh", "x.read"))
        .await;
    assert_eq!(refusal(r), GrantRefusal::ResourceNotConnected);

    // Reconnected, it serves new grants; the operator's revoke cascades too.
    connect(&rig, None, "gh", |_| {}).await;
    let fresh = grant("x.read").await.unwrap();
    assert_eq!(stored(&rig, &active).await.status, "revoked");
    rig.engine.revoke_resource("gh").await.unwrap();
    assert_eq!(stored(&rig, &fresh).await.status, "revoked");
}

#[tokio::test]
async fn the_reconciler_expires_grants_past_their_expiry() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    connect(&rig, None, "gh", |_| {}).await;
    let me = agent("a1", None);
    let short = GrantRequest {
        ttl_seconds: 1,
        ..ask("gh", "x.read")
    };
    let short = rig.engine.request_grant(&me, &run.id, short).await.unwrap();
    let long = rig
        .engine
        .request_grant(&me, &run.id, ask("gh", "x.list"))
        .await;
    let long = long.unwrap();
    let pending = rig
        .engine
        .request_grant(&me, &run.id, ask("gh", "x.delete"))
        .await;
    let pending = pending.unwrap();

    rig.set(T0 + SECOND);
    let r = rig
        .engine
        .use_grant(&me, &run.id, &short.id, call("GET", "/"))
        .await;
    assert_eq!(
        refusal(r),
        GrantRefusal::GrantUnusable,
        "unusable at its expiry"
    );
    assert_eq!(
        rig.engine.reconcile_sweeps().await.unwrap().grants_expired,
        0
    );
    rig.set(T0 + SECOND + 1);
    assert_eq!(
        rig.engine.reconcile_sweeps().await.unwrap().grants_expired,
        1
    );
    let expired = stored(&rig, &short).await;
    assert_eq!(expired.status, "expired");
    let last = events(&rig, &run.id, "grant.").await.pop().unwrap();
    assert_eq!(
        last,
        ("grant.expired".into(), receipt(&expired, Some("a1")))
    );
    assert_eq!(stored(&rig, &long).await.status, "active");

    rig.set(T0 + 3600 * SECOND + 1);
    assert_eq!(
        rig.engine.reconcile_sweeps().await.unwrap().grants_expired,
        2
    );
    assert_eq!(stored(&rig, &pending).await.status, "expired");
    assert_eq!(
        rig.engine.reconcile_sweeps().await.unwrap().grants_expired,
        0
    );
}
