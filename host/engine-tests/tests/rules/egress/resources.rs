//! Connecting and revoking resources, granting them on deploy, and reading
//! the audit trail.

use super::upstream::Upstream;
use super::{SECRET, allow, connect, get, in_step, refused};
use crate::rig::Rig;
use serde_json::json;
use tidebase_engine::broker::GrantRefusal;
use tidebase_engine::config::Settings;
use tidebase_engine::{AuditQuery, DeployLimits, Engine, EngineError, Injection, NewResource};

fn new(name: &str, base_url: &str) -> NewResource {
    NewResource {
        name: name.into(),
        base_url: Some(base_url.into()),
        methods: vec![],
        paths: vec![],
        secret: None,
        injection: Injection::default(),
        ..NewResource::default()
    }
}

#[tokio::test]
async fn connecting_is_an_upsert_by_name_that_checks_its_input() {
    let rig = Rig::new().await;
    let first = NewResource {
        methods: vec!["get".into(), "POST".into(), "GET".into()],
        paths: vec!["/repos".into()],
        ..new("gh", "https://API.example/v3")
    };
    let first = rig.engine.connect_resource(first).await.unwrap();
    assert_eq!(first.base_url.as_deref(), Some("https://api.example/v3"));
    assert_eq!(first.methods, ["GET", "POST"]);
    assert_eq!(
        (first.has_secret, first.injection.clone()),
        (false, json!(null))
    );
    let again = NewResource {
        secret: Some(SECRET.into()),
        injection: Injection::Header {
            name: "X-Api-Key".into(),
            format: "{secret}".into(),
        },
        ..new("gh", "https://api.example/v4")
    };
    let again = rig.engine.connect_resource(again).await.unwrap();
    assert_eq!(
        (&again.id, &again.created_at),
        (&first.id, &first.created_at)
    );
    assert_eq!(
        again.injection,
        json!({"header": "x-api-key", "format": "{secret}"})
    );
    assert!(again.has_secret && again.methods.is_empty());
    assert_eq!(rig.engine.resources().await.unwrap(), [again]);

    let secret = |injection| NewResource {
        secret: Some(SECRET.into()),
        injection,
        ..new("bad", "https://api.example")
    };
    let header = |name: &str, format: &str| Injection::Header {
        name: name.into(),
        format: format.into(),
    };
    for bad in [
        new("", "https://api.example"),
        new("bad", "ftp://api.example"),
        new("bad", "https://user:pw@api.example"),
        new("bad", "https://api.example/?q=1"),
        NewResource {
            methods: vec!["G T".into()],
            ..new("bad", "https://api.example")
        },
        NewResource {
            paths: vec!["repos".into()],
            ..new("bad", "https://api.example")
        },
        secret(header("host", "{secret}")),
        secret(header("x-key", "no placeholder")),
        secret(Injection::Query { param: "".into() }),
        NewResource {
            secret: Some("line\nbreak".into()),
            ..new("bad", "https://api.example")
        },
    ] {
        let why = format!("{bad:?}");
        let r = rig.engine.connect_resource(bad).await;
        assert!(
            matches!(
                r,
                Err(EngineError::BadRequest(_)
                    | EngineError::Invalid(_)
                    | EngineError::Grant(GrantRefusal::BadSecret(_)))
            ),
            "{why}: {r:?}"
        );
    }
}

