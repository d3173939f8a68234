//! The v0.7 broker's identity door (broker.md §1–4, §3.10): fail closed
//! without an API key, the admin key versus agent sessions, agents as
//! upserts, dev-token and Ed25519 keypair proofs over single-use
//! challenges, rate limits keyed on identities (not on a client address),
//! the broker body cap, and the audit ledger's parsing and tenant scoping.

use crate::harness::*;
use crate::serve::Serve;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::Connection;
use tidebase_host::config::IdentitySettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "test-secret-key";

/// A server with the API key and limits out of the way.
fn broker() -> Opts {
    with_identity(IdentitySettings {
        prove_rate: 100_000,
        grant_rate: 100_000,
        ..IdentitySettings::default()
    })
}

fn with_identity(identity: IdentitySettings) -> Opts {
    Opts {
        identity,
        ..Opts::api_key(KEY)
    }
}

/// A request with `bearer` (none: no `Authorization` header).
async fn call_as(
    srv: &TestServer,
    bearer: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = srv.bare(method, path);
    if let Some(token) = bearer {
        rb = rb.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        rb = rb.json(&body);
    }
    let r = TestServer::send(rb).await;
    let body = serde_json::from_str(&r.text).unwrap_or(Value::String(r.text));
    (r.status, body)
}

async fn register(srv: &TestServer, body: Value) -> Value {
    let (status, agent) = srv.post("/agents", body).await;
    assert_eq!(status, 200, "{agent}");
    agent
}

fn agent_id(agent: &Value) -> String {
    agent["agentId"].as_str().unwrap().to_string()
}

/// A dev-token agent's session token.
async fn dev_session(srv: &TestServer, name: &str, principal: Option<&str>) -> (String, String) {
    let mut body = json!({"name": name});
    if let Some(p) = principal {
        body["principal"] = json!(p);
    }
    let agent = register(srv, body).await;
    let id = agent_id(&agent);
    let (status, proved) = srv.post(&format!("/agents/{id}/prove"), json!({})).await;
    assert_eq!(status, 200, "{proved}");
    (id, proved["sessionToken"].as_str().unwrap().to_string())
}

fn keypair() -> (SigningKey, String) {
    let seed: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
        .iter()
        .flat_map(|u| u.into_bytes())
        .collect();
    let key = SigningKey::from_bytes(&seed.try_into().unwrap());
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    (key, pem)
}

async fn challenge(srv: &TestServer, agent: &str) -> String {
    let (status, c) = srv
        .post(&format!("/agents/{agent}/challenge"), json!({}))
        .await;
    assert_eq!(status, 200, "{c}");
    c["challenge"].as_str().unwrap().to_string()
}

fn sign(key: &SigningKey, challenge: &str) -> String {
    STANDARD.encode(key.sign(challenge.as_bytes()).to_bytes())
}

/// A keypair proof body: `challenge` signed by `key`.
fn signed(key: &SigningKey, challenge: &str) -> Value {
    json!({"challenge": challenge, "signature": sign(key, challenge)})
}

async fn prove(srv: &TestServer, agent: &str, body: Value) -> (u16, Value) {
    srv.post(&format!("/agents/{agent}/prove"), body).await
}

fn error(message: &str) -> Value {
    json!({"error": message})
}

backend_tests!(
    no_key_fails_closed_on_broker_paths,
    sessions_reach_only_grant_and_audit_routes = broker(),
    agents_register_as_upserts = broker(),
    keypair_proof_end_to_end = broker(),
    one_challenge_makes_one_session_under_concurrency = broker(),
    dev_token_proofs_check_the_configured_token = with_identity(IdentitySettings {
        dev_agent_token: Some("dev-secret".into()),
        ..IdentitySettings::default()
    }),
    production_refuses_dev_tokens = with_identity(IdentitySettings {
        production: true,
        ..IdentitySettings::default()
    }),
    other_kinds_are_not_provable_here = broker(),
    an_empty_challenge_secret_disables_challenges = with_identity(IdentitySettings {
        challenge_secret: Some(String::new()),
        ..IdentitySettings::default()
    }),
    broker_bodies_are_capped = broker(),
    proof_rate_limits_are_per_agent = with_identity(IdentitySettings {
        prove_rate: 3,
        ..IdentitySettings::default()
    }),
    the_audit_ledger_filters_orders_and_scopes = broker(),
    serve_reads_upstreams_variables,
);

