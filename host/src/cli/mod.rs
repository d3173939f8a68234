//! The `tidebase-host` command line.

mod build;
mod deploy;
mod gates;
mod host;
mod mcp;
mod resources;
mod run;
mod runs;
mod serve;
mod show;
mod workflows;

use crate::store::ConnectOptions;
use clap::{Args, CommandFactory, Parser, Subcommand};
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
    /// Compile a Python workflow (`workflow.py`) to a component with componentize-py.
    Build(build::BuildArgs),
    /// Deploy a workflow component for `serve` to execute.
    Deploy(deploy::DeployArgs),
    /// List gates, and approve or reject a pending one.
    #[command(subcommand)]
    Gates(gates::GatesCmd),
    /// List, inspect, follow and cancel runs.
    #[command(subcommand)]
    Runs(runs::RunsCmd),
    /// List deployed workflows.
    #[command(subcommand)]
    Workflows(workflows::WorkflowsCmd),
    /// Connect, list and revoke the upstreams workflows may call.
    #[command(subcommand)]
    Resources(resources::ResourcesCmd),
    /// Serve the Model Context Protocol on standard input and output, so an
    /// AI assistant can list runs, read events and decide gates.
    Mcp(DbArgs),
    /// Print a shell completion script (e.g. `source <(tidebase-host completions bash)`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Where the data lives.
#[derive(Args, Clone, Debug)]
pub struct DbArgs {
    /// `postgres://…` or `sqlite:…`. Without it, an embedded SQLite database
    /// under the data directory is used.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory of the embedded database (made absolute).
    #[arg(long, env = "TIDEBASE_DATA_DIR", default_value = ".tidebase",
          value_parser = absolute_path)]
    pub data_dir: PathBuf,
}

/// The page flags of a list verb.
#[derive(Args, Clone, Debug)]
pub struct PageArgs {
    /// Rows per page: 1 to 200.
    #[arg(long, default_value_t = crate::engine::limits::LIST_LIMIT_DEFAULT,
          value_parser = crate::engine::limits::LIST_LIMIT.parser::<i64>(None))]
    pub limit: i64,
    /// The next page: the cursor a previous page ended with.
    #[arg(long, value_name = "CURSOR")]
    pub before: Option<String>,
}

/// A read verb's output and database.
#[derive(Args, Debug)]
pub struct ReadArgs {
    /// Print JSON instead of a table: what the HTTP API answers to the same question.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArgs,
}

/// A path argument made absolute against the working directory, so every
/// path the CLI prints is one a reader can use from anywhere.
pub fn absolute_path(text: &str) -> Result<PathBuf, String> {
    std::path::absolute(text).map_err(|e| format!("cannot make {text:?} absolute: {e}"))
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
            Command::Build(args) => build::run(args).await,
            Command::Deploy(args) => deploy::run(args).await,
            Command::Gates(cmd) => gates::gates(cmd).await,
            Command::Runs(cmd) => runs::runs(cmd).await,
            Command::Workflows(cmd) => workflows::workflows(cmd).await,
            Command::Resources(cmd) => resources::resources(cmd).await,
            Command::Mcp(db) => mcp::serve(db).await,
            Command::Completions { shell } => {
                let mut cmd = Cli::command();
                clap_complete::generate(shell, &mut cmd, "tidebase-host", &mut std::io::stdout());
                Ok(ExitCode::SUCCESS)
            }
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
    host::warn_if_new(&opts)?;
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
