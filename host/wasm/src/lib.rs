//! The wasmtime host: compiles deployed components once per digest, keeps a
//! pre-instantiated template per digest, and runs one activation of a run
//! (instantiate → `run(input)` → outcome) inside a sandbox with memory, CPU
//! and output limits.

mod bindings;
mod classify;
mod ctx;
mod imports;
mod interrupt;
mod limiter;
mod probe;
mod stdio;

pub use classify::panicked;
pub use ctx::Progress;
pub use interrupt::Interrupt;

// The engine's names at this crate's root, so modules read `crate::engine`.
use tidebase_engine::{self as engine, clock, model};

use crate::engine::limits::MAX_MEMORY_BYTES;
use crate::engine::store::ClaimedRun;
use crate::engine::telemetry;
use crate::engine::{ActivationOutcome, ComponentCheck, Ended, Engine};
use crate::model::Deployment;
use anyhow::Context;
use bindings::{Workflow, WorkflowPre};
use ctx::{RunCtx, RunCtxParts};
use limiter::Limiter;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};

/// Epoch tick: the granularity of CPU accounting and cancellation checks.
const TICK_MS: u64 = 10;
const TICK: Duration = Duration::from_millis(TICK_MS);

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Linear-memory cap when a deployment sets none.
    pub memory_limit_bytes: usize,
    /// Guest CPU budget per activation when a deployment sets none.
    pub cpu_limit_ms: i64,
    /// Largest result, step output or state value a guest may hand over.
    pub max_output_bytes: usize,
    /// Captured stdout/stderr per activation.
    pub log_capacity: usize,
    /// Concurrent instances the pooling allocator is sized for.
    pub instances: u32,
    /// Where compiled components are cached across processes.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            memory_limit_bytes: 64 << 20,
            cpu_limit_ms: 60_000,
            max_output_bytes: 1 << 20,
            log_capacity: 64 << 10,
            instances: 64,
            cache_dir: None,
        }
    }
}

/// The start of each pooled linear memory kept resident between instances:
/// a Rust guest's stack top, data and first heap pages.
const KEEP_RESIDENT: usize = 2 << 20;

/// A digest's template, compiled by the first activation that needs it.
type Template = Arc<tokio::sync::OnceCell<Arc<WorkflowPre<RunCtx>>>>;