/// `tidebase-host serve` takes the identity settings from upstream's
/// variable names, so a v0.7 deployment's environment works unchanged.
async fn serve_reads_upstreams_variables(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TIDEBASE_API_KEY", KEY),
        ("NODE_ENV", "production"),
        ("TIDEBASE_ENV", "development"),
        ("TIDEBASE_PROVE_RATE", "2"),
        ("TIDEBASE_CHALLENGE_SECRET", ""),
    ];
    let serve = Serve::start(&srv, dir.path(), &env).await;
    let post = |path: String| {
        let rb = serve.http.post(format!("{}{path}", serve.base));
        async move {
            let r = rb
                .bearer_auth(KEY)
                .json(&json!({"name": "dev"}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, agent) = post("/agents".into()).await;
    assert_eq!(status, 200, "{agent}");
    let id = agent_id(&agent);
    let (status, body) = post(format!("/agents/{id}/prove")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (403, json!("dev_token_disabled")),
        "NODE_ENV wins"
    );
    let (status, body) = post(format!("/agents/{id}/challenge")).await;
    assert_eq!(
        (status, body),
        (503, error("challenge issuance not configured"))
    );
    let (status, body) = post(format!("/agents/{id}/prove")).await;
    assert_eq!((status, body["code"].clone()), (429, json!("rate_limited")));
}

/// Without `TIDEBASE_API_KEY` every broker path is a 503, whatever the
/// method and whether a route exists; core routes stay open.
async fn no_key_fails_closed_on_broker_paths(srv: TestServer) {
    let disabled = json!({
        "error": "credential broker disabled: set TIDEBASE_API_KEY to enable agent-auth endpoints",
        "code": "broker_disabled",
    });
    for (method, path) in [
        (Method::POST, "/agents"),
        (Method::GET, "/agents/agent_x"),
        (Method::POST, "/agents/agent_x/prove"),
        (Method::POST, "/resources"),
        (Method::GET, "/resources"),
        (Method::GET, "/audit"),
        (Method::POST, "/runs/r/grants"),
        (Method::DELETE, "/runs/r/grants/anything"),
    ] {
        let (status, body) = call_as(&srv, None, method.clone(), path, Some(json!({}))).await;
        assert_eq!((status, &body), (503, &disabled), "{method} {path}");
    }
    let (status, _) = srv.post("/runs/x", json!({})).await;
    assert_eq!(status, 200, "core routes are open");
    let (status, _) = srv.get("/egress/receipts").await;
    assert_eq!(status, 200);
    let r = TestServer::send(
        srv.bare(Method::OPTIONS, "/agents")
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST"),
    )
    .await;
    assert_eq!(r.status, 204, "preflights come before the broker switch");
}

/// The admin key opens everything; an agent session only the grant routes
/// and the audit; anything else is 401.
async fn sessions_reach_only_grant_and_audit_routes(srv: TestServer) {
    let (_, session) = dev_session(&srv, "scoped", Some("acme")).await;
    assert!(
        session.starts_with("tdb_ags_") && session.len() == 8 + 43,
        "{session}"
    );
    let unauthorized = error("unauthorized");
    for (method, path) in [
        (Method::GET, "/runs"),
        (Method::POST, "/runs/wf"),
        (Method::POST, "/agents"),
        (Method::GET, "/egress/receipts"),
        (Method::GET, "/audit/"),
    ] {
        let (status, body) = call_as(&srv, Some(&session), method.clone(), path, None).await;
        assert_eq!((status, &body), (401, &unauthorized), "{method} {path}");
    }
    let (status, body) = call_as(&srv, Some(&session), Method::GET, "/audit", None).await;
    assert_eq!((status, body), (200, json!([])));
    for bearer in [None, Some("tdb_ags_forged"), Some("test-secret-keyX")] {
        let (status, body) = call_as(&srv, bearer, Method::GET, "/audit", None).await;
        assert_eq!((status, &body), (401, &unauthorized), "{bearer:?}");
        let (status, _) = call_as(&srv, bearer, Method::POST, "/runs/r/grants", None).await;
        assert_eq!(status, 401, "{bearer:?}");
    }
    // Both credentials pass the door on grant paths; the grant handlers
    // decide from there.
    for bearer in [KEY, session.as_str()] {
        let (status, body) = call_as(
            &srv,
            Some(bearer),
            Method::POST,
            "/runs/r/grants",
            Some(json!({})),
        )
        .await;
        assert!(
            ![401, 503].contains(&status) || body.get("code").is_some(),
            "{status} {body}"
        );
        // The grant request route exists for POST only.
        let (status, _) = call_as(&srv, Some(bearer), Method::GET, "/runs/r/grants", None).await;
        assert_eq!(status, 405);
    }
}

/// `POST /agents` inserts or updates by (principal, name) and answers the
/// wire Agent; bodies are checked like upstream's schema.
async fn agents_register_as_upserts(srv: TestServer) {
    let first = register(
        &srv,
        json!({"name": "ci-fixer", "principal": "acme", "extra": true, "metadata": {"a": 1}}),
    )
    .await;
    let id = agent_id(&first);
    assert!(is_id(&first["agentId"], "agent"), "{first}");
    assert_eq!(
        first,
        json!({"agentId": id, "name": "ci-fixer", "principal": "acme",
               "identityKind": "dev_token", "status": "active"})
    );
    let (_, pem) = keypair();
    let again = register(
        &srv,
        json!({"name": "ci-fixer", "principal": "acme", "identityKind": "keypair", "publicKey": pem}),
    )
    .await;
    assert_eq!(
        again["agentId"], first["agentId"],
        "same principal and name"
    );
    assert_eq!(again["identityKind"], "keypair");
    let (status, read) = srv.get(&format!("/agents/{id}")).await;
    assert_eq!((status, read), (200, again));

    let other = register(&srv, json!({"name": "ci-fixer", "principal": "globex"})).await;
    assert_ne!(other["agentId"], first["agentId"]);
    // Our difference: no principal is a principal of its own, so the
    // same name upserts one agent instead of piling up duplicates.
    let lone = register(&srv, json!({"name": "ci-fixer"})).await;
    assert_eq!(lone["principal"], Value::Null);
    let lone_again = register(&srv, json!({"name": "ci-fixer"})).await;
    assert_eq!(lone_again["agentId"], lone["agentId"]);
    assert_ne!(lone["agentId"], first["agentId"]);

    let (status, body) = srv
        .get("/agents/agent_00000000000000000000000000000000")
        .await;
    assert_eq!((status, body), (404, error("agent not found")));
    for (bad, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "principal": ""}), "principal"),
        (json!({"name": "x", "principal": null}), "principal"),
        (
            json!({"name": "x", "identityKind": "oauth"}),
            "identityKind",
        ),
        (json!({"name": "x", "publicKey": 5}), "publicKey"),
        (json!({"name": "x", "metadata": []}), "metadata"),
        (json!({"name": "x".repeat(257)}), "name"),
    ] {
        let (status, body) = srv.post("/agents", bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "invalid request body", "{bad}");
        assert_eq!(body["issues"][0]["path"], json!([field]), "{bad}: {body}");
    }
    // As on every route here (v0.7 answered 500): a 400 naming the problem.
    for unparsable in ["{", "", "not json"] {
        let r = srv.raw(Method::POST, "/agents", unparsable).await;
        assert_eq!(r.status, 400, "{unparsable:?}: {}", r.text);
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .starts_with("request body is")
        );
    }
}

