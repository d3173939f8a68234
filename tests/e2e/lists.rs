//! The operator's read API: `GET /runs` with filters and cursor pages (and
//! v0.5's plain answer without parameters), and `GET /gates`, the gates
//! waiting for a person across every run.

use crate::harness::*;
use serde_json::{Value, json};
use std::collections::HashSet;

backend_tests!(
    run_pages_cover_every_run_once,
    run_filters_select_exactly_their_runs,
    bad_list_parameters_are_named,
    pending_gates_oldest_first_until_resolved
);

/// `n` runs of `workflow`, created one after another; their ids in order.
async fn create_runs(srv: &TestServer, workflow: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(id(&srv.create_run(workflow).await));
    }
    ids
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().expect("a list").iter().map(id).collect()
}

/// Every page of `GET path` (which has a query already), following
/// `nextCursor` until it is null.
async fn all_pages(srv: &TestServer, path: &str, key: &str) -> (Vec<Value>, usize) {
    let (mut rows, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&before={c}"),
            None => path.to_string(),
        };
        let (s, page) = srv.get(&url).await;
        assert_eq!(s, 200, "{url}: {page}");
        rows.extend(page[key].as_array().unwrap().iter().cloned());
        pages += 1;
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (rows, pages),
        }
    }
}

/// More runs than one page: without parameters the answer is v0.5's
/// `{"runs": [100 newest]}` and nothing else; the pages of the filtered form
/// list every run exactly once, newest first, and agree with it.
async fn run_pages_cover_every_run_once(srv: TestServer) {
    let created = create_runs(&srv, "paged", 130).await;
    let (s, plain) = srv.get("/runs").await;
    assert_eq!(s, 200);
    assert_eq!(
        plain.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["runs"],
        "no parameters, no new fields"
    );
    let newest: Vec<String> = created.iter().rev().take(100).cloned().collect();
    assert_eq!(ids(&plain["runs"]), newest);

    let (runs, pages) = all_pages(&srv, "/runs?limit=40", "runs").await;
    assert_eq!(pages, 4, "130 runs in pages of 40");
    let listed: Vec<String> = runs.iter().map(id).collect();
    let reversed: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(listed, reversed, "every run once, newest first");
    assert_eq!(
        runs[..100],
        plain["runs"].as_array().unwrap()[..],
        "the same run objects as the plain list"
    );

    // A cursor naming no run is an empty last page.
    let (s, empty) = srv.get("/runs?before=run_nosuch").await;
    assert_eq!(s, 200, "{empty}");
    assert_eq!(empty, json!({"runs": [], "nextCursor": null}));
}

/// Status, workflow, queue, id search and time bounds each select exactly
/// the runs they name; blank parameters count as absent.
async fn run_filters_select_exactly_their_runs(srv: TestServer) {
    let a = create_runs(&srv, "wf-a", 3).await;
    let b = create_runs(&srv, "wf-b", 2).await;
    let (s, q) = srv
        .post("/queues/lane/enqueue", json!({"workflowName": "wf-q"}))
        .await;
    assert_eq!(s, 200, "{q}");
    let queued = id(&q["run"]);
    let done = &a[1];
    let (s, body) = srv.begin_run(done, "w").await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = srv
        .post(&format!("/runs/{done}/complete"), json!({"result": 1}))
        .await;
    assert_eq!(s, 200, "{body}");

    let listed = |path: &'static str| {
        let srv = &srv;
        async move {
            let (s, page) = srv.get(path).await;
            assert_eq!(s, 200, "{path}: {page}");
            assert!(page["nextCursor"].is_null(), "{path}: one page");
            ids(&page["runs"]).into_iter().collect::<HashSet<_>>()
        }
    };
    let set = |ids: &[&String]| ids.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
    assert_eq!(listed("/runs?status=completed").await, set(&[done]));
    assert_eq!(listed("/runs?status=queued").await, set(&[&queued]));
    assert_eq!(
        listed("/runs?status=completed,queued").await,
        set(&[done, &queued])
    );
    assert_eq!(listed("/runs?workflow=wf-b").await, set(&[&b[0], &b[1]]));
    assert_eq!(listed("/runs?queue=lane").await, set(&[&queued]));
    assert_eq!(
        listed("/runs?workflow=wf-a&status=pending").await,
        set(&[&a[0], &a[2]])
    );
    assert_eq!(listed("/runs?status=&workflow=").await.len(), 6);

    // An id fragment, upper case or not, finds its run.
    let fragment = &b[1][10..20];
    let (s, page) = srv.get(&format!("/runs?q={fragment}")).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(ids(&page["runs"]), [b[1].clone()]);
    let (_, page) = srv
        .get(&format!("/runs?q={}", fragment.to_uppercase()))
        .await;
    assert_eq!(ids(&page["runs"]), [b[1].clone()]);
    let (_, page) = srv.get("/runs?q=%25").await;
    assert_eq!(ids(&page["runs"]), Vec::<String>::new(), "% is literal");

    // Time bounds: since is inclusive, until exclusive.
    let detail = srv.detail(&b[0]).await;
    let at = detail["run"]["createdAt"].as_str().unwrap().to_string();
    let (_, page) = srv.get(&format!("/runs?since={at}")).await;
    let since: HashSet<String> = ids(&page["runs"]).into_iter().collect();
    assert_eq!(since, set(&[&b[0], &b[1], &queued]));
    let (_, page) = srv.get(&format!("/runs?until={at}")).await;
    let until: HashSet<String> = ids(&page["runs"]).into_iter().collect();
    assert_eq!(until, set(&[&a[0], &a[1], &a[2]]));
}

