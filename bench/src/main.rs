//! `tidebase-bench`: the numbers our issues ask for. Each mode prints small
//! tables and one JSON line per measurement (`{"bench": …}`) for the record.
//! See `bench/README.md`.

mod ceiling;
mod client;
mod env;
mod http;
mod ready;
mod report;
mod summary;
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
    /// Seconds the commit ceiling is measured at each concurrency level.
    #[arg(long, global = true, default_value_t = 3.0)]
    pub ceiling_secs: f64,
    /// Size of each step's output JSON (and of the ceiling's row payload).
    #[arg(long, global = true, default_value_t = 256)]
    pub output_bytes: usize,
    /// The concurrency level at which the summary judges the targets.
    #[arg(long, global = true, default_value_t = 16)]
    pub target_concurrency: usize,
}

impl Global {
    pub fn backend(&self) -> Backend {
        if self.sqlite {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// The HTTP API driven as an SDK worker drives it: checkpoints and replays.
    Http(http::HttpArgs),
    /// The wasm runtime: instantiation, worker-loop steps, HTTP comparison,
    /// memory per suspended run.
    Wasm(wasm::WasmArgs),
    /// `tidebase-host serve` (release, beside this binary) on a fresh SQLite
    /// data dir: time until /health answers.
    Ready(ready::ReadyArgs),
    /// Every target of issue 12 in one run: HTTP and wasm steps on Postgres
    /// and SQLite at the target concurrency, parked runs, serve ready.
    All(AllArgs),
}

#[derive(clap::Args, Clone, Debug)]
struct AllArgs {
    /// Seconds each HTTP load runs.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Runs parked at their gate at once (on Postgres).
    #[arg(long, default_value_t = 10_000)]
    suspended: usize,
    /// Wasm runs of 10 steps: more than `wasm`'s default, so the phase lasts
    /// seconds (about 5 here) and its start and end, the first claims and
    /// the last runs' tail, weigh little. 1,000 runs lasted about a second.
    #[arg(long, default_value_t = 5000)]
    runs: usize,
    /// Steps of the long wasm runs, in total over the slots (see `runs`).
    #[arg(long, default_value_t = 48_000)]
    long_steps: usize,
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
    let result = match &cli.mode {
        Mode::Http(a) => http::run(&cli.global, a).await,
        Mode::Wasm(a) => wasm::run(&cli.global, a).await,
        Mode::Ready(a) => ready::run(a).await,
        Mode::All(a) => all(&cli.global, a).await,
    };
    summary::print(cli.global.target_concurrency);
    result
}

async fn all(g: &Global, a: &AllArgs) -> anyhow::Result<()> {
    let conc = vec![g.target_concurrency];
    let cli = |args: &[&str]| {
        let mut argv = vec!["tidebase-bench"];
        argv.extend_from_slice(args);
        Cli::parse_from(argv).mode
    };
    let (Mode::Http(mut http_args), Mode::Wasm(mut wasm_args)) =
        (cli(&["http"]), cli(&["wasm", "--parts", "steps"]))
    else {
        unreachable!("parsed as written");
    };
    http_args.concurrency = conc.clone();
    http_args.duration_secs = a.duration_secs;
    wasm_args.concurrency = conc;
    wasm_args.runs = a.runs;
    wasm_args.long_steps = a.long_steps;
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let g = Global {
            sqlite: backend == Backend::Sqlite,
            ..g.clone()
        };
        http::run(&g, &http_args).await?;
        wasm::run(&g, &wasm_args).await?;
    }
    let Mode::Wasm(mut rss_args) = cli(&["wasm", "--parts", "rss"]) else {
        unreachable!("parsed as written");
    };
    rss_args.suspended = a.suspended;
    wasm::run(
        &Global {
            sqlite: false,
            ..g.clone()
        },
        &rss_args,
    )
    .await?;
    let Mode::Ready(ready_args) = cli(&["ready"]) else {
        unreachable!("parsed as written");
    };
    ready::run(&ready_args).await
}
