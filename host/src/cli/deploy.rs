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
    file: PathBuf,
    /// Workflow name runs are created under (default: the file name without extension).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    db: DbArgs,
}

/// Sandbox limits of a deployment.
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Linear-memory cap for this workflow, in MiB: 1 to 256 (default 64).
    #[arg(long, value_parser = limits::MEMORY_MB.parser::<i64>(None))]
    memory_mb: Option<i64>,
    /// Guest CPU budget per activation, in milliseconds: 1 to 3600000 (default 60000).
    #[arg(long, value_parser = limits::CPU_MS.parser::<i64>(None))]
    cpu_ms: Option<i64>,
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
    let limits = DeployLimits::from_flags(limits.memory_mb, limits.cpu_ms);
    engine
        .deploy(name, &bytes, limits)
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
