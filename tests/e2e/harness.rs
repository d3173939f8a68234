//! An in-process tidebase-host on an ephemeral port, backed by a fresh
//! database per test (Postgres database or SQLite file), plus small HTTP
//! helpers that return `(status, json)`.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sqlx::Connection;
use std::path::PathBuf;
use std::sync::Arc;
use tidebase_host::config::{IdentitySettings, Settings};
use tidebase_host::engine::{Engine, GroupCommit, Vault};
use tidebase_host::store::{ConnectOptions, Store};

pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The master key of every test server's vault (resource secrets).
pub const VAULT_KEY: [u8; 32] = [0x5a; 32];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Server options a test can ask for.
#[derive(Clone, Debug)]
pub struct Opts {
    pub lease_ms: i64,
    pub api_key: Option<String>,
    /// `TIDEBASE_WEBHOOK_SECRET` (recovery and invoke webhook signatures).
    pub webhook_secret: Option<String>,
    /// `TIDEBASE_WEBHOOK_TIMEOUT_MS`.
    pub webhook_timeout_ms: u64,
    /// Concurrent wasm activations of the in-process worker (0: no worker).
    pub wasm_workers: usize,
    /// `TIDEBASE_CORS_ORIGIN`.
    pub cors_origin: String,
    /// `TIDEBASE_ALLOW_PRIVATE_EGRESS`: local upstreams on 127.0.0.1.
    pub allow_private_egress: bool,
    /// A master key ([`VAULT_KEY`]): resource secrets can be vaulted.
    pub master_key: bool,
    /// The broker's identity and abuse settings (`TIDEBASE_PROVE_RATE`, …).
    pub identity: IdentitySettings,
    /// Compiled components are cached on disk across servers and test
    /// processes (large Python components), as `serve` does in its data dir.
    pub compile_cache: bool,
    /// `TIDEBASE_WASM_GROUP_COMMIT`.
    pub group_commit: GroupCommit,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            lease_ms: 60_000,
            api_key: None,
            webhook_secret: None,
            webhook_timeout_ms: 10_000,
            wasm_workers: 0,
            cors_origin: "*".into(),
            allow_private_egress: false,
            master_key: true,
            identity: IdentitySettings::default(),
            compile_cache: false,
            group_commit: GroupCommit::default(),
        }
    }
}

impl Opts {
    pub fn lease_ms(ms: i64) -> Opts {
        Opts {
            lease_ms: ms,
            ..Opts::default()
        }
    }

    pub fn api_key(key: &str) -> Opts {
        Opts {
            api_key: Some(key.to_string()),
            ..Opts::default()
        }
    }

    /// A server that also executes deployed wasm workflows.
    pub fn wasm() -> Opts {
        Opts {
            wasm_workers: 16,
            ..Opts::default()
        }
    }

    /// A wasm server for Python components: their compiled artifacts are
    /// shared through the disk cache of `tests/e2e/python.rs`.
    pub fn python() -> Opts {
        Opts {
            compile_cache: true,
            ..Opts::wasm()
        }
    }

    /// A wasm server whose workflows may reach upstreams on 127.0.0.1.
    pub fn egress() -> Opts {
        Opts {
            allow_private_egress: true,
            ..Opts::wasm()
        }
    }
}

/// What the test database is, so it can be removed afterwards.
enum Db {
    Postgres { admin_url: String, name: String },
    Sqlite { dir: PathBuf },
}

/// A full HTTP response, for tests that look past the JSON body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct TestServer {
    pub backend: Backend,
    pub base: String,
    pub client: reqwest::Client,
    pub opts: Opts,
    /// The server's engine, for driving background work (reconciler ticks)
    /// directly from tests.
    pub engine: Engine,
    /// The database URL the server uses (for CLI processes in tests).
    pub db_url: String,
    store: Option<Arc<dyn Store>>,
    server: tokio::task::JoinHandle<()>,
    worker: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
    db: Option<Db>,
}

