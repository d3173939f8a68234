//! The SQL store: one implementation of the engine's store traits for both
//! backends (Postgres in production, SQLite embedded) through sqlx's `Any`
//! driver. Everything that knows SQL, a driver or a dialect lives here.

mod connect;
mod exclusive;
mod queues;
mod rows;
mod sql;
mod wasm;

pub use connect::{Backend, ConnectOptions, connect, pending_migrations};
pub use sql::SqlStore;

// The engine's names at this crate's root, so modules read `crate::model`.
use tidebase_engine::store::{Claimant, Exclusive, QueueTx, Result, Store, Tx, WasmTx};
use tidebase_engine::{clock, model};
