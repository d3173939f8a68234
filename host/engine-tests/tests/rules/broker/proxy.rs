//! Proxied calls: use counting, the checks before a use is counted, the
//! backends, and the call itself through the egress core.

use super::{agent, ask, call, connect, events, receipt, refusal, stored};
use crate::egress::receipts;
use crate::egress::upstream::Upstream;
use crate::rig::{Rig, random_vault};
use serde_json::{Value, json};
use std::sync::Arc;
use tidebase_engine::broker::{Credential, Custody, GrantRefusal, GrantRequest, ProxyFailure};
use tidebase_engine::config::Settings;
use tidebase_engine::{Engine, EngineError, Entity, Vault};

const SECRET: &str = "sk_live/9f8e+7d6c=5b4a";

fn many(max_uses: i64) -> GrantRequest {
    GrantRequest {
        max_uses,
        ..ask("gh", "repo.read")
    }
}

#[tokio::test]
async fn a_grant_serves_exactly_max_uses_even_concurrently() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    connect(&rig, None, "gh", |_| {}).await;
    let me = agent("a1", None);
    let g = rig
        .engine
        .request_grant(&me, &run.id, many(2))
        .await
        .unwrap();
    let (first, response) = rig
        .engine
        .use_grant(&me, &run.id, &g.id, call("GET", "/repos?x=1#f"))
        .await
        .unwrap();
    assert_eq!((first.status.as_str(), first.used_count), ("active", 1));
    assert_eq!(
        json!(response),
        json!({"ok": true, "mode": "proxy", "proxied": true, "simulated": true,
               "provider": "dev-reference", "status": 200, "method": "GET",
               "path": "/repos?x=1#f"})
    );
    let (second, _) = rig
        .engine
        .use_grant(&me, &run.id, &g.id, call("get", "/repos"))
        .await
        .unwrap();
    assert_eq!((second.status.as_str(), second.used_count), ("used", 2));
    let third = rig
        .engine
        .use_grant(&me, &run.id, &g.id, call("GET", "/"))
        .await;
    assert_eq!(refusal(third), GrantRefusal::GrantUnusable);
    let used: Vec<Value> = (events(&rig, &run.id, "grant.used").await.into_iter())
        .map(|(_, payload)| payload)
        .collect();
    let mut expected = receipt(&first, Some("a1"));
    expected["call"] = json!({"method": "GET", "path": "/repos?x=1#f"});
    expected["simulated"] = json!(true);
    assert_eq!(used[0], expected);
    assert_eq!(used.len(), 2);

    let engine = Arc::new(rig.engine.clone());
    let g = rig
        .engine
        .request_grant(&me, &run.id, many(3))
        .await
        .unwrap();
    let uses = (0..12).map(|_| {
        let (engine, me, run_id, id) = (engine.clone(), me.clone(), run.id.clone(), g.id.clone());
        tokio::spawn(async move { engine.use_grant(&me, &run_id, &id, call("GET", "/")).await })
    });
    let results = futures::future::join_all(uses).await;
    let served = results
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .count();
    assert_eq!(served, 3);
    assert_eq!(stored(&rig, &g).await.used_count, 3);
}

