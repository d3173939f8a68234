//! The v0.7 credential broker's resources, grants and proxied calls
//! (issue 14, broker.md §3.5–3.9), through HTTP with agent sessions, against
//! a loopback upstream that records what reaches it: every guarantee of
//! upstream's agent-auth, agent-auth-proxy and agent-auth-hardening suites
//! that is about grants, plus where we do better (redaction, ownership,
//! normalised prefixes, no claim by a refused request, 404 for unknown
//! grants). The last test ties the doors together: a wasm run and an SDK
//! run use one resource, and one receipt table shows both.

use crate::egress::{Reply, Upstream};
use crate::harness::{Opts, TestServer, is_timestamp};
use crate::wasm::{deploy, start, wait_status};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const KEY: &str = "test-secret-key";
const SECRET: &str = "ghp_s3cr3t+t0ken/value";

/// A broker server that may proxy to its loopback upstreams.
fn broker() -> Opts {
    Opts {
        api_key: Some(KEY.into()),
        allow_private_egress: true,
        ..Opts::default()
    }
}

/// An agent's session token.
struct Agent {
    id: String,
    token: String,
}

/// Register an agent of `principal` and prove it with a dev token.
async fn agent(srv: &TestServer, name: &str, principal: Option<&str>) -> Agent {
    let mut body = json!({"name": name});
    if let Some(p) = principal {
        body["principal"] = json!(p);
    }
    let (status, registered) = srv.post("/agents", body).await;
    assert_eq!(status, 200, "{registered}");
    let id = registered["agentId"].as_str().unwrap().to_string();
    let (status, proved) = srv.post(&format!("/agents/{id}/prove"), json!({})).await;
    assert_eq!(status, 200, "{proved}");
    let token = proved["sessionToken"].as_str().unwrap().to_string();
    assert!(token.starts_with("tdb_ags_"), "{token}");
    Agent { id, token }
}

/// A POST as `agent`: status and body text.
async fn as_agent(srv: &TestServer, agent: &Agent, path: &str, body: Value) -> (u16, String) {
    let rb = srv
        .bare(Method::POST, path)
        .header("authorization", format!("Bearer {}", agent.token))
        .json(&body);
    let r = TestServer::send(rb).await;
    (r.status, r.text)
}

