//! A run's view of the host while one activation executes: the sandbox's
//! WASI and `wasi:http` contexts and limits, the engine's [`Activation`]
//! (inside the HTTP door), and what the host imports need to stop the guest
//! (cancellation, output limits).

use super::imports::http::HttpDoor;
use super::interrupt::Interrupt;
use super::limiter::Limiter;
use super::stdio::Capture;
use crate::engine::{Activation, Engine};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::Result as Wt;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Receives one line per durable effect, for `tidebase-host run`'s stderr.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

pub struct RunCtx {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(super) limits: Limiter,
    /// The activation; also the `wasi:http` hooks (see [`HttpDoor`]).
    pub(super) run: HttpDoor,
    pub(super) cancelled: Arc<AtomicBool>,
    progress: Option<Progress>,
    max_output: usize,
    pub(super) stdout: MemoryOutputPipe,
    pub(super) stderr: MemoryOutputPipe,
}

pub struct RunCtxParts {
    pub run: Activation,
    /// Where the run's HTTP requests go (its egress broker).
    pub engine: Engine,
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
        // No preopened dirs, no env, no sockets: the builder grants nothing
        // beyond what is configured here. HTTP goes through the broker only.
        let wasi = WasiCtx::builder()
            .stdout(Capture(stdout.clone()))
            .stderr(Capture(stderr.clone()))
            .build();
        RunCtx {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits: p.limits,
            // A request body is something the guest hands over, like a step output.
            run: HttpDoor::new(p.run, p.engine, p.max_output),
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

impl WasiHttpView for RunCtx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.run,
        }
    }
}
