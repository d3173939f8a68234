//! What the broker allows and refuses, and the receipt of each decision.

use super::upstream::{BIG, Upstream};
use super::{OWNER, allow, claimed, connect, get, in_step, receipts, refused, request, send};
use crate::rig::Rig;
use serde_json::json;
use tidebase_engine::model::RunStatus;
use tidebase_engine::{
    ActivationOutcome, DeployLimits, EgressClass, EngineError, NewResource, StepOutcome,
};

#[tokio::test]
async fn calls_outside_granted_resources_are_denied_and_audited() {
    let rig = Rig::open(None, true).await;
    let (up, other) = (Upstream::start().await, Upstream::start().await);
    let r = NewResource {
        methods: vec!["GET".into()],
        paths: vec!["/echo".into(), "/redirect".into()],
        ..resource("api", &up.base)
    };
    rig.engine.connect_resource(r).await.unwrap();
    // Connected, but not granted to this workflow.
    connect(&rig, "other", &other.base).await;
    let (run, act) = in_step(&rig, allow(&["api"])).await;

    let ok = get(&rig, &act, &format!("{}/echo?q=1", up.base))
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    let cases = [
        (
            request("GET", &format!("{}/x", other.base)),
            None,
            "no resource granted",
        ),
        (
            request("POST", &format!("{}/echo", up.base)),
            Some("api"),
            "allows GET, not POST",
        ),
        (
            request("GET", &format!("{}/admin", up.base)),
            Some("api"),
            "outside resource api's paths",
        ),
        (
            request("GET", &format!("{}/echo/../admin", up.base)),
            Some("api"),
            "outside",
        ),
        (request("GET", "not a url"), None, "invalid URL"),
    ];
    for (req, resource, why) in cases {
        let refusal = refused(send(&rig, &act, req).await);
        assert_eq!(refusal.class, EgressClass::Denied);
        assert!(refusal.reason.contains(why), "{why}: {}", refusal.reason);
        let last = receipts(&rig, &run.id).await.pop().unwrap();
        assert_eq!(last.resource.as_deref(), resource);
        assert_eq!(last.reason.as_deref(), Some(refusal.reason.as_str()));
    }
    assert_eq!(up.hits("/admin").len(), 0);

    // A redirect goes back to the guest as it is; following it is a new
    // request, decided anew.
    let target = format!("{}/landing", other.base);
    let url = format!("{}/redirect?to={target}", up.base);
    let redirect = get(&rig, &act, &url).await.unwrap();
    assert_eq!(redirect.status, 302);
    let location = redirect
        .headers
        .iter()
        .find(|(n, _)| n == "location")
        .unwrap();
    assert_eq!(location.1, target.as_bytes());
    let refusal = refused(get(&rig, &act, &target).await);
    assert!(
        refusal.reason.contains("no resource granted"),
        "{}",
        refusal.reason
    );
    assert_eq!(other.total(), 0, "the other host was never reached");

    let all = receipts(&rig, &run.id).await;
    let decisions: Vec<_> = all.iter().map(|r| r.decision.as_str()).collect();
    let expected = [
        "allowed", "denied", "denied", "denied", "denied", "denied", "allowed", "denied",
    ];
    assert_eq!(decisions, expected);
    let first = &all[0];
    assert_eq!(
        (
            first.step.as_deref(),
            first.attempt,
            first.resource.as_deref()
        ),
        (Some("fetch"), Some(1), Some("api"))
    );
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("GET", "/echo")
    );
    assert_eq!(first.host, up.base.trim_start_matches("http://"));
    assert_eq!(
        (first.status, first.bytes > 0, first.class.as_deref()),
        (Some(200), true, None)
    );
    assert!(
        all[1..6]
            .iter()
            .all(|r| r.class.as_deref() == Some("egress_denied"))
    );
    assert!(all[1..6].iter().all(|r| r.status.is_none() && r.bytes == 0));
}

fn resource(name: &str, base_url: &str) -> NewResource {
    NewResource {
        name: name.into(),
        base_url: Some(base_url.into()),
        methods: vec![],
        paths: vec![],
        secret: None,
        injection: Default::default(),
        ..NewResource::default()
    }
}