async fn as_agent_json(srv: &TestServer, agent: &Agent, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = as_agent(srv, agent, path, body).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `POST /resources` as the admin: the resource id.
async fn connect(srv: &TestServer, body: Value) -> String {
    let (status, r) = srv.post("/resources", body).await;
    assert_eq!(status, 200, "{r}");
    r["resourceId"].as_str().unwrap().to_string()
}

async fn request(srv: &TestServer, agent: &Agent, run: &str, body: Value) -> (u16, Value) {
    as_agent_json(srv, agent, &format!("/runs/{run}/grants"), body).await
}

/// A granted request's grant.
async fn grant(srv: &TestServer, agent: &Agent, run: &str, body: Value) -> Value {
    let (status, grant) = request(srv, agent, run, body).await;
    assert_eq!(status, 200, "{grant}");
    grant
}

async fn use_grant(srv: &TestServer, agent: &Agent, grant: &Value, call: Value) -> (u16, Value) {
    let path = format!(
        "/runs/{}/grants/{}/use",
        grant["runId"].as_str().unwrap(),
        grant["grantId"].as_str().unwrap()
    );
    as_agent_json(srv, agent, &path, call).await
}

/// A run nobody executes (an SDK-driven run): its id.
async fn run(srv: &TestServer) -> String {
    srv.create_run("broker-wf").await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// An upstream answering `{"pr":123,"path":<path>}`, as upstream's tests'.
async fn recorder() -> Upstream {
    Upstream::start(|hit| Reply::ok(json!({"pr": 123, "path": hit.path}).to_string())).await
}

const UNUSABLE: &str = "grant not active, expired, revoked, exhausted, or not owned by this agent";

backend_tests!(
    grants_need_an_agent_session = broker(),
    a_proxy_grant_injects_the_secret_and_never_returns_it = broker(),
    scopes_and_policy_refuse_at_request = broker(),
    sensitive_actions_wait_on_an_ordinary_gate = broker(),
    a_grant_binds_its_calls_and_its_path_prefix = broker(),
    tenants_and_agents_keep_to_their_own = broker(),
    revoking_a_resource_revokes_its_grants = broker(),
    grants_expire_by_the_reconciler = broker(),
    delegated_backends_simulate_and_never_mint = broker(),
    a_secret_the_upstream_echoes_is_redacted = broker(),
    internal_targets_are_refused_without_the_flag = Opts::api_key(KEY),
    no_secret_is_stored_without_custody = Opts {
        master_key: false,
        ..Opts::api_key(KEY)
    },
    one_resource_serves_both_doors = Opts {
        api_key: Some(KEY.into()),
        ..Opts::egress()
    },
);

/// The admin key on grant routes is 401 `session_required`, after the
/// body was validated.
async fn grants_need_an_agent_session(srv: TestServer) {
    let required = json!({"error": "grant operations require a proved agent session token, not the admin key", "code": "session_required"});
    let id = run(&srv).await;
    let (status, body) = srv
        .post(
            &format!("/runs/{id}/grants"),
            json!({"resource": "x", "action": "x.read"}),
        )
        .await;
    assert_eq!((status, body), (401, required.clone()));
    let (status, body) = srv.post(&format!("/runs/{id}/grants"), json!({})).await;
    assert_eq!(status, 400, "the body first: {body}");
    assert_eq!(body["error"], "invalid request body");
    let (status, body) = srv
        .post(
            &format!("/runs/{id}/grants/grant_x/use"),
            json!({"method": "GET", "path": "/"}),
        )
        .await;
    assert_eq!((status, body), (401, required.clone()));
    let (status, body) = srv
        .post(&format!("/runs/{id}/grants/grant_x/revoke"), json!({}))
        .await;
    assert_eq!((status, body), (401, required));
}

/// agent-auth and agent-auth-proxy: an allowed proxy grant is active with no
/// token; its use injects the vaulted secret upstream and answers with the
/// upstream's response; the second use of a one-use grant is 409; neither
/// the connect answer, the use, run detail nor the audit shows the secret
/// or the connection reference.
async fn a_proxy_grant_injects_the_secret_and_never_returns_it(srv: TestServer) {
    let up = recorder().await;
    let (status, connected) = srv
        .post(
            "/resources",
            json!({"name": "github", "provider": "static", "principal": "acme",
                   "baseUrl": up.origin, "secret": SECRET, "connectionRef": "conn-ref-x"}),
        )
        .await;
    assert_eq!(status, 200, "{connected}");
    let keys: Vec<&String> = connected.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["name", "provider", "resourceId", "status"]);
    assert_eq!(
        (
            &connected["name"],
            &connected["provider"],
            &connected["status"]
        ),
        (&json!("github"), &json!("static"), &json!("connected"))
    );
    assert!(
        connected["resourceId"]
            .as_str()
            .unwrap()
            .starts_with("res_")
    );

    let me = agent(&srv, "ci-fixer", Some("acme")).await;
    let id = run(&srv).await;
    let g = grant(
        &srv,
        &me,
        &id,
        json!({"resource": "github:repo:acme/app", "action": "pull_request.create"}),
    )
    .await;
    let keys: Vec<&String> = g.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "action",
            "expiresAt",
            "gateId",
            "grantId",
            "mode",
            "resource",
            "runId",
            "status"
        ]
    );
    assert_eq!(
        (&g["status"], &g["mode"], &g["gateId"]),
        (&json!("active"), &json!("proxy"), &Value::Null)
    );
    assert!(is_timestamp(&g["expiresAt"]) && g["grantId"].as_str().unwrap().starts_with("grant_"));

    let path = format!("/runs/{id}/grants/{}/use", g["grantId"].as_str().unwrap());
    let call = json!({"method": "POST", "path": "/repos/acme/app/pulls", "body": {"title": "fix"}});
    let (status, text) = as_agent(&srv, &me, &path, call.clone()).await;
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains(SECRET), "{text}");
    let used: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(used["grant"]["status"], "used");
    assert_eq!(
        used["response"],
        json!({"ok": true, "mode": "proxy", "proxied": true, "simulated": false, "provider": "vault",
               "status": 200, "body": {"pr": 123, "path": "/repos/acme/app/pulls"},
               "method": "POST", "path": "/repos/acme/app/pulls"})
    );
    let hits = up.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(hits[0].header("content-type"), Some("application/json"));
    assert_eq!(hits[0].json(), json!({"title": "fix"}));

    let (status, again) = as_agent_json(&srv, &me, &path, call).await;
    assert_eq!((status, again), (409, json!({"error": UNUSABLE})));
    assert_eq!(up.hits().len(), 1);

    let (_, detail) = srv.get(&format!("/runs/{id}")).await;
    let types: Vec<&str> = (detail["events"].as_array().unwrap().iter())
        .filter_map(|e| e["type"].as_str().filter(|t| t.starts_with("grant.")))
        .collect();
    assert_eq!(types, ["grant.requested", "grant.approved", "grant.used"]);
    let (status, audit) = srv.get("/audit").await;
    assert_eq!(status, 200);
    for text in [detail.to_string(), audit.to_string()] {
        for leak in [
            SECRET,
            "conn-ref-x",
            "connection_ref",
            "connectionRef",
            "tdb_grant_",
        ] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
    }
    let session_audit = srv
        .bare(Method::GET, "/audit")
        .header("authorization", format!("Bearer {}", me.token));
    let session_audit = TestServer::send(session_audit).await;
    assert_eq!(session_audit.status, 200, "{}", session_audit.text);
    assert!(
        session_audit.text.contains("grant.used"),
        "{}",
        session_audit.text
    );
    assert!(!session_audit.text.contains(SECRET) && !session_audit.text.contains("tdb_grant_"));
}

