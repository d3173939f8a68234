//! Which deployment a claimed run executes under: the latest version of
//! its workflow with its pinned digest, read afresh for every claim.

use crate::rig::Rig;
use serde_json::json;
use tidebase_engine::model::Run;
use tidebase_engine::{DeployLimits, EngineError, NewRun};

fn cpu_ms(ms: i64) -> DeployLimits {
    DeployLimits {
        cpu_limit_ms: Some(ms),
        ..DeployLimits::default()
    }
}

async fn start(rig: &Rig, workflow: &str) -> Run {
    rig.engine
        .create_run(NewRun::named(workflow, json!({})))
        .await
        .unwrap()
}

#[tokio::test]
async fn each_run_of_a_claim_gets_its_own_deployment_and_the_latest_limits() {
    let rig = Rig::new().await;
    let e = &rig.engine;
    let alpha = e.deploy("alpha", b"one", cpu_ms(100)).await.unwrap();
    let early = start(&rig, "alpha").await;
    let beta = e.deploy("beta", b"two", cpu_ms(200)).await.unwrap();
    let other = start(&rig, "beta").await;
    // The same bytes with new limits: a new version of the same digest.
    let alpha2 = e.deploy("alpha", b"one", cpu_ms(300)).await.unwrap();
    assert_eq!(
        (alpha2.digest.as_str(), alpha2.version),
        (alpha.digest.as_str(), 2)
    );
    let late = start(&rig, "alpha").await;
    let sdk_run = rig.run().await; // pinned to nothing

    let found = e
        .deployments_of(&[&early, &other, &late, &sdk_run])
        .await
        .unwrap();
    let ids: Vec<_> = found
        .iter()
        .map(|d| d.as_ref().ok().map(|d| d.id.clone()))
        .collect();
    assert_eq!(
        ids,
        [
            Some(alpha2.id.clone()),
            Some(beta.id),
            Some(alpha2.id),
            None
        ],
        "a run started before the redeploy of its bytes executes under the new limits"
    );
    assert!(matches!(found[3], Err(EngineError::NotFound(_))));

    // Nothing is kept between claims: the next one sees the next redeploy.
    let alpha3 = e.deploy("alpha", b"one", cpu_ms(400)).await.unwrap();
    let found = e.deployments_of(&[&early, &late]).await.unwrap();
    for d in found {
        assert_eq!(d.unwrap().cpu_limit_ms, alpha3.cpu_limit_ms);
    }
}