pub fn admin_url() -> String {
    std::env::var("TIDEBASE_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_string())
}

/// The admin URL with its database name replaced by `name`.
pub fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

pub async fn drop_pg_database(admin: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

impl TestServer {
    #[allow(dead_code)] // harness API; the macro goes through start_with
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::start_with(backend, Opts::default()).await
    }

    pub async fn start_with(backend: Backend, opts: Opts) -> TestServer {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let (url, db) = match backend {
            Backend::Postgres => {
                let admin = admin_url();
                let name = format!("tb_e2e_{tag}");
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!(
                        "cannot reach Postgres at {admin} ({e}); start it with \
                         `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
                         or set TIDEBASE_TEST_DATABASE_URL"
                    )
                });
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                (
                    database_url(&admin, &name),
                    Db::Postgres {
                        admin_url: admin,
                        name,
                    },
                )
            }
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("tb_e2e_{tag}"));
                std::fs::create_dir_all(&dir).expect("create sqlite temp dir");
                (
                    format!("sqlite://{}/t.db", dir.display()),
                    Db::Sqlite { dir },
                )
            }
        };
        let connect = ConnectOptions {
            database_url: Some(url.clone()),
            data_dir: std::env::temp_dir(),
            auto_migrate: true,
            max_connections: 20,
        };
        let store = tidebase_host::store::connect(&connect)
            .await
            .expect("connect store");
        let settings = Settings {
            lease_ms: opts.lease_ms,
            api_key: opts.api_key.clone(),
            webhook_secret: opts.webhook_secret.clone(),
            webhook_timeout_ms: opts.webhook_timeout_ms,
            cors_origin: opts.cors_origin.clone(),
            allow_private_egress: opts.allow_private_egress,
            identity: opts.identity.clone(),
            wasm_group_commit: opts.group_commit,
            ..Settings::default()
        };
        let engine = Engine::new(store.clone(), tidebase_host::clock::system(), settings)
            .with_vault(opts.master_key.then(|| Vault::new(VAULT_KEY)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        // Only wasm tests get a runtime: the pooling allocator reserves a lot
        // of address space per instance slot.
        let runtime = (opts.wasm_workers > 0).then(|| {
            let config = tidebase_host::runtime::RuntimeConfig {
                instances: opts.wasm_workers as u32,
                cache_dir: opts.compile_cache.then(crate::python::compile_cache),
                ..Default::default()
            };
            Arc::new(tidebase_host::runtime::Runtime::new(config).expect("wasm runtime"))
        });
        let engine = match &runtime {
            Some(runtime) => engine.with_component_check(runtime.clone()),
            None => engine,
        };
        let worker = runtime.clone().map(|runtime| {
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let w = tidebase_host::worker::Worker::new(engine.clone(), runtime, opts.wasm_workers);
            (stop, tokio::spawn(w.run(stopped)))
        });
        let app = tidebase_host::api::router(engine.clone());
        let limits = tidebase_host::api::ConnLimits::default();
        let server = tokio::spawn(tidebase_host::api::serve(
            listener,
            app,
            limits,
            std::future::pending(),
        ));
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        TestServer {
            backend,
            base: format!("http://{addr}"),
            client,
            opts,
            engine,
            db_url: url,
            store: Some(store),
            server,
            worker,
            db: Some(db),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request carrying the configured API key (if any).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, self.url(path));
        match &self.opts.api_key {
            Some(key) => rb.header("authorization", format!("Bearer {key}")),
            None => rb,
        }
    }

    /// A request with no credentials at all.
    pub fn bare(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
        let res = rb.send().await.expect("request failed");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("read body");
        Resp {
            status,
            headers,
            text,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self.request(method, path);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = TestServer::send(rb).await;
        let v = if r.text.is_empty() {
            Value::Null
        } else {
            r.json()
        };
        (r.status, v)
    }

    /// A request with a raw body (not necessarily JSON).
    pub async fn raw(&self, method: Method, path: &str, body: impl Into<reqwest::Body>) -> Resp {
        let rb = self
            .request(method, path)
            .header("content-type", "application/json")
            .body(body);
        TestServer::send(rb).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// `POST /runs/:workflow` and return the run.
    pub async fn create_run(&self, workflow: &str) -> Value {
        let (status, body) = self.post(&format!("/runs/{workflow}"), json!({})).await;
        assert_eq!(status, 200, "create run: {body}");
        body["run"].clone()
    }

    /// `POST /runs/:id/begin` as `owner`; returns (status, body).
    pub async fn begin_run(&self, run_id: &str, owner: &str) -> (u16, Value) {
        let rb = self
            .request(Method::POST, &format!("/runs/{run_id}/begin"))
            .header("x-tidebase-worker", owner);
        let r = TestServer::send(rb).await;
        (r.status, r.json())
    }

    /// A created and begun run (owner `owner`); returns its id.
    pub async fn running_run(&self, workflow: &str, owner: &str) -> String {
        let id = self.create_run(workflow).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, body) = self.begin_run(&id, owner).await;
        assert_eq!(status, 200, "begin run: {body}");
        id
    }

    pub async fn detail(&self, run_id: &str) -> Value {
        let (status, body) = self.get(&format!("/runs/{run_id}")).await;
        assert_eq!(status, 200, "run detail: {body}");
        body
    }

    pub async fn events(&self, run_id: &str) -> Vec<Value> {
        self.detail(run_id).await["events"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub async fn step_begin(&self, run_id: &str, body: Value) -> Value {
        let (status, res) = self
            .post(&format!("/runs/{run_id}/steps/begin"), body)
            .await;
        assert_eq!(status, 200, "step begin: {res}");
        res
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.abort();
        if let Some((stop, task)) = self.worker.take() {
            let _ = stop.send(true);
            task.abort();
        }
        // Close the pool before dropping the database it points at.
        self.store.take();
        let Some(db) = self.db.take() else { return };
        match db {
            Db::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Db::Postgres { admin_url, name } => {
                // Drop runs inside a tokio runtime; do the async cleanup on a
                // plain thread with its own runtime. Best effort.
                let cleanup = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    if let Ok(rt) = rt
                        && let Err(e) = rt.block_on(drop_pg_database(&admin_url, &name))
                    {
                        eprintln!("warning: could not drop test database {name}: {e}");
                    }
                });
                let _ = cleanup.join();
            }
        }
    }
}

/// Expand each test into one `#[tokio::test]` per backend:
/// `name::postgres` and `name::sqlite`, each on a fresh database.
///
/// Two spellings:
/// - `backend_tests! { async fn name(srv: TestServer [= opts]) { .. } .. }`
///   wraps the bodies given inline;
/// - `backend_tests!(name, other = opts, ..);` wraps the ordinary
///   `async fn name(srv: TestServer)` of the same module (which rustfmt
///   can format). A module and a function may share a name.
///
/// The optional `= opts` (an `Opts` expression) chooses server options.
macro_rules! backend_tests {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($srv:ident : TestServer $(= $opts:expr)?) $body:block
    )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($srv: $crate::harness::TestServer) $body

            fn opts() -> $crate::harness::Opts {
                #[allow(unused_mut, unused_assignments)]
                let mut o = $crate::harness::Opts::default();
                $( o = $opts; )?
                o
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let srv = $crate::harness::TestServer::start_with($crate::harness::Backend::Postgres, opts()).await;
                body(srv).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let srv = $crate::harness::TestServer::start_with($crate::harness::Backend::Sqlite, opts()).await;
                body(srv).await
            }
        }
    )*};
    ($($name:ident $(= $opts:expr)?),+ $(,)?) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn opts() -> $crate::harness::Opts {
                #[allow(unused_mut, unused_assignments)]
                let mut o = $crate::harness::Opts::default();
                $( o = $opts; )?
                o
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let srv = $crate::harness::TestServer::start_with($crate::harness::Backend::Postgres, opts()).await;
                super::$name(srv).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let srv = $crate::harness::TestServer::start_with($crate::harness::Backend::Sqlite, opts()).await;
                super::$name(srv).await
            }
        }
    )+};
}

