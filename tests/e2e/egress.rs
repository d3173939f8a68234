//! Brokered egress (issue 10): wasm workflows reach local upstreams on
//! 127.0.0.1 through `wasi:http` and the engine's broker. A request is made
//! only inside a step and only once per checkpoint, whatever resumes the run
//! (a gate, a killed process); a refusal fails the run with a class naming
//! it. The rest is the broker's own guarantees seen from a workflow: the
//! credential is injected and never comes back, only granted URLs are
//! reached, private addresses are refused without the flag, calls time out,
//! revoked resources deny, and every decision is audited.

use crate::cli::{host, output, text};
use crate::harness::{Opts, TestServer, count_events, database_dump};
use crate::wasm::{deploy, resolve, start, step, wait_status, wait_suspended_at_gate};
use crate::webhooks::Hit;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tidebase_host::engine::{Injection, NewResource};

/// What an [`Upstream`] does with a request.
pub(crate) enum Reply {
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Accept and never answer.
    Hang,
}

impl Reply {
    pub(crate) fn status(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub(crate) fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::status(200, body)
    }
}

type Route = Arc<dyn Fn(&Hit) -> Reply + Send + Sync>;

#[derive(Clone)]
struct UpstreamState {
    hits: Arc<Mutex<Vec<Hit>>>,
    route: Route,
}

/// A local HTTP server standing in for a real API: records every request
/// and answers as its route says.
pub(crate) struct Upstream {
    /// `http://127.0.0.1:<port>`.
    pub(crate) origin: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn serve(
    State(s): State<UpstreamState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let hit = Hit {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
    };
    let reply = (s.route)(&hit);
    s.hits.lock().unwrap().push(hit);
    match reply {
        Reply::Answer {
            status,
            headers,
            body,
        } => {
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("header value"));
            }
            response
        }
        Reply::Hang => std::future::pending().await,
    }
}

impl Upstream {
    pub(crate) async fn start(route: impl Fn(&Hit) -> Reply + Send + Sync + 'static) -> Upstream {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let state = UpstreamState {
            hits: hits.clone(),
            route: Arc::new(route),
        };
        let app = axum::Router::new().fallback(serve).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Upstream { origin, hits, task }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    pub(crate) fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Wait (bounded) until at least `n` requests arrived.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            assert!(Instant::now() < deadline, "{} of {n} requests", hits.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connect resource `name` with base URL `base_url`, granting any method
/// and path; `secret` goes into `authorization: Bearer {secret}`.
pub(crate) async fn connect(srv: &TestServer, name: &str, base_url: &str, secret: Option<&str>) {
    connect_with(srv, name, base_url, Vec::new(), Vec::new(), secret).await;
}

async fn connect_with(
    srv: &TestServer,
    name: &str,
    base_url: &str,
    methods: Vec<String>,
    paths: Vec<String>,
    secret: Option<&str>,
) {
    let resource = NewResource {
        name: name.into(),
        base_url: Some(base_url.into()),
        methods,
        paths,
        secret: secret.map(str::to_owned),
        injection: Injection::Header {
            name: "authorization".into(),
            format: "Bearer {secret}".into(),
        },
        ..NewResource::default()
    };
    srv.engine
        .connect_resource(resource)
        .await
        .unwrap_or_else(|e| panic!("connect resource {name}: {e}"));
}

/// The chat API `notify` posts to: answers every post with message id
/// `msg-1`, except what `details` says for the details post (the one with
/// a `thread`).
fn chat(details: impl Fn() -> Reply + Send + Sync + 'static) -> impl Fn(&Hit) -> Reply {
    move |hit| {
        if hit.json()["thread"].is_null() {
            Reply::ok(r#"{"id": "msg-1"}"#)
        } else {
            details()
        }
    }
}

fn notify_input(url: &str, sign_off: bool) -> Value {
    json!({
        "url": url,
        "title": "Nightly build",
        "items": [{"name": "api", "ok": true}, {"name": "web", "ok": false, "note": "2 tests failed"}],
        "signOff": sign_off,
    })
}

const SUMMARY: &str = "Nightly build: 1 of 2 passed";
const DETAILS: &str = "- api: ok\n- web: FAILED (2 tests failed)";

/// The run's `failureClass`, and its error's name and message.
fn failure(d: &Value) -> (&str, &str, &str) {
    let run = &d["run"];
    (
        run["failureClass"].as_str().unwrap_or_default(),
        run["error"]["name"].as_str().unwrap_or_default(),
        run["error"]["message"].as_str().unwrap_or_default(),
    )
}

/// A GET inside step `fetch` reaches the upstream, and the run completes
/// with what came back; a 404 is an answer, not an error.
async fn a_fetch_inside_a_step_reaches_the_upstream(srv: TestServer) {
    let up = Upstream::start(|hit| match hit.path.as_str() {
        "/greeting" => Reply::ok("hello from upstream"),
        _ => Reply::status(404, "no such page"),
    })
    .await;
    connect(&srv, "local", &up.origin, None).await;
    deploy(&srv, "fetch", tidebase_fixtures::FETCH, "?allow=local").await;

    let id = start(&srv, "fetch", json!({"url": up.url("/greeting?lang=en")})).await;
    let d = wait_status(&srv, &id, "completed").await;
    let fetched = json!({"status": 200, "body": "hello from upstream"});
    assert_eq!(d["run"]["result"], fetched);
    assert_eq!(step(&d, "fetch")["output"], fetched, "the checkpoint");
    let hits = up.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0].method.as_str(), hits[0].path.as_str()),
        ("GET", "/greeting")
    );

