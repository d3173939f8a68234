//! Mode `http`: the HTTP API driven exactly as an SDK worker drives it.
//!
//! Per workflow: `POST /runs/bench` → `POST /runs/:id/begin` → N × (`POST
//! /runs/:id/steps/begin` + `POST /runs/:id/steps/:sid/complete`) → `POST
//! /runs/:id/complete`, by C concurrent workers. Then the crash-resume case:
//! runs whose steps all completed but which were never completed are begun
//! again and every step begin must answer `return`.

pub use crate::client::Client;
use crate::client::Conn;
use crate::env::{Cost, Cpu, CpuUse, Db, PgStats, Snap, Stats, database_name};
use crate::report::{Latencies, Table, cell, cost_json, ms, record};
use crate::{Global, backend_name};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tidebase_host::engine::Engine;

#[derive(clap::Args, Clone, Debug)]
pub struct HttpArgs {
    /// Drive an external server at this base URL instead of an in-process one.
    #[arg(long)]
    pub url: Option<String>,
    /// With `--url`: the Postgres database that server uses, to read its
    /// commit counters (`postgres://…/<db>`); without it no counters.
    #[arg(long)]
    pub stats_database_url: Option<String>,
    /// Steps per workflow.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Concurrent workflows (one worker task each), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    pub concurrency: Vec<usize>,
    /// Seconds each concurrency level runs (workers finish their current
    /// workflow after it).
    #[arg(long, default_value_t = 10.0)]
    pub duration_secs: f64,
    /// Run a fixed number of workflows per level instead of a duration.
    #[arg(long)]
    pub workflows: Option<usize>,
    /// Workflows prepared for the replay measurement (steps done, run not completed).
    #[arg(long, default_value_t = 300)]
    pub replay_workflows: usize,
    /// Skip the replay measurement.
    #[arg(long)]
    pub no_replay: bool,
}

/// When the workers of a load stop starting workflows.
#[derive(Clone)]
pub enum Until {
    Deadline(Instant),
    Count(Arc<AtomicUsize>, usize),
}

impl Until {
    pub fn new(duration_secs: f64, count: Option<usize>) -> Until {
        match count {
            Some(n) => Until::Count(Arc::new(AtomicUsize::new(0)), n),
            None => Until::Deadline(Instant::now() + Duration::from_secs_f64(duration_secs)),
        }
    }

    fn next(&self) -> bool {
        match self {
            Until::Deadline(d) => Instant::now() < *d,
            Until::Count(started, n) => started.fetch_add(1, Ordering::Relaxed) < *n,
        }
    }
}

/// What a load did.
#[derive(Default)]
pub struct Load {
    pub elapsed: Duration,
    pub workflows: u64,
    pub steps: u64,
    pub lat: Latencies,
    pub errors: u64,
    /// `(run id, lease owner)` of every workflow that succeeded.
    pub runs: Vec<(String, String)>,
    pub cpu: CpuUse,
}

impl Load {
    /// Count one workflow's outcome and its step latencies.
    fn record<T>(&mut self, outcome: Result<T>, lat: Latencies) -> Option<T> {
        self.steps += lat.len() as u64;
        self.lat.extend(lat);
        match outcome {
            Ok(v) => {
                self.workflows += 1;
                Some(v)
            }
            Err(e) => {
                self.errors += 1;
                report_error(self.errors, &e);
                None
            }
        }
    }

    /// A worker's connection; failing to open one counts as an error.
    async fn connect(&mut self, client: &Client) -> Option<Conn> {
        match client.connect().await {
            Ok(conn) => Some(conn),
            Err(e) => {
                self.errors += 1;
                report_error(self.errors, &e);
                None
            }
        }
    }

    pub fn steps_per_sec(&self) -> f64 {
        self.steps as f64 / self.elapsed.as_secs_f64()
    }
}

fn report_error(errors: u64, e: &anyhow::Error) {
    if errors <= 3 {
        eprintln!("  error: {e:#}");
    }
}

/// `conc` workers each running whole workflows until `until`.
pub async fn checkpoint_load(
    client: Arc<Client>,
    workflow: &str,
    conc: usize,
    steps: usize,
    until: Until,
    complete: bool,
) -> Load {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let cpu = Cpu::sample();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..conc {
        let (client, until, workflow) = (client.clone(), until.clone(), workflow.to_string());
        let owner = format!("bench-{}-{k}", &tag[..8]);
        tasks.push(tokio::spawn(async move {
            let mut load = Load::default();
            let Some(mut conn) = load.connect(&client).await else {
                return load;
            };
            while until.next() {
                let mut lat = Latencies::default();
                let outcome = conn
                    .workflow(&workflow, &owner, steps, complete, &mut lat)
                    .await;
                if let Some(id) = load.record(outcome, lat) {
                    load.runs.push((id, owner.clone()));
                }
            }
            load
        }));
    }
    merge(tasks, t0, cpu).await
}

