//! The doors of brokered egress that are not the wasm import: `resources
//! connect|list|revoke` through the real binary (secrets never printed, the
//! master key file owner-only), grants with `deploy --allow` and
//! `POST /workflows/:name?allow=`, and `GET /audit` (filters, pages, the
//! same receipts as the runs' `egress.call` events).

use crate::cli::{host, output, text};
use crate::harness::{Opts, TestServer, is_timestamp};
use crate::webhooks::Receiver;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use tidebase_host::config::Settings;
use tidebase_host::engine::{
    Begun, ComponentCheck, DeployLimits, EgressRequest, Engine, Injection, NewResource,
};

const SECRET: &str = "s3cr3t-t0ken-for-egress-cli";

/// `tidebase-host ARGS` on the test server's database, with no egress
/// settings inherited from the environment that runs the tests.
fn cli(srv: &TestServer, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = host(srv, dir, args);
    cmd.env_remove("TIDEBASE_MASTER_KEY")
        .env_remove("TIDEBASE_ALLOW_PRIVATE_EGRESS");
    cmd
}

/// Run `cmd` with `stdin` as its standard input.
async fn with_stdin(mut cmd: Command, stdin: &'static str) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tidebase-host");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// Both streams of a finished command, for assertions and messages.
fn streams(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// Asserts a command succeeded and returns its stdout as JSON.
fn ok_json(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", streams(out));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Asserts a command failed (exit `code`) and says why: `needles` in stderr.
fn refused(out: &Output, code: i32, needles: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{}", streams(out));
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
}

/// Connect, list and revoke through the binary: what is stored comes back
/// in `list`, secret material never does, revoked resources say so, and the
/// key that encrypts secrets is an owner-only file in the data dir unless
/// `TIDEBASE_MASTER_KEY` is set. Needs the broker core.
async fn resources_connect_list_revoke(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let mut connect = cli(
        &srv,
        dir.path(),
        &[
            "resources",
            "connect",
            "github",
            "--base-url",
            "https://api.github.com",
            "--secret-env",
            "GH_TOKEN_FOR_TEST",
            "--methods",
            "get,post",
            "--paths",
            "/repos,/user",
        ],
    );
    connect.env("GH_TOKEN_FOR_TEST", SECRET);
    let out = output(connect).await;
    assert!(!streams(&out).contains(SECRET), "{}", streams(&out));
    let github = ok_json(&out)["resource"].clone();
    assert_eq!(github["name"], "github");
    // The base URL is pinned in its normalised form.
    assert_eq!(github["baseUrl"], "https://api.github.com/");
    assert_eq!(github["methods"], json!(["GET", "POST"]));
    assert_eq!(github["paths"], json!(["/repos", "/user"]));
    assert_eq!(github["hasSecret"], true);
    assert_eq!(github["status"], "active");
    assert_eq!(
        github["injection"],
        json!({"header": "authorization", "format": "Bearer {secret}"})
    );
    assert!(is_timestamp(&github["createdAt"]), "{github}");
    assert!(github["revokedAt"].is_null());

    let key_file = dir.path().join("master.key");
    let key = std::fs::read(&key_file).expect("connect with a secret creates master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "master.key is owner-only");
    }

    let out = with_stdin(
        cli(
            &srv,
            dir.path(),
            &[
                "resources",
                "connect",
                "hooks",
                "--base-url",
                "https://hooks.example/v1",
                "--secret-stdin",
                "--query-param",
                "key",
            ],
        ),
        "s3cr3t-t0ken-for-egress-cli\n",
    )
    .await;
    assert!(!streams(&out).contains(SECRET), "{}", streams(&out));
    let hooks = ok_json(&out)["resource"].clone();
    assert_eq!(hooks["hasSecret"], true);
    assert_eq!(hooks["methods"], json!([]));
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        key,
        "the key file is read, not replaced"
    );

    let out = output(cli(
        &srv,
        dir.path(),
        &[
            "resources",
            "connect",
            "open",
            "--base-url",
            "https://open.example",
        ],
    ))
    .await;
    assert_eq!(ok_json(&out)["resource"]["hasSecret"], false);

    let table = output(cli(&srv, dir.path(), &["resources", "list"])).await;
    assert_eq!(table.status.code(), Some(0), "{}", streams(&table));
    let listed = text(&table.stdout);
    assert!(!streams(&table).contains(SECRET), "{listed}");
    for name in [
        "github",
        "hooks",
        "open",
        "https://api.github.com",
        "GET,POST",
    ] {
        assert!(listed.contains(name), "{name} not in:\n{listed}");
    }

    let revoke = output(cli(&srv, dir.path(), &["resources", "revoke", "github"])).await;
    let revoked = ok_json(&revoke)["resource"].clone();
    assert_eq!(revoked["status"], "revoked");
    assert!(is_timestamp(&revoked["revokedAt"]), "{revoked}");

    let out = output(cli(&srv, dir.path(), &["resources", "list", "--json"])).await;
    assert!(!streams(&out).contains(SECRET));
    let listed = ok_json(&out)["resources"].clone();
    let status_of = |name: &str| {
        let r = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name);
        r.unwrap_or_else(|| panic!("{name} not listed: {listed}"))["status"].clone()
    };
    assert_eq!(
        (status_of("github"), status_of("hooks"), status_of("open")),
        (json!("revoked"), json!("active"), json!("active"))
    );

    let out = output(cli(&srv, dir.path(), &["resources", "revoke", "nope"])).await;
    refused(&out, 1, &["nope", "not found"]);

    // With TIDEBASE_MASTER_KEY set, no key file is needed or written.
    let other = tempfile::tempdir().unwrap();
    let mut keyed = cli(
        &srv,
        other.path(),
        &[
            "resources",
            "connect",
            "keyed",
            "--base-url",
            "https://keyed.example",
            "--secret-env",
            "GH_TOKEN_FOR_TEST",
            "--header",
            "x-api-key",
        ],
    );
    keyed
        .env("GH_TOKEN_FOR_TEST", SECRET)
        .env("TIDEBASE_MASTER_KEY", "ab".repeat(32));
    let keyed = ok_json(&output(keyed).await)["resource"].clone();
    assert_eq!(keyed["hasSecret"], true);
    assert_eq!(
        keyed["injection"],
        json!({"header": "x-api-key", "format": "{secret}"}),
        "a header of one's own naming carries the bare secret"
    );
    assert!(!other.path().join("master.key").exists());
}

/// Flags that cannot work are refused with a sentence that names them, and
/// nothing is connected. Passes without the broker core.
async fn resources_refuse_bad_flags(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let connect = |extra: &[&str]| {
        let mut args = vec!["resources", "connect", "api"];
        args.extend_from_slice(extra);
        cli(&srv, dir.path(), &args)
    };
    let base = ["--base-url", "https://api.example"];

    // clap's usage errors: exit 2.
    refused(&output(connect(&[])).await, 2, &["--base-url"]);
    let both = [&base[..], &["--secret-env", "X", "--secret-stdin"]].concat();
    refused(
        &output(connect(&both)).await,
        2,
        &["--secret-env", "--secret-stdin"],
    );
    let header_and_query = [&base[..], &["--header", "x-key", "--query-param", "key"]].concat();
    refused(
        &output(connect(&header_and_query)).await,
        2,
        &["--header", "--query-param"],
    );

    let unset = [&base[..], &["--secret-env", "TB_TEST_UNSET_VARIABLE"]].concat();
    let mut cmd = connect(&unset);
    cmd.env_remove("TB_TEST_UNSET_VARIABLE");
    refused(
        &output(cmd).await,
        1,
        &["TB_TEST_UNSET_VARIABLE", "not set"],
    );
    let stdin = [&base[..], &["--secret-stdin"]].concat();
    refused(
        &with_stdin(connect(&stdin), "\n").await,
        1,
        &["--secret-stdin", "no secret"],
    );

    let with_secret = [&base[..], &["--secret-env", "TB_TEST_SECRET"]].concat();
    let mut cmd = connect(&with_secret);
    cmd.env("TB_TEST_SECRET", SECRET)
        .env("TIDEBASE_MASTER_KEY", "not a key");
    let out = output(cmd).await;
    refused(&out, 1, &["TIDEBASE_MASTER_KEY"]);
    assert!(!streams(&out).contains(SECRET));
    assert!(!dir.path().join("master.key").exists());

    let mut cmd = cli(&srv, dir.path(), &["resources", "list"]);
    cmd.env("TIDEBASE_ALLOW_PRIVATE_EGRESS", "yes");
    refused(
        &output(cmd).await,
        1,
        &["TIDEBASE_ALLOW_PRIVATE_EGRESS", "1 or 0"],
    );
}

/// Deploy-time egress limits are checked at both doors before anything is
/// deployed. Passes without the broker core.
async fn deploy_egress_limits_are_checked(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let deploy = |flag: &str, value: &str| {
        cli(
            &srv,
            dir.path(),
            &["deploy", tidebase_fixtures::REPORT, flag, value],
        )
    };
    let out = output(deploy("--egress-timeout-ms", "0")).await;
    refused(&out, 2, &["--egress-timeout-ms", "between 1 and 300000"]);
    let out = output(deploy("--egress-max-bytes", "268435457")).await;
    refused(&out, 2, &["--egress-max-bytes", "between 1 and 268435456"]);

    let bytes = std::fs::read(tidebase_fixtures::REPORT).unwrap();
    for (query, param) in [
        ("egressTimeoutMs=0", "egressTimeoutMs"),
        ("egressTimeoutMs=300001", "egressTimeoutMs"),
        ("egressMaxBytes=abc", "egressMaxBytes"),
        ("allow=ok,%00", "allow"),
    ] {
        let rb = srv
            .request(Method::POST, &format!("/workflows/report?{query}"))
            .body(bytes.clone());
        let r = TestServer::send(rb).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        let error = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            error.contains("query parameter") && error.contains(param),
            "{query}: {error}"
        );
    }
    let (_, listed) = srv.get("/workflows").await;
    assert_eq!(listed["deployments"], json!([]), "nothing was deployed");
}