/// A scope outside the resource's ceiling and a destructive action are
/// refused when requested, with upstream's answers, and claim nothing.
async fn scopes_and_policy_refuse_at_request(srv: TestServer) {
    connect(
        &srv,
        json!({"name": "gh", "principal": "acme", "scopesAllowed": ["repo", "read:org"]}),
    )
    .await;
    let me = agent(&srv, "a", Some("acme")).await;
    let id = run(&srv).await;
    let (status, body) = request(
        &srv,
        &me,
        &id,
        json!({"resource": "gh", "action": "repo.read", "scopes": ["admin", "repo"]}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"error": "requested scopes exceed resource ceiling", "deniedScopes": ["admin"]})
        )
    );
    let (status, body) = request(
        &srv,
        &me,
        &id,
        json!({"resource": "gh", "action": "database.destroy"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"error": "action denied by policy", "code": "policy_denied", "reason": "matched rule deny-destructive"})
        )
    );
    let (status, body) = request(
        &srv,
        &me,
        &id,
        json!({"resource": "nope", "action": "repo.read"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (404, json!({"error": "resource not connected"}))
    );
    let (status, body) = request(
        &srv,
        &me,
        "run_nope",
        json!({"resource": "gh", "action": "repo.read"}),
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (404, json!("run not found"))
    );
    let g = grant(
        &srv,
        &me,
        &id,
        json!({"resource": "gh", "action": "repo.read", "scopes": ["read:org"]}),
    )
    .await;
    assert_eq!(g["status"], "active");
    let (status, cancelled) = srv.post(&format!("/runs/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{cancelled}");
    let (status, body) = request(
        &srv,
        &me,
        &id,
        json!({"resource": "gh", "action": "repo.read"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            409,
            json!({"error": "run is cancelled", "code": "run_cancelled"})
        )
    );
}

/// agent-auth: a sensitive action is a pending grant behind an ordinary
/// gate (no channel delivery of its `gate.created`); the admin approves it
/// with the token from run detail, and the grant then serves its call.
async fn sensitive_actions_wait_on_an_ordinary_gate(srv: TestServer) {
    let up = recorder().await;
    let hooks = Upstream::start(|_| Reply::ok("")).await;
    connect(
        &srv,
        json!({"name": "cloud", "provider": "static", "baseUrl": up.origin, "secret": SECRET}),
    )
    .await;
    let me = agent(&srv, "deployer", None).await;
    let (status, created) = srv
        .post(
            "/runs/broker-wf",
            json!({"channels": [{"type": "webhook", "url": hooks.url("/hook")}]}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["run"]["id"].as_str().unwrap().to_string();
    let g = grant(
        &srv,
        &me,
        &id,
        json!({"resource": "cloud", "action": "deploy.delete", "reason": "cleanup"}),
    )
    .await;
    assert_eq!(
        (&g["status"], &g["mode"]),
        (&json!("pending"), &json!("proxy"))
    );
    let gate_id = g["gateId"].as_str().unwrap();
    assert!(gate_id.starts_with("gate_"));
    let (status, early) = use_grant(
        &srv,
        &me,
        &g,
        json!({"method": "DELETE", "path": "/deploys/1"}),
    )
    .await;
    assert_eq!((status, early), (409, json!({"error": UNUSABLE})));

    let detail = srv.detail(&id).await;
    let gate = (detail["gates"].as_array().unwrap().iter())
        .find(|gate| gate["id"] == gate_id)
        .unwrap()
        .clone();
    assert!(
        gate["name"]
            .as_str()
            .unwrap()
            .starts_with("grant:deploy.delete:")
    );
    assert_eq!(gate["prompt"], "Approve deploy.delete on cloud");
    assert_eq!(
        gate["capability"],
        json!({"name": "cloud", "scopes": [], "reason": "cleanup"})
    );
    assert!(
        hooks.hits().is_empty(),
        "gate.created of an approval gate reaches no channel"
    );
    let (status, resolved) = srv
        .post(
            &format!("/runs/{id}/gates/{gate_id}/resolve"),
            json!({"token": gate["resolveToken"], "decision": "approved"}),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    let delivered = hooks.wait_for(1).await;
    assert_eq!(delivered[0].json()["type"], "gate.resolved");

    let (status, used) = use_grant(
        &srv,
        &me,
        &g,
        json!({"method": "DELETE", "path": "/deploys/1"}),
    )
    .await;
    assert_eq!(status, 200, "{used}");
    assert_eq!(
        (&used["response"]["status"], &used["grant"]["status"]),
        (&json!(200), &json!("used"))
    );
    assert_eq!(up.hits()[0].method, "DELETE");
    let events = srv.events(&id).await;
    let types: Vec<&str> = (events.iter())
        .filter_map(|e| {
            e["type"]
                .as_str()
                .filter(|t| t.starts_with("grant.") || t.starts_with("gate."))
        })
        .collect();
    assert_eq!(
        types,
        [
            "grant.requested",
            "gate.created",
            "gate.resolved",
            "grant.approved",
            "grant.used"
        ]
    );
}

/// agent-auth-hardening and agent-auth-proxy: a read grant cannot DELETE
/// (nothing spent); paths stay under the allowed prefix after
/// normalisation and on a segment boundary (each refusal spends its use).
async fn a_grant_binds_its_calls_and_its_path_prefix(srv: TestServer) {
    let up = recorder().await;
    connect(
        &srv,
        json!({"name": "gh", "provider": "static", "baseUrl": up.origin, "secret": SECRET,
               "allowedPathPrefix": "/repos/acme/app"}),
    )
    .await;
    let me = agent(&srv, "reader", None).await;
    let id = run(&srv).await;
    let g = grant(
        &srv,
        &me,
        &id,
        json!({"resource": "gh", "action": "repo.read", "maxUses": 10}),
    )
    .await;
    let (status, body) = use_grant(
        &srv,
        &me,
        &g,
        json!({"method": "DELETE", "path": "/repos/acme/app"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"error": "action 'repo.read' does not permit DELETE (expected GET/HEAD)", "code": "call_denied"})
        )
    );
    let (status, ok) = use_grant(
        &srv,
        &me,
        &g,
        json!({"method": "GET", "path": "/repos/acme/app/pulls?state=open"}),
    )
    .await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["response"]["body"]["path"], "/repos/acme/app/pulls");
    for escape in [
        "/repos/other/secret",
        "/repos/acme/app/../../other/secret",
        "/repos/acme/appX",
        "//evil.example/repos/acme/app",
        "http://evil.example/repos/acme/app",
    ] {
        let (status, body) =
            use_grant(&srv, &me, &g, json!({"method": "GET", "path": escape})).await;
        assert_eq!(
            (status, &body["code"], &body["provider"]),
            (403, &json!("ssrf_blocked"), &json!("vault")),
            "{escape}: {body}"
        );
    }
    assert_eq!(up.hits().len(), 1, "no escape reached the upstream");
    let events = srv.events(&id).await;
    let failed = (events.iter())
        .filter(|e| e["type"] == "grant.use_failed")
        .count();
    assert_eq!(failed, 5);
    let (_, last) = use_grant(
        &srv,
        &me,
        &g,
        json!({"method": "GET", "path": "/repos/acme/app"}),
    )
    .await;
    assert_eq!(
        last["grant"]["status"], "active",
        "1 + 5 + 1 of 10 uses: {last}"
    );
}

/// agent-auth-hardening: a run belongs to the first tenant that got a grant
/// on it (a refused request claims nothing: ours); one agent cannot use or
/// another tenant revoke a grant; unknown grants are 404.
async fn tenants_and_agents_keep_to_their_own(srv: TestServer) {
    connect(&srv, json!({"name": "gh", "principal": "acme"})).await;
    connect(&srv, json!({"name": "gh", "principal": "evil"})).await;
    let acme = agent(&srv, "a1", Some("acme")).await;
    let colleague = agent(&srv, "a2", Some("acme")).await;
    let evil = agent(&srv, "e1", Some("evil")).await;
    let id = run(&srv).await;
    let (status, _) = request(
        &srv,
        &evil,
        &id,
        json!({"resource": "missing", "action": "repo.read"}),
    )
    .await;
    assert_eq!(status, 404);
    let g = grant(
        &srv,
        &acme,
        &id,
        json!({"resource": "gh", "action": "repo.read", "maxUses": 5}),
    )
    .await;
    let (status, body) = request(
        &srv,
        &evil,
        &id,
        json!({"resource": "gh", "action": "repo.read"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"error": "run is owned by a different principal", "code": "cross_tenant"})
        )
    );
    let (status, body) =
        use_grant(&srv, &colleague, &g, json!({"method": "GET", "path": "/"})).await;
    assert_eq!(
        (status, body),
        (409, json!({"error": UNUSABLE})),
        "confused deputy"
    );
    let unknown = json!({"runId": id, "grantId": "grant_00000000000000000000000000000000"});
    let (status, body) =
        use_grant(&srv, &acme, &unknown, json!({"method": "GET", "path": "/"})).await;
    assert_eq!((status, body), (404, json!({"error": "grant not found"})));
    let revoke = format!(
        "/runs/{id}/grants/{}/revoke",
        g["grantId"].as_str().unwrap()
    );
    let (status, body) = as_agent_json(&srv, &evil, &revoke, json!({})).await;
    assert_eq!((status, &body["code"]), (403, &json!("cross_tenant")));
    let (status, body) = as_agent_json(&srv, &colleague, &revoke, json!({})).await;
    assert_eq!(
        (status, &body["grant"]["status"]),
        (200, &json!("revoked")),
        "{body}"
    );
    let (status, body) = as_agent_json(&srv, &acme, &revoke, json!({})).await;
    assert_eq!(
        (status, body),
        (409, json!({"error": "grant is already revoked"}))
    );
    let events = srv.events(&id).await;
    let revoked = events
        .iter()
        .find(|e| e["type"] == "grant.revoked")
        .unwrap();
    assert_eq!(
        revoked["payload"]["agentId"],
        colleague.id.as_str(),
        "the revoker"
    );
    assert_eq!(revoked["payload"]["status"], "revoked");
}

/// agent-auth-hardening: revoking a resource revokes its live grants.
async fn revoking_a_resource_revokes_its_grants(srv: TestServer) {
    let res = connect(&srv, json!({"name": "gh"})).await;
    let me = agent(&srv, "a", None).await;
    let id = run(&srv).await;
    let live = grant(
        &srv,
        &me,
        &id,
        json!({"resource": "gh", "action": "repo.read"}),
    )
    .await;
    grant(
        &srv,
        &me,
        &id,
        json!({"resource": "gh", "action": "repo.delete"}),
    )
    .await;
    let (status, body) = srv
        .post(&format!("/resources/{res}/revoke"), json!({}))
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"revoked": res, "grantsRevoked": 2}))
    );
    let (status, body) = use_grant(&srv, &me, &live, json!({"method": "GET", "path": "/"})).await;
    assert_eq!((status, body), (409, json!({"error": UNUSABLE})));
    let (status, body) = srv
        .post(&format!("/resources/{res}/revoke"), json!({}))
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"revoked": res, "grantsRevoked": 0}))
    );
    let (status, body) = srv.post("/resources/res_nope/revoke", json!({})).await;
    assert_eq!(
        (status, body),
        (404, json!({"error": "resource not found"}))
    );
    let causes: Vec<Value> = (srv.events(&id).await.iter())
        .filter(|e| e["type"] == "grant.revoked")
        .map(|e| e["payload"]["cause"].clone())
        .collect();
    assert_eq!(
        causes,
        [json!("resource_revoked"), json!("resource_revoked")]
    );
}