/// `true` for `YYYY-MM-DDTHH:MM:SS.mmmZ`, the wire timestamp format.
pub fn is_timestamp(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    if b.len() != 24 {
        return false;
    }
    let pattern = b"dddd-dd-ddTdd:dd:dd.dddZ";
    b.iter().zip(pattern).all(|(c, p)| {
        if *p == b'd' {
            c.is_ascii_digit()
        } else {
            c == p
        }
    }) && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// A wire timestamp as milliseconds since the epoch.
pub fn ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("timestamp"))
        .unwrap()
        .timestamp_millis()
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The `id` of a wire object.
pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// `true` for `<prefix>_` + 32 lowercase hex.
pub fn is_id(v: &Value, prefix: &str) -> bool {
    let Some(s) = v.as_str() else { return false };
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .is_some_and(|hex| {
            hex.len() == 32 && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
        })
}

/// Events of `kind` in an event list.
pub fn count_events(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

/// Asserts an event list's seqs are exactly 1..=n in order.
pub fn assert_gap_free(events: &[Value]) {
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    let expected: Vec<i64> = (1..=events.len() as i64).collect();
    assert_eq!(seqs, expected, "event seqs are not exactly 1..=n");
}

/// Run `n` copies of a task concurrently (real parallel tasks) and collect
/// their results in index order.
pub async fn concurrently<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    // Start every task, then release them together so they overlap.
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let fut = f(i);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.expect("task panicked"));
    }
    out
}