#[tokio::test]
async fn refused_uses_count_nothing_and_write_nothing() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    connect(&rig, Some("acme"), "gh", |_| {}).await;
    let me = agent("a1", Some("acme"));
    let g = rig
        .engine
        .request_grant(&me, &run.id, many(5))
        .await
        .unwrap();
    let before = events(&rig, &run.id, "").await.len();
    // Confused deputy: another agent of the same tenant.
    let other = rig
        .engine
        .use_grant(&agent("a2", Some("acme")), &run.id, &g.id, call("GET", "/"))
        .await;
    assert_eq!(refusal(other), GrantRefusal::GrantUnusable);
    let delete = rig
        .engine
        .use_grant(&me, &run.id, &g.id, call("delete", "/"))
        .await;
    assert_eq!(
        refusal(delete),
        GrantRefusal::CallDenied(
            "action 'repo.read' does not permit DELETE (expected GET/HEAD)".into()
        )
    );
    for (run_id, grant_id) in [(run.id.as_str(), "grant_nope"), ("run_nope", g.id.as_str())] {
        let r = rig
            .engine
            .use_grant(&me, run_id, grant_id, call("GET", "/"))
            .await;
        assert!(
            matches!(r, Err(EngineError::NotFound(Entity::Grant))),
            "{r:?}"
        );
    }
    let custom = GrantRequest {
        max_uses: 5,
        ..ask("gh", "issue.comment")
    };
    let custom = rig
        .engine
        .request_grant(&me, &run.id, custom)
        .await
        .unwrap();
    let bad = rig
        .engine
        .use_grant(&me, &run.id, &custom.id, call("G T", "/"))
        .await;
    assert!(matches!(bad, Err(EngineError::BadRequest(_))), "{bad:?}");
    assert_eq!(stored(&rig, &g).await.used_count, 0);
    assert_eq!(events(&rig, &run.id, "").await.len(), before + 2);
}

#[tokio::test]
async fn a_backend_that_cannot_serve_refuses_before_the_use_counts() {
    let production = |nango, openbao| Settings {
        custody: Custody {
            dev_reference: false,
            nango,
            openbao,
            unsupported_kms: None,
        },
        ..Settings::default()
    };
    let cases = [
        (
            production(false, false),
            None,
            "static",
            "vault",
            "TIDEBASE_MASTER_KEY/KMS not configured for custody",
        ),
        (
            production(false, false),
            None,
            "nango",
            "nango",
            "NANGO_SECRET_KEY not configured",
        ),
        (
            production(false, false),
            None,
            "openbao",
            "openbao",
            "OPENBAO_ADDR/OPENBAO_TOKEN not configured",
        ),
        (
            production(true, false),
            None,
            "nango",
            "nango",
            "nango backend is not available in this build",
        ),
        (Settings::default(), None, "openbao", "dev-reference", ""),
        (
            production(false, true),
            None,
            "openbao",
            "openbao",
            "openbao backend is not available in this build",
        ),
        (
            production(false, false),
            Some(random_vault()),
            "static",
            "vault",
            "",
        ),
    ];
    for (settings, vault, provider, backend, closed) in cases {
        let rig = Rig::with(settings, vault).await;
        let run = rig.run().await;
        connect(&rig, None, "r", |r| r.provider = provider.into()).await;
        let me = agent("a1", None);
        let g = rig
            .engine
            .request_grant(&me, &run.id, ask("r", "x.read"))
            .await
            .unwrap();
        assert_eq!(stored(&rig, &g).await.policy["provider"], backend);
        let used = rig
            .engine
            .use_grant(&me, &run.id, &g.id, call("GET", "/"))
            .await;
        if closed.is_empty() {
            // Served (simulated), or refused after the use counted.
            assert!(
                used.is_ok() || stored(&rig, &g).await.used_count == 1,
                "{provider}"
            );
            continue;
        }
        assert_eq!(
            refusal(used),
            GrantRefusal::Proxy {
                failure: ProxyFailure::BackendNotConfigured,
                provider: backend.into(),
                message: closed.into(),
            },
            "{provider}"
        );
        assert_eq!(stored(&rig, &g).await.used_count, 0);
        assert!(events(&rig, &run.id, "grant.u").await.is_empty());
    }
}

/// A rig that may call its upstreams on 127.0.0.1, with a known key.
async fn local_rig(key: [u8; 32]) -> Rig {
    let settings = Settings {
        allow_private_egress: true,
        ..Settings::default()
    };
    Rig::with(settings, Some(Vault::new(key))).await
}