/// agent-auth-hardening: a grant past its TTL is expired by the reconciler
/// with a `grant.expired` receipt, and cannot be used.
async fn grants_expire_by_the_reconciler(srv: TestServer) {
    connect(&srv, json!({"name": "gh"})).await;
    let me = agent(&srv, "a", None).await;
    let id = run(&srv).await;
    let g = grant(
        &srv,
        &me,
        &id,
        json!({"resource": "gh", "action": "repo.read", "ttlSeconds": 1}),
    )
    .await;
    let reconciler = srv.engine.spawn_reconciler(Duration::from_millis(100));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, audit) = srv.get("/audit?types=grant.expired").await;
        if audit.to_string().contains("grant.expired") {
            break;
        }
        assert!(Instant::now() < deadline, "no grant.expired: {audit}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reconciler.abort();
    let (status, body) = use_grant(&srv, &me, &g, json!({"method": "GET", "path": "/"})).await;
    assert_eq!((status, body), (409, json!({"error": UNUSABLE})));
    let events = srv.events(&id).await;
    let expired = events
        .iter()
        .find(|e| e["type"] == "grant.expired")
        .unwrap();
    assert_eq!(expired["payload"]["status"], "expired");
}

/// agent-auth-hardening: without a backend that can mint, mint mode is
/// refused (no fake tokens); a nango resource in development is simulated,
/// and neither its connect answer, its use nor the audit carries its
/// connection reference.
async fn delegated_backends_simulate_and_never_mint(srv: TestServer) {
    let (status, connected) = srv.post("/resources", json!({"name": "gh"})).await;
    assert_eq!(status, 200);
    assert_eq!(connected["provider"], "nango");
    assert!(
        !connected.to_string().contains("dev:nango") && connected.get("connectionRef").is_none()
    );
    let me = agent(&srv, "a", None).await;
    let id = run(&srv).await;
    let (status, body) = request(
        &srv,
        &me,
        &id,
        json!({"resource": "gh", "action": "repo.read", "mode": "mint"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "mint mode requires a credential backend that can mint; use proxy mode", "code": "mint_unavailable"})
        )
    );
    let g = grant(
        &srv,
        &me,
        &id,
        json!({"resource": "gh", "action": "repo.read"}),
    )
    .await;
    let path = format!("/runs/{id}/grants/{}/use", g["grantId"].as_str().unwrap());
    let (status, text) =
        as_agent(&srv, &me, &path, json!({"method": "GET", "path": "/repos"})).await;
    assert_eq!(status, 200, "{text}");
    let used: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        used["response"],
        json!({"ok": true, "mode": "proxy", "proxied": true, "simulated": true,
               "provider": "dev-reference", "status": 200, "method": "GET", "path": "/repos"})
    );
    let (_, audit) = srv.get("/audit").await;
    let detail = srv.detail(&id).await;
    for text in [text, audit.to_string(), detail.to_string()] {
        assert!(
            !text.contains("dev:nango") && !text.contains("connection_ref"),
            "{text}"
        );
    }
    let used_event = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "grant.used")
        .unwrap()
        .clone();
    assert_eq!(used_event["payload"]["simulated"], true);
    assert_eq!(
        used_event["payload"]["call"],
        json!({"method": "GET", "path": "/repos"})
    );
}

