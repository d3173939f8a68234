//! `GET /metrics`: Prometheus text that a strict parser accepts, whose
//! counters and gauges follow runs as they complete, and which is behind
//! the API key like the rest of the API.

use crate::harness::{Opts, TestServer};
use crate::wasm::{deploy, resolve, start, wait_status, wait_suspended_at_gate};
use reqwest::Method;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

type Labels = Vec<(String, String)>;

/// One scrape, checked line by line against the text exposition format.
struct Scrape {
    samples: BTreeMap<(String, Labels), f64>,
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `a="x",b="y\"z"` → labels, with the format's escapes undone.
fn parse_labels(text: &str) -> Labels {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect("label is name=\"value\"");
        assert!(
            is_metric_name(name) && !name.contains(':'),
            "bad label name {name:?}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("unterminated label value") {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect("dangling escape").1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => panic!("bad escape \\{c}"),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    labels.sort();
    labels
}

fn parse_value(text: &str) -> f64 {
    match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad sample value {v:?}")),
    }
}

fn parse(text: &str) -> Scrape {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(is_metric_name(name), "bad metric name {name:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad type {kind:?}"
            );
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "{name} typed twice"
            );
            continue;
        }
        if line.starts_with('#') {
            continue; // HELP or comment
        }
        let (series, value) = line.rsplit_once(' ').expect("sample is `series value`");
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (
                name,
                parse_labels(labels.strip_suffix('}').expect("closing }")),
            ),
            None => (series, Vec::new()),
        };
        assert!(is_metric_name(name), "bad metric name {name:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        let kind = types
            .get(family)
            .unwrap_or_else(|| panic!("{name} sampled before its # TYPE"));
        let value = parse_value(value);
        if kind == "counter" {
            assert!(value >= 0.0 && value.is_finite(), "{name} = {value}");
        }
        if name.ends_with("_bucket") && kind == "histogram" {
            assert!(
                labels.iter().any(|(k, _)| k == "le"),
                "{name} bucket without le"
            );
        }
        assert!(
            samples.insert((name.to_string(), labels), value).is_none(),
            "{series} twice"
        );
    }
    let scrape = Scrape { samples };
    scrape.check_histograms(&types);
    scrape
}

impl Scrape {
    /// Buckets grow with `le`, and the `+Inf` bucket is the count.
    fn check_histograms(&self, types: &HashMap<String, String>) {
        for (family, _) in types.iter().filter(|(_, t)| *t == "histogram") {
            let mut series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
            for ((name, labels), v) in &self.samples {
                if *name != format!("{family}_bucket") {
                    continue;
                }
                let le = labels
                    .iter()
                    .find(|(k, _)| k == "le")
                    .map(|(_, v)| parse_value(v))
                    .unwrap();
                let rest: Labels = labels.iter().filter(|(k, _)| k != "le").cloned().collect();
                series.entry(rest).or_default().push((le, *v));
            }
            for (labels, mut buckets) in series {
                buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                assert!(
                    buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                    "{family}{labels:?} buckets shrink"
                );
                let count = self.samples[&(format!("{family}_count"), labels.clone())];
                assert_eq!(
                    buckets.last().map(|b| (b.0, b.1)),
                    Some((f64::INFINITY, count)),
                    "{family}{labels:?}"
                );
            }
        }
    }