#[tokio::test]
async fn without_a_vault_no_secret_can_be_stored() {
    let rig = Rig::new().await;
    let clock = tidebase_engine::clock::system();
    let bare = Engine::new(rig.engine.store().clone(), clock, Settings::default());
    let with_secret = NewResource {
        secret: Some(SECRET.into()),
        ..new("api", "https://api.example")
    };
    let r = bare.connect_resource(with_secret).await;
    assert!(
        matches!(r, Err(EngineError::Grant(GrantRefusal::CustodyUnavailable))),
        "{r:?}"
    );
    assert!(
        bare.connect_resource(new("api", "https://api.example"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn deploys_grant_existing_resources_only() {
    let rig = Rig::new().await;
    let r = rig.engine.deploy("wf", b"c", allow(&["missing"])).await;
    match r {
        Err(EngineError::BadRequest(why)) => assert!(why.contains("\"missing\""), "{why}"),
        other => panic!("expected a bad request, got {other:?}"),
    }
    rig.engine
        .connect_resource(new("a", "https://a.example"))
        .await
        .unwrap();
    rig.engine
        .connect_resource(new("b", "https://b.example"))
        .await
        .unwrap();
    let first = rig
        .engine
        .deploy("wf", b"c", allow(&["b", "a"]))
        .await
        .unwrap();
    assert_eq!(json!(first)["allow"], json!(["a", "b"]));
    let same = rig
        .engine
        .deploy("wf", b"c", allow(&["a", "b", "a"]))
        .await
        .unwrap();
    assert_eq!(same.id, first.id, "the same grants are no new version");
    let limits = DeployLimits {
        egress_timeout_ms: Some(5_000),
        ..allow(&["a", "b"])
    };
    let next = rig.engine.deploy("wf", b"c", limits).await.unwrap();
    assert_eq!((next.version, next.egress_timeout_ms), (2, Some(5_000)));
    let out_of_range = DeployLimits {
        egress_max_bytes: Some(0),
        ..DeployLimits::default()
    };
    let r = rig.engine.deploy("wf", b"c", out_of_range).await;
    assert!(matches!(r, Err(EngineError::Invalid(_))), "{r:?}");
}

#[tokio::test]
async fn the_audit_trail_pages_newest_first_and_filters() {
    let rig = Rig::open(None, true).await;
    let up = Upstream::start().await;
    connect(&rig, "api", &up.base).await;
    let (run, act) = in_step(&rig, allow(&["api"])).await;
    for path in ["/a", "/b", "/c"] {
        get(&rig, &act, &format!("{}{path}", up.base))
            .await
            .unwrap();
    }
    refused(get(&rig, &act, "https://elsewhere.example/d").await);
    let page = |q: AuditQuery| rig.engine.audit(q);

    let first = page(AuditQuery {
        limit: 3,
        ..AuditQuery::default()
    })
    .await
    .unwrap();
    let paths: Vec<_> = first.receipts.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/d", "/c", "/b"]);
    let second = page(AuditQuery {
        limit: 3,
        before: first.next_cursor.clone(),
        ..AuditQuery::default()
    })
    .await
    .unwrap();
    let paths: Vec<_> = second.receipts.iter().map(|r| r.path.as_str()).collect();
    assert_eq!((paths, second.next_cursor), (vec!["/a"], None));
    assert_eq!(json!(first)["nextCursor"], json!(first.receipts[2].id));

    let denied = page(AuditQuery {
        decision: Some("denied".into()),
        ..AuditQuery::default()
    })
    .await
    .unwrap();
    assert_eq!(denied.receipts.len(), 1);
    assert_eq!(denied.receipts[0].host, "elsewhere.example");
    let by_resource = AuditQuery {
        resource: Some("api".into()),
        run_id: Some(run.id.clone()),
        ..AuditQuery::default()
    };
    assert_eq!(page(by_resource).await.unwrap().receipts.len(), 3);
    let other_run = AuditQuery {
        run_id: Some("run_none".into()),
        ..AuditQuery::default()
    };
    assert!(page(other_run).await.unwrap().receipts.is_empty());
    for bad in [
        AuditQuery {
            limit: 0,
            ..AuditQuery::default()
        },
        AuditQuery {
            limit: 501,
            ..AuditQuery::default()
        },
        AuditQuery {
            decision: Some("maybe".into()),
            ..AuditQuery::default()
        },
    ] {
        assert!(page(bad).await.is_err());
    }
}
