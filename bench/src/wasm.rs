//! Mode `wasm`: the host's own runtime and worker loop.
//!
//! (a) instantiate → first call of a precompiled component; (b) checkpointed
//! wasm steps per second with the worker loop; (c) the same workflow driven
//! over HTTP, for comparison; (d) host memory per run suspended at a gate,
//! then resuming them all.

use crate::env::{Cost, Cpu, CpuUse, Db, Poller, Stats, rss_kib};
use crate::http::{Client, LOAD_HEAD, Until, checkpoint_load, load_row, serve};
use crate::report::{Latencies, Table, cell, cost_json, ms, record};
use crate::{Global, backend_name};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidebase_host::engine::{DeployLimits, Engine, GateResolve, NewRun};
use tidebase_host::runtime::{Runtime, RuntimeConfig};
use tidebase_host::worker::Worker;
use tokio::sync::watch;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// (a) instantiate → first call latency.
    Instantiate,
    /// (b) checkpointed wasm steps per second.
    Steps,
    /// (c) the same workflow over HTTP, for comparison.
    Http,
    /// (d) RSS per suspended run, then resume them all.
    Rss,
    /// (e) A large Python component (`--python-wasm`): deploy, first
    /// activation on a replica without and with the on-disk compile cache,
    /// then per-activation cost. Not in the default set.
    Python,
}

#[derive(clap::Args, Clone, Debug)]
pub struct WasmArgs {
    /// Which parts to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Part::Instantiate, Part::Steps, Part::Http, Part::Rss])]
    pub parts: Vec<Part>,
    /// (a) Measured instantiate → first call iterations.
    #[arg(long, default_value_t = 2000)]
    pub iterations: usize,
    /// (a) Unmeasured iterations first.
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    /// (b, c) Steps per run.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// (b, c) Runs per concurrency level.
    #[arg(long, default_value_t = 300)]
    pub runs: usize,
    /// (b) Also run one long run per worker slot, with this many steps in
    /// total per level (all claimed at once: no gaps between runs, so this
    /// is the checkpoint rate inside activations); 0 skips it.
    #[arg(long, default_value_t = 3000)]
    pub long_steps: usize,
    /// (b, c) Worker slots (b) and concurrent HTTP workers (c), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16])]
    pub concurrency: Vec<usize>,
    /// (d) Runs suspended at their gate at once.
    #[arg(long, default_value_t = 1000)]
    pub suspended: usize,
    /// (d) Worker slots executing them.
    #[arg(long, default_value_t = 16)]
    pub suspend_slots: usize,
    /// (e) The Python probe component:
    /// `tidebase-host build tests/python-guests/probe.py -o probe.wasm`.
    #[arg(long)]
    pub python_wasm: Option<std::path::PathBuf>,
}

const TIMEOUT: Duration = Duration::from_secs(600);

