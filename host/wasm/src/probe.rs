//! Measurement hooks for benchmarks (`tidebase-bench`): the cost of one
//! activation's sandbox, without a run, a lease or a database write.

use super::Runtime;
use super::ctx::{RunCtx, RunCtxParts};
use super::limiter::Limiter;
use crate::engine::Engine;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use wasmtime::{Store, UpdateDeadline};

impl Runtime {
    /// Instantiate the component `digest` from its cached template in a
    /// fresh store (built as [`Runtime::activate`] builds it) and call
    /// `run(input)` once. Returns the time from store creation until the
    /// call returned; dropping the store afterwards is not included.
    ///
    /// The context belongs to no run, so the guest must not make durable
    /// host calls (`hostile` with `{"mode":"ok"}` makes none). The template
    /// is compiled on first use: warm up before measuring. A guest error or
    /// trap is an error.
    pub async fn time_first_call(
        &self,
        engine: &Engine,
        digest: &str,
        input: &str,
    ) -> anyhow::Result<Duration> {
        let pre = self.template(engine, digest).await?;
        let start = Instant::now();
        let ctx = RunCtx::new(RunCtxParts {
            run: engine.blank_activation("probe", "probe"),
            engine: engine.clone(),
            limits: Limiter::new(self.config.memory_limit_bytes),
            cancelled: Arc::new(AtomicBool::new(false)),
            progress: None,
            max_output: self.config.max_output_bytes,
            log_capacity: self.config.log_capacity,
        });
        let mut store = Store::new(&self.wasm, ctx);
        store.limiter(|c| &mut c.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| anyhow::anyhow!("instantiate: {e:#}"))?;
        let result = instance
            .call_run(&mut store, &input.to_string())
            .await
            .map_err(|e| anyhow::anyhow!("run: {e:#}"))?;
        let elapsed = start.elapsed();
        drop(store);
        result.map_err(|e| {
            anyhow::anyhow!("the guest returned an error: {}: {}", e.name, e.message)
        })?;
        Ok(elapsed)
    }
}
