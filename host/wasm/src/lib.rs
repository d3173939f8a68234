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
use crate::engine::telemetry;
use crate::engine::{ActivationOutcome, ComponentCheck, Engine};
use crate::model::{Deployment, Run};
use anyhow::Context;
use bindings::{Workflow, WorkflowPre};
use ctx::{RunCtx, RunCtxParts};
use limiter::Limiter;
use std::collections::HashMap;
use std::path::PathBuf;
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

pub struct Runtime {
    wasm: wasmtime::Engine,
    linker: Linker<RunCtx>,
    templates: tokio::sync::Mutex<HashMap<String, Arc<WorkflowPre<RunCtx>>>>,
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
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 8)
            .total_stacks(n)
            // Every deployment's `memoryMb` must fit; see `limits::MEMORY_MB`.
            .max_memory_size(config.memory_limit_bytes.max(MAX_MEMORY_BYTES));
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

    async fn compile(&self, bytes: Vec<u8>) -> anyhow::Result<WorkflowPre<RunCtx>> {
        let (wasm, linker, cache) = (
            self.wasm.clone(),
            self.linker.clone(),
            self.config.cache_dir.clone(),
        );
        tokio::task::spawn_blocking(move || -> anyhow::Result<WorkflowPre<RunCtx>> {
            let component = load_component(&wasm, &bytes, cache)?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(|e| anyhow::anyhow!("{e:#}"))?;
            WorkflowPre::new(pre)
                .map_err(|e| anyhow::anyhow!("not a tidebase:workflow component: {e:#}"))
        })
        .await?
    }

    /// The pre-instantiated template for a digest, compiled on first use.
    async fn template(
        &self,
        engine: &Engine,
        digest: &str,
    ) -> anyhow::Result<Arc<WorkflowPre<RunCtx>>> {
        let mut templates = self.templates.lock().await;
        if let Some(t) = templates.get(digest) {
            return Ok(t.clone());
        }
        let bytes = engine.component_bytes(digest).await?;
        let pre = Arc::new(
            self.compile(bytes)
                .await
                .with_context(|| format!("compiling {digest}"))?,
        );
        templates.insert(digest.to_string(), pre.clone());
        Ok(pre)
    }

    /// Run one activation of `run` under `owner`'s lease.
    pub async fn activate(
        &self,
        engine: &Engine,
        run: &Run,
        deployment: &Deployment,
        owner: &str,
        cancelled: Arc<AtomicBool>,
        progress: Option<Progress>,
    ) -> ActivationOutcome {
        let pre = match self.template(engine, &deployment.digest).await {
            Ok(p) => p,
            Err(e) => {
                let error =
                    serde_json::json!({"name": "ComponentError", "message": format!("{e:#}")});
                return ActivationOutcome::Failed {
                    error,
                    class: "component_error",
                };
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
        let activation = match engine.activation(&run.id, owner).await {
            Ok(a) => a,
            Err(e) => return ActivationOutcome::Retry(format!("loading checkpoints: {e}")),
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
        // The step checkpoints still pending go before the output lines.
        let outcome = data.run.close(outcome).await;
        drop(store);
        self.keep_output(engine, &run.id, &stdout, &stderr).await;
        outcome
    }

    /// Captured stdout/stderr become the run's `log` events.
    async fn keep_output(&self, engine: &Engine, run_id: &str, stdout: &[u8], stderr: &[u8]) {
        let mut lines = Vec::new();
        for (level, bytes) in [("stdout", stdout), ("stderr", stderr)] {
            for line in String::from_utf8_lossy(bytes)
                .lines()
                .filter(|l| !l.is_empty())
            {
                lines.push((level, line.to_string()));
            }
        }
        if !lines.is_empty()
            && let Err(e) = engine.logs(run_id, &lines).await
        {
            tracing::warn!(run_id, error = %e, "could not record guest output");
        }
    }
}

/// Compile, or load a compiled artifact cached for this wasmtime build.
fn load_component(
    wasm: &wasmtime::Engine,
    bytes: &[u8],
    cache: Option<PathBuf>,
) -> anyhow::Result<Component> {
    // wasmtime's own complaint about a file that is not wasm at all quotes
    // its first bytes; say it in words instead.
    if !bytes.starts_with(b"\0asm") {
        anyhow::bail!("not a WebAssembly file (expected a wasm32-wasip2 component)");
    }
    let compile = || {
        Component::from_binary(wasm, bytes).map_err(|e| anyhow::anyhow!("invalid component: {e:#}"))
    };
    let Some(dir) = cache else { return compile() };
    let key = format!(
        "{}-{}",
        &crate::engine::digest_of(bytes)[7..],
        env!("CARGO_PKG_VERSION")
    );
    let path = dir.join(format!("{key}.cwasm"));
    if path.exists() {
        // SAFETY: the file was produced by `Component::serialize` of this
        // same build (the name carries the digest and our version), in a
        // directory only this host writes.
        if let Ok(c) = unsafe { Component::deserialize_file(wasm, &path) } {
            return Ok(c);
        }
    }
    let component = compile()?;
    if let Ok(artifact) = component.serialize() {
        let _ = std::fs::create_dir_all(&dir);
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, artifact).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    Ok(component)
}

/// The engine deploys only what this runtime can compile and link.
#[async_trait::async_trait]
impl ComponentCheck for Runtime {
    async fn check(&self, bytes: &[u8]) -> Result<(), String> {
        match self.compile(bytes.to_vec()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("{e:#}")),
        }
    }
}