/// A real Ed25519 key proves an identity over a challenge; a wrong
/// signature burns its challenge, a used challenge never works again, and
/// expired, forged and foreign challenges are refused.
async fn keypair_proof_end_to_end(srv: TestServer) {
    let (key, pem) = keypair();
    let agent = register(
        &srv,
        json!({"name": "signer", "principal": "acme", "identityKind": "keypair", "publicKey": pem}),
    )
    .await;
    let id = agent_id(&agent);

    let (status, issued) = srv
        .post(&format!("/agents/{id}/challenge"), json!({}))
        .await;
    assert_eq!(status, 200, "{issued}");
    let first = issued["challenge"].as_str().unwrap().to_string();
    let lifetime = ms(&issued["expiresAt"]) - now_ms();
    assert!((55_000..=60_000).contains(&lifetime), "{lifetime} ms");
    let (payload, _) = first.split_once('.').unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["agentId"], id.as_str());
    assert_eq!(claims["exp"], ms(&issued["expiresAt"]));

    let (status, proved) = prove(&srv, &id, signed(&key, &first)).await;
    assert_eq!(status, 200, "{proved}");
    assert_eq!(proved["agentId"], id.as_str());
    let token = proved["sessionToken"].as_str().unwrap();
    assert!(token.starts_with("tdb_ags_"), "{token}");
    let lifetime = ms(&proved["expiresAt"]) - now_ms();
    assert!((895_000..=900_000).contains(&lifetime), "{lifetime} ms");
    let (status, _) = call_as(&srv, Some(token), Method::GET, "/audit", None).await;
    assert_eq!(status, 200, "the session works");

    let replay = signed(&key, &first);
    let (status, body) = prove(&srv, &id, replay).await;
    assert_eq!((status, body), (401, error("challenge already used")));

    let second = challenge(&srv, &id).await;
    let (other_key, _) = keypair();
    let forged = signed(&other_key, &second);
    let (status, body) = prove(&srv, &id, forged).await;
    assert_eq!((status, body), (401, error("invalid signature")));
    let retried = signed(&key, &second);
    let (status, body) = prove(&srv, &id, retried).await;
    assert_eq!(
        (status, body),
        (401, error("challenge already used")),
        "a wrong signature burns the challenge"
    );

    // Signed with the key this server uses for challenges (the API key):
    // well formed, but expired.
    let mac = |payload: &str| {
        let mut m = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
        m.update(payload.as_bytes());
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    };
    let expired_payload = URL_SAFE_NO_PAD
        .encode(json!({"agentId": id, "exp": now_ms() - 1, "nonce": "n"}).to_string());
    let expired = format!("{expired_payload}.{}", mac(&expired_payload));
    let third = challenge(&srv, &id).await;
    let (third_payload, third_mac) = third.split_once('.').unwrap();
    let stranger = register(
        &srv,
        json!({"name": "stranger", "identityKind": "keypair", "publicKey": pem}),
    )
    .await;
    let foreign = challenge(&srv, &agent_id(&stranger)).await;
    for bad in [
        expired,
        format!("{third_payload}.{}x", third_mac),
        format!("{third_payload}x.{third_mac}"),
        third_payload.to_string(),
        format!(".{third_mac}"),
        foreign,
    ] {
        let body = signed(&key, &bad);
        let (status, body) = prove(&srv, &id, body).await;
        assert_eq!(
            (status, body),
            (401, error("invalid or expired challenge")),
            "{bad}"
        );
    }
    let (status, _) = prove(&srv, &id, signed(&key, &third)).await;
    assert_eq!(
        status, 200,
        "refused look-alikes did not burn the real challenge"
    );

    let incomplete = error("challenge and signature required for keypair proof");
    let fourth = challenge(&srv, &id).await;
    for body in [
        json!({}),
        json!({"challenge": fourth}),
        json!({"challenge": fourth, "signature": ""}),
        json!({"signature": sign(&key, &fourth)}),
    ] {
        let (status, answer) = prove(&srv, &id, body.clone()).await;
        assert_eq!((status, &answer), (400, &incomplete), "{body}");
    }
    let keyless = register(
        &srv,
        json!({"name": "keyless", "identityKind": "cloud_key"}),
    )
    .await;
    let (status, body) = prove(
        &srv,
        &agent_id(&keyless),
        json!({"challenge": fourth, "signature": "x"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (400, error("agent has no registered public key"))
    );
    let (status, body) = prove(&srv, &id, json!({"challenge": 5})).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid request body"))
    );
    let (status, body) = prove(&srv, "agent_00000000000000000000000000000000", json!({})).await;
    assert_eq!((status, body), (404, error("agent not found")));
}

