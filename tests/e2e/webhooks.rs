//! Outbound webhooks: manual recovery (`POST /runs/:id/recover`), the
//! `run_failed` recovery webhook, and channel deliveries — signed, recorded
//! and final before the triggering call answers (`semantics.md` §15.2, §16),
//! with a hung receiver delaying only its own trigger, up to the timeout.

use crate::harness::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a [`Receiver`] got.
#[derive(Clone, Debug)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Work a receiver does before it answers (e.g. resuming the run).
type OnHit = Arc<dyn Fn(Value) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

#[derive(Clone)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    status: u16,
    reply: &'static str,
    hang: bool,
    on_hit: Option<OnHit>,
}

/// A local HTTP endpoint recording every request; it answers with a fixed
/// status and body (after its `on_hit` work, if any), or (`hanging`)
/// accepts and never answers.
pub struct Receiver {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn receive(
    State(s): State<ReceiverState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let hit = Hit {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
    };
    let json = serde_json::from_slice(&hit.body).unwrap_or(Value::Null);
    s.hits.lock().unwrap().push(hit);
    if let Some(on_hit) = &s.on_hit {
        on_hit(json).await;
    }
    if s.hang {
        std::future::pending::<()>().await;
    }
    (StatusCode::from_u16(s.status).unwrap(), s.reply)
}

impl Receiver {
    pub async fn start(status: u16, reply: &'static str) -> Receiver {
        Receiver::spawn(status, reply, false, None).await
    }

    /// Answers 200 once `on_hit` (given the JSON body) has finished.
    pub async fn with<F, Fut>(on_hit: F) -> Receiver
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let on_hit: OnHit = Arc::new(move |v| Box::pin(on_hit(v)));
        Receiver::spawn(200, r#"{"accepted":true}"#, false, Some(on_hit)).await
    }

