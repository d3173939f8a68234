//! Live state, per-stream versions, PATCH merge semantics, labels via save,
//! snapshots.

use crate::harness::*;
use serde_json::{Value, json};

/// `(version, label)` of each listed version.
fn versions_of(b: &Value) -> Vec<(i64, Option<String>)> {
    b["stateVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["label"].as_str().map(String::from),
            )
        })
        .collect()
}

backend_tests!(
    state_versions_merge_save_and_snapshots,
    patch_follows_jsonb_concatenation,
    concurrent_state_writes_each_get_a_version
);

async fn state_versions_merge_save_and_snapshots(srv: TestServer) {
    let run = srv.running_run("stateful", "w").await;
    let state = format!("/runs/{run}/state");

    // Nothing to save yet.
    let (s, e) = srv
        .post(&format!("{state}/save"), json!({"label": "early"}))
        .await;
    assert_eq!((s, e), (404, json!({"error": "run state not found"})));

    let (s, b) = srv
        .put(&state, json!({"value": {"phase": "draft", "n": 1}}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"]["runId"], run.as_str());
    assert_eq!(b["state"]["value"], json!({"phase": "draft", "n": 1}));
    assert_eq!(b["state"]["version"], 1);
    assert!(is_timestamp(&b["state"]["updatedAt"]));

    // PATCH is a shallow merge; null values are stored, not deleted.
    let (s, b) = srv
        .patch(&state, json!({"value": {"n": 2, "extra": null}}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["state"]["value"],
        json!({"phase": "draft", "n": 2, "extra": null})
    );
    assert_eq!(b["state"]["version"], 2);
    let (s, b) = srv
        .patch(&state, json!({"value": {"phase": {"nested": true}}}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        b["state"]["value"],
        json!({"phase": {"nested": true}, "n": 2, "extra": null}),
        "top-level keys replaced whole"
    );
    assert_eq!(b["state"]["version"], 3);

    // Another stream: the live state is shared, versions are numbered per stream.
    let (s, b) = srv
        .put(&state, json!({"value": {"side": true}, "stream": "side"}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        b["state"]["version"], 4,
        "live version counts writes to any stream"
    );
    assert_eq!(b["state"]["value"], json!({"side": true}));
    let (s, b) = srv
        .patch(&state, json!({"value": {"more": 1}, "stream": "side"}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["state"]["version"], 5);
    let live = b["state"].clone();
    assert_eq!(live["value"], json!({"side": true, "more": 1}));

    let (_, all) = srv.get(&format!("{state}/versions")).await;
    assert_eq!(all["stateVersions"].as_array().unwrap().len(), 5);
    let (_, run_stream) = srv.get(&format!("{state}/versions?stream=run")).await;
    let run_versions = run_stream["stateVersions"].as_array().unwrap();
    assert_eq!(
        run_versions
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(
        run_versions[0]["patch"].is_null(),
        "PUT versions have no patch"
    );
    assert_eq!(run_versions[1]["patch"], json!({"n": 2, "extra": null}));
    assert_eq!(
        run_versions[1]["value"],
        json!({"phase": "draft", "n": 2, "extra": null}),
        "versions hold the merged value"
    );
    assert_eq!(run_versions[0]["importance"], "normal");
    let (_, side_stream) = srv.get(&format!("{state}/versions?stream=side")).await;
    let side_versions = side_stream["stateVersions"].as_array().unwrap();
    assert_eq!(
        side_versions
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_ne!(side_versions[0]["streamId"], run_versions[0]["streamId"]);
    // Unfiltered: stream name ascending ("run" < "side"), then version.
    let order: Vec<(Value, i64)> = all["stateVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["streamId"].clone(), v["version"].as_i64().unwrap()))
        .collect();
    let run_sid = run_versions[0]["streamId"].clone();
    let side_sid = side_versions[0]["streamId"].clone();
    assert_eq!(
        order,
        vec![
            (run_sid.clone(), 1),
            (run_sid.clone(), 2),
            (run_sid.clone(), 3),
            (side_sid.clone(), 1),
            (side_sid, 2)
        ]
    );

    // save labels the current live value as a new version of stream `run`,
    // without touching the live state or its version.
    let (s, b) = srv
        .post(
            &format!("{state}/save"),
            json!({"label": "pre-publish", "reason": "review"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let saved = &b["stateVersion"];
    assert!(is_id(&saved["id"], "ver"));
    assert_eq!(saved["streamId"], run_sid);
    assert_eq!(saved["version"], 4);
    assert_eq!(saved["value"], live["value"], "labels the live value");
    assert!(saved["patch"].is_null());
    assert_eq!(saved["label"], "pre-publish");
    assert_eq!(saved["reason"], "review");
    assert_eq!(saved["importance"], "milestone");
    let d = srv.detail(&run).await;
    assert_eq!(
        d["state"], live,
        "save leaves live state and its version alone"
    );

    // Only labeled versions with ?labeled=true; any other value means no filter.
    let (_, labeled) = srv.get(&format!("{state}/versions?labeled=true")).await;
    assert_eq!(versions_of(&labeled), vec![(4, Some("pre-publish".into()))]);
    let (_, unfiltered) = srv.get(&format!("{state}/versions?labeled=yes")).await;
    assert_eq!(unfiltered["stateVersions"].as_array().unwrap().len(), 6);

    // Snapshots: labelled milestone versions in stream `run:<id>`.
    let (s, b) = srv
        .post(
            &format!("/runs/{run}/snapshots"),
            json!({"label": "draft-v1", "state": {"doc": 1}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["snapshot"]["version"], 1);
    assert_eq!(b["snapshot"]["value"], json!({"doc": 1}));
    assert_eq!(b["snapshot"]["importance"], "milestone");
    let (_, snap_stream) = srv.get(&format!("{state}/versions?stream=run:{run}")).await;
    assert_eq!(snap_stream["stateVersions"].as_array().unwrap().len(), 1);
    // A labeled PUT is a snapshot too.
    let (s, _) = srv
        .put(
            &state,
            json!({"value": {"final": true}, "label": "final", "importance": "checkpoint"}),
        )
        .await;
    assert_eq!(s, 200);

    let (s, b) = srv.get(&format!("/runs/{run}/snapshots")).await;
    assert_eq!(s, 200);
    let labels: Vec<&str> = b["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        vec!["final", "draft-v1", "pre-publish"],
        "labelled versions, newest first"
    );
    let d = srv.detail(&run).await;
    assert_eq!(d["state"]["value"], json!({"final": true}));
    assert_eq!(
        d["state"]["version"], 6,
        "save and snapshot do not bump the live version"
    );
    let stream_names: Vec<&str> = d["stateStreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(stream_names, vec!["run", "side", &format!("run:{run}")]);

    // Saving a stream that does not exist.
    let (s, e) = srv
        .post(
            &format!("{state}/save"),
            json!({"label": "x", "stream": "nope"}),
        )
        .await;
    assert_eq!((s, e), (404, json!({"error": "run state not found"})));
    let events = srv.events(&run).await;
    assert_gap_free(&events);
    assert_eq!(count_events(&events, "state.saved"), 1);
    assert_eq!(count_events(&events, "snapshot.created"), 1);
    assert_eq!(count_events(&events, "state.updated"), 6);
}

async fn patch_follows_jsonb_concatenation(srv: TestServer) {
    let run = srv.create_run("merge").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let state = format!("/runs/{run}/state");
    // No prior state: the patch becomes the value.
    let (_, b) = srv.patch(&state, json!({"value": {"a": 1}})).await;
    assert_eq!(b["state"]["value"], json!({"a": 1}));
    assert_eq!(b["state"]["version"], 1);
    // Object || non-object: array concatenation, wrapping non-arrays.
    let (_, b) = srv.patch(&state, json!({"value": [2, 3]})).await;
    assert_eq!(b["state"]["value"], json!([{"a": 1}, 2, 3]));
    let (_, b) = srv.patch(&state, json!({"value": "x"})).await;
    assert_eq!(b["state"]["value"], json!([{"a": 1}, 2, 3, "x"]));
    // A PUT without a value stores {}.
    let (_, b) = srv.put(&state, json!({})).await;
    assert_eq!(b["state"]["value"], json!({}));
    assert_eq!(b["state"]["version"], 4);
}

/// The `version` under `key` of every (successful) response, sorted.
fn sorted_versions(results: &[(u16, Value)], key: &str) -> Vec<i64> {
    let mut versions: Vec<i64> = results
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, 200, "{b}");
            b[key]["version"].as_i64().unwrap()
        })
        .collect();
    versions.sort_unstable();
    versions
}

async fn concurrent_state_writes_each_get_a_version(srv: TestServer) {
    // Sixteen first writes race on a run that has no state yet.
    let run = srv.create_run("contended").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let h = srv.handle();
    let path = format!("/runs/{run}/state");
    let results = concurrently(16, |i| {
        let (h, path) = (h.clone(), path.clone());
        async move {
            h.call(
                reqwest::Method::PATCH,
                &path,
                Some(json!({"value": {format!("k{i}"): i}})),
            )
            .await
        }
    })
    .await;
    assert_eq!(
        sorted_versions(&results, "state"),
        (1..=16).collect::<Vec<_>>(),
        "each write got its own live version"
    );
    let d = srv.detail(&run).await;
    assert_eq!(d["state"]["version"], 16);
    let value = d["state"]["value"].as_object().unwrap();
    assert_eq!(value.len(), 16, "no merge was lost: {value:?}");
    let stream: Vec<i64> = d["stateVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(stream, (1..=16).collect::<Vec<_>>());
    assert_gap_free(d["events"].as_array().unwrap());

    // Sixteen first snapshots race to create the stream `run:<id>`.
    let path = format!("/runs/{run}/snapshots");
    let results = concurrently(16, |i| {
        let (h, path) = (h.clone(), path.clone());
        async move {
            h.post(&path, json!({"label": format!("l{i}"), "state": {"i": i}}))
                .await
        }
    })
    .await;
    assert_eq!(
        sorted_versions(&results, "snapshot"),
        (1..=16).collect::<Vec<_>>(),
        "one stream, gap-free versions"
    );
    let d = srv.detail(&run).await;
    assert_eq!(
        d["stateStreams"].as_array().unwrap().len(),
        2,
        "streams run and run:<id>"
    );
    assert_eq!(d["stateVersions"].as_array().unwrap().len(), 32);
    assert_gap_free(d["events"].as_array().unwrap());
}