/// The proxied body of a successful use.
async fn body(
    rig: &Rig,
    me: &tidebase_engine::broker::AgentSession,
    g: &tidebase_engine::model::GrantRecord,
    path: &str,
) -> Value {
    let (_, response) = rig
        .engine
        .use_grant(me, &g.run_id, &g.id, call("GET", path))
        .await
        .unwrap();
    assert_eq!(
        (response.simulated, response.provider.as_str()),
        (false, "vault")
    );
    response.body.unwrap()
}

#[tokio::test]
async fn the_vaulted_secret_is_injected_upstream_and_redacted_from_the_answer() {
    let up = Upstream::start().await;
    let rig = local_rig([7; 32]).await;
    let run = rig.run().await;
    let me = agent("a1", Some("acme"));
    let credentials = [
        (
            "bearer",
            Credential::Bearer {
                token: SECRET.into(),
            },
        ),
        (
            "header",
            Credential::Header {
                name: "Authorization".into(),
                value: format!("token {SECRET}"),
            },
        ),
        (
            "basic",
            Credential::Basic {
                username: "bot".into(),
                password: SECRET.into(),
            },
        ),
    ];
    for (name, credential) in credentials {
        connect(&rig, Some("acme"), name, |r| {
            r.provider = "static".into();
            r.base_url = Some(up.base.clone());
            *r = std::mem::take(r).with_credential(credential);
        })
        .await;
        let g = rig
            .engine
            .request_grant(&me, &run.id, many(3).with(name))
            .await
            .unwrap();
        let text = body(&rig, &me, &g, "/echo?q=1").await;
        let text = text.as_str().unwrap();
        assert!(text.contains("[REDACTED]"), "{name}: {text}");
        assert!(!text.contains(SECRET), "{name}: {text}");
        let seen = up.hits("/echo").pop().unwrap();
        let auth = seen.headers["authorization"].to_str().unwrap().to_string();
        assert!(
            auth.ends_with(SECRET) || auth.starts_with("Basic "),
            "{name}: {auth}"
        );
        assert_eq!(seen.headers["content-type"], "application/json");
        assert_eq!(seen.query.as_deref(), Some("q=1"));
    }
    let receipts = receipts(&rig, &run.id).await;
    assert_eq!(receipts.len(), 3);
    for r in &receipts {
        assert_eq!(
            (r.agent_id.as_deref(), r.decision.as_str(), r.status),
            (Some("a1"), "allowed", Some(200))
        );
        assert!(r.grant_id.as_deref().unwrap().starts_with("grant_"));
        assert_eq!(r.path, "/echo");
    }
}

trait Named {
    fn with(self, resource: &str) -> Self;
}

impl Named for GrantRequest {
    fn with(mut self, resource: &str) -> Self {
        self.resource = resource.into();
        self
    }
}

#[tokio::test]
async fn targets_stay_under_the_base_path_and_the_allowed_prefix() {
    let up = Upstream::start().await;
    let rig = local_rig([7; 32]).await;
    let run = rig.run().await;
    let me = agent("a1", None);
    connect(&rig, None, "api", |r| {
        r.provider = "static".into();
        r.base_url = Some(format!("{}/api", up.base));
        r.paths = vec!["/items".into()];
        r.secret = Some(SECRET.into());
    })
    .await;
    let g = rig
        .engine
        .request_grant(&me, &run.id, many(20).with("api"))
        .await
        .unwrap();
    assert_eq!(
        body(&rig, &me, &g, "items/1?x=1#frag").await,
        "ok /api/items/1"
    );
    assert_eq!(up.hits("/api/items/1")[0].query.as_deref(), Some("x=1"));
    assert_eq!(body(&rig, &me, &g, "/items").await, "ok /api/items");
    for escape in [
        "/items/../other",
        "/itemsX",
        "/other",
        "/../items",
        "/items/%2e%2e/x",
        "/items/a%2Fb",
        "//evil.example/items",
        "http://evil.example/items",
        "/\\evil.example/items",
    ] {
        let r = rig
            .engine
            .use_grant(&me, &run.id, &g.id, call("GET", escape))
            .await;
        match refusal(r) {
            GrantRefusal::Proxy {
                failure, provider, ..
            } => {
                assert_eq!(
                    (failure, provider.as_str()),
                    (ProxyFailure::SsrfBlocked, "vault"),
                    "{escape}"
                )
            }
            other => panic!("{escape}: {other:?}"),
        }
    }
    assert_eq!(up.total(), 2, "no escape reached the upstream");
    let failed = events(&rig, &run.id, "grant.use_failed").await;
    assert_eq!(failed.len(), 9);
    assert_eq!(failed[0].1["failure"], "ssrf_blocked");
    assert_eq!(
        stored(&rig, &g).await.used_count,
        11,
        "each refused use was spent"
    );
}