    let id = start(&srv, "fetch", json!({"url": up.url("/missing")})).await;
    let d = wait_status(&srv, &id, "completed").await;
    assert_eq!(
        d["run"]["result"],
        json!({"status": 404, "body": "no such page"})
    );
}

/// Outside step code a request is refused before it leaves the host: the
/// run fails with class `egress_denied` and the host's reason.
async fn egress_outside_a_step_is_refused(srv: TestServer) {
    let up = Upstream::start(|_| Reply::ok("should not be reached")).await;
    connect(&srv, "local", &up.origin, None).await;
    deploy(&srv, "hostile", tidebase_fixtures::HOSTILE, "?allow=local").await;

    let id = start(
        &srv,
        "hostile",
        json!({"mode": "egress", "url": up.url("/x")}),
    )
    .await;
    let d = wait_status(&srv, &id, "failed").await;
    let (class, name, message) = failure(&d);
    assert_eq!(
        (class, name),
        ("egress_denied", "EgressDenied"),
        "{}",
        d["run"]["error"]
    );
    assert!(
        message.contains("step") && message.contains("deterministic"),
        "the reason is not given: {message}"
    );
    assert!(up.hits().is_empty(), "the request left the host");
}

/// A run that posted before parking at a gate does not post again when the
/// gate's decision resumes it: the post's step replays its checkpoint.
async fn a_gate_resume_does_not_post_again(srv: TestServer) {
    let up = Upstream::start(chat(|| Reply::ok(r#"{"id": "msg-2"}"#))).await;
    connect(&srv, "chat", &up.url("/api"), None).await;
    deploy(&srv, "notify", tidebase_fixtures::NOTIFY, "?allow=chat").await;

    let id = start(&srv, "notify", notify_input(&up.url("/api/messages"), true)).await;
    let gate = wait_suspended_at_gate(&srv, &id).await;
    assert_eq!(gate["name"], "sign-off");
    assert_eq!(up.hits().len(), 1, "the summary, once");
    let (status, body) = resolve(&srv, &id, &gate, "approved").await;
    assert_eq!(status, 200, "{body}");

    let d = wait_status(&srv, &id, "completed").await;
    let hits = up.hits();
    assert_eq!(hits.len(), 2, "the summary again, or no details");
    assert_eq!(hits[0].json(), json!({"text": SUMMARY}));
    assert_eq!(hits[1].json(), json!({"text": DETAILS, "thread": "msg-1"}));
    assert_eq!(
        d["run"]["result"],
        json!({"messageId": "msg-1", "summary": SUMMARY, "details": true})
    );
    assert_eq!(step(&d, "post-summary")["attempt"], 1);
}

/// The process running a run is killed while its second post hangs, after
/// the first was checkpointed; `--run-id --takeover` finishes the run
/// without posting the summary again. The unfinished post is made again
/// (the at-least-once window), with the same idempotency key.
async fn a_killed_process_resumes_without_posting_again(srv: TestServer) {
    let detail_posts = Arc::new(AtomicUsize::new(0));
    let up = Upstream::start(chat(move || {
        match detail_posts.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::Hang,
            _ => Reply::ok("{}"),
        }
    }))
    .await;
    connect(&srv, "chat", &up.url("/api"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let input = notify_input(&up.url("/api/messages"), false).to_string();
    let cli = |args: &[&str]| {
        let mut cmd = host(&srv, dir.path(), args);
        cmd.env("TIDEBASE_ALLOW_PRIVATE_EGRESS", "1");
        cmd
    };
    let notify = tidebase_fixtures::NOTIFY;
    let mut child = cli(&["run", notify, "--allow", "chat", "--input", &input])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn run");
    up.wait_for(2).await;
    let (_, runs) = srv.get("/runs").await;
    let id = runs["runs"][0]["id"].as_str().expect("a run").to_string();
    let d = srv.detail(&id).await;
    assert_eq!(step(&d, "post-summary")["status"], "completed");
    assert!(!d["run"]["leaseOwner"].is_null());
    child.kill().expect("kill run process");
    child.wait().unwrap();

    let out = output(cli(&[
        "run",
        notify,
        "--allow",
        "chat",
        "--run-id",
        &id,
        "--takeover",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).expect("result JSON on stdout");
    assert_eq!(result["messageId"], "msg-1");
    let hits = up.hits();
    let summaries = hits.iter().filter(|h| h.json()["thread"].is_null()).count();
    assert_eq!(
        (summaries, hits.len()),
        (1, 3),
        "summary once, details twice"
    );
    let d = srv.detail(&id).await;
    assert_eq!(step(&d, "post-summary")["attempt"], 1);
    assert_eq!(d["run"]["status"], "completed");
}

/// A response over the size cap (1 MiB by default) fails the step and the
/// run with class `egress_too_large`.
async fn an_oversized_response_fails_with_its_class(srv: TestServer) {
    let up = Upstream::start(|_| Reply::ok(vec![b'x'; (1 << 20) + 1])).await;
    connect(&srv, "local", &up.origin, None).await;
    deploy(&srv, "fetch", tidebase_fixtures::FETCH, "?allow=local").await;

    let id = start(&srv, "fetch", json!({"url": up.url("/big")})).await;
    let d = wait_status(&srv, &id, "failed").await;
    let (class, name, _) = failure(&d);
    assert_eq!(
        (class, name),
        ("egress_too_large", "EgressTooLarge"),
        "{}",
        d["run"]["error"]
    );
    assert_eq!(step(&d, "fetch")["status"], "failed");
}

backend_tests!(
    a_fetch_inside_a_step_reaches_the_upstream = Opts::egress(),
    egress_outside_a_step_is_refused = Opts::egress(),
    a_gate_resume_does_not_post_again = Opts::egress(),
    a_killed_process_resumes_without_posting_again = Opts {
        allow_private_egress: true,
        ..Opts::default()
    },
    an_oversized_response_fails_with_its_class = Opts::egress(),
);

// The broker's own guarantees, seen from a workflow.

/// A secret whose base64 (std and URL-safe) and URL encodings all differ
/// from it and from each other.
const SECRET: &str = "s3cr3t/tok+en?=~!";

/// `text` percent-encoded (everything but RFC 3986 unreserved characters).
fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every form of `SECRET` an upstream might echo.
fn secret_forms() -> Vec<String> {
    vec![
        SECRET.to_string(),
        base64::engine::general_purpose::STANDARD.encode(SECRET),
        base64::engine::general_purpose::URL_SAFE.encode(SECRET),
        url_encoded(SECRET),
    ]
}

fn assert_no_secret(what: &str, text: &str) {
    for form in secret_forms() {
        assert!(
            !text.contains(&form),
            "{what} holds the secret as {form:?}: {text}"
        );
    }
}

/// The upstream sees the resource's credential on every post; the workflow
/// never had it, and the run's record holds no trace of it. Each post
/// carries its step's idempotency key.
async fn the_credential_is_injected(srv: TestServer) {
    let up = Upstream::start(|hit| {
        if hit.header("authorization") == Some(&format!("Bearer {SECRET}")) {
            Reply::ok(r#"{"id": "msg-1"}"#)
        } else {
            Reply::status(401, r#"{"error": "unauthorized"}"#)
        }
    })
    .await;
    connect(&srv, "chat", &up.url("/api"), Some(SECRET)).await;
    deploy(&srv, "notify", tidebase_fixtures::NOTIFY, "?allow=chat").await;

    let id = start(
        &srv,
        "notify",
        notify_input(&up.url("/api/messages"), false),
    )
    .await;
    let d = wait_status(&srv, &id, "completed").await;
    let hits = up.hits();
    assert_eq!(hits.len(), 2);
    for (hit, step_name) in hits.iter().zip(["post-summary", "post-details"]) {
        let key = step(&d, step_name)["options"]["idempotencyKey"].clone();
        assert!(key.is_string(), "{step_name}");
        assert_eq!(hit.header("idempotency-key"), key.as_str(), "{step_name}");
    }
    assert_no_secret("run detail", &d.to_string());
}

/// An upstream that echoes the credential, plain and encoded, in its body
/// and a header: the workflow gets `[REDACTED]` instead, and neither the
/// run nor the audit trail holds the secret.
async fn an_echoed_secret_is_redacted(srv: TestServer) {
    let up = Upstream::start(|hit| {
        let token = hit
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_string();
        let std = base64::engine::general_purpose::STANDARD.encode(&token);
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode(&token);
        let body = format!(
            "plain={token} base64={std} base64url={url_safe} url={}",
            url_encoded(&token)
        );
        Reply::Answer {
            status: 200,
            headers: vec![("x-echo", token)],
            body: body.into_bytes(),
        }
    })
    .await;
    connect(&srv, "echo", &up.origin, Some(SECRET)).await;
    deploy(&srv, "fetch", tidebase_fixtures::FETCH, "?allow=echo").await;

    let id = start(&srv, "fetch", json!({"url": up.url("/echo")})).await;
    let d = wait_status(&srv, &id, "completed").await;
    let body = d["run"]["result"]["body"].as_str().unwrap();
    assert!(body.starts_with("plain=[REDACTED] "), "{body}");
    assert_no_secret("the fetched body", body);
    assert_no_secret("run detail", &d.to_string());
    let (status, audit) = srv.get("/egress/receipts").await;
    assert_eq!(status, 200, "{audit}");
    assert_no_secret("the audit trail", &audit.to_string());
    let dump = database_dump(&srv).await;
    assert!(dump.contains("echo"), "the dump holds the resource row");
    assert_no_secret("the database", &dump);
    assert!(
        !dump.contains(&hex::encode(SECRET)),
        "the database holds the secret as hex"
    );
}

/// Calls to a host no grant covers, under a path or with a method the
/// resource does not allow are denied before they leave the host, and
/// recorded; a redirect to another host comes back to the workflow as is.
async fn calls_outside_the_grants_are_denied_and_audited(srv: TestServer) {
    let other = Upstream::start(|_| Reply::ok("other")).await;
    let location = other.url("/api/v1/ok");
    let up = Upstream::start(move |hit| match hit.path.as_str() {
        "/api/v1/redirect" => Reply::Answer {
            status: 302,
            headers: vec![("location", location.clone())],
            body: Vec::new(),
        },
        _ => Reply::ok("ok"),
    })
    .await;
    connect_with(
        &srv,
        "api",
        &up.url("/api"),
        vec!["GET".into()],
        vec!["/v1".into()],
        None,
    )
    .await;
    connect_with(
        &srv,
        "writer",
        &up.url("/w"),
        vec!["POST".into()],
        Vec::new(),
        None,
    )
    .await;
    deploy(&srv, "fetch", tidebase_fixtures::FETCH, "?allow=api,writer").await;

    let id = start(&srv, "fetch", json!({"url": up.url("/api/v1/ok")})).await;
    let d = wait_status(&srv, &id, "completed").await;
    assert_eq!(d["run"]["result"]["body"], "ok");

    let mut denied = Vec::new();
    for (case, url) in [
        ("another host", other.url("/api/v1/ok")),
        ("another path", up.url("/api/v2/ok")),
        ("another method", up.url("/w/x")),
    ] {
        let id = start(&srv, "fetch", json!({"url": url})).await;
        let d = wait_status(&srv, &id, "failed").await;
        assert_eq!(
            failure(&d).0,
            "egress_denied",
            "{case}: {}",
            d["run"]["error"]
        );
        let events = d["events"].as_array().unwrap();
        assert_eq!(count_events(events, "egress.call"), 1, "{case}");
        let receipt = &events.iter().find(|e| e["type"] == "egress.call").unwrap()["payload"];
        assert_eq!(receipt["decision"], "denied", "{case}: {receipt}");
        assert!(
            receipt["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{case}: {receipt}"
        );
        denied.push(id);
    }
    let id = start(&srv, "fetch", json!({"url": up.url("/api/v1/redirect")})).await;
    let d = wait_status(&srv, &id, "completed").await;
    assert_eq!(
        d["run"]["result"]["status"], 302,
        "a redirect is not followed"
    );

    assert_eq!(
        up.hits().len(),
        2,
        "only the allowed calls reached the upstream"
    );
    assert!(
        other.hits().is_empty(),
        "a denied call or the redirect reached the other host"
    );
    let (status, audit) = srv.get("/egress/receipts?decision=denied").await;
    assert_eq!(status, 200, "{audit}");
    let audited: Vec<&str> = audit["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["runId"].as_str().unwrap())
        .collect();
    for id in &denied {
        assert!(
            audited.contains(&id.as_str()),
            "run {id} has no denied receipt"
        );
    }
}

/// Without `TIDEBASE_ALLOW_PRIVATE_EGRESS`, loopback, private, link-local
/// (the metadata endpoint) and IPv4-mapped IPv6 addresses are refused even
/// under a granted resource.
async fn private_addresses_are_refused_without_the_flag(srv: TestServer) {
    let up = Upstream::start(|_| Reply::ok("reached")).await;
    let port = up.origin.rsplit(':').next().unwrap().to_string();
    let targets = [
        up.url("/x"),
        "http://10.0.0.1/x".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://[::ffff:127.0.0.1]:{port}/x"),
    ];
    let mut names = Vec::new();
    for (i, url) in targets.iter().enumerate() {
        let origin = url.split('/').take(3).collect::<Vec<_>>().join("/");
        let name = format!("private-{i}");
        connect(&srv, &name, &origin, None).await;
        names.push(name);
    }
    deploy(
        &srv,
        "fetch",
        tidebase_fixtures::FETCH,
        &format!("?allow={}", names.join(",")),
    )
    .await;
    for url in &targets {
        let id = start(&srv, "fetch", json!({"url": url})).await;
        let d = wait_status(&srv, &id, "failed").await;
        assert_eq!(
            failure(&d).0,
            "egress_denied",
            "{url}: {}",
            d["run"]["error"]
        );
    }
    assert!(up.hits().is_empty(), "a private address was reached");
}

/// A hanging upstream fails the run with class `egress_timeout` once the
/// deployment's egress timeout passes.
async fn a_hanging_upstream_times_out(srv: TestServer) {
    let up = Upstream::start(|_| Reply::Hang).await;
    connect(&srv, "slow", &up.origin, None).await;
    deploy(
        &srv,
        "fetch",
        tidebase_fixtures::FETCH,
        "?allow=slow&egressTimeoutMs=300",
    )
    .await;

    let started = Instant::now();
    let id = start(&srv, "fetch", json!({"url": up.url("/hang")})).await;
    let d = wait_status(&srv, &id, "failed").await;
    let (class, name, _) = failure(&d);
    assert_eq!(
        (class, name),
        ("egress_timeout", "EgressTimeout"),
        "{}",
        d["run"]["error"]
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
}

/// Revoking a resource denies the next call of a workflow granted it.
async fn a_revoked_resource_denies_new_calls(srv: TestServer) {
    let up = Upstream::start(|_| Reply::ok("ok")).await;
    connect(&srv, "local", &up.origin, None).await;
    deploy(&srv, "fetch", tidebase_fixtures::FETCH, "?allow=local").await;
    let input = json!({"url": up.url("/x")});
    let id = start(&srv, "fetch", input.clone()).await;
    wait_status(&srv, &id, "completed").await;

    srv.engine.revoke_resource("local").await.expect("revoke");
    let id = start(&srv, "fetch", input).await;
    let d = wait_status(&srv, &id, "failed").await;
    assert_eq!(failure(&d).0, "egress_denied", "{}", d["run"]["error"]);
    assert_eq!(up.hits().len(), 1);
}

backend_tests!(
    the_credential_is_injected = Opts::egress(),
    an_echoed_secret_is_redacted = Opts::egress(),
    calls_outside_the_grants_are_denied_and_audited = Opts::egress(),
    private_addresses_are_refused_without_the_flag = Opts::wasm(),
    a_hanging_upstream_times_out = Opts::egress(),
    a_revoked_resource_denies_new_calls = Opts::egress(),
    the_admin_ledger_shows_wasm_egress = Opts {
        api_key: Some("admin-key".into()),
        ..Opts::egress()
    },
);

/// One audit trail for both doors: `GET /audit` with the admin key lists
/// the wasm door's egress receipts beside grant events (our addition); an
/// agent session, scoped to its tenant's grant runs, sees none of them.
async fn the_admin_ledger_shows_wasm_egress(srv: TestServer) {
    let up = Upstream::start(|_| Reply::ok("ok")).await;
    connect_with(
        &srv,
        "api",
        &up.url("/api"),
        vec!["GET".into()],
        Vec::new(),
        None,
    )
    .await;
    deploy(&srv, "fetch", tidebase_fixtures::FETCH, "?allow=api").await;
    let allowed = start(&srv, "fetch", json!({"url": up.url("/api/items?page=2")})).await;
    wait_status(&srv, &allowed, "completed").await;
    let denied = start(&srv, "fetch", json!({"url": up.url("/elsewhere")})).await;
    wait_status(&srv, &denied, "failed").await;

    let (status, ledger) = srv.get("/audit").await;
    assert_eq!(status, 200, "{ledger}");
    let entry = |run: &str| {
        let found = ledger
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["runId"] == run);
        found
            .unwrap_or_else(|| panic!("no entry of {run}: {ledger}"))
            .clone()
    };
    let events = srv.events(&allowed).await;
    let seq = &events.iter().find(|e| e["type"] == "egress.call").unwrap()["seq"];
    let first = entry(&allowed);
    assert_eq!(
        first,
        json!({"seq": seq, "type": "egress.call", "grantId": "", "resource": "api",
               "action": "GET /api/items", "agentId": null, "at": first["at"], "runId": allowed})
    );
    assert_eq!(entry(&denied)["action"], "GET /elsewhere");
    let (_, only_grants) = srv.get("/audit?types=grant.used").await;
    assert_eq!(only_grants, json!([]));

    let (status, agent) = srv
        .post("/agents", json!({"name": "sdk", "principal": "acme"}))
        .await;
    assert_eq!(status, 200, "{agent}");
    let path = format!("/agents/{}/prove", agent["agentId"].as_str().unwrap());
    let (_, session) = srv.post(&path, json!({})).await;
    let token = session["sessionToken"].as_str().unwrap();
    let rb = srv.bare(Method::GET, "/audit").bearer_auth(token);
    let r = TestServer::send(rb).await;
    assert_eq!((r.status, r.json()), (200, json!([])));
}
