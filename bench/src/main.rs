//! `tidebase-bench`: the numbers our issues ask for. Each mode prints small
//! tables and one JSON line per measurement (`{"bench": …}`) for the record.
//! See `bench/README.md`.

mod env;
mod http;
mod report;
mod wasm;

use clap::{Parser, Subcommand};
use env::Backend;

pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Parser, Debug)]
#[command(
    name = "tidebase-bench",
    about = "Benchmarks of tidebase-host",
    version
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    mode: Mode,
}

/// Where the benchmark database lives and how it is read.
#[derive(clap::Args, Clone, Debug)]
pub struct Global {
    /// Admin URL of a Postgres server: a fresh database `tb_bench_<random>`
    /// is created on it and dropped at the end.
    #[arg(long, global = true, env = "TIDEBASE_BENCH_DATABASE_URL", default_value = DEFAULT_ADMIN_URL)]
    pub database_url: String,
    /// Use SQLite (a file in a temporary directory) instead of Postgres.
    #[arg(long, global = true)]
    pub sqlite: bool,
    /// Keep the benchmark database instead of dropping it.
    #[arg(long, global = true)]
    pub keep_db: bool,
    /// Seconds to wait before each reading of `pg_stat_database`: the
    /// engine's idle backends flush their counters within 10 s (PG 15+).
    #[arg(long, global = true, default_value_t = 11.0)]
    pub settle_secs: f64,
    /// Profiling aid: log every statement of the benchmark database in the
    /// Postgres server log (`ALTER DATABASE … SET log_statement = 'all'`).
    #[arg(long, global = true)]
    pub pg_log_statements: bool,
    /// Connection pool size of the in-process engine (`serve` uses 32).
    #[arg(long, global = true, default_value_t = 32)]
    pub max_connections: u32,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// The HTTP API driven as an SDK worker drives it: checkpoints and replays.
    Http(http::HttpArgs),
    /// The wasm runtime: instantiation, worker-loop steps, HTTP comparison,
    /// memory per suspended run.
    Wasm(wasm::WasmArgs),
}

pub fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    eprintln!(
        "tidebase-bench: {} CPUs, load average {:.2}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        env::load1()
    );
    match &cli.mode {
        Mode::Http(a) => http::run(&cli.global, a).await,
        Mode::Wasm(a) => wasm::run(&cli.global, a).await,
    }
}
