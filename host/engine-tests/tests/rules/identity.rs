//! The broker's identity rules at their boundaries (broker.md §1.3, §4):
//! rate windows, challenge and session expiry, single use of challenges,
//! and the reconciler's housekeeping of the abuse stores.

use crate::rig::{Rig, T0};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;
use tidebase_engine::EngineError;
use tidebase_engine::broker::{AuthRefusal, NewAgent, Proof, RateClass};
use tidebase_engine::clock::Micros;
use tidebase_engine::config::{IdentitySettings, Settings};

const MINUTE: Micros = 60_000_000;

async fn rig() -> Rig {
    let settings = Settings {
        api_key: Some("admin-key".into()),
        identity: IdentitySettings {
            prove_rate: 3,
            ..IdentitySettings::default()
        },
        ..Settings::default()
    };
    Rig::with_settings(None, settings).await
}

fn refusal(r: Result<impl std::fmt::Debug, EngineError>) -> AuthRefusal {
    match r {
        Err(EngineError::Auth(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn keypair_agent(rig: &Rig) -> (String, SigningKey) {
    let key = SigningKey::from_bytes(&[3; 32]);
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let agent = NewAgent {
        name: "signer".into(),
        principal: None,
        identity_kind: "keypair".into(),
        public_key: Some(pem),
        metadata: json!({}),
    };
    let agent = rig.engine.register_agent(agent).await.unwrap();
    (agent.agent_id, key)
}

fn proof(key: &SigningKey, challenge: &str) -> Proof {
    Proof {
        challenge: Some(challenge.into()),
        signature: Some(STANDARD.encode(key.sign(challenge.as_bytes()).to_bytes())),
        token: None,
    }
}

/// Count up to the limit of 3 for `subject`, then one refused request.
async fn exhaust(rig: &Rig, subject: &str) {
    for _ in 0..3 {
        let counted = rig.engine.count_request(RateClass::Proof, subject).await;
        counted.unwrap();
    }
    let over = rig.engine.count_request(RateClass::Proof, subject).await;
    assert_eq!(refusal(over), AuthRefusal::RateLimited(RateClass::Proof));
}

#[tokio::test]
async fn a_rate_window_is_one_epoch_aligned_minute() {
    let rig = rig().await;
    let window = (T0 / MINUTE + 1) * MINUTE;
    rig.set(window - 1);
    exhaust(&rig, "a").await;
    let other = rig.engine.count_request(RateClass::Proof, "b").await;
    other.unwrap();
    let grants = rig.engine.count_request(RateClass::Grant, "a").await;
    grants.unwrap();
    rig.set(window);
    exhaust(&rig, "a").await;
}

#[tokio::test]
async fn a_challenge_lives_until_the_millisecond_of_its_expiry() {
    let rig = rig().await;
    let (agent, key) = keypair_agent(&rig).await;
    let early = rig.engine.issue_challenge(&agent).await.unwrap();
    let late = rig.engine.issue_challenge(&agent).await.unwrap();
    rig.advance(MINUTE - 1_000);
    rig.engine
        .prove(&agent, proof(&key, &early.challenge))
        .await
        .unwrap();
    rig.advance(1_000);
    let expired = rig.engine.prove(&agent, proof(&key, &late.challenge)).await;
    assert_eq!(refusal(expired), AuthRefusal::BadChallenge);
}

#[tokio::test]
async fn a_session_ends_at_its_expiry() {
    let rig = rig().await;
    let (agent, key) = keypair_agent(&rig).await;
    let c = rig.engine.issue_challenge(&agent).await.unwrap();
    let granted = rig
        .engine
        .prove(&agent, proof(&key, &c.challenge))
        .await
        .unwrap();
    rig.advance(15 * MINUTE - 1);
    let live = rig.engine.session(&granted.session_token).await.unwrap();
    assert_eq!(live.map(|s| s.agent_id), Some(agent.clone()));
    rig.advance(1);
    assert_eq!(
        rig.engine.session(&granted.session_token).await.unwrap(),
        None
    );
    assert_eq!(rig.engine.session("tdb_ags_unknown").await.unwrap(), None);
}

/// Spent challenges are kept 90 s, past the 60 s a challenge lives, and
/// the reconciler forgets them after that, as it forgets rate windows
/// older than an hour.
#[tokio::test]
async fn the_reconciler_forgets_spent_challenges_and_old_windows() {
    let rig = rig().await;
    let mut tx = rig.engine.store().write().await.unwrap();
    assert!(tx.consume_challenge("h", T0 + 90_000_000).await.unwrap());
    assert!(!tx.consume_challenge("h", T0 + 90_000_000).await.unwrap());
    assert_eq!(tx.count_request("prove:a", T0).await.unwrap(), 1);
    assert_eq!(tx.count_request("prove:a", T0).await.unwrap(), 2);
    tx.commit().await.unwrap();

    rig.set(T0 + 90_000_000);
    rig.engine.reconcile_once().await.unwrap();
    let mut tx = rig.engine.store().write().await.unwrap();
    assert!(
        !tx.consume_challenge("h", T0).await.unwrap(),
        "kept until it expires"
    );
    assert_eq!(tx.count_request("prove:a", T0).await.unwrap(), 3);
    tx.commit().await.unwrap();

    rig.set(T0 + 60 * MINUTE + 1);
    rig.engine.reconcile_once().await.unwrap();
    let mut tx = rig.engine.store().write().await.unwrap();
    assert!(tx.consume_challenge("h", T0).await.unwrap(), "forgotten");
    assert_eq!(
        tx.count_request("prove:a", T0).await.unwrap(),
        1,
        "forgotten"
    );
    tx.commit().await.unwrap();
}
