//! Gates: idempotent begin, token-checked exactly-once resolution, polling,
//! and refusal on cancelled runs.

use crate::harness::*;
use serde_json::{Value, json};

const REFUSED: &str = "gate not found, already resolved, or invalid token";

fn is_token(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 32 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')))
}

backend_tests!(
    gate_begin_is_idempotent,
    gate_resolves_exactly_once,
    gate_begin_on_cancelled_run_is_refused
);

async fn gate_begin_is_idempotent(srv: TestServer) {
    let run = srv.running_run("gated", "w1").await;
    let path = format!("/runs/{run}/gates/begin");
    let (s, b) = srv
        .post(
            &path,
            json!({"name": "approve", "prompt": "ok?", "data": {"amt": 5}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["action"], "wait");
    let gate = b["gate"].clone();
    assert!(is_id(&gate["id"], "gate"));
    assert_eq!(gate["status"], "pending");
    assert!(
        gate["decision"].is_null()
            && gate["decisionPayload"].is_null()
            && gate["resolvedAt"].is_null()
    );
    assert_eq!(gate["data"], json!({"amt": 5}));
    assert!(
        is_token(&gate["resolveToken"]),
        "token {}",
        gate["resolveToken"]
    );
    let before = srv.detail(&run).await;
    assert_eq!(
        count_events(before["events"].as_array().unwrap(), "gate.created"),
        1
    );

    // A second begin with a different prompt returns the stored gate, writes nothing.
    let (s, b) = srv
        .post(
            &path,
            json!({"name": "approve", "prompt": "different?", "data": {"amt": 999}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["action"], "wait");
    assert_eq!(b["gate"], gate, "same gate, unchanged");
    assert_eq!(srv.detail(&run).await, before);

    // Concurrent first begins of another gate: one gate, one event.
    let h = srv.handle();
    let results = concurrently(16, |i| {
        let (h, path) = (h.clone(), path.clone());
        async move {
            h.post(&path, json!({"name": "second", "prompt": format!("p{i}")}))
                .await
        }
    })
    .await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, 200, "{b}");
            b["gate"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "concurrent begins created one gate");
    let d = srv.detail(&run).await;
    assert_eq!(d["gates"].as_array().unwrap().len(), 2);
    assert_eq!(
        count_events(d["events"].as_array().unwrap(), "gate.created"),
        2
    );
    assert_gap_free(d["events"].as_array().unwrap());
}

async fn gate_resolves_exactly_once(srv: TestServer) {
    let run = srv.running_run("gated", "w1").await;
    let (_, b) = srv
        .post(
            &format!("/runs/{run}/gates/begin"),
            json!({"name": "g", "prompt": "ok?"}),
        )
        .await;
    let gate_id = b["gate"]["id"].as_str().unwrap().to_string();
    let token = b["gate"]["resolveToken"].as_str().unwrap().to_string();
    let resolve = format!("/runs/{run}/gates/{gate_id}/resolve");

    // Poll while pending.
    let (s, p) = srv.get(&format!("/runs/{run}/gates/{gate_id}")).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["runStatus"], "running");
    assert_eq!(p["gate"]["status"], "pending");

    // The token is required.
    let before = srv.detail(&run).await;
    let (s, e) = srv
        .post(
            &resolve,
            json!({"token": "0".repeat(32), "decision": "approved"}),
        )
        .await;
    assert_eq!((s, e), (409, json!({"error": REFUSED})));
    let (s, e) = srv
        .post(
            &resolve,
            json!({"token": format!("{token}0"), "decision": "approved"}),
        )
        .await;
    assert_eq!((s, e), (409, json!({"error": REFUSED})));
    assert_eq!(
        srv.detail(&run).await,
        before,
        "refused resolutions write nothing"
    );

    // 16 concurrent, conflicting resolutions: exactly one wins.
    let decisions = ["approved", "rejected", "canceled"];
    let h = srv.handle();
    let results = concurrently(16, |i| {
        let (h, path, token) = (h.clone(), resolve.clone(), token.clone());
        let decision = decisions[i % 3];
        async move {
            let body = json!({"token": token, "decision": decision, "actor": format!("actor-{i}"), "payload": {"i": i}});
            (i, h.post(&path, body).await)
        }
    })
    .await;
    let winners: Vec<_> = results.iter().filter(|(_, (s, _))| *s == 200).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one resolution succeeds: {results:?}"
    );
    for (_, (s, b)) in &results {
        if *s != 200 {
            assert_eq!((*s, b.clone()), (409, json!({"error": REFUSED})));
        }
    }
    let (wi, (_, wb)) = winners[0];
    let decision = decisions[wi % 3];
    assert_eq!(wb["gate"]["status"], decision);
    assert_eq!(wb["gate"]["decision"], decision);
    assert_eq!(wb["gate"]["actor"], format!("actor-{wi}"));
    assert_eq!(wb["gate"]["decisionPayload"], json!({"i": wi}));
    assert!(is_timestamp(&wb["gate"]["resolvedAt"]));

    // The stored decision is the winner's, and it was recorded once.
    let (s, p) = srv.get(&format!("/runs/{run}/gates/{gate_id}")).await;
    assert_eq!(s, 200);
    assert_eq!(p["gate"], wb["gate"], "poll shows the winning resolution");
    let d = srv.detail(&run).await;
    let resolved: Vec<_> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "gate.resolved")
        .collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["payload"]["gate"]["decision"], decision);

    // Later attempts are refused; begin now replays the decision.
    let (s, _) = srv
        .post(&resolve, json!({"token": token, "decision": "approved"}))
        .await;
    assert_eq!(s, 409);
    let (s, b) = srv
        .post(
            &format!("/runs/{run}/gates/begin"),
            json!({"name": "g", "prompt": "again?"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["action"], "return");
    assert_eq!(b["gate"], wb["gate"]);
    assert_eq!(
        srv.detail(&run).await,
        d,
        "nothing written after the resolution"
    );

    // Unknown gates.
    let (s, e) = srv
        .get(&format!(
            "/runs/{run}/gates/gate_00000000000000000000000000000000"
        ))
        .await;
    assert_eq!((s, e), (404, json!({"error": "gate not found"})));
    let other = srv.create_run("other").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, e) = srv.get(&format!("/runs/{other}/gates/{gate_id}")).await;
    assert_eq!(
        (s, e),
        (404, json!({"error": "gate not found"})),
        "a gate belongs to its run"
    );
    let (s, e) = srv
        .post(
            &format!("/runs/{run}/gates/gate_00000000000000000000000000000000/resolve"),
            json!({"token": token, "decision": "approved"}),
        )
        .await;
    assert_eq!((s, e), (409, json!({"error": REFUSED})));
}

