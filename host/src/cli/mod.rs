//! The `tidebase-host` command line.

mod admin;
mod deploy;
mod host;
mod resources;
mod run;
mod serve;

use crate::store::ConnectOptions;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tidebase-host",
    version,
    about = "Durable, sandboxed agent workflows: a Tidebase v0.5 server that also runs WebAssembly workflows"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Tidebase HTTP API.
    Serve(serve::ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DbArgs),
    /// Deploy a workflow component and execute a run of it in this process.
    Run(run::RunArgs),
    /// Deploy a workflow component for `serve` to execute.
    Deploy(deploy::DeployArgs),
    /// Approve or reject a pending gate.
    #[command(subcommand)]
    Gates(admin::GatesCmd),
    /// List, inspect and cancel runs.
    #[command(subcommand)]
    Runs(admin::RunsCmd),
    /// Connect, list and revoke the upstreams workflows may call.
    #[command(subcommand)]
    Resources(resources::ResourcesCmd),
}

/// Where the data lives.
#[derive(Args, Clone, Debug)]
pub struct DbArgs {
    /// `postgres://…` or `sqlite:…`. Without it, an embedded SQLite database
    /// under the data directory is used.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory of the embedded database.
    #[arg(long, env = "TIDEBASE_DATA_DIR", default_value = ".tidebase")]
    pub data_dir: PathBuf,
}

impl DbArgs {
    pub fn connect_options(&self, auto_migrate: bool) -> ConnectOptions {
        ConnectOptions {
            database_url: self.database_url.clone(),
            data_dir: self.data_dir.clone(),
            auto_migrate,
            max_connections: 32,
        }
    }
}

/// `TIDEBASE_AUTO_MIGRATE=0` turns automatic migration off.
pub fn auto_migrate() -> bool {
    std::env::var("TIDEBASE_AUTO_MIGRATE")
        .map_or(true, |v| v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// How `serve` writes its log lines.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().with_current_span(false).init(),
        LogFormat::Text => {
            // Colour only for a person at a terminal: piped or captured logs
            // stay plain text.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none();
            logs.with_ansi(ansi).init()
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(match &cli.command {
        Command::Serve(args) => args.log_format,
        _ => LogFormat::Text,
    });
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let outcome = rt.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Migrate(db) => migrate(db).await,
            Command::Run(args) => run::run(args).await,
            Command::Deploy(args) => deploy::run(args).await,
            Command::Gates(cmd) => admin::gates(cmd).await,
            Command::Runs(cmd) => admin::runs(cmd).await,
            Command::Resources(cmd) => resources::resources(cmd).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(db: DbArgs) -> anyhow::Result<ExitCode> {
    let opts = db.connect_options(true);
    let pending = crate::store::pending_migrations(&opts).await?;
    crate::store::connect(&opts).await?;
    if pending.is_empty() {
        eprintln!("database is up to date");
    } else {
        eprintln!(
            "applied {} migration(s): {}",
            pending.len(),
            pending.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