    /// The sum of `name` over every series whose labels include `having`.
    fn total(&self, name: &str, having: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|((n, labels), _)| {
                n == name
                    && having
                        .iter()
                        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

async fn scrape(srv: &TestServer) -> Scrape {
    let r = TestServer::send(srv.request(Method::GET, "/metrics")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    parse(&r.text)
}

/// An SDK-style run over HTTP: begin, one step, complete.
async fn sdk_run(srv: &TestServer, workflow: &str, channel: &str) {
    let body =
        json!({"channels": [{"type": "webhook", "url": channel, "events": ["run.completed"]}]});
    let (_, created) = srv.post(&format!("/runs/{workflow}"), body).await;
    let run = created["run"]["id"].as_str().unwrap().to_string();
    srv.begin_run(&run, "w").await;
    let begun = srv
        .step_begin(
            &run,
            json!({"name": "s", "inputHash": "h", "leaseOwner": "w"}),
        )
        .await;
    let step = begun["step"]["id"].as_str().unwrap();
    let path = format!("/runs/{run}/steps/{step}/complete");
    assert_eq!(
        srv.post(&path, json!({"leaseOwner": "w", "output": 1}))
            .await
            .0,
        200
    );
    let (status, done) = srv
        .post(&format!("/runs/{run}/complete"), json!({"result": 2}))
        .await;
    assert_eq!(status, 200, "{done}");
}

backend_tests! {
    async fn metrics_follow_runs(srv: TestServer = Opts::wasm()) {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let (wasm, sdk, queue) = (format!("m-wasm-{tag}"), format!("m-sdk-{tag}"), format!("m-q-{tag}"));
        let before = scrape(&srv).await;

        deploy(&srv, &wasm, tidebase_fixtures::REPORT, "").await;
        let runs = [start(&srv, &wasm, json!({"topic": "a"})).await, start(&srv, &wasm, json!({"topic": "b"})).await];
        for run in &runs {
            let gate = wait_suspended_at_gate(&srv, run).await;
            assert_eq!(resolve(&srv, run, &gate, "approved").await.0, 200);
        }
        for run in &runs {
            wait_status(&srv, run, "completed").await;
        }
        // Port 9 on loopback refuses: the channel webhook is unreachable.
        sdk_run(&srv, &sdk, "http://127.0.0.1:9/hook").await;
        for _ in 0..3 {
            let (status, body) = srv.post(&format!("/queues/{queue}/enqueue"), json!({"workflowName": sdk})).await;
            assert_eq!(status, 200, "{body}");
        }
        let (status, claimed) = srv.post("/queues/claim", json!({"queues": [queue], "limit": 1})).await;
        assert_eq!(status, 200, "{claimed}");

        let after = scrape(&srv).await;
        let moved = |name: &str, having: &[(&str, &str)]| after.total(name, having) - before.total(name, having);
        // Labelled by this test's own workflows and queue: exact.
        let finished = "tidebase_runs_finished_total";
        assert_eq!(after.total(finished, &[("workflow", &wasm), ("status", "completed")]), 2.0);
        assert_eq!(after.total(finished, &[("workflow", &sdk), ("status", "completed")]), 1.0);
        assert_eq!(after.total("tidebase_runs", &[("workflow", &wasm), ("status", "completed")]), 2.0);
        assert_eq!(after.total("tidebase_runs", &[("workflow", &wasm), ("status", "running")]), 0.0);
        assert_eq!(after.total("tidebase_runs", &[("workflow", &sdk), ("status", "queued")]), 2.0);
        assert_eq!(after.total("tidebase_runs", &[("workflow", &sdk), ("status", "running")]), 1.0);
        assert_eq!(after.total("tidebase_queue_depth", &[("queue", &queue)]), 2.0);
        assert_eq!(after.total("tidebase_queue_running", &[("queue", &queue)]), 1.0);
        assert_eq!(after.total("tidebase_queue_claim_wait_seconds_count", &[("queue", &queue)]), 1.0);
        // Process-wide (other tests share the recorder): at least ours.
        assert!(moved("tidebase_wasm_activations_total", &[("outcome", "suspended")]) >= 2.0);
        assert!(moved("tidebase_wasm_suspensions_total", &[]) >= 2.0);
        assert!(moved("tidebase_wasm_activations_total", &[("outcome", "completed")]) >= 2.0);
        assert!(moved("tidebase_wasm_activation_cpu_seconds_count", &[]) >= 4.0);
        // Three wasm steps per run, one SDK step.
        assert!(moved("tidebase_step_attempt_seconds_count", &[("outcome", "completed")]) >= 7.0);
        let resolve_route = [("route", "/runs/{id}/gates/{gate}/resolve"), ("method", "POST"), ("status", "200")];
        assert!(moved("tidebase_http_request_seconds_count", &resolve_route) >= 2.0);
        assert!(moved("tidebase_webhook_calls_total", &[("kind", "channel"), ("outcome", "unreachable")]) >= 1.0);
        assert!(moved("tidebase_store_transaction_seconds_count", &[("kind", "commit")]) >= 10.0);
    }

    async fn metrics_need_the_api_key(srv: TestServer = Opts::api_key("metrics-key")) {
        let refused = TestServer::send(srv.bare(Method::GET, "/metrics")).await;
        assert_eq!(refused.status, 401);
        scrape(&srv).await; // with the key
    }
}

#[test]
fn the_parser_refuses_what_prometheus_refuses() {
    let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\\\"w\"} 3\n";
    assert_eq!(parse(ok).total("a_total", &[("k", "v\"w")]), 3.0);
    for bad in [
        "a_total 1\n",                    // no TYPE
        "# TYPE a counter\na{k=\"v} 1\n", // unterminated label
        "# TYPE a counter\na -1\n",       // negative counter
        "# TYPE 1a gauge\n",              // bad name
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n", // shrinking buckets
    ] {
        assert!(
            std::panic::catch_unwind(|| parse(bad)).is_err(),
            "accepted {bad:?}"
        );
    }
}
