//! A run's view of the host while one activation executes: the sandbox's
//! WASI context and limits, the engine's [`Activation`], and what the host
//! imports need to stop the guest (cancellation, output limits).

use super::interrupt::Interrupt;
use super::limiter::Limiter;
use super::stdio::Capture;
use crate::engine::Activation;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::Result as Wt;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Receives one line per durable effect, for `tidebase-host run`'s stderr.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

pub struct RunCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: Limiter,
    pub(super) run: Activation,
    pub(super) cancelled: Arc<AtomicBool>,
    progress: Option<Progress>,
    max_output: usize,
    pub(super) stdout: MemoryOutputPipe,
    pub(super) stderr: MemoryOutputPipe,
}

pub struct RunCtxParts {
    pub run: Activation,
    pub limits: Limiter,
    pub cancelled: Arc<AtomicBool>,
    pub progress: Option<Progress>,
    pub max_output: usize,
    pub log_capacity: usize,
}

impl RunCtx {
    pub fn new(p: RunCtxParts) -> RunCtx {
        let stdout = MemoryOutputPipe::new(p.log_capacity);
        let stderr = MemoryOutputPipe::new(p.log_capacity);
        // No preopened dirs, no env, no network: the builder grants nothing
        // beyond what is configured here.
        let wasi = WasiCtx::builder()
            .stdout(Capture(stdout.clone()))
            .stderr(Capture(stderr.clone()))
            .build();
        RunCtx {
            wasi,
            table: ResourceTable::new(),
            limits: p.limits,
            run: p.run,
            cancelled: p.cancelled,
            progress: p.progress,
            max_output: p.max_output,
            stdout,
            stderr,
        }
    }

    pub(super) fn say(&self, line: impl AsRef<str>) {
        if let Some(p) = &self.progress {
            p(line.as_ref());
        }
    }

    /// Stop the guest once its run is cancelled.
    pub(super) fn live(&self) -> Wt<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            Err(Interrupt::Cancelled.trap())
        } else {
            Ok(())
        }
    }

    pub(super) fn check_size(&self, what: &'static str, text: &str) -> Wt<()> {
        if text.len() > self.max_output {
            return Err(Interrupt::OutputLimit {
                what,
                bytes: text.len(),
                limit: self.max_output,
            }
            .trap());
        }
        Ok(())
    }
}

impl WasiView for RunCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