async fn gate_begin_on_cancelled_run_is_refused(srv: TestServer) {
    let run = srv.running_run("gated", "w1").await;
    let (_, b) = srv
        .post(
            &format!("/runs/{run}/gates/begin"),
            json!({"name": "g", "prompt": "ok?"}),
        )
        .await;
    let gate_id = b["gate"]["id"].as_str().unwrap().to_string();
    let (s, _) = srv
        .post(&format!("/runs/{run}/cancel"), json!({"reason": "stop"}))
        .await;
    assert_eq!(s, 200);
    let before = srv.detail(&run).await;

    let cancelled = json!({"error": "run is cancelled", "code": "run_cancelled"});
    for name in ["g", "new-gate"] {
        let (s, e) = srv
            .post(
                &format!("/runs/{run}/gates/begin"),
                json!({"name": name, "prompt": "ok?"}),
            )
            .await;
        assert_eq!((s, e), (409, cancelled.clone()), "gate {name}");
    }
    // A blocked worker learns of the cancellation by polling.
    let (s, p) = srv.get(&format!("/runs/{run}/gates/{gate_id}")).await;
    assert_eq!(s, 200);
    assert_eq!(p["runStatus"], "cancelled");
    assert_eq!(
        p["gate"]["status"], "pending",
        "gates are not auto-resolved on cancel"
    );
    assert_eq!(srv.detail(&run).await, before);
}