/// Many proofs racing with one challenge and a good signature: exactly one
/// session is made.
async fn one_challenge_makes_one_session_under_concurrency(srv: TestServer) {
    let (key, pem) = keypair();
    let agent = register(
        &srv,
        json!({"name": "racer", "identityKind": "keypair", "publicKey": pem}),
    )
    .await;
    let id = agent_id(&agent);
    let c = challenge(&srv, &id).await;
    let body = signed(&key, &c);
    let handle = srv.handle();
    let results = concurrently(8, |_| {
        let (handle, body, path) = (handle.clone(), body.clone(), format!("/agents/{id}/prove"));
        async move { handle.call(Method::POST, &path, Some(body)).await }
    })
    .await;
    let won = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(won, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!((*status, body), (401, &error("challenge already used")));
    }
}

/// With `TIDEBASE_DEV_AGENT_TOKEN` set, a dev-token proof must present it.
async fn dev_token_proofs_check_the_configured_token(srv: TestServer) {
    let id = agent_id(&register(&srv, json!({"name": "dev"})).await);
    for body in [
        json!({}),
        json!({"token": "wrong"}),
        json!({"token": "dev-secret "}),
    ] {
        let (status, answer) = prove(&srv, &id, body.clone()).await;
        assert_eq!(
            (status, answer),
            (401, error("invalid agent proof")),
            "{body}"
        );
    }
    let r = srv
        .raw(Method::POST, &format!("/agents/{id}/prove"), "not json")
        .await;
    assert_eq!(
        (r.status, r.json()),
        (401, error("invalid agent proof")),
        "unparsable is {{}}"
    );
    let (status, body) = prove(&srv, &id, json!({"token": 7})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["issues"][0]["path"], json!(["token"]));
    let (status, body) = prove(&srv, &id, json!({"token": "dev-secret"})).await;
    assert_eq!(status, 200, "{body}");
}

