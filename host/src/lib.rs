//! tidebase-host: a Tidebase v0.5 server whose engine also runs workflows
//! compiled to WebAssembly components.
//!
//! The folders mirror the architecture: `engine` owns every rule, `store`
//! persists rows behind one trait (Postgres and SQLite), `api` and the wasm
//! host imports are thin doors onto the engine, `cli` wires it all up.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod ids;
pub mod model;
pub mod runtime;
pub mod store;
pub mod worker;