/// A deploy grants only resources that exist: an unknown name is refused
/// (CLI and HTTP) naming it; granted names come back as the deployment's
/// `allow`, and redeploying the same grants is no new version. Needs the
/// broker core.
async fn deploy_allow_grants_connected_resources(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let out = output(cli(
        &srv,
        dir.path(),
        &["deploy", tidebase_fixtures::REPORT, "--allow", "ghost"],
    ))
    .await;
    refused(&out, 1, &["ghost"]);
    let out = output(cli(
        &srv,
        dir.path(),
        &[
            "run",
            tidebase_fixtures::REPORT,
            "--allow",
            "ghost",
            "--no-wait",
        ],
    ))
    .await;
    refused(&out, 1, &["ghost"]);

    for name in ["alpha", "beta"] {
        let base = format!("https://{name}.example");
        let out = output(cli(
            &srv,
            dir.path(),
            &["resources", "connect", name, "--base-url", &base],
        ))
        .await;
        ok_json(&out);
    }
    let out = output(cli(
        &srv,
        dir.path(),
        &[
            "deploy",
            tidebase_fixtures::REPORT,
            "--allow",
            "alpha,beta",
            "--egress-timeout-ms",
            "2500",
        ],
    ))
    .await;
    let deployed = ok_json(&out);
    assert_eq!(deployed["allow"], json!(["alpha", "beta"]), "{deployed}");

    let bytes = std::fs::read(tidebase_fixtures::REPORT).unwrap();
    let post = |query: &'static str| {
        let rb = srv
            .request(Method::POST, &format!("/workflows/report{query}"))
            .body(bytes.clone());
        TestServer::send(rb)
    };
    let r = post("?allow=alpha,ghost").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.json()["error"].as_str().unwrap().contains("ghost"));

    let first = post("?allow=alpha").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let first = first.json()["deployment"].clone();
    assert_eq!(first["allow"], json!(["alpha"]));
    assert_eq!(first["version"], deployed["version"].as_i64().unwrap() + 1);
    let again = post("?allow=alpha").await.json()["deployment"].clone();
    assert_eq!(again["id"], first["id"], "same bytes and grants: no-op");
}

