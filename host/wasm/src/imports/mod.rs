//! The wasm door: one file per capability of the `host` interface, each
//! decoding the guest's arguments, calling the engine (through the run's
//! [`crate::engine::Activation`]) and encoding the answer. Waits (gates,
//! sleeps, children) become an [`Interrupt::Suspend`] trap: the instance is
//! dropped and the run replays up to the same point when it is picked up
//! again.
//!
//! Outbound HTTP is the standard `wasi:http` import instead, whose send hook
//! is the door onto the engine's egress broker ([`http`]).
//!
//! WIT has one `host` interface, so bindgen generates one trait; its impl
//! below only routes each import to its capability.
//!
//! [`Interrupt::Suspend`]: super::interrupt::Interrupt::Suspend

mod children;
mod clock;
mod errors;
mod gates;
pub mod http;
mod log;
mod state;
mod steps;
mod usage;

use super::bindings::{
    GateOutcome, GateRequest, GuestError, LogLevel, StateOptions, StepOptions, StepStart,
    tidebase::workflow::host, tidebase::workflow::types,
};
use super::ctx::RunCtx;
use crate::engine::WriteMode;
use wasmtime::Result as Wt;

impl types::Host for RunCtx {}

impl host::Host for RunCtx {
    async fn step_begin(
        &mut self,
        name: String,
        options: StepOptions,
    ) -> Wt<Result<StepStart, GuestError>> {
        steps::begin(self, name, options).await
    }

    async fn step_complete(
        &mut self,
        step_id: String,
        output: String,
    ) -> Wt<Result<(), GuestError>> {
        steps::complete(self, step_id, output).await
    }

    async fn step_fail(
        &mut self,
        step_id: String,
        err: GuestError,
        retryable: bool,
    ) -> Wt<Result<(), GuestError>> {
        steps::fail(self, step_id, err, retryable).await
    }

    async fn gate(&mut self, request: GateRequest) -> Wt<Result<GateOutcome, GuestError>> {
        gates::gate(self, request).await
    }

    async fn state_get(&mut self) -> Wt<Option<String>> {
        state::get(self).await
    }

    async fn state_set(&mut self, value: String, o: StateOptions) -> Wt<Result<u32, GuestError>> {
        state::write(self, WriteMode::Replace, value, o).await
    }

    async fn state_patch(&mut self, value: String, o: StateOptions) -> Wt<Result<u32, GuestError>> {
        state::write(self, WriteMode::Merge, value, o).await
    }

    async fn state_save(&mut self, label: String, o: StateOptions) -> Wt<Result<u32, GuestError>> {
        state::save(self, label, o).await
    }

    async fn usage_record(&mut self, usage: String) -> Wt<Result<(), GuestError>> {
        usage::record(self, usage).await
    }

    async fn child(
        &mut self,
        edge: String,
        workflow: String,
        input: String,
    ) -> Wt<Result<String, GuestError>> {
        children::child(self, edge, workflow, input).await
    }

    async fn sleep(&mut self, duration_ms: u64) -> Wt<()> {
        clock::sleep(self, duration_ms).await
    }

    async fn log(&mut self, level: LogLevel, message: String) -> Wt<()> {
        log::log(self, level, message).await
    }

    async fn now(&mut self) -> Wt<u64> {
        clock::now(self).await
    }

    async fn random(&mut self) -> Wt<u64> {
        clock::random(self).await
    }
}