pub struct Runtime {
    wasm: wasmtime::Engine,
    linker: Linker<RunCtx>,
    templates: tokio::sync::Mutex<HashMap<String, Template>>,
    config: RuntimeConfig,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Runtime> {
        let mut pool = PoolingAllocationConfig::default();
        let n = config.instances.max(1);
        // Core instances per component instance: a Rust guest has 3, a
        // componentize-py (Python) guest 14; every slot may run either.
        pool.total_component_instances(n)
            .total_core_instances(n * 20)
            .total_memories(n * 2)
            .total_tables(n * 8)
            .total_stacks(n)
            // Every deployment's `memoryMb` must fit; see `limits::MEMORY_MB`.
            .max_memory_size(config.memory_limit_bytes.max(MAX_MEMORY_BYTES));
        // A freed slot keeps the pages its guest touched in its first
        // `KEEP_RESIDENT` bytes, reset in place (only the dirty ones), so the
        // next instance there takes no page faults and the kernel no TLB
        // shootdowns: 15-25% less host CPU per 10-step run (issue 12).
        // Reusing the most recently freed slots bounds that resident set to
        // the instances that ran at once, not the whole pool.
        pool.linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT / 16)
            .max_unused_warm_slots(0);
        let mut cfg = Config::new();
        cfg.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let wasm = wasmtime::Engine::new(&cfg).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let mut linker = Linker::new(&wasm);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        // `wasi:http` only, onto the egress broker (`imports::http`).
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        Workflow::add_to_linker::<RunCtx, HasSelf<RunCtx>>(&mut linker, |c| c)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop) = (wasm.clone(), stop_ticker.clone());
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    ticker_engine.increment_epoch();
                }
            })?;
        Ok(Runtime {
            wasm,
            linker,
            templates: Default::default(),
            config,
            stop_ticker,
        })
    }

    /// Loads the cached artifact of component `digest`, or compiles the
    /// bytes `fetch` provides (and caches the result). A restarted replica
    /// with a cached artifact does not read the component from the database.
    async fn compile<F, Fut>(&self, digest: &str, fetch: F) -> anyhow::Result<WorkflowPre<RunCtx>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Vec<u8>>>,
    {
        let cached = self.cache_path(digest);
        if let Some(path) = cached.clone().filter(|p| p.exists()) {
            let (wasm, linker) = (self.wasm.clone(), self.linker.clone());
            let loaded = tokio::task::spawn_blocking(move || {
                // SAFETY: the file was written by `Component::serialize` in
                // `compile_component`, under a name that carries the digest and
                // this engine's compatibility hash, in a directory only this
                // host writes.
                let component = unsafe { Component::deserialize_file(&wasm, &path) }.ok()?;
                prepare(&linker, &component).ok()
            })
            .await?;
            if let Some(pre) = loaded {
                return Ok(pre);
            }
        }
        let bytes = fetch().await?;
        let (wasm, linker) = (self.wasm.clone(), self.linker.clone());
        tokio::task::spawn_blocking(move || {
            prepare(
                &linker,
                &compile_component(&wasm, &bytes, cached.as_deref())?,
            )
        })
        .await?
    }

    /// Where the compiled artifact of `digest` is cached: the name carries
    /// the digest and a hash of this wasmtime build and configuration, so an
    /// artifact is only ever loaded by an engine that can run it.
    fn cache_path(&self, digest: &str) -> Option<PathBuf> {
        use std::hash::{Hash, Hasher};
        let dir = self.config.cache_dir.as_ref()?;
        let mut engine = std::collections::hash_map::DefaultHasher::new();
        self.wasm.precompile_compatibility_hash().hash(&mut engine);
        env!("CARGO_PKG_VERSION").hash(&mut engine);
        let digest = digest.strip_prefix("sha256:").unwrap_or(digest);
        Some(dir.join(format!("{digest}-{:016x}.cwasm", engine.finish())))
    }

    /// The pre-instantiated template of a deployed digest.
    async fn template(
        &self,
        engine: &Engine,
        digest: &str,
    ) -> anyhow::Result<Arc<WorkflowPre<RunCtx>>> {
        self.template_with(digest, || async {
            Ok(engine.component_bytes(digest).await?)
        })
        .await
    }

    /// The pre-instantiated template for a digest, compiled once per
    /// process (`fetch` gives the bytes if needed); activations of other
    /// digests do not wait for it.
    async fn template_with<F, Fut>(
        &self,
        digest: &str,
        fetch: F,
    ) -> anyhow::Result<Arc<WorkflowPre<RunCtx>>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Vec<u8>>>,
    {
        let cell = self
            .templates
            .lock()
            .await
            .entry(digest.to_string())
            .or_default()
            .clone();
        let built = cell
            .get_or_try_init(|| async {
                let pre = self
                    .compile(digest, fetch)
                    .await
                    .with_context(|| format!("compiling {digest}"))?;
                anyhow::Ok(Arc::new(pre))
            })
            .await
            .cloned();
        if built.is_err() {
            // Nothing is kept for a component that does not compile.
            let mut templates = self.templates.lock().await;
            if templates.get(digest).is_some_and(|c| !c.initialized()) {
                templates.remove(digest);
            }
        }
        built
    }

    /// Run one activation of `run` under `owner`'s lease.
    pub async fn activate(
        &self,
        engine: &Engine,
        claimed: &ClaimedRun,
        deployment: &Deployment,
        owner: &str,
        cancelled: Arc<AtomicBool>,
        progress: Option<Progress>,
    ) -> Ended {
        let run = &claimed.run;
        let pre = match self.template(engine, &deployment.digest).await {
            Ok(p) => p,
            Err(e) => {
                let error =
                    serde_json::json!({"name": "ComponentError", "message": format!("{e:#}")});
                return ActivationOutcome::Failed {
                    error,
                    class: "component_error",
                }
                .into();
            }
        };
        // Stored limits were range-checked at deploy; a value no deploy
        // could have stored falls back to the default rather than wrapping.
        let memory = deployment
            .memory_limit_bytes
            .and_then(|m| usize::try_from(m).ok())
            .unwrap_or(self.config.memory_limit_bytes);
        let cpu_limit_ms = deployment
            .cpu_limit_ms
            .filter(|ms| *ms > 0)
            .unwrap_or(self.config.cpu_limit_ms);
        let activation = match engine.claimed_activation(claimed, owner).await {
            Ok(a) => a,
            Err(e) => return ActivationOutcome::Retry(format!("loading checkpoints: {e}")).into(),
        };
        let ctx = RunCtx::new(RunCtxParts {
            run: activation,
            engine: engine.clone(),
            limits: Limiter::new(memory),
            cancelled: cancelled.clone(),
            progress,
            max_output: self.config.max_output_bytes,
            log_capacity: self.config.log_capacity,
        });
        let mut store = Store::new(&self.wasm, ctx);
        store.limiter(|c| &mut c.limits);
        let budget_ticks = u64::try_from(cpu_limit_ms)
            .unwrap_or(0)
            .div_ceil(TICK_MS)
            .max(1);
        let used = Arc::new(AtomicU64::new(0));
        let ticks = used.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |ctx| {
            if ctx.data().cancelled.load(Ordering::Relaxed) {
                return Err(Interrupt::Cancelled.trap());
            }
            if ticks.fetch_add(1, Ordering::Relaxed) + 1 > budget_ticks {
                return Err(Interrupt::CpuLimit {
                    limit_ms: cpu_limit_ms,
                }
                .trap());
            }
            Ok(UpdateDeadline::Yield(1))
        });
        let input = run.input.to_string();
        let result = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_run(&mut store, &input).await
        }
        .await;
        telemetry::wasm_cpu((used.load(Ordering::Relaxed) * TICK_MS) as f64 / 1e3);
        let data = store.data();
        let (stdout, stderr) = (data.stdout.contents(), data.stderr.contents());
        let outcome = classify::outcome(
            result,
            &stderr,
            data.limits.memory_refused(),
            self.config.max_output_bytes,
        );
        let outcome = data.run.refusals().explain(outcome);
        let lines = output_lines(&stdout, &stderr);
        // The step checkpoints still pending go before the output lines.
        let ended = data.run.close(outcome, !lines.is_empty()).await;
        drop(store);
        if !lines.is_empty()
            && let Err(e) = engine.logs(&run.id, &lines).await
        {
            tracing::warn!(run_id = %run.id, error = %e, "could not record guest output");
        }
        ended
    }
}