/// Ours: an upstream that echoes the credential does not hand it to the
/// agent.
async fn a_secret_the_upstream_echoes_is_redacted(srv: TestServer) {
    let up = Upstream::start(|hit| {
        let auth = hit.header("authorization").unwrap_or_default().to_string();
        Reply::ok(json!({"youSent": auth}).to_string())
    })
    .await;
    connect(
        &srv,
        json!({"name": "echo", "provider": "static", "baseUrl": up.origin,
                         "secret": {"scheme": "bearer", "token": SECRET}}),
    )
    .await;
    let me = agent(&srv, "a", None).await;
    let id = run(&srv).await;
    let g = grant(
        &srv,
        &me,
        &id,
        json!({"resource": "echo", "action": "x.read"}),
    )
    .await;
    let path = format!("/runs/{id}/grants/{}/use", g["grantId"].as_str().unwrap());
    let (status, text) = as_agent(&srv, &me, &path, json!({"method": "GET", "path": "/"})).await;
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains(SECRET), "{text}");
    let used: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        used["response"]["body"],
        json!({"youSent": "Bearer [REDACTED]"})
    );
    assert_eq!(
        up.hits()[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
}

/// agent-auth-proxy: without `TIDEBASE_ALLOW_PRIVATE_PROXY`, metadata and
/// loopback targets are refused after the use was reserved, and nothing is
/// sent.
async fn internal_targets_are_refused_without_the_flag(srv: TestServer) {
    let up = recorder().await;
    connect(&srv, json!({"name": "meta", "provider": "static", "baseUrl": "http://169.254.169.254", "secret": SECRET})).await;
    connect(
        &srv,
        json!({"name": "local", "provider": "static", "baseUrl": up.origin, "secret": SECRET}),
    )
    .await;
    let me = agent(&srv, "a", None).await;
    let id = run(&srv).await;
    for resource in ["meta", "local"] {
        let g = grant(
            &srv,
            &me,
            &id,
            json!({"resource": resource, "action": "x.read"}),
        )
        .await;
        let (status, body) = use_grant(
            &srv,
            &me,
            &g,
            json!({"method": "GET", "path": "/latest/meta-data/"}),
        )
        .await;
        assert_eq!(
            (status, &body["code"], &body["provider"]),
            (403, &json!("ssrf_blocked"), &json!("vault")),
            "{resource}: {body}"
        );
        assert!(!body.to_string().contains(SECRET));
        let (status, again) = use_grant(&srv, &me, &g, json!({"method": "GET", "path": "/"})).await;
        assert_eq!(
            (status, again),
            (409, json!({"error": UNUSABLE})),
            "the use was spent"
        );
    }
    assert!(up.hits().is_empty());
    let failures: Vec<Value> = (srv.events(&id).await.iter())
        .filter(|e| e["type"] == "grant.use_failed")
        .map(|e| e["payload"]["failure"].clone())
        .collect();
    assert_eq!(failures, [json!("ssrf_blocked"), json!("ssrf_blocked")]);
}

/// agent-auth-proxy: with no master key a secret is refused (fail closed),
/// while a resource without one still connects; unrecognised secrets and
/// headers the client owns are `bad_secret`.
async fn no_secret_is_stored_without_custody(srv: TestServer) {
    let (status, body) = srv
        .post(
            "/resources",
            json!({"name": "gh", "provider": "static", "secret": SECRET}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            503,
            json!({"error": "credential custody not configured: set TIDEBASE_MASTER_KEY", "code": "custody_unavailable"})
        )
    );
    let (status, body) = srv
        .post("/resources", json!({"name": "gh", "provider": "static"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = srv
        .post(
            "/resources",
            json!({"name": "gh", "secret": {"scheme": "oauth", "token": "x"}}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "unrecognized secret format", "code": "bad_secret"})
        )
    );
    let (status, body) = srv
        .post(
            "/resources",
            json!({"name": "gh", "secret": {"scheme": "header", "name": "Host", "value": "x"}}),
        )
        .await;
    assert_eq!(
        (status, &body["code"]),
        (400, &json!("bad_secret")),
        "{body}"
    );
    assert!(body["error"].as_str().unwrap().contains("host"), "{body}");
    let (status, body) = srv
        .post("/resources", json!({"name": "gh", "secret": 42}))
        .await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid request body"))
    );
}

/// The two doors, one broker: a tenant-less resource connected once through
/// the broker API serves a wasm run (granted by `?allow=`) and an SDK run
/// (through a grant); the upstream sees the credential from both, and the
/// receipts list both calls.
async fn one_resource_serves_both_doors(srv: TestServer) {
    let up = Upstream::start(|_| Reply::ok("hello from upstream")).await;
    connect(
        &srv,
        json!({"name": "shared", "provider": "static", "baseUrl": up.origin, "secret": SECRET}),
    )
    .await;

    deploy(&srv, "fetch", tidebase_fixtures::FETCH, "?allow=shared").await;
    let wasm_run = start(&srv, "fetch", json!({"url": up.url("/greeting")})).await;
    let d = wait_status(&srv, &wasm_run, "completed").await;
    assert_eq!(
        d["run"]["result"],
        json!({"status": 200, "body": "hello from upstream"})
    );

    let me = agent(&srv, "sdk", None).await;
    let sdk_run = run(&srv).await;
    let g = grant(
        &srv,
        &me,
        &sdk_run,
        json!({"resource": "shared", "action": "greeting.read"}),
    )
    .await;
    let (status, used) =
        use_grant(&srv, &me, &g, json!({"method": "GET", "path": "/greeting"})).await;
    assert_eq!(status, 200, "{used}");
    assert_eq!(used["response"]["body"], "hello from upstream");

    let hits = up.hits();
    assert_eq!(hits.len(), 2);
    for hit in &hits {
        assert_eq!(hit.path, "/greeting");
        assert_eq!(
            hit.header("authorization"),
            Some(format!("Bearer {SECRET}").as_str())
        );
    }
    let (status, listed) = srv.get("/egress/receipts?resource=shared").await;
    assert_eq!(status, 200, "{listed}");
    let receipts = listed["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 2, "{listed}");
    let (sdk, wasm) = (&receipts[0], &receipts[1]);
    assert_eq!(
        (&wasm["runId"], &wasm["step"], &wasm["grantId"]),
        (&json!(wasm_run), &json!("fetch"), &Value::Null)
    );
    assert_eq!(
        (&sdk["runId"], &sdk["grantId"], &sdk["agentId"]),
        (&json!(sdk_run), &g["grantId"], &json!(me.id))
    );
    for r in receipts {
        assert_eq!(
            (&r["decision"], &r["status"], &r["path"]),
            (&json!("allowed"), &json!(200), &json!("/greeting"))
        );
    }
    // The admin's ledger: the grant's receipts and both calls.
    let (status, audit) = srv.get("/audit?types=grant.used,egress.call").await;
    assert_eq!(status, 200, "{audit}");
    let entries: Vec<(&str, &str, &str)> = (audit.as_array().unwrap().iter())
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default();
            (field("type"), field("runId"), field("grantId"))
        })
        .collect();
    let grant_id = g["grantId"].as_str().unwrap();
    for expected in [
        ("egress.call", wasm_run.as_str(), ""),
        ("grant.used", sdk_run.as_str(), grant_id),
        ("egress.call", sdk_run.as_str(), grant_id),
    ] {
        assert!(entries.contains(&expected), "{expected:?} in {entries:?}");
    }
    assert!(!listed.to_string().contains(SECRET) && !audit.to_string().contains(SECRET));
}