/// In production dev tokens are refused; keypairs still prove.
async fn production_refuses_dev_tokens(srv: TestServer) {
    let id = agent_id(&register(&srv, json!({"name": "dev"})).await);
    let (status, body) = prove(&srv, &id, json!({})).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"error": "dev_token identity is disabled in production; register a keypair identity",
                   "code": "dev_token_disabled"})
        )
    );
    let (key, pem) = keypair();
    let id = agent_id(
        &register(
            &srv,
            json!({"name": "kp", "identityKind": "keypair", "publicKey": pem}),
        )
        .await,
    );
    let c = challenge(&srv, &id).await;
    let (status, body) = prove(&srv, &id, signed(&key, &c)).await;
    assert_eq!(status, 200, "{body}");
}

/// SPIRE cannot be verified offline: 501 naming the kind.
async fn other_kinds_are_not_provable_here(srv: TestServer) {
    let id = agent_id(&register(&srv, json!({"name": "workload", "identityKind": "spire"})).await);
    let (status, body) = prove(&srv, &id, json!({})).await;
    assert_eq!(
        (status, body),
        (
            501,
            error("spire proof provider is not configured in this build")
        )
    );
    let (status, _) = srv
        .post(&format!("/agents/{id}/challenge"), json!({}))
        .await;
    assert_eq!(status, 200, "challenges are issued for any kind");
}

/// `TIDEBASE_CHALLENGE_SECRET=""` switches challenges off (after the agent
/// lookup).
async fn an_empty_challenge_secret_disables_challenges(srv: TestServer) {
    let (status, body) = srv
        .post(
            "/agents/agent_00000000000000000000000000000000/challenge",
            json!({}),
        )
        .await;
    assert_eq!((status, body), (404, error("agent not found")));
    let id = agent_id(&register(&srv, json!({"name": "kp", "identityKind": "keypair"})).await);
    let (status, body) = srv
        .post(&format!("/agents/{id}/challenge"), json!({}))
        .await;
    assert_eq!(
        (status, body),
        (503, error("challenge issuance not configured"))
    );
}