/// A cheap handle for spawned tasks: base URL, client and key.
#[derive(Clone)]
pub struct Handle {
    pub base: String,
    pub client: reqwest::Client,
    pub api_key: Option<String>,
}

impl Handle {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.api_key {
            rb = rb.header("authorization", format!("Bearer {key}"));
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = TestServer::send(rb).await;
        let v = if r.text.is_empty() {
            Value::Null
        } else {
            r.json()
        };
        (r.status, v)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
}

impl TestServer {
    pub fn handle(&self) -> Handle {
        Handle {
            base: self.base.clone(),
            client: self.client.clone(),
            api_key: self.opts.api_key.clone(),
        }
    }
}

#[test]
fn database_url_replaces_the_database_name() {
    assert_eq!(
        database_url("postgres://u@h:5432/postgres", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        database_url("postgres://u@h/postgres?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
    assert_eq!(
        database_url("postgres://u@h:5432", "x"),
        "postgres://u@h:5432/x"
    );
}

/// Deploys placeholder bytes as `workflow`, pinning its new runs to a
/// component. For servers without a wasm runtime: nothing executes them,
/// which is the point of the queue tests that use this.
pub async fn pin_to_component(srv: &TestServer, workflow: &str) {
    struct Unchecked;
    #[async_trait::async_trait]
    impl tidebase_host::engine::ComponentCheck for Unchecked {
        async fn check(&self, _: &[u8]) -> Result<(), String> {
            Ok(())
        }
    }
    srv.engine
        .clone()
        .with_component_check(Arc::new(Unchecked))
        .deploy(workflow, b"placeholder", Default::default())
        .await
        .expect("deploy placeholder component");
}

/// Everything the test's database holds, as text: every row of every table
/// (Postgres, `bytea` shown as hex), or the raw database and WAL files
/// (SQLite). For checks that a value was never stored in the clear.
pub async fn database_dump(srv: &TestServer) -> String {
    match srv.backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&srv.db_url)
                .await
                .expect("connect to the test database");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_all(&mut conn)
            .await
            .expect("list tables");
            let mut dump = String::new();
            for table in tables {
                let sql = format!("SELECT CAST(t AS TEXT) FROM \"{table}\" t");
                let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut conn)
                    .await
                    .expect("dump a table");
                dump.extend(rows.into_iter().map(|r| r + "\n"));
            }
            dump
        }
        Backend::Sqlite => {
            let file = srv.db_url.trim_start_matches("sqlite://").to_string();
            let mut bytes = std::fs::read(&file).expect("read the database file");
            bytes.extend(std::fs::read(format!("{file}-wal")).unwrap_or_default());
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }
}