#[tokio::test]
async fn internal_addresses_are_refused_without_the_flag() {
    let rig = Rig::new().await;
    let up = Upstream::start().await;
    let port = up.base.rsplit(':').next().unwrap();
    let targets = [
        ("loopback", up.base.clone(), "loopback"),
        (
            "mapped",
            format!("http://[::ffff:127.0.0.1]:{port}"),
            "IPv4-mapped",
        ),
        ("named", format!("http://localhost:{port}"), "loopback"),
        ("private", "http://10.0.0.1".into(), "private"),
        ("metadata", "http://169.254.169.254".into(), "link-local"),
    ];
    let names: Vec<&str> = targets.iter().map(|t| t.0).collect();
    for (name, base, _) in &targets {
        rig.engine
            .connect_resource(resource(name, base))
            .await
            .unwrap();
    }
    let (run, act) = in_step(&rig, allow(&names)).await;
    // Refused before any connection: the address is vetted first.
    for (name, base, why) in &targets {
        let refusal = refused(get(&rig, &act, &format!("{base}/latest/meta-data")).await);
        assert_eq!(refusal.class, EgressClass::Denied, "{name}");
        assert!(refusal.reason.contains(why), "{name}: {}", refusal.reason);
    }
    assert_eq!(up.total(), 0);
    let all = receipts(&rig, &run.id).await;
    assert_eq!(all.len(), targets.len());
    assert!(
        all.iter()
            .all(|r| r.decision == "denied" && r.resource.is_some())
    );
}