/// Captured stdout/stderr, which become the run's `log` events: their
/// non-empty lines.
fn output_lines(stdout: &[u8], stderr: &[u8]) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    for (level, bytes) in [("stdout", stdout), ("stderr", stderr)] {
        for line in String::from_utf8_lossy(bytes)
            .lines()
            .filter(|l| !l.is_empty())
        {
            lines.push((level, line.to_string()));
        }
    }
    lines
}

/// Compiles `bytes`; the artifact is written to `cache` for the next process.
fn compile_component(
    wasm: &wasmtime::Engine,
    bytes: &[u8],
    cache: Option<&Path>,
) -> anyhow::Result<Component> {
    // wasmtime's own complaint about a file that is not wasm at all quotes
    // its first bytes; say it in words instead.
    if !bytes.starts_with(b"\0asm") {
        anyhow::bail!("not a WebAssembly file (expected a wasm32-wasip2 component)");
    }
    let component = Component::from_binary(wasm, bytes)
        .map_err(|e| anyhow::anyhow!("invalid component: {e:#}"))?;
    if let (Some(path), Ok(artifact)) = (cache, component.serialize()) {
        // A private temporary name, then an atomic rename: concurrent
        // writers (replicas, test processes) never expose a partial file.
        let tmp = path.with_extension(format!(
            "{}-{:?}.tmp",
            std::process::id(),
            std::thread::current().id()
        ));
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, artifact));
        if written.is_err() || std::fs::rename(&tmp, path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(component)
}

/// The template a component is instantiated from: linked, and checked to
/// export the workflow world.
fn prepare(linker: &Linker<RunCtx>, component: &Component) -> anyhow::Result<WorkflowPre<RunCtx>> {
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    WorkflowPre::new(pre).map_err(|e| anyhow::anyhow!("not a tidebase:workflow component: {e:#}"))
}

/// The engine deploys only what this runtime can compile and link.
#[async_trait::async_trait]
impl ComponentCheck for Runtime {
    /// Compiles the component into the digest's template, so the first
    /// activation after a deploy on this replica does not compile again.
    async fn check(&self, bytes: &[u8]) -> Result<(), String> {
        let digest = crate::engine::digest_of(bytes);
        let bytes = bytes.to_vec();
        match self.template_with(&digest, || async { Ok(bytes) }).await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("{e:#}")),
        }
    }
}
