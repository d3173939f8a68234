//! Child runs: idempotent by `(parent, edge name)`, even under concurrency.

use crate::harness::*;
use serde_json::json;
use std::collections::HashSet;

backend_tests!(child_creation_is_idempotent_by_edge_name);

async fn child_creation_is_idempotent_by_edge_name(srv: TestServer) {
    let parent = srv.running_run("parent", "w1").await;
    let path = format!("/runs/{parent}/children");
    let h = srv.handle();
    let results = concurrently(16, |i| {
        let (h, path) = (h.clone(), path.clone());
        async move {
            let body = json!({
                "name": "shard-1", "workflowName": "child-wf", "input": {"s": i},
                "metadata": {"x": 1, "parentRunId": "spoofed"},
                "edgeType": "fanout", "edgeMetadata": {"fanout": "f"},
            });
            (i, h.post(&path, body).await)
        }
    })
    .await;
    for (_, (s, b)) in &results {
        assert_eq!(*s, 200, "{b}");
    }
    let child_ids: HashSet<&str> = results
        .iter()
        .map(|(_, (_, b))| b["run"]["id"].as_str().unwrap())
        .collect();
    let edge_ids: HashSet<&str> = results
        .iter()
        .map(|(_, (_, b))| b["edge"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(child_ids.len(), 1, "one child run: {child_ids:?}");
    assert_eq!(edge_ids.len(), 1, "one edge");
    let created: Vec<_> = results
        .iter()
        .filter(|(_, (_, b))| b["created"] == true)
        .collect();
    assert_eq!(created.len(), 1, "exactly one created:true");
    assert!(results.iter().all(|(_, (_, b))| b["created"].is_boolean()));
    let (winner, (_, wb)) = created[0];

    let child = &wb["run"];
    let child_id = child["id"].as_str().unwrap();
    assert!(is_id(&child["id"], "run"));
    assert_ne!(child_id, parent);
    assert_eq!(child["status"], "pending");
    assert_eq!(child["workflowName"], "child-wf");
    assert_eq!(
        child["input"],
        json!({"s": winner}),
        "the creating call's input"
    );
    assert_eq!(
        child["metadata"],
        json!({"x": 1, "parentRunId": parent, "parentEdgeName": "shard-1"})
    );
    let edge = &wb["edge"];
    assert!(is_id(&edge["id"], "edge"));
    assert_eq!(edge["parentRunId"], parent.as_str());
    assert_eq!(edge["childRunId"], child_id);
    assert_eq!(edge["name"], "shard-1");
    assert_eq!(edge["edgeType"], "fanout");
    assert_eq!(edge["metadata"], json!({"fanout": "f"}));

    // The parent records the creation once.
    let d = srv.detail(&parent).await;
    let events = d["events"].as_array().unwrap();
    assert_gap_free(events);
    let child_events: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "run.child.created")
        .collect();
    assert_eq!(child_events.len(), 1);
    assert_eq!(child_events[0]["payload"]["childRun"]["id"], child_id);
    assert_eq!(child_events[0]["payload"]["edge"]["id"], edge["id"]);
    assert_eq!(d["runEdges"].as_array().unwrap().len(), 1);
    assert_eq!(d["childRuns"][0]["id"], child_id);

    // The child has its own log, starting with run.created.
    let cd = srv.detail(child_id).await;
    let cev = cd["events"].as_array().unwrap();
    assert_eq!(cev.len(), 1);
    assert_eq!(cev[0]["type"], "run.created");
    assert_eq!(cev[0]["payload"]["parentRunId"], parent.as_str());
    assert_eq!(cev[0]["payload"]["edgeName"], "shard-1");

    // A later call with a different body returns the same child unchanged.
    let (s, b) = srv
        .post(
            &path,
            json!({"name": "shard-1", "workflowName": "other", "input": 7}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["created"], false);
    assert_eq!(b["run"]["id"], child_id);
    assert_eq!(b["run"]["workflowName"], "child-wf");
    assert_eq!(srv.detail(&parent).await, d, "repeat call wrote nothing");

    // Another edge name is another child, with the default edge type.
    let (s, b) = srv
        .post(
            &path,
            json!({"name": "shard-2", "workflowName": "child-wf"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["created"], true);
    assert_ne!(b["run"]["id"], child_id);
    assert_eq!(b["edge"]["edgeType"], "child");
    assert_eq!(b["edge"]["metadata"], json!({}));

    // Unknown parent.
    let (s, e) = srv
        .post(
            "/runs/run_00000000000000000000000000000000/children",
            json!({"name": "x", "workflowName": "w"}),
        )
        .await;
    assert_eq!((s, e), (404, json!({"error": "parent run not found"})));
}