/// `POST` bodies on broker paths are capped at 64 KiB by `Content-Length`
/// or, without one, by counting; exactly 65 536 bytes pass. Authentication
/// comes first, and core routes have no such cap.
async fn broker_bodies_are_capped(srv: TestServer) {
    let too_large = json!({"error": "request body too large", "code": "body_too_large"});
    let body = |size: usize| {
        let head = r#"{"name":"big","metadata":{"pad":""#;
        let tail = r#""}}"#;
        format!("{head}{}{tail}", "x".repeat(size - head.len() - tail.len()))
    };
    let r = srv.raw(Method::POST, "/agents", body(70_000)).await;
    assert_eq!((r.status, r.json()), (413, too_large.clone()));
    let r = srv.raw(Method::POST, "/agents", body(65_537)).await;
    assert_eq!(r.status, 413);
    let r = srv.raw(Method::POST, "/agents", body(65_536)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = TestServer::send(srv.bare(Method::POST, "/agents").body(body(70_000))).await;
    assert_eq!((r.status, r.json()), (401, error("unauthorized")));
    let (status, _) = srv
        .post("/runs/wf", json!({"input": "x".repeat(70_000)}))
        .await;
    assert_eq!(status, 200, "core routes are not capped");

    let (status, answer) = chunked_post(&srv, "/agents", &body(70_000)).await;
    assert_eq!((status, answer), (413, too_large));
    let (status, answer) = chunked_post(&srv, "/agents", &body(65_536)).await;
    assert_eq!(status, 200, "{answer}");
}

/// `POST path` with the admin key and `body` sent chunked (no
/// `Content-Length`).
async fn chunked_post(srv: &TestServer, path: &str, body: &str) -> (u16, Value) {
    let addr = srv.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {KEY}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    for chunk in body.as_bytes().chunks(10_000) {
        request.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            std::str::from_utf8(chunk).unwrap()
        ));
    }
    request.push_str("0\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().unwrap();
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Proof requests count per agent proved, whatever the client says about
/// its address; refused and failed requests count too, unauthenticated
/// ones do not.
async fn proof_rate_limits_are_per_agent(srv: TestServer) {
    let limited = json!({"error": "too many proof attempts; slow down", "code": "rate_limited"});
    let a = agent_id(&register(&srv, json!({"name": "a"})).await);
    let b = agent_id(&register(&srv, json!({"name": "b"})).await);
    for _ in 0..5 {
        let (status, _) = call_as(
            &srv,
            None,
            Method::POST,
            &format!("/agents/{b}/prove"),
            None,
        )
        .await;
        assert_eq!(status, 401, "unauthenticated: never counted");
    }
    let (status, _) = srv.post(&format!("/agents/{a}/challenge"), json!({})).await;
    assert_eq!(status, 200);
    for _ in 0..2 {
        let (status, _) = prove(&srv, &a, json!({})).await;
        assert_eq!(status, 200);
    }
    let spoofed = srv
        .request(Method::POST, &format!("/agents/{a}/prove"))
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-real-ip", "203.0.113.8");
    let r = TestServer::send(spoofed).await;
    assert_eq!(
        (r.status, r.json()),
        (429, limited.clone()),
        "a client address is no bucket"
    );
    assert_eq!(r.header("retry-after"), None);
    let (status, _) = srv.post(&format!("/agents/{a}/challenge"), json!({})).await;
    assert_eq!(status, 429, "challenges share the proof bucket");
    for _ in 0..3 {
        let (status, _) = prove(&srv, &b, json!({})).await;
        assert_eq!(status, 200, "another agent has its own bucket");
    }
    let missing = "/agents/agent_00000000000000000000000000000000/prove";
    for expected in [404, 404, 404, 429] {
        let (status, _) = srv.post(missing, json!({})).await;
        assert_eq!(status, expected, "failed proofs count");
    }
    let (status, _) = srv.get(&format!("/agents/{a}")).await;
    assert_eq!(status, 200, "reads are not limited");
}

/// Seeds grant receipts into run event logs through the store (grant
/// requests arrive with the grants branch) and claims the runs for
/// principals, then reads the ledger over HTTP.
async fn the_audit_ledger_filters_orders_and_scopes(srv: TestServer) {
    let acme_run = srv.create_run("acme-work").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let globex_run = srv.create_run("globex-work").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let lone_run = srv.create_run("lone-work").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    claim_run(&srv, &acme_run, "acme").await;
    claim_run(&srv, &globex_run, "globex").await;
    // `lone_run` stays unclaimed, as agents of no tenant leave runs.
    let receipt = |grant: &str, resource: &str, agent: &str| {
        json!({"grantId": grant, "resource": resource, "action": "item.update", "agentId": agent,
               "mode": "proxy", "status": "active", "gateId": null, "expiresAt": null})
    };
    append(
        &srv,
        &acme_run,
        "grant.requested",
        receipt("grant_1", "up:a", "agent_a"),
    )
    .await;
    append(
        &srv,
        &acme_run,
        "grant.approved",
        receipt("grant_1", "up:a", "agent_a"),
    )
    .await;
    append(&srv, &acme_run, "gate.created", json!({"gate": {}})).await;
    append(
        &srv,
        &acme_run,
        "grant.used",
        receipt("grant_2", "up:b", "agent_b"),
    )
    .await;
    append(
        &srv,
        &globex_run,
        "grant.requested",
        receipt("grant_3", "up:a", "agent_g"),
    )
    .await;
    append(
        &srv,
        &lone_run,
        "grant.requested",
        receipt("grant_4", "up:a", "agent_l"),
    )
    .await;

    let (status, all) = srv.get("/audit").await;
    assert_eq!(status, 200, "{all}");
    let grants = |entries: &Value| -> Vec<String> {
        entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{}:{}",
                    e["type"].as_str().unwrap(),
                    e["grantId"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        grants(&all),
        [
            "grant.requested:grant_4",
            "grant.requested:grant_3",
            "grant.used:grant_2",
            "grant.approved:grant_1",
            "grant.requested:grant_1"
        ],
        "grant events only, newest first"
    );
    let used = &all[2];
    let logged = srv.events(&acme_run).await;
    let seq = logged.iter().find(|e| e["type"] == "grant.used").unwrap()["seq"].clone();
    assert_eq!(
        used,
        &json!({"seq": seq, "type": "grant.used", "grantId": "grant_2", "resource": "up:b",
                "action": "item.update", "agentId": "agent_b", "at": used["at"], "runId": acme_run})
    );
    assert!(is_timestamp(&used["at"]));

    for (query, expected) in [
        ("limit=2", 2),
        ("limit=0", 1),
        ("limit=", 1),
        ("limit=1.9", 1),
        ("limit=0x3", 3),
        ("limit=%203%20", 3),
        ("limit=abc", 5),
        ("limit=500", 5),
        ("limit=1e1", 5),
    ] {
        let (status, page) = srv.get(&format!("/audit?{query}")).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(page.as_array().unwrap().len(), expected, "{query}");
    }
    let everything = grants(&all);
    for (query, expected) in [
        (
            format!("runId={acme_run}"),
            vec![
                "grant.used:grant_2",
                "grant.approved:grant_1",
                "grant.requested:grant_1",
            ],
        ),
        ("agentId=agent_b".to_string(), vec!["grant.used:grant_2"]),
        ("resource=up:b".to_string(), vec!["grant.used:grant_2"]),
        (
            "types=grant.used,%20grant.approved,".to_string(),
            vec!["grant.used:grant_2", "grant.approved:grant_1"],
        ),
        (
            format!("runId={acme_run}&resource=up:a&types=grant.requested"),
            vec!["grant.requested:grant_1"],
        ),
        (
            "runId=&agentId=".to_string(),
            everything.iter().map(String::as_str).collect(),
        ),
        ("types=gate.created".to_string(), vec![]),
    ] {
        let (status, page) = srv.get(&format!("/audit?{query}")).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(grants(&page), expected, "{query}");
    }

    let (_, acme) = dev_session(&srv, "acme-agent", Some("acme")).await;
    let (_, lone) = dev_session(&srv, "lone-agent", None).await;
    let (_, initech) = dev_session(&srv, "initech-agent", Some("initech")).await;
    for (session, expected) in [
        (
            &acme,
            vec![
                "grant.used:grant_2",
                "grant.approved:grant_1",
                "grant.requested:grant_1",
            ],
        ),
        (&lone, vec!["grant.requested:grant_4"]),
        (&initech, vec![]),
    ] {
        let (status, page) = call_as(&srv, Some(session), Method::GET, "/audit", None).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(grants(&page), expected);
    }
    let (_, page) = call_as(
        &srv,
        Some(&acme),
        Method::GET,
        &format!("/audit?runId={globex_run}"),
        None,
    )
    .await;
    assert_eq!(page, json!([]), "a filter cannot widen the scope");
}

/// Append an event to `run` through the store.
async fn append(srv: &TestServer, run: &str, kind: &str, payload: Value) {
    let mut tx = srv.engine.store().write().await.unwrap();
    tx.append_event(run, kind, &payload, srv.engine.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Distinct creation times, so the order is by time, not only by id.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
}

/// Mark `run` as claimed for `principal`.
async fn claim_run(srv: &TestServer, run: &str, principal: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&srv.db_url).await.unwrap();
    sqlx::query("UPDATE runs SET grant_principal = $1 WHERE id = $2")
        .bind(principal)
        .bind(run)
        .execute(&mut conn)
        .await
        .unwrap();
}