/// A worker loop running in the background until stopped.
struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(engine: &Engine, runtime: &Arc<Runtime>, slots: usize) -> Running {
        let (stop, stopped) = watch::channel(false);
        let worker = Worker::new(engine.clone(), runtime.clone(), slots);
        Running {
            stop,
            task: tokio::spawn(worker.run(stopped)),
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

pub async fn run(g: &Global, a: &WasmArgs) -> Result<()> {
    let db = Db::create(g).await?;
    let result = async {
        let (engine, counts, sql) = db.engine(g.max_connections).await?;
        let backend = backend_name(db.backend);
        if a.parts.contains(&Part::Steps) || a.parts.contains(&Part::Http) {
            let levels = a.concurrency.clone();
            crate::ceiling::measure(&sql, backend, &levels, g.ceiling_secs, g.output_bytes).await?;
        }
        let stats = db
            .stats(Some(counts), Duration::from_secs_f64(g.settle_secs))
            .await?;
        let most = a
            .concurrency
            .iter()
            .copied()
            .max()
            .unwrap_or(1)
            .max(a.suspend_slots);
        let config = RuntimeConfig {
            instances: (most as u32).max(64),
            ..RuntimeConfig::default()
        };
        let runtime = Arc::new(Runtime::new(config)?);
        let engine = engine.with_component_check(runtime.clone());
        let ctx = Ctx {
            a,
            output_bytes: g.output_bytes,
            db: &db,
            engine,
            runtime,
            stats,
            backend,
        };
        if a.parts.contains(&Part::Instantiate) {
            ctx.instantiate().await?;
        }
        let mut compare = Table::new(
            &format!(
                "{} steps/run: wasm worker vs HTTP client ({backend})",
                a.steps
            ),
            LOAD_HEAD,
        );
        if a.parts.contains(&Part::Steps) {
            ctx.steps(&mut compare).await?;
        }
        if a.parts.contains(&Part::Http) {
            ctx.http(&mut compare).await?;
        }
        if a.parts.contains(&Part::Steps) || a.parts.contains(&Part::Http) {
            compare.print();
        }
        if a.parts.contains(&Part::Rss) {
            ctx.rss().await?;
        }
        if a.parts.contains(&Part::Python) {
            ctx.python().await?;
        }
        anyhow::Ok(())
    }
    .await;
    db.remove().await?;
    result
}

struct Ctx<'a> {
    a: &'a WasmArgs,
    output_bytes: usize,
    db: &'a Db,
    engine: Engine,
    runtime: Arc<Runtime>,
    stats: Stats,
    backend: &'static str,
}

impl Ctx<'_> {
    async fn deploy(&self, name: &str, path: &str) -> Result<String> {
        let bytes = std::fs::read(path).with_context(|| format!("read {path}"))?;
        let dep = self
            .engine
            .deploy(name, &bytes, DeployLimits::default())
            .await?;
        Ok(dep.digest)
    }

    /// (a) Instantiate → first call of `hostile` (`{"mode":"ok"}`: no host calls).
    async fn instantiate(&self) -> Result<()> {
        let a = self.a;
        let digest = self.deploy("hostile", tidebase_fixtures::HOSTILE).await?;
        let input = r#"{"mode":"ok"}"#;
        eprintln!(
            "wasm: instantiate → first call, {} + {} iterations",
            a.warmup, a.iterations
        );
        for _ in 0..a.warmup {
            self.runtime
                .time_first_call(&self.engine, &digest, input)
                .await?;
        }
        let mut lat = Latencies::default();
        let t0 = Instant::now();
        for _ in 0..a.iterations {
            lat.push(
                self.runtime
                    .time_first_call(&self.engine, &digest, input)
                    .await?,
            );
        }
        let wall = t0.elapsed();
        let mut table = Table::new(
            "wasm instantiate → first call (hostile {\"mode\":\"ok\"}, precompiled template, pooling allocator)",
            &[
                "iterations",
                "p50 µs",
                "p90 µs",
                "p99 µs",
                "max µs",
                "mean µs",
                "calls/s (serial, incl. store drop)",
            ],
        );
        let us = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e6);
        table.row(vec![
            lat.len().to_string(),
            us(lat.pct(50.0)),
            us(lat.pct(90.0)),
            us(lat.pct(99.0)),
            us(lat.pct(100.0)),
            us(lat.mean()),
            format!("{:.0}", a.iterations as f64 / wall.as_secs_f64()),
        ]);
        table.print();
        record(
            "wasm.instantiate",
            json!({"backend": self.backend, "latency": lat.summary(), "callsPerSec": (a.iterations as f64 / wall.as_secs_f64()).round()}),
        );
        Ok(())
    }

    /// Wait until `count_sql` counts `n`, failing early when a run of
    /// `workflow` failed.
    async fn wait_count(
        &self,
        poller: &mut Poller,
        what: &str,
        count_sql: &str,
        n: usize,
        workflow: &str,
    ) -> Result<()> {
        let t0 = Instant::now();
        let mut polls = 0u64;
        loop {
            if poller.count(count_sql).await? >= n as i64 {
                return Ok(());
            }
            polls += 1;
            if polls.is_multiple_of(25) {
                let failed = format!(
                    "SELECT count(*) FROM runs WHERE workflow_name = '{workflow}' AND status IN ('failed', 'cancelled')"
                );
                if poller.count(&failed).await? > 0 {
                    let why = poller
                        .text(&format!("SELECT error_json FROM runs WHERE workflow_name = '{workflow}' AND status = 'failed' LIMIT 1"))
                        .await?;
                    bail!(
                        "{what}: a run of {workflow} failed: {}",
                        why.unwrap_or_default()
                    );
                }
            }
            if t0.elapsed() > TIMEOUT {
                bail!("{what}: timed out");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until run `last` has ended. Runs are claimed oldest first, so
    /// the one created last ends among the last, and until it has, polling
    /// asks the store under test for one row by id; counting a workflow's
    /// completed runs reads them all (about 1 ms every 20 ms at a few
    /// thousand runs, some 5% of Postgres' CPU in a short measurement).
    async fn wait_ended(&self, poller: &mut Poller, last: Option<&String>) -> Result<()> {
        let Some(last) = last else {
            return Ok(());
        };
        let t0 = Instant::now();
        let status = format!("SELECT status FROM runs WHERE id = '{last}'");
        while !matches!(
            poller.text(&status).await?.as_deref(),
            Some("completed" | "failed" | "cancelled")
        ) {
            if t0.elapsed() > TIMEOUT {
                bail!("run {last}: timed out");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn create_runs(&self, workflow: &str, input: Value, n: usize) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(n);
        let mut left = n;
        while left > 0 {
            let batch = left.min(16);
            let creates = (0..batch).map(|_| {
                self.engine
                    .create_run(NewRun::named(workflow, input.clone()))
            });
            for r in futures::future::join_all(creates).await {
                ids.push(r?.id);
            }
            left -= batch;
        }
        Ok(ids)
    }

    /// Execute the runs `ids` of `workflow` with a worker of `slots` slots,
    /// from start to all completed.
    async fn execute(
        &self,
        workflow: &str,
        ids: &[String],
        slots: usize,
        poller: &mut Poller,
    ) -> Result<(Duration, CpuUse)> {
        let done = format!(
            "SELECT count(*) FROM runs WHERE workflow_name = '{workflow}' AND status = 'completed'"
        );
        let cpu = Cpu::sample();
        let worker = Running::start(&self.engine, &self.runtime, slots);
        let t0 = Instant::now();
        let waited = match self.wait_ended(poller, ids.last()).await {
            Ok(()) => {
                self.wait_count(poller, workflow, &done, ids.len(), workflow)
                    .await
            }
            Err(e) => Err(e),
        };
        let elapsed = t0.elapsed();
        let cpu = cpu.usage(&Cpu::sample());
        worker.stop().await;
        waited?;
        Ok((elapsed, cpu))
    }

    /// (b) Checkpointed steps with the worker loop: `runs` runs of `steps`
    /// steps per level, then one run of `long_steps / slots` steps per slot.
    async fn steps(&self, compare: &mut Table) -> Result<()> {
        let a = self.a;
        self.deploy("steps-warmup", tidebase_fixtures::STEPS)
            .await?;
        let mut poller = self.db.poller().await?;
        let warm = json!({ "steps": a.steps, "outputBytes": self.output_bytes });
        let ids = self.create_runs("steps-warmup", warm, 4).await?;
        self.execute("steps-warmup", &ids, 4, &mut poller).await?;
        for &slots in &a.concurrency {
            let workflow = format!("steps-c{slots}");
            self.steps_level(
                compare,
                &mut poller,
                "wasm.steps",
                &workflow,
                slots,
                a.runs,
                a.steps,
            )
            .await?;
        }
        if a.long_steps > 0 {
            for &slots in &a.concurrency {
                let workflow = format!("steps-long-c{slots}");
                let per_run = (a.long_steps / slots).max(1);
                self.steps_level(
                    compare,
                    &mut poller,
                    "wasm.steps(1 run/slot)",
                    &workflow,
                    slots,
                    slots,
                    per_run,
                )
                .await?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn steps_level(
        &self,
        compare: &mut Table,
        poller: &mut Poller,
        bench: &str,
        workflow: &str,
        slots: usize,
        runs: usize,
        steps_per_run: usize,
    ) -> Result<()> {
        self.deploy(workflow, tidebase_fixtures::STEPS).await?;
        let input = json!({ "steps": steps_per_run, "outputBytes": self.output_bytes });
        let ids = self.create_runs(workflow, input, runs).await?;
        eprintln!("wasm: {runs} runs × {steps_per_run} steps with {slots} worker slots");
        let before = self.stats.snap().await?;
        let q0 = poller.queries;
        let (elapsed, cpu) = self.execute(workflow, &ids, slots, poller).await?;
        let after = self.stats.snap().await?;
        let steps = (runs * steps_per_run) as u64;
        let cost = before.cost(&after, steps, poller.queries - q0);
        let sum = (0..steps_per_run as u64).sum::<u64>();
        let wrong = poller
            .count(&format!(
                "SELECT count(*) FROM runs WHERE workflow_name = '{workflow}' AND result_json NOT LIKE '%\"sum\":{sum}%'"
            ))
            .await?;
        if wrong > 0 {
            bail!("{wrong} runs of {workflow} have a wrong result");
        }
        let mut load = crate::http::Load {
            elapsed,
            workflows: runs as u64,
            steps,
            cpu,
            ..Default::default()
        };
        load_row(compare, bench, self.backend, slots, &mut load, &cost);
        Ok(())
    }

    /// (c) The same number of runs and steps driven over HTTP by SDK-like workers.
    async fn http(&self, compare: &mut Table) -> Result<()> {
        let a = self.a;
        let (base, server) = serve(self.engine.clone()).await?;
        let client = Arc::new(Client::new(&base, self.output_bytes)?);
        let result = async {
            let warm = checkpoint_load(
                client.clone(),
                "http-warmup",
                4,
                a.steps,
                Until::new(0.0, Some(8)),
                true,
            )
            .await;
            if warm.errors > 0 {
                bail!("http warm-up failed");
            }
            for &conc in &a.concurrency {
                eprintln!(
                    "wasm: the same over HTTP, {} workflows at concurrency {conc}",
                    a.runs
                );
                let before = self.stats.snap().await?;
                let until = Until::new(0.0, Some(a.runs));
                let mut load = checkpoint_load(
                    client.clone(),
                    &format!("http-c{conc}"),
                    conc,
                    a.steps,
                    until,
                    true,
                )
                .await;
                let after = self.stats.snap().await?;
                let cost = before.cost(&after, load.steps, 0);
                load_row(
                    compare,
                    "http.checkpoint",
                    self.backend,
                    conc,
                    &mut load,
                    &cost,
                );
            }
            Ok(())
        }
        .await;
        server.abort();
        result
    }

    /// (e) The cost of a large Python component: deploying it (compiles
    /// it), the first activation on a replica that never ran it (reads
    /// the bytes from the store and compiles them, or loads the artifact
    /// from the on-disk cache), then activations from the in-memory
    /// template. The probe's `{"value": 1}` mode makes no host calls.
    async fn python(&self) -> Result<()> {
        let a = self.a;
        let Some(path) = &a.python_wasm else {
            bail!(
                "--parts python needs --python-wasm (tidebase-host build tests/python-guests/probe.py -o probe.wasm)"
            );
        };
        let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        let cache =
            std::env::temp_dir().join(format!("tb_bench_cache_{}", uuid::Uuid::new_v4().simple()));
        let replica = |cache_dir: Option<std::path::PathBuf>| {
            Runtime::new(RuntimeConfig {
                instances: 16,
                cache_dir,
                ..RuntimeConfig::default()
            })
        };
        let t0 = Instant::now();
        let digest = self
            .engine
            .deploy("py-probe", &bytes, DeployLimits::default())
            .await?
            .digest;
        let deploy = t0.elapsed();
        let input = r#"{"value":1}"#;
        let first = |runtime: Runtime| {
            let engine = self.engine.clone();
            let digest = digest.clone();
            async move {
                let t0 = Instant::now();
                runtime.time_first_call(&engine, &digest, input).await?;
                anyhow::Ok((t0.elapsed(), runtime))
            }
        };
        let (cold, _) = first(replica(None)?).await?;
        let (filled, _) = first(replica(Some(cache.clone()))?).await?;
        let (cached, runtime) = first(replica(Some(cache.clone()))?).await?;
        let _ = std::fs::remove_dir_all(&cache);
        let mut lat = Latencies::default();
        for _ in 0..a.warmup.min(20) {
            runtime
                .time_first_call(&self.engine, &digest, input)
                .await?;
        }
        for _ in 0..a.iterations.min(500) {
            lat.push(
                runtime
                    .time_first_call(&self.engine, &digest, input)
                    .await?,
            );
        }
        let mut table = Table::new(
            &format!(
                "Python component ({:.1} MB, probe {{\"value\":1}}, {})",
                bytes.len() as f64 / 1e6,
                self.backend
            ),
            &["what", "ms"],
        );
        let row = |t: &mut Table, what: &str, d: Duration| {
            t.row(vec![what.into(), format!("{:.2}", ms(d))])
        };
        row(&mut table, "deploy (store + compile)", deploy);
        row(
            &mut table,
            "first activation, new replica, no disk cache (read + compile)",
            cold,
        );
        row(
            &mut table,
            "first activation, new replica, filling the disk cache",
            filled,
        );
        row(
            &mut table,
            "first activation, new replica, disk cache hit",
            cached,
        );
        row(
            &mut table,
            "activation from the template, p50",
            lat.pct(50.0),
        );
        row(
            &mut table,
            "activation from the template, p99",
            lat.pct(99.0),
        );
        table.print();
        record(
            "wasm.python",
            json!({"backend": self.backend, "bytes": bytes.len(), "deployMs": ms(deploy),
                   "firstColdMs": ms(cold), "firstFillMs": ms(filled), "firstCachedMs": ms(cached),
                   "activation": lat.summary()}),
        );
        Ok(())
    }

    /// (d) Host RSS per run suspended at a gate; then resolve every gate.
    async fn rss(&self) -> Result<()> {
        let a = self.a;
        let n = a.suspended;
        let input = json!({ "topic": "tides" });
        self.deploy("report-warmup", tidebase_fixtures::REPORT)
            .await?;
        self.deploy("report", tidebase_fixtures::REPORT).await?;
        let mut poller = self.db.poller().await?;
        let suspended = |wf: &str| {
            format!(
                "SELECT count(*) FROM runs r WHERE r.workflow_name = '{wf}' AND r.status = 'running' \
                 AND r.lease_owner IS NULL AND EXISTS \
                 (SELECT 1 FROM gates g WHERE g.run_id = r.id AND g.status = 'pending')"
            )
        };
        let completed = |wf: &str| {
            format!(
                "SELECT count(*) FROM runs WHERE workflow_name = '{wf}' AND status = 'completed'"
            )
        };

        let worker = Running::start(&self.engine, &self.runtime, a.suspend_slots);
        let result = async {
            // Warm-up: a few runs to their gate and through it (compiles the
            // template, fills the instance pool and the connection pool).
            let warm = self
                .create_runs("report-warmup", input.clone(), a.suspend_slots)
                .await?;
            self.wait_count(
                &mut poller,
                "warm-up suspension",
                &suspended("report-warmup"),
                warm.len(),
                "report-warmup",
            )
            .await?;
            self.resolve_all(&warm).await?;
            self.wait_count(
                &mut poller,
                "warm-up completion",
                &completed("report-warmup"),
                warm.len(),
                "report-warmup",
            )
            .await?;
            tokio::time::sleep(Duration::from_secs(1)).await;

            let rss0 = rss_kib()?;
            let before = self.stats.snap().await?;
            let q0 = poller.queries;
            eprintln!(
                "wasm: {n} report runs to their gate ({} slots); RSS before {rss0} KiB",
                a.suspend_slots
            );
            let t0 = Instant::now();
            let ids = self.create_runs("report", input.clone(), n).await?;
            self.wait_count(&mut poller, "suspension", &suspended("report"), n, "report")
                .await?;
            let to_suspend = t0.elapsed();
            tokio::time::sleep(Duration::from_secs(1)).await;
            let rss1 = rss_kib()?;
            let after = self.stats.snap().await?;
            let cost = before.cost(&after, n as u64, poller.queries - q0);

            let detail = self.engine.run_detail(&ids[0]).await?;
            let pending = detail["gates"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|g| g["status"] == "pending");
            if !detail["run"]["leaseOwner"].is_null() || !pending {
                bail!(
                    "run {} is not suspended at a pending gate: {}",
                    ids[0],
                    detail["run"]
                );
            }

            eprintln!("wasm: resolving {n} gates");
            let t1 = Instant::now();
            self.resolve_all(&ids).await?;
            let to_resolve = t1.elapsed();
            self.wait_count(&mut poller, "completion", &completed("report"), n, "report")
                .await?;
            let to_complete = t1.elapsed();
            let rss2 = rss_kib()?;
            let last = self.engine.get_run(&ids[n - 1]).await?;
            if last.result.as_ref().is_none_or(|r| r["approved"] != true) {
                bail!(
                    "run {} completed without approval: {:?}",
                    last.id,
                    last.result
                );
            }
            anyhow::Ok((rss0, rss1, rss2, to_suspend, to_resolve, to_complete, cost))
        }
        .await;
        worker.stop().await;
        let (rss0, rss1, rss2, to_suspend, to_resolve, to_complete, cost) = result?;
        let per_run = (rss1 as f64 - rss0 as f64) / n as f64;
        let mut table = Table::new(
            &format!(
                "host memory per suspended run ({}; report fixture at gate approve-report)",
                self.backend
            ),
            &[
                "runs",
                "RSS before KiB",
                "RSS suspended KiB",
                "KiB/run",
                "to suspend s",
                "commits/run",
                "write-tx/run",
                "rows/run",
                "resolve s",
                "all completed s",
                "RSS after KiB",
            ],
        );
        table.row(vec![
            n.to_string(),
            rss0.to_string(),
            rss1.to_string(),
            format!("{per_run:.2}"),
            format!("{:.2}", to_suspend.as_secs_f64()),
            cell(cost.commits, 1),
            cell(cost.writes, 1),
            cell(cost.rows_written, 1),
            format!("{:.2}", to_resolve.as_secs_f64()),
            format!("{:.2}", to_complete.as_secs_f64()),
            rss2.to_string(),
        ]);
        table.print();
        let mut fields = json!({
            "backend": self.backend,
            "runs": n,
            "slots": a.suspend_slots,
            "rssBeforeKiB": rss0,
            "rssSuspendedKiB": rss1,
            "rssPerSuspendedRunKiB": (per_run * 100.0).round() / 100.0,
            "rssAfterCompletedKiB": rss2,
            "toSuspendMs": ms(to_suspend),
            "resolveMs": ms(to_resolve),
            "allCompletedMs": ms(to_complete),
        });
        if let (Value::Object(f), Value::Object(c)) = (&mut fields, per_run_cost(&cost)) {
            f.extend(c);
        }
        record("wasm.suspended-rss", fields);
        Ok(())
    }

    /// Resolve (approve) the pending gate of every run, 16 at a time.
    async fn resolve_all(&self, ids: &[String]) -> Result<()> {
        for chunk in ids.chunks(16) {
            let resolves = chunk.iter().map(|id| async move {
                let gate = self
                    .engine
                    .pending_gates(id)
                    .await?
                    .into_iter()
                    .next()
                    .with_context(|| format!("run {id} has no pending gate"))?;
                let req = GateResolve {
                    token: gate.resolve_token.clone(),
                    decision: "approved".into(),
                    actor: Some("bench".into()),
                    payload: json!({"note": "bench"}),
                };
                self.engine.resolve_gate(id, &gate.id, req).await?;
                anyhow::Ok(())
            });
            for r in futures::future::join_all(resolves).await {
                r?;
            }
        }
        Ok(())
    }
}

/// A cost whose unit is a run, as JSON.
fn per_run_cost(c: &Cost) -> Value {
    let v = cost_json(c);
    let mut out = serde_json::Map::new();
    if let Value::Object(m) = v {
        for (k, val) in m {
            out.insert(k.replace("PerStep", "PerRun"), val);
        }
    }
    Value::Object(out)
}
