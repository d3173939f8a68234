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

/// mimalloc instead of glibc's allocator: a request allocates and frees many
/// small buffers across threads, and glibc's malloc showed as about a tenth
/// of the CPU of an HTTP step benchmark (perf). Declared here so the binary
/// and the bench, which embeds the server, run on the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use tidebase_engine::{self as engine, clock, config, ids, model};
pub use tidebase_http as api;
pub use tidebase_wasm as runtime;
pub use tidebase_worker as worker;

/// The store traits and their SQL implementation.
pub mod store {
    pub use tidebase_engine::store::*;
    pub use tidebase_store_sql::*;
}
