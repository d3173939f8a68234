//! tidebase-host: a Tidebase v0.5 server whose engine also runs workflows
//! compiled to WebAssembly components.
//!
//! The crates mirror the architecture. `tidebase-engine` owns every rule and
//! the store traits; `tidebase-store-sql` persists rows (Postgres and
//! SQLite); `tidebase-http` and `tidebase-wasm` are thin doors onto the
//! engine, `tidebase-worker` drives wasm runs; this crate is the CLI that
//! wires them together. The re-exports below give tests and the bench one
//! path per layer.

pub mod cli;

pub use tidebase_engine::{self as engine, clock, config, ids, model};
pub use tidebase_http as api;
pub use tidebase_wasm as runtime;
pub use tidebase_worker as worker;

/// The store traits and their SQL implementation.
pub mod store {
    pub use tidebase_engine::store::*;
    pub use tidebase_store_sql::*;
}