/// A bad parameter is a 400 whose message names it.
async fn bad_list_parameters_are_named(srv: TestServer) {
    for (path, name) in [
        ("/runs?limit=0", "limit"),
        ("/runs?limit=201", "limit"),
        ("/runs?limit=ten", "limit"),
        ("/runs?status=done", "status"),
        ("/runs?status=completed,nope", "status"),
        ("/runs?since=yesterday", "since"),
        ("/runs?until=2026-13-01", "until"),
        ("/runs?status=failed&stauts=failed", "stauts"),
        ("/gates?status=open", "status"),
        ("/gates?limit=0", "limit"),
        ("/gates?runId=x", "runId"),
    ] {
        let (s, body) = srv.get(path).await;
        assert_eq!(s, 400, "{path}: {body}");
        let error = body["error"].as_str().expect("error text");
        assert!(error.contains(&format!("\"{name}\"")), "{path}: {error}");
    }
    // Without any of our filters, `/runs` is v0.5's: it ignores what it
    // does not know.
    let (s, body) = srv.get("/runs?stauts=failed").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "v0.5 shape: {body}");
}

/// `GET /gates` lists pending gates of every run oldest first, without
/// their tokens and with their workflow; a resolved gate leaves the pending
/// list for the resolved one, with its actor.
async fn pending_gates_oldest_first_until_resolved(srv: TestServer) {
    let workflows = ["gw-1", "gw-2", "gw-3"];
    let mut gates = Vec::new();
    for (i, workflow) in workflows.into_iter().enumerate() {
        let run = srv.running_run(workflow, "w").await;
        let (s, b) = srv
            .post(
                &format!("/runs/{run}/gates/begin"),
                json!({"name": format!("g{i}"), "prompt": format!("ok {i}?")}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        gates.push(b["gate"].clone());
    }
    let (s, page) = srv.get("/gates").await;
    assert_eq!(s, 200, "{page}");
    let listed = page["gates"].as_array().unwrap();
    assert_eq!(
        ids(&page["gates"]),
        gates.iter().map(id).collect::<Vec<_>>()
    );
    assert!(page["nextCursor"].is_null());
    for ((g, begun), workflow) in listed.iter().zip(&gates).zip(workflows) {
        assert!(g.get("resolveToken").is_none(), "no token: {g}");
        let mut expected = begun.clone();
        expected.as_object_mut().unwrap().remove("resolveToken");
        expected["workflowName"] = json!(workflow);
        assert_eq!(*g, expected);
    }
    let (paged, pages) = all_pages(&srv, "/gates?status=pending&limit=1", "gates").await;
    assert_eq!((paged.as_slice(), pages), (listed.as_slice(), 3));

    let middle = &gates[1];
    let (s, b) = srv
        .post(
            &format!(
                "/runs/{}/gates/{}/resolve",
                middle["runId"].as_str().unwrap(),
                id(middle)
            ),
            json!({"token": middle["resolveToken"], "decision": "approved", "actor": "ana"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, page) = srv.get("/gates?status=pending").await;
    assert_eq!(ids(&page["gates"]), [id(&gates[0]), id(&gates[2])]);
    let (_, page) = srv.get("/gates?status=resolved").await;
    assert_eq!(ids(&page["gates"]), [id(middle)]);
    assert_eq!(page["gates"][0]["actor"], "ana");
    assert_eq!(page["gates"][0]["status"], "approved");
    let (_, page) = srv.get("/gates?status=all").await;
    let newest_first: Vec<String> = gates.iter().rev().map(id).collect();
    assert_eq!(ids(&page["gates"]), newest_first);
}
