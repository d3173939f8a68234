//! The SQL store: one implementation of the engine's store traits for both
//! backends (Postgres in production, SQLite embedded) through sqlx's `Any`
//! driver; SQLite's writes run the same queries on a connection of their
//! own (`writer`). Everything that knows SQL, a driver or a dialect lives
//! here; every difference between the two dialects is a field of
//! `dialect::Dialect`.

mod agents;
mod ceiling;
mod checkpoint;
mod connect;
mod dialect;
mod egress;
mod listing;
mod onehop;
mod queues;
mod records;
mod rows;
mod rules;
mod sql;
mod table;
mod warm;
mod wasm;
mod writer;

pub use ceiling::CeilingSample;
pub use connect::{ConnectOptions, connect, connect_sql, pending_migrations};
pub use sql::SqlStore;

// The engine's names at this crate's root, so modules read `crate::model`
// and `super::RunRows`.
use tidebase_engine::store::*;
use tidebase_engine::{clock, model};