/// Accepts any bytes: the audit test pins runs to a deployment it never
/// executes.
struct AnyBytes;

#[async_trait::async_trait]
impl ComponentCheck for AnyBytes {
    async fn check(&self, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// A second engine on the server's store that may reach the local upstream,
/// standing in for the wasm door (another branch) that calls
/// `Engine::egress` from a guest.
fn broker(srv: &TestServer) -> Engine {
    let settings = Settings {
        allow_private_egress: true,
        ..Settings::default()
    };
    Engine::new(
        srv.engine.store().clone(),
        tidebase_host::clock::system(),
        settings,
    )
    .with_component_check(Arc::new(AnyBytes))
}

/// Make `urls` calls from step `fetch` of a new run of `workflow`; returns
/// the run id.
async fn calls_from_a_step(
    srv: &TestServer,
    engine: &Engine,
    workflow: &str,
    urls: &[&str],
) -> String {
    let run_id = srv.create_run(workflow).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let owner = "audit-test";
    let claimed = engine
        .claim_wasm_runs(owner, 1, Some(&run_id))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let mut activation = engine.activation(&run_id, owner).await.unwrap();
    let begun = activation
        .begin_step("fetch".into(), json!({"input": {}}), None)
        .await
        .unwrap();
    assert!(matches!(begun, Begun::Execute(_)));
    for url in urls {
        let caller = activation.egress_caller().unwrap();
        let req = EgressRequest {
            method: "GET".into(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        // Refused calls are receipts too; the outcome itself is the core's.
        let _ = engine.egress(caller, req).await;
    }
    run_id
}

async fn audit(srv: &TestServer, query: &str) -> Value {
    let (status, page) = srv.get(&format!("/egress/receipts{query}")).await;
    assert_eq!(status, 200, "{query}: {page}");
    page
}

fn ids(page: &Value) -> Vec<String> {
    page["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every egress decision is a receipt: `GET /audit` lists them newest first,
/// filters by run, resource and decision, pages with `before`/`nextCursor`
/// without losing or repeating one, and each is also its run's `egress.call`
/// event. Needs the broker core.
async fn audit_filters_and_pages(srv: TestServer) {
    let upstream = Receiver::ok().await;
    let origin = upstream.url.trim_end_matches("/hook").to_string();
    let engine = broker(&srv);
    engine
        .connect_resource(NewResource {
            name: "up".into(),
            base_url: Some(format!("{origin}/api")),
            methods: Vec::new(),
            paths: Vec::new(),
            secret: None,
            injection: Injection::Header {
                name: "authorization".into(),
                format: "Bearer {secret}".into(),
            },
            ..NewResource::default()
        })
        .await
        .unwrap();
    let grants = DeployLimits {
        allow: vec!["up".into()],
        ..DeployLimits::default()
    };
    engine
        .deploy("fetcher", b"component", grants)
        .await
        .unwrap();

    let allowed = [
        format!("{origin}/api/one?token=query-value"),
        format!("{origin}/api/two"),
        format!("{origin}/api/three"),
    ];
    let outside = format!("{origin}/elsewhere");
    let a_urls: Vec<&str> = allowed
        .iter()
        .map(String::as_str)
        .chain([outside.as_str(), "http://10.255.0.1/api"])
        .collect();
    let run_a = calls_from_a_step(&srv, &engine, "fetcher", &a_urls).await;
    let run_b = calls_from_a_step(&srv, &engine, "fetcher", &[&outside]).await;
    assert_eq!(upstream.hits().len(), 3, "only the allowed calls went out");

    let all = audit(&srv, "").await;
    let receipts = all["receipts"].as_array().unwrap().clone();
    assert_eq!(receipts.len(), 6, "{all:#}");
    assert!(all["nextCursor"].is_null());
    for r in &receipts {
        for key in [
            "id",
            "runId",
            "step",
            "attempt",
            "resource",
            "method",
            "host",
            "path",
            "decision",
            "reason",
            "class",
            "status",
            "bytes",
            "durationMs",
            "at",
        ] {
            assert!(r.get(key).is_some(), "receipt without {key}: {r}");
        }
        assert!(is_timestamp(&r["at"]), "{r}");
        assert_eq!(r["step"], "fetch");
        assert!(!r["path"].as_str().unwrap().contains('?'), "{r}");
    }
    assert!(!all.to_string().contains("query-value"), "no query values");
    let at: Vec<i64> = receipts
        .iter()
        .map(|r| crate::harness::ms(&r["at"]))
        .collect();
    assert!(at.windows(2).all(|w| w[0] >= w[1]), "newest first: {at:?}");

    let count = |page: &Value| page["receipts"].as_array().unwrap().len();
    assert_eq!(count(&audit(&srv, &format!("?runId={run_a}")).await), 5);
    assert_eq!(count(&audit(&srv, &format!("?runId={run_b}")).await), 1);
    let allowed_page = audit(&srv, "?decision=allowed").await;
    assert_eq!(count(&allowed_page), 3);
    assert_eq!(count(&audit(&srv, "?decision=denied").await), 3);
    let by_resource = audit(&srv, "?resource=up").await;
    assert!(count(&by_resource) >= 3, "{by_resource:#}");
    assert!(
        by_resource["receipts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["resource"] == "up")
    );
    let both = audit(&srv, &format!("?runId={run_a}&decision=denied")).await;
    assert_eq!(count(&both), 2);
    assert!(
        allowed_page["receipts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == 200 && r["class"].is_null())
    );

    // Pages of two, following the cursor, give the full listing in order.
    let mut paged = Vec::new();
    let mut query = "?limit=2".to_string();
    loop {
        let page = audit(&srv, &query).await;
        assert!(count(&page) <= 2);
        paged.extend(ids(&page));
        match page["nextCursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&before={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, ids(&all));
    assert_eq!(paged.iter().collect::<HashSet<_>>().len(), 6);

    // The run's event stream holds the same receipts.
    for run in [&run_a, &run_b] {
        let from_audit = audit(&srv, &format!("?runId={run}")).await["receipts"].clone();
        let mut events: Vec<Value> = srv
            .events(run)
            .await
            .into_iter()
            .filter(|e| e["type"] == "egress.call")
            .map(|e| e["payload"].clone())
            .collect();
        events.reverse();
        assert_eq!(json!(events), from_audit, "events of {run}");
    }
}

/// `GET /audit`'s parameters are checked like every other: a 400 naming
/// the parameter and its bound. Passes without the broker core.
async fn audit_refuses_bad_parameters(srv: TestServer) {
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("decision=maybe", "decision"),
        ("runId=", "runId"),
        ("resource=a%00b", "resource"),
        ("before=", "before"),
    ] {
        let (status, body) = srv.get(&format!("/egress/receipts?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("query parameter") && error.contains(param),
            "{query}: {error}"
        );
        assert_eq!(body["issues"][0]["path"], json!([param]), "{body}");
    }
}

backend_tests!(
    resources_connect_list_revoke,
    resources_refuse_bad_flags,
    deploy_egress_limits_are_checked,
    deploy_allow_grants_connected_resources = Opts::wasm(),
    audit_filters_and_pages,
    audit_refuses_bad_parameters,
);
