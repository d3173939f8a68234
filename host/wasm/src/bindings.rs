//! Host bindings for the `tidebase:workflow` world, generated in this one place.

wasmtime::component::bindgen!({
    world: "workflow",
    path: "../../wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use tidebase::workflow::types::{
    Decision, Error as GuestError, GateOutcome, GateRequest, Importance, LogLevel, ReplayPolicy,
    StateOptions, StepOptions, StepStart,
};
