//! `tidebase-host deploy FILE.wasm`.

use super::DbArgs;
use crate::engine::limits;
use crate::engine::{DeployLimits, Engine, EngineError};
use crate::model::Deployment;
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The workflow component (`wasm32-wasip2`).
    #[arg(value_parser = super::absolute_path)]
    file: PathBuf,
    /// Workflow name runs are created under (default: the file name without extension).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    db: DbArgs,
}

/// Sandbox limits and egress grants of a deployment.
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Linear-memory cap for this workflow, in MiB: 1 to 256 (default 64).
    #[arg(long, value_parser = limits::MEMORY_MB.parser::<i64>(None))]
    memory_mb: Option<i64>,
    /// Guest CPU budget per activation, in milliseconds: 1 to 3600000 (default 60000).
    #[arg(long, value_parser = limits::CPU_MS.parser::<i64>(None))]
    cpu_ms: Option<i64>,
    /// Connected resources this workflow may call (`resources connect`),
    /// comma-separated; without it the workflow can reach nothing.
    #[arg(long, value_name = "NAME[,NAME]", value_delimiter = ',')]
    allow: Vec<String>,
    /// Timeout of each egress call, in milliseconds: 1 to 300000 (default 10000).
    #[arg(long, value_parser = limits::EGRESS_TIMEOUT_MS.parser::<i64>(None))]
    egress_timeout_ms: Option<i64>,
    /// Largest egress response body, in bytes: 1 to 268435456 (default 1048576).
    #[arg(long, value_parser = limits::EGRESS_MAX_BYTES.parser::<i64>(None))]
    egress_max_bytes: Option<i64>,
}

impl LimitArgs {
    fn deploy_limits(&self) -> DeployLimits {
        DeployLimits {
            allow: self.allow.clone(),
            egress_timeout_ms: self.egress_timeout_ms,
            egress_max_bytes: self.egress_max_bytes,
            ..DeployLimits::from_flags(self.memory_mb, self.cpu_ms)
        }
    }
}

/// The workflow name a file deploys under.
pub fn workflow_name(file: &Path, name: Option<&str>) -> String {
    name.map(String::from).unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().replace('_', "-"))
            .unwrap_or_default()
    })
}

/// Deploy a component file; the engine refuses what its runtime cannot run.
pub async fn deploy_file(
    engine: &Engine,
    file: &Path,
    name: &str,
    limits: &LimitArgs,
) -> anyhow::Result<Deployment> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    engine
        .deploy(name, &bytes, limits.deploy_limits())
        .await
        .map_err(|e| match e {
            EngineError::InvalidComponent(why) => {
                anyhow::anyhow!("{} is not a runnable workflow: {why}", file.display())
            }
            e => e.into(),
        })
}

pub async fn run(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let (engine, _) = super::host::wasm_engine(&args.db, super::host::env_settings()?, 1).await?;
    let name = workflow_name(&args.file, args.name.as_deref());
    let d = deploy_file(&engine, &args.file, &name, &args.limits).await?;
    eprintln!(
        "deployed {} version {} ({})",
        d.workflow_name, d.version, d.digest
    );
    println!("{}", serde_json::to_string_pretty(&d)?);
    Ok(ExitCode::SUCCESS)
}