    pub async fn ok() -> Receiver {
        Receiver::start(200, r#"{"accepted":true}"#).await
    }

    pub async fn hanging() -> Receiver {
        Receiver::spawn(200, "", true, None).await
    }

    async fn spawn(
        status: u16,
        reply: &'static str,
        hang: bool,
        on_hit: Option<OnHit>,
    ) -> Receiver {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let state = ReceiverState {
            hits: hits.clone(),
            status,
            reply,
            hang,
            on_hit,
        };
        let app = axum::Router::new().fallback(receive).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Receiver { url, hits, task }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Wait (bounded) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + within;
        loop {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} webhook request(s) within {within:?}, got {}",
                hits.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The signature header value a receiver should expect.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn deliveries(detail: &Value) -> Vec<Value> {
    detail["channelDeliveries"].as_array().unwrap().clone()
}

fn all_final(detail: &Value) -> bool {
    deliveries(detail).iter().all(|d| d["status"] != "pending")
}

const SECRET: &str = "whsec-test";
/// Webhook timeout of the hung-receiver tests: long enough that the checks
/// made while a call hangs finish well before it.
const TIMEOUT_MS: u64 = 5_000;

fn event_kinds(detail: &Value) -> Vec<String> {
    detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

fn with_secret() -> Opts {
    Opts {
        webhook_secret: Some(SECRET.into()),
        ..Opts::default()
    }
}

backend_tests! {
    async fn recover_needs_a_webhook(srv: TestServer) {
        let run = srv.create_run("no-hook").await;
        let id = run["id"].as_str().unwrap();
        let (s, b) = srv.post(&format!("/runs/{id}/recover"), json!({})).await;
        assert_eq!((s, b), (422, json!({"error": "run has no recoveryWebhook configured"})));
        let (s, b) = srv.post("/runs/run_00000000000000000000000000000000/recover", json!({})).await;
        assert_eq!((s, b), (404, json!({"error": "run not found"})));
        assert_eq!(srv.detail(id).await["recoveryAttempts"], json!([]));
        assert_eq!(count_events(&srv.events(id).await, "recovery.started"), 0);
    }

    async fn recover_delivers_signed_run_resume_and_records_it(srv: TestServer = with_secret()) {
        let hook = Receiver::ok().await;
        let (s, b) = srv.post("/runs/rec-wf", json!({"recoveryWebhook": hook.url})).await;
        assert_eq!(s, 200, "{b}");
        let id = b["run"]["id"].as_str().unwrap().to_string();

        let (s, b) = srv.post(&format!("/runs/{id}/recover"), json!({"reason": "operator"})).await;
        assert_eq!(s, 200, "{b}");
        let a = &b["recoveryAttempt"];
        assert!(is_id(&a["id"], "rec"), "{a}");
        assert_eq!(a["runId"], id.as_str());
        assert_eq!(a["reason"], "operator");
        assert_eq!(a["webhookUrl"], hook.url.as_str());
        assert_eq!(a["status"], "delivered");
        assert_eq!(a["httpStatus"], 200);
        assert_eq!(a["responseBody"], r#"{"accepted":true}"#);
        assert_eq!(a["errorText"], Value::Null);
        assert!(is_timestamp(&a["createdAt"]) && is_timestamp(&a["completedAt"]), "{a}");

        let hits = hook.hits();
        assert_eq!(hits.len(), 1);
        let hit = &hits[0];
        assert_eq!(hit.path, "/hook");
        assert_eq!(hit.header("user-agent"), Some("tidebase-recovery/0.5.0"));
        assert!(hit.header("content-type").unwrap().starts_with("application/json"));
        assert_eq!(hit.header("x-tidebase-signature"), Some(signature(SECRET, &hit.body).as_str()));
        let expected = format!(r#"{{"type":"run.resume","runId":"{id}","workflowName":"rec-wf","reason":"operator","attempt":0}}"#);
        assert_eq!(String::from_utf8_lossy(&hit.body), expected, "compact JSON in protocol field order");

        // Reason defaults to "manual"; a non-string reason is stored as text.
        let (_, b) = srv.post(&format!("/runs/{id}/recover"), json!({})).await;
        assert_eq!(b["recoveryAttempt"]["reason"], "manual");
        let r = srv.raw(reqwest::Method::POST, &format!("/runs/{id}/recover"), "not json").await;
        assert_eq!(r.json()["recoveryAttempt"]["reason"], "manual", "unparsable body is {{}}");
        let (_, b) = srv.post(&format!("/runs/{id}/recover"), json!({"reason": 42})).await;
        assert_eq!(b["recoveryAttempt"]["reason"], "42");

        let detail = srv.detail(&id).await;
        assert_eq!(detail["recoveryAttempts"].as_array().unwrap().len(), 4);
        let events = detail["events"].as_array().unwrap().clone();
        assert_gap_free(&events);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds[..3], ["run.created", "recovery.started", "recovery.delivered"]);
        assert_eq!(events[1]["payload"], json!({"recoveryAttemptId": a["id"], "reason": "operator"}));
        assert_eq!(events[2]["payload"], json!({"recoveryAttemptId": a["id"], "httpStatus": 200}));
    }

    async fn recover_records_failures(srv: TestServer) {
        let busy = Receiver::start(503, "busy").await;
        let (_, b) = srv.post("/runs/rec-503", json!({"recoveryWebhook": busy.url})).await;
        let id = b["run"]["id"].as_str().unwrap().to_string();
        let (s, b) = srv.post(&format!("/runs/{id}/recover"), json!({})).await;
        assert_eq!(s, 200, "a failed call is still a 200");
        let a = &b["recoveryAttempt"];
        assert_eq!((a["status"].as_str(), a["httpStatus"].as_i64(), a["responseBody"].as_str()), (Some("failed"), Some(503), Some("busy")));
        assert!(busy.hits()[0].headers.get("x-tidebase-signature").is_none(), "unsigned without a secret");
        let events = srv.events(&id).await;
        assert_eq!(events.last().unwrap()["type"], "recovery.failed");
        assert_eq!(events.last().unwrap()["payload"]["httpStatus"], 503);

        // Nobody listening: a transport error.
        let (_, b) = srv.post("/runs/rec-dead", json!({"recoveryWebhook": "http://127.0.0.1:1/dead"})).await;
        let id = b["run"]["id"].as_str().unwrap().to_string();
        let (s, b) = srv.post(&format!("/runs/{id}/recover"), json!({})).await;
        assert_eq!(s, 200);
        let a = &b["recoveryAttempt"];
        assert_eq!(a["status"], "failed");
        assert_eq!(a["httpStatus"], Value::Null);
        assert!(a["errorText"].as_str().unwrap().starts_with("fetch failed"), "{a}");
        let last = srv.events(&id).await.last().unwrap().clone();
        assert_eq!(last["type"], "recovery.failed");
        assert_eq!(last["payload"]["error"], a["errorText"]);
    }

    async fn failing_a_run_answers_after_its_recovery_webhook(srv: TestServer) {
        let hook = Receiver::ok().await;
        let (_, b) = srv.post("/runs/fail-hook", json!({"recoveryWebhook": hook.url})).await;
        let rid = id(&b["run"]);
        srv.begin_run(&rid, "w").await;

        let (s, b) = srv.post(&format!("/runs/{rid}/fail"), json!({"error": {"message": "boom"}})).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!((b["run"]["status"].as_str(), b["requeued"].as_bool()), (Some("failed"), Some(false)));
        // The call was made and its outcome recorded before the response.
        let hits = hook.hits();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].json(), json!({"type": "run.resume", "runId": rid, "workflowName": "fail-hook", "reason": "run_failed", "attempt": 1}));
        let detail = srv.detail(&rid).await;
        let a = &detail["recoveryAttempts"][0];
        assert_eq!((a["reason"].as_str(), a["status"].as_str(), a["httpStatus"].as_i64()), (Some("run_failed"), Some("delivered"), Some(200)), "{a}");
        let kinds = event_kinds(&detail);
        assert_eq!(kinds[kinds.len() - 3..], ["run.failed", "recovery.started", "recovery.delivered"]);

        // Requeues and cancellations never fire it.
        let (_, b) = srv.post("/queues/q/enqueue", json!({"workflowName": "requeue-hook", "recoveryWebhook": hook.url, "maxAttempts": 3})).await;
        let qid = id(&b["run"]);
        let (_, b) = srv.post(&format!("/runs/{qid}/fail"), json!({})).await;
        assert_eq!(b["requeued"], true);
        srv.post(&format!("/runs/{qid}/cancel"), json!({})).await;
        assert_eq!(srv.detail(&qid).await["recoveryAttempts"], json!([]));
        assert_eq!(hook.hits().len(), 1);
    }

    async fn a_recovery_handler_resumes_the_run_before_fail_answers(srv: TestServer) {
        // Inside the webhook call the handler does what the SDKs' recovery
        // handlers do (§15.3): read the run, begin it, replay its completed
        // step and complete it. Nothing the fail call holds may block it.
        let (base, client) = (srv.base.clone(), srv.client.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler_saw = seen.clone();
        let hook = Receiver::with(move |body| {
            let (base, client, seen) = (base.clone(), client.clone(), handler_saw.clone());
            async move {
                let url = format!("{base}/runs/{}", body["runId"].as_str().unwrap());
                let call = |rb: reqwest::RequestBuilder| async move { rb.send().await.unwrap().json::<Value>().await.unwrap() };
                let run = call(client.get(&url)).await;
                let begun = call(client.post(format!("{url}/begin")).header("x-tidebase-worker", "handler")).await;
                let step = call(client.post(format!("{url}/steps/begin")).json(&json!({"name": "fetch", "inputHash": "h", "leaseOwner": "handler"}))).await;
                let done = call(client.post(format!("{url}/complete")).json(&json!({"result": {"resumed": true}}))).await;
                seen.lock().unwrap().extend([run["run"]["status"].clone(), begun["run"]["status"].clone(), step["action"].clone(), done["run"]["status"].clone()]);
            }
        })
        .await;
        let channel = Receiver::ok().await;
        let body = json!({"recoveryWebhook": hook.url, "channels": [{"type": "webhook", "url": channel.url, "events": ["run.failed", "run.completed"]}]});
        let (_, b) = srv.post("/runs/resumable", body).await;
        let rid = id(&b["run"]);
        srv.begin_run(&rid, "w").await;
        let step = srv.step_begin(&rid, json!({"name": "fetch", "inputHash": "h", "leaseOwner": "w"})).await;
        let step_id = step["step"]["id"].as_str().unwrap().to_string();
        srv.post(&format!("/runs/{rid}/steps/{step_id}/complete"), json!({"leaseOwner": "w", "output": {"page": 1}})).await;

        let started = Instant::now();
        let (s, b) = srv.post(&format!("/runs/{rid}/fail"), json!({"error": {"message": "crashed after fetch"}})).await;
        assert_eq!(s, 200, "{b}");
        assert!(started.elapsed() < Duration::from_secs(8), "fail answered within the 10 s timeout: {:?}", started.elapsed());
        assert_eq!(b["run"]["status"], "failed", "the run as of the fail update");
        assert_eq!(*seen.lock().unwrap(), [json!("failed"), json!("running"), json!("return"), json!("completed")], "the handler's calls, inside the webhook call");

        let detail = srv.detail(&rid).await;
        assert_eq!(detail["run"]["status"], "completed", "resumed before fail answered");
        assert_eq!(detail["run"]["result"], json!({"resumed": true}));
        let steps = detail["steps"].as_array().unwrap();
        assert_eq!((steps.len(), steps[0]["attempt"].as_i64()), (1, Some(1)), "the step replayed, not re-executed");
        let a = &detail["recoveryAttempts"][0];
        assert_eq!((a["status"].as_str(), a["httpStatus"].as_i64()), (Some("delivered"), Some(200)), "{a}");
        let kinds = event_kinds(&detail);
        assert_eq!(kinds[kinds.len() - 5..], ["run.failed", "recovery.started", "run.started", "run.completed", "recovery.delivered"]);
        // Both channel deliveries, the failure's and the handler's completion, are final.
        let rows = deliveries(&detail);
        let mut sent: Vec<(String, String)> = rows.iter().map(|d| (d["eventType"].as_str().unwrap().into(), d["status"].as_str().unwrap().into())).collect();
        sent.sort();
        assert_eq!(sent, [("run.completed".to_string(), "delivered".to_string()), ("run.failed".into(), "delivered".into())]);
        let kinds: Vec<Value> = channel.hits().iter().map(|h| h.json()["type"].clone()).collect();
        assert_eq!(kinds, [json!("run.failed"), json!("run.completed")]);
    }

    async fn a_hung_recovery_webhook_delays_fail_only_up_to_the_timeout(srv: TestServer = Opts { webhook_timeout_ms: TIMEOUT_MS, ..Opts::default() }) {
        let hung = Receiver::hanging().await;
        let (_, b) = srv.post("/runs/fail-hung", json!({"recoveryWebhook": hung.url})).await;
        let rid = id(&b["run"]);
        srv.begin_run(&rid, "w").await;

        let started = Instant::now();
        let fail = tokio::spawn(srv.request(reqwest::Method::POST, &format!("/runs/{rid}/fail")).json(&json!({"error": {"message": "boom"}})).send());
        hung.wait_for(1, Duration::from_secs(5)).await;
        // While fail waits on the receiver, other writers to the run go ahead.
        let (s, b) = srv.put(&format!("/runs/{rid}/state"), json!({"value": {"n": 1}})).await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = srv.begin_run(&rid, "w2").await;
        assert_eq!((s, b["run"]["status"].as_str()), (200, Some("running")), "{b}");
        assert_eq!(srv.detail(&rid).await["recoveryAttempts"][0]["status"], "pending");
        assert!(!fail.is_finished(), "fail still waits for its webhook");

        let res = fail.await.unwrap().unwrap();
        assert_eq!(res.status(), 200);
        let b: Value = res.json().await.unwrap();
        assert_eq!((b["run"]["status"].as_str(), b["requeued"].as_bool()), (Some("failed"), Some(false)));
        assert!(started.elapsed() < Duration::from_millis(TIMEOUT_MS) + Duration::from_secs(10), "bounded by the timeout: {:?}", started.elapsed());
        let detail = srv.detail(&rid).await;
        let a = &detail["recoveryAttempts"][0];
        assert_eq!((a["reason"].as_str(), a["status"].as_str(), a["httpStatus"].clone()), (Some("run_failed"), Some("failed"), Value::Null));
        assert!(a["errorText"].as_str().unwrap().contains("timed out"), "{a}");
        assert_eq!(event_kinds(&detail).last().unwrap(), "recovery.failed");
    }

    async fn a_client_hanging_up_loses_no_webhook(srv: TestServer = Opts { webhook_timeout_ms: 1_500, ..Opts::default() }) {
        let hung = Receiver::hanging().await;
        let hook = Receiver::ok().await;
        let channels = json!([{"type": "webhook", "url": hung.url, "events": ["run.failed"]}]);
        let (_, b) = srv.post("/runs/hang-up", json!({"recoveryWebhook": hook.url, "channels": channels})).await;
        let rid = id(&b["run"]);
        let fail = tokio::spawn(srv.request(reqwest::Method::POST, &format!("/runs/{rid}/fail")).json(&json!({})).send());
        hung.wait_for(1, Duration::from_secs(5)).await;
        fail.abort(); // the client goes away while the delivery hangs

        // The server still finishes the delivery, then the recovery call.
        let deadline = Instant::now() + Duration::from_secs(15);
        let detail = loop {
            let d = srv.detail(&rid).await;
            if d["recoveryAttempts"][0]["status"] == "delivered" {
                break d;
            }
            assert!(Instant::now() < deadline, "the recovery call was lost: {d:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let rows = deliveries(&detail);
        assert_eq!((rows[0]["status"].as_str(), rows[0]["httpStatus"].clone()), (Some("failed"), Value::Null), "{rows:#?}");
        assert_eq!(hook.hits().len(), 1);
    }

    async fn channel_deliveries_are_recorded_signed_and_sent(srv: TestServer) {
        let all = Receiver::ok().await;
        let only_completed = Receiver::ok().await;
        let inline = Receiver::ok().await;
        let body = json!({"channels": [
            {"type": "webhook", "url": all.url, "secret": "chan-secret", "events": []},
            {"type": "webhook", "url": only_completed.url, "events": ["run.completed"]},
        ]});
        let (s, b) = srv.post("/runs/chan-wf", body).await;
        assert_eq!(s, 200, "{b}");
        let id = b["run"]["id"].as_str().unwrap().to_string();
        srv.begin_run(&id, "w").await;
        // Each triggering call answers once its deliveries are sent and final.
        let sent_by = |n: usize| {
            let srv = &srv;
            let id = id.clone();
            async move {
                let detail = srv.detail(&id).await;
                let rows = deliveries(&detail);
                assert_eq!(rows.len(), n, "{rows:#?}");
                assert!(all_final(&detail), "{rows:#?}");
                detail
            }
        };
        srv.put(&format!("/runs/{id}/state"), json!({"value": {"n": 1}})).await;
        sent_by(1).await;
        srv.post(&format!("/runs/{id}/usage"), json!({"kind": "llm", "inputTokens": 3})).await;
        sent_by(2).await;
        let step = srv.step_begin(&id, json!({"name": "s", "inputHash": "h", "leaseOwner": "w"})).await;
        let step_id = step["step"]["id"].as_str().unwrap().to_string();
        srv.post(&format!("/runs/{id}/steps/{step_id}/fail"), json!({"leaseOwner": "w", "error": {"m": 1}, "retryable": true})).await;
        sent_by(3).await;
        let (_, g) = srv.post(&format!("/runs/{id}/gates/begin"), json!({"name": "ok", "prompt": "ok?", "channels": [{"type": "webhook", "url": inline.url}]})).await;
        sent_by(5).await;
        let gate = g["gate"].clone();
        let gate_id = gate["id"].as_str().unwrap().to_string();
        let (s, _) = srv.post(&format!("/runs/{id}/gates/{gate_id}/resolve"), json!({"token": gate["resolveToken"], "decision": "approved"})).await;
        assert_eq!(s, 200);
        sent_by(7).await;
        let (_, done) = srv.post(&format!("/runs/{id}/complete"), json!({"result": {"ok": true}})).await;
        let detail = sent_by(9).await;

        let expected = ["state.updated", "usage.recorded", "step.failed", "gate.created", "gate.resolved", "run.completed"];
        let hits = all.hits();
        let kinds: Vec<String> = hits.iter().map(|h| h.json()["type"].as_str().unwrap().to_string()).collect();
        assert_eq!(kinds, expected, "one run's deliveries arrive in event order");
        for hit in &hits {
            assert_eq!(hit.header("user-agent"), Some("tidebase-channel/0.3.0"));
            assert_eq!(hit.header("x-tidebase-signature"), Some(signature("chan-secret", &hit.body).as_str()), "signed with the channel's own secret");
            let env = hit.json();
            assert_eq!(env["runId"], id.as_str());
            assert!(is_id(&env["deliveryId"], "del"));
            let keys: Vec<String> = serde_json::from_slice::<serde_json::Map<String, Value>>(&hit.body).unwrap().keys().cloned().collect();
            assert_eq!(keys.len(), 5, "envelope fields: {keys:?}");
        }
        let by = |t: &str| hits.iter().map(Hit::json).find(|e| e["type"] == t).unwrap();
        let state = by("state.updated");
        assert_eq!(state["payload"]["state"]["value"], json!({"n": 1}));
        assert_eq!(state["payload"]["state"]["version"], 1);
        assert_eq!(state["payload"]["stateVersion"]["version"], 1);
        assert_eq!(state["gateId"], Value::Null);
        assert_eq!(by("usage.recorded")["payload"]["usage"]["inputTokens"], 3);
        let failed = by("step.failed");
        assert_eq!(failed["payload"]["step"]["id"], step_id.as_str());
        assert_eq!(failed["payload"]["retryable"], true);
        assert_eq!(failed["payload"]["error"], json!({"m": 1}));
        assert!(failed["payload"].get("resumeDecision").is_some());
        let created = by("gate.created");
        assert_eq!(created["gateId"], gate_id.as_str());
        assert_eq!(created["payload"]["gate"]["status"], "pending");
        assert_eq!(by("gate.resolved")["payload"]["gate"]["status"], "approved");
        assert_eq!(by("run.completed")["payload"], json!({"run": done["run"]}));

        let hits = only_completed.hits();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].json()["type"], "run.completed");
        assert!(hits[0].headers.get("x-tidebase-signature").is_none(), "no secret, no signature");
        let inline_hits = inline.hits();
        let inline_kinds: Vec<Value> = inline_hits.iter().map(|h| h.json()["type"].clone()).collect();
        assert_eq!(inline_kinds, [json!("gate.created"), json!("gate.resolved")]);
        assert_eq!(inline_hits[0].json()["gateId"], gate_id.as_str());

        let rows = deliveries(&detail);
        for row in &rows {
            assert_eq!(row["status"], "delivered", "{row}");
            assert_eq!(row["httpStatus"], 200);
            assert_eq!(row["responseBody"], r#"{"accepted":true}"#);
            assert!(is_timestamp(&row["completedAt"]));
        }
        let inline_rows: Vec<&Value> = rows.iter().filter(|r| r["channelId"].is_null()).collect();
        assert_eq!(inline_rows.len(), 2);
        assert!(inline_rows.iter().all(|r| r["gateId"] == gate_id.as_str()));
        // No event for deliveries themselves.
        assert_eq!(count_events(&detail["events"].as_array().unwrap().clone(), "run.completed"), 1);
    }

    async fn failed_and_cancelled_runs_deliver_run_payloads(srv: TestServer) {
        let hook = Receiver::ok().await;
        let channels = json!([{"type": "webhook", "url": hook.url}]);
        let (_, b) = srv.post("/runs/f", json!({"channels": channels})).await;
        let failed = b["run"]["id"].as_str().unwrap().to_string();
        let (_, f) = srv.post(&format!("/runs/{failed}/fail"), json!({"error": {"message": "x"}})).await;
        let (_, b) = srv.post("/queues/q/enqueue", json!({"workflowName": "c", "channels": channels, "maxAttempts": 2})).await;
        let queued = b["run"]["id"].as_str().unwrap().to_string();
        // A requeue delivers nothing; the cancel does.
        let (_, r) = srv.post(&format!("/runs/{queued}/fail"), json!({})).await;
        assert_eq!(r["requeued"], true);
        assert!(hook.hits().len() == 1, "{:?}", hook.hits());
        let (_, c) = srv.post(&format!("/runs/{queued}/cancel"), json!({"reason": "stop"})).await;

        let hits = hook.hits();
        assert_eq!(hits.len(), 2, "nothing else is delivered");
        let by_run = |rid: &str| hits.iter().map(Hit::json).find(|e| e["runId"] == rid).unwrap();
        let f_env = by_run(&failed);
        assert_eq!(f_env["type"], "run.failed");
        assert_eq!(f_env["payload"], json!({"run": f["run"], "error": {"message": "x"}}));
        let c_env = by_run(&queued);
        assert_eq!(c_env["type"], "run.cancelled");
        assert_eq!(c_env["payload"], json!({"run": c["run"]}));
    }

    async fn failing_channel_endpoints_never_change_the_result(srv: TestServer) {
        let busy = Receiver::start(503, "busy").await;
        let channels = json!([
            {"type": "webhook", "url": "http://127.0.0.1:1/nobody"},
            {"type": "webhook", "url": busy.url},
        ]);
        let (_, b) = srv.post("/runs/unlucky", json!({"channels": channels})).await;
        let rid = id(&b["run"]);
        srv.begin_run(&rid, "w").await;
        let (s, b) = srv.post(&format!("/runs/{rid}/complete"), json!({"result": 7})).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!((b["run"]["status"].as_str(), b["run"]["result"].as_i64()), (Some("completed"), Some(7)));
        let rows = deliveries(&srv.detail(&rid).await);
        assert_eq!(rows.len(), 2);
        let dead = rows.iter().find(|r| r["httpStatus"].is_null()).unwrap();
        assert_eq!(dead["status"], "failed");
        assert!(dead["errorText"].as_str().unwrap().starts_with("fetch failed"), "{dead}");
        let refused = rows.iter().find(|r| r["httpStatus"] == 503).unwrap();
        assert_eq!((refused["status"].as_str(), refused["responseBody"].as_str()), (Some("failed"), Some("busy")));
        assert_eq!(busy.hits().len(), 1);
    }

    async fn a_hung_channel_endpoint_delays_only_its_trigger(srv: TestServer = Opts { webhook_timeout_ms: TIMEOUT_MS, ..Opts::default() }) {
        let hung = Receiver::hanging().await;
        let channels = json!([{"type": "webhook", "url": hung.url, "events": ["usage.recorded"]}]);
        let (_, b) = srv.post("/runs/hung", json!({"channels": channels})).await;
        let rid = id(&b["run"]);
        srv.begin_run(&rid, "w").await;
        let other = srv.running_run("bystander", "w").await;

        let started = Instant::now();
        let usage = tokio::spawn(srv.request(reqwest::Method::POST, &format!("/runs/{rid}/usage")).json(&json!({"kind": "llm", "inputTokens": 1})).send());
        hung.wait_for(1, Duration::from_secs(5)).await;
        // While that delivery hangs, other writers to the same run (and to
        // other runs) answer at once, and the row shows it in flight.
        let (s, _) = srv.put(&format!("/runs/{rid}/state"), json!({"value": {"n": 1}})).await;
        assert_eq!(s, 200);
        let step = srv.step_begin(&rid, json!({"name": "s", "inputHash": "h", "leaseOwner": "w"})).await;
        assert_eq!(step["action"], "execute");
        let (s, _) = srv.put(&format!("/runs/{other}/state"), json!({"value": {"n": 1}})).await;
        assert_eq!(s, 200);
        let rows = deliveries(&srv.detail(&rid).await);
        assert_eq!((rows.len(), rows[0]["status"].as_str()), (1, Some("pending")));
        assert!(!usage.is_finished(), "the usage call waits for its delivery");

        // The trigger answers once the timeout cut the call off, and its
        // result is unchanged.
        let res = usage.await.unwrap().unwrap();
        assert_eq!(res.status(), 200);
        let b: Value = res.json().await.unwrap();
        assert_eq!(b["usage"]["inputTokens"], 1);
        assert!(started.elapsed() < Duration::from_millis(TIMEOUT_MS) + Duration::from_secs(10), "bounded by the timeout: {:?}", started.elapsed());
        let rows = deliveries(&srv.detail(&rid).await);
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0]["status"].as_str(), rows[0]["httpStatus"].clone()), (Some("failed"), Value::Null));
        assert!(rows[0]["errorText"].as_str().unwrap().contains("timed out"), "{}", rows[0]);
    }
}