#[tokio::test]
async fn failures_after_the_use_counted_are_recorded() {
    let rig = local_rig([7; 32]).await;
    let run = rig.run().await;
    let me = agent("a1", None);
    let static_resource = |name: &str, base: Option<&str>, secret: Option<&str>| {
        let (name, base, secret) = (
            name.to_string(),
            base.map(String::from),
            secret.map(String::from),
        );
        let rig = &rig;
        async move {
            connect(rig, None, &name, |r| {
                r.provider = "static".into();
                r.base_url = base;
                r.secret = secret;
            })
            .await
        }
    };
    static_resource("nosecret", Some("http://127.0.0.1:9"), None).await;
    static_resource("nobase", None, Some(SECRET)).await;
    static_resource("metadata", Some("http://169.254.169.254"), Some(SECRET)).await;
    static_resource("closed", Some("http://127.0.0.1:9"), Some(SECRET)).await;
    let relabelled = Engine::new(
        rig.engine.store().clone(),
        tidebase_engine::clock::system(),
        Settings::default(),
    )
    .with_vault(Vault::labelled([7; 32], "v2"));
    let strict = Engine::new(
        rig.engine.store().clone(),
        tidebase_engine::clock::system(),
        Settings::default(),
    )
    .with_vault(Vault::new([7; 32]));
    let cases = [
        (
            &rig.engine,
            "nosecret",
            ProxyFailure::BackendNotConfigured,
            "no secret stored for resource",
        ),
        (
            &rig.engine,
            "nobase",
            ProxyFailure::BackendNotConfigured,
            "resource has no base_url to proxy to",
        ),
        (
            &relabelled,
            "closed",
            ProxyFailure::ProviderError,
            "failed to decrypt stored credential",
        ),
        (&strict, "metadata", ProxyFailure::SsrfBlocked, ""),
        (&rig.engine, "closed", ProxyFailure::UpstreamUnreachable, ""),
    ];
    for (engine, name, failure, message) in cases {
        let g = engine
            .request_grant(&me, &run.id, ask(name, "x.read"))
            .await
            .unwrap();
        let r = engine
            .use_grant(&me, &run.id, &g.id, call("GET", "/x"))
            .await;
        match refusal(r) {
            GrantRefusal::Proxy {
                failure: f,
                provider,
                message: m,
            } => {
                assert_eq!((f, provider.as_str()), (failure, "vault"), "{name}");
                assert!(message.is_empty() || m == message, "{name}: {m}");
                assert!(!m.contains(SECRET));
            }
            other => panic!("{name}: {other:?}"),
        }
        let used = stored(&rig, &g).await;
        assert_eq!(used.status, "used");
        let last = events(&rig, &run.id, "grant.").await.pop().unwrap();
        let mut expected = receipt(&used, Some("a1"));
        expected["failure"] = json!(failure.code());
        assert_eq!(last, ("grant.use_failed".into(), expected), "{name}");
    }
    let receipts = receipts(&rig, &run.id).await;
    assert_eq!(receipts.len(), 5);
    assert!(
        receipts
            .iter()
            .all(|r| r.class.is_some() && r.grant_id.is_some())
    );
}