#[tokio::test]
async fn slow_and_oversized_answers_fail_with_their_class() {
    let rig = Rig::open(None, true).await;
    let up = Upstream::start().await;
    rig.engine
        .connect_resource(resource("api", &up.base))
        .await
        .unwrap();
    let limits = DeployLimits {
        egress_timeout_ms: Some(300),
        egress_max_bytes: Some(1024),
        ..allow(&["api"])
    };
    let (run, act) = in_step(&rig, limits).await;

    let timeout = refused(get(&rig, &act, &format!("{}/hang", up.base)).await);
    assert_eq!(timeout.class, EgressClass::Timeout);
    assert!(timeout.reason.contains("300 ms"), "{}", timeout.reason);
    for path in ["/big", "/stream"] {
        let too_large = refused(get(&rig, &act, &format!("{}{path}", up.base)).await);
        assert_eq!(too_large.class, EgressClass::TooLarge, "{path}");
        assert!(
            too_large.reason.contains("1024 bytes"),
            "{}",
            too_large.reason
        );
    }
    let all = receipts(&rig, &run.id).await;
    let classes: Vec<_> = all.iter().map(|r| r.class.as_deref().unwrap()).collect();
    assert_eq!(
        classes,
        ["egress_timeout", "egress_too_large", "egress_too_large"]
    );
    // The call was allowed; it failed on the way.
    assert!(all.iter().all(|r| r.decision == "allowed"));
    assert!(all[0].duration_ms >= 300);
    assert_eq!(all[2].status, Some(200));
    assert!(
        all[2].bytes > 1024 && all[2].bytes < BIG as i64,
        "cut off early"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_its_own_class() {
    let rig = Rig::open(None, true).await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    rig.engine
        .connect_resource(resource("gone", &base))
        .await
        .unwrap();
    let (_, act) = in_step(&rig, allow(&["gone"])).await;
    let refusal = refused(get(&rig, &act, &format!("{base}/x")).await);
    assert_eq!(refusal.class, EgressClass::Unreachable);
    assert_eq!(refusal.class.as_str(), "egress_unreachable");
}

#[tokio::test]
async fn a_revoked_resource_denies_new_calls() {
    let rig = Rig::open(None, true).await;
    let up = Upstream::start().await;
    connect(&rig, "api", &up.base).await;
    let (run, act) = in_step(&rig, allow(&["api"])).await;
    get(&rig, &act, &format!("{}/echo", up.base)).await.unwrap();

    let revoked = rig.engine.revoke_resource("api").await.unwrap();
    assert_eq!(
        (revoked.status.as_str(), revoked.has_secret),
        ("revoked", false)
    );
    assert!(revoked.revoked_at.is_some());
    let refusal = refused(get(&rig, &act, &format!("{}/echo", up.base)).await);
    assert_eq!(refusal.reason, "resource api is revoked");
    assert_eq!(up.hits("/echo").len(), 1);
    let last = receipts(&rig, &run.id).await.pop().unwrap();
    assert_eq!(
        (last.decision.as_str(), last.resource.as_deref()),
        ("denied", Some("api"))
    );
    assert!(matches!(
        rig.engine.revoke_resource("nope").await,
        Err(EngineError::NotFound(tidebase_engine::Entity::Resource))
    ));
}

#[tokio::test]
async fn calls_outside_step_code_are_refused() {
    let rig = Rig::open(None, true).await;
    let up = Upstream::start().await;
    connect(&rig, "api", &up.base).await;
    let (run, mut act) = claimed(&rig, allow(&["api"])).await;
    let outside = |act: &tidebase_engine::Activation| match act.egress_caller() {
        Err(EngineError::EgressRefused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let refusal = outside(&act);
    assert_eq!(refusal.class, EgressClass::OutsideStep);
    assert_eq!(refusal.class.as_str(), "egress_denied");
    assert!(
        refusal.reason.contains("deterministic"),
        "{}",
        refusal.reason
    );

    // Inside a step it works; once the step is checkpointed it is refused again.
    let step_id = match act
        .begin_step("fetch".into(), json!({}), None)
        .await
        .unwrap()
    {
        tidebase_engine::Begun::Execute(id) => id,
        _ => panic!("expected execute"),
    };
    get(&rig, &act, &format!("{}/echo", up.base)).await.unwrap();
    let attempt = act.take_attempt(&step_id).unwrap();
    act.end_attempt(attempt, StepOutcome::Completed(json!(1)))
        .await
        .unwrap();
    outside(&act);
    assert_eq!(receipts(&rig, &run.id).await.len(), 1);
}

#[tokio::test]
async fn a_step_and_run_failing_from_a_refusal_name_its_class() {
    let rig = Rig::open(None, true).await;
    let up = Upstream::start().await;
    connect(&rig, "api", &up.base).await;
    let (run, mut act) = claimed(&rig, allow(&["api"])).await;
    let step_id = match act
        .begin_step("fetch".into(), json!({}), None)
        .await
        .unwrap()
    {
        tidebase_engine::Begun::Execute(id) => id,
        _ => panic!("expected execute"),
    };
    let refusal = refused(get(&rig, &act, "http://127.0.0.2:1/elsewhere").await);

    // The guest fails the step with the refusal and passes it on.
    let error = json!({"name": "EgressDenied", "message": refusal.reason});
    let attempt = act.take_attempt(&step_id).unwrap();
    let failed = StepOutcome::Failed {
        error: error.clone(),
        retryable: false,
    };
    let step = act.end_attempt(attempt, failed).await.unwrap();
    assert_eq!(step.error.as_ref().unwrap()["class"], "egress_denied");
    let outcome = ActivationOutcome::Failed {
        error,
        class: "workflow_error",
    };
    rig.engine
        .record_outcome(&run.id, OWNER, outcome.into())
        .await
        .unwrap();
    let run = rig.engine.get_run(&run.id).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.failure_class.as_deref(), Some("egress_denied"));
}

#[tokio::test]
async fn a_caller_whose_lease_was_taken_over_is_fenced_out() {
    let rig = Rig::open(None, true).await;
    let up = Upstream::start().await;
    connect(&rig, "api", &up.base).await;
    let (run, act) = in_step(&rig, allow(&["api"])).await;
    let caller = act.egress_caller().unwrap();
    rig.engine.release_lease(&run.id).await.unwrap();
    let r = rig
        .engine
        .egress(caller, request("GET", &format!("{}/echo", up.base)))
        .await;
    assert!(matches!(r, Err(EngineError::LeaseLost(_))), "{r:?}");
    assert_eq!(up.total(), 0);
}