/// `conc` workers replaying the steps of `runs` (round robin) until the deadline.
pub async fn replay_load(
    client: Arc<Client>,
    runs: Arc<Vec<(String, String)>>,
    conc: usize,
    steps: usize,
    duration: Duration,
) -> Load {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + duration;
    let cpu = Cpu::sample();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (client, runs, next) = (client.clone(), runs.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut load = Load::default();
            let Some(mut conn) = load.connect(&client).await else {
                return load;
            };
            while Instant::now() < deadline {
                let (id, owner) = &runs[next.fetch_add(1, Ordering::Relaxed) % runs.len()];
                let mut lat = Latencies::default();
                let outcome = conn.replay(id, owner, steps, &mut lat).await;
                load.record(outcome, lat);
            }
            load
        }));
    }
    merge(tasks, t0, cpu).await
}

async fn merge(tasks: Vec<tokio::task::JoinHandle<Load>>, t0: Instant, cpu: Cpu) -> Load {
    let mut total = Load::default();
    for t in tasks {
        match t.await {
            Ok(load) => {
                total.workflows += load.workflows;
                total.steps += load.steps;
                total.errors += load.errors;
                total.lat.extend(load.lat);
                total.runs.extend(load.runs);
            }
            Err(e) => {
                eprintln!("  worker task died: {e}");
                total.errors += 1;
            }
        }
    }
    total.elapsed = t0.elapsed();
    total.cpu = cpu.usage(&Cpu::sample());
    total
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Serve the API of `engine` on an ephemeral port, as the e2e harness does.
pub async fn serve(engine: Engine) -> Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = tidebase_host::api::router(engine);
    let limits = tidebase_host::api::ConnLimits::default();
    let server = tokio::spawn(tidebase_host::api::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
    Ok((format!("http://{addr}"), server))
}

pub const LOAD_HEAD: &[&str] = &[
    "phase",
    "conc",
    "workflows",
    "steps",
    "secs",
    "steps/s",
    "of ceiling",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "commits/step",
    "write-tx/step",
    "read-conns/step",
    "rows/step",
    "errors",
    "cpu bench/pg/other",
];

/// A percentile in ms, `-` without samples (the wasm loads time no steps).
fn latency_cell(lat: &mut Latencies, p: f64) -> String {
    if lat.len() == 0 {
        return "-".into();
    }
    format!("{:.2}", ms(lat.pct(p)))
}

/// A table row and a JSON record for one load.
pub fn load_row(
    table: &mut Table,
    bench: &str,
    backend: &str,
    conc: usize,
    load: &mut Load,
    cost: &Cost,
) {
    let ceiling = crate::ceiling::get(backend, conc);
    let ratio = ceiling.map(|c| load.steps_per_sec() / c);
    table.row(vec![
        bench.to_string(),
        conc.to_string(),
        load.workflows.to_string(),
        load.steps.to_string(),
        format!("{:.1}", load.elapsed.as_secs_f64()),
        format!("{:.0}", load.steps_per_sec()),
        ratio.map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
        latency_cell(&mut load.lat, 50.0),
        latency_cell(&mut load.lat, 90.0),
        latency_cell(&mut load.lat, 99.0),
        cell(cost.commits, 2),
        cell(cost.writes, 2),
        cell(cost.reads, 2),
        cell(cost.rows_written, 2),
        load.errors.to_string(),
        format!(
            "{:.2}/{:.2}/{:.2}",
            load.cpu.bench, load.cpu.postgres, load.cpu.other
        ),
    ]);
    let mut fields = json!({
        "backend": backend,
        "concurrency": conc,
        "workflows": load.workflows,
        "steps": load.steps,
        "elapsedSecs": (load.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "stepsPerSec": load.steps_per_sec().round(),
        "ceilingCommitsPerSec": ceiling.map(f64::round),
        "ratioToCeiling": ratio.map(|r| (r * 1000.0).round() / 1000.0),
        "latency": load.lat.summary(),
        "errors": load.errors,
        "cpuCores": {
            "machine": load.cpu.cores,
            "busy": round2(load.cpu.busy),
            "bench": round2(load.cpu.bench),
            "postgres": round2(load.cpu.postgres),
            "other": round2(load.cpu.other),
        },
    });
    if let (Value::Object(f), Value::Object(c)) = (&mut fields, cost_json(cost)) {
        f.extend(c);
    }
    record(bench, fields);
}

pub async fn run(g: &Global, a: &HttpArgs) -> Result<()> {
    let settle = Duration::from_secs_f64(g.settle_secs);
    let (base, stats, db, server, backend) = match &a.url {
        Some(url) => {
            let pg = match &a.stats_database_url {
                Some(u) => {
                    let name =
                        database_name(u).context("--stats-database-url names no database")?;
                    Some(PgStats::connect(u, &name).await?)
                }
                None => None,
            };
            (
                url.clone(),
                Stats::external(pg, settle),
                None,
                None,
                "external".to_string(),
            )
        }
        None => {
            let db = Db::create(g).await?;
            let (engine, counts, sql) = db.engine(g.max_connections).await?;
            let stats = db.stats(Some(counts), settle).await?;
            let backend = backend_name(db.backend).to_string();
            crate::ceiling::measure(
                &sql,
                &backend,
                &a.concurrency,
                g.ceiling_secs,
                g.output_bytes,
            )
            .await?;
            let (base, server) = serve(engine).await?;
            (base, stats, Some(db), Some(server), backend)
        }
    };
    eprintln!("http: {backend} server at {base}");
    let result = measure(a, &base, &stats, &backend, g.output_bytes).await;
    if let Some(server) = server {
        server.abort();
    }
    if let Some(db) = db {
        db.remove().await?;
    }
    result
}

async fn measure(
    a: &HttpArgs,
    base: &str,
    stats: &Stats,
    backend: &str,
    output_bytes: usize,
) -> Result<()> {
    let client = Arc::new(Client::new(base, output_bytes)?);
    // Warm up connections, prepared statements and the allocator.
    let warm = checkpoint_load(
        client.clone(),
        "bench-warmup",
        4,
        a.steps,
        Until::new(0.0, Some(20)),
        true,
    )
    .await;
    if warm.errors > 0 {
        bail!("warm-up failed");
    }
    let title = format!(
        "http checkpoints ({backend}, {} steps/workflow; latency = step begin + complete)",
        a.steps
    );
    let mut table = Table::new(&title, LOAD_HEAD);
    let mut last = stats.snap().await?;
    for &conc in &a.concurrency {
        eprintln!("http: checkpoint load at concurrency {conc}");
        let until = Until::new(a.duration_secs, a.workflows);
        let mut load = checkpoint_load(client.clone(), "bench", conc, a.steps, until, true).await;
        let now = stats.snap().await?;
        let cost = last.cost(&now, load.steps, 0);
        last = now;
        load_row(
            &mut table,
            "http.checkpoint",
            backend,
            conc,
            &mut load,
            &cost,
        );
    }
    table.print();
    if a.no_replay {
        return Ok(());
    }
    replay(a, &client, stats, backend, last).await
}

async fn replay(
    a: &HttpArgs,
    client: &Arc<Client>,
    stats: &Stats,
    backend: &str,
    mut last: Snap,
) -> Result<()> {
    let title = format!(
        "http replays ({backend}): steps completed, run not completed, run begun again; latency = one step begin"
    );
    let mut table = Table::new(&title, LOAD_HEAD);
    eprintln!(
        "http: preparing {} unfinished workflows",
        a.replay_workflows
    );
    let until = Until::new(0.0, Some(a.replay_workflows));
    let mut prep = checkpoint_load(client.clone(), "bench-replay", 16, a.steps, until, false).await;
    let now = stats.snap().await?;
    let cost = last.cost(&now, prep.steps, 0);
    last = now;
    load_row(
        &mut table,
        "http.replay-prep",
        backend,
        16,
        &mut prep,
        &cost,
    );
    let runs = Arc::new(std::mem::take(&mut prep.runs));
    if runs.is_empty() {
        bail!("no workflow to replay");
    }

    // The resumed worker takes the run lease again (same owner id, as a
    // restarted worker with a stable id would): one write per run.
    eprintln!("http: beginning {} runs again", runs.len());
    let cpu = Cpu::sample();
    let t0 = Instant::now();
    let mut rebegin = Load::default();
    let mut conns = Vec::new();
    for _ in 0..16 {
        conns.push(client.connect().await?);
    }
    for chunk in runs.chunks(16) {
        let begins = chunk
            .iter()
            .zip(&mut conns)
            .map(|((id, owner), conn)| async move {
                let t = Instant::now();
                conn.rebegin(id, owner).await.map(|_| t.elapsed())
            });
        for r in futures::future::join_all(begins).await {
            match r {
                Ok(d) => {
                    rebegin.workflows += 1;
                    rebegin.lat.push(d);
                }
                Err(e) => {
                    rebegin.errors += 1;
                    report_error(rebegin.errors, &e);
                }
            }
        }
    }
    rebegin.elapsed = t0.elapsed();
    rebegin.cpu = cpu.usage(&Cpu::sample());
    let now = stats.snap().await?;
    // Per run, not per step.
    let cost = last.cost(&now, rebegin.workflows, 0);
    last = now;
    rebegin.steps = rebegin.workflows;
    load_row(
        &mut table,
        "http.rebegin(per run)",
        backend,
        16,
        &mut rebegin,
        &cost,
    );

    for &conc in &a.concurrency {
        eprintln!("http: replay load at concurrency {conc}");
        let duration = Duration::from_secs_f64(a.duration_secs);
        let mut load = replay_load(client.clone(), runs.clone(), conc, a.steps, duration).await;
        let now = stats.snap().await?;
        let cost = last.cost(&now, load.steps, 0);
        last = now;
        load_row(&mut table, "http.replay", backend, conc, &mut load, &cost);
    }
    table.print();
    Ok(())
}
