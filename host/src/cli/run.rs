//! `tidebase-host run FILE.wasm`: deploy a workflow, start (or resume) a run
//! and execute it in this process, printing progress on stderr and the
//! result on stdout.

use super::DbArgs;
use super::deploy::{LimitArgs, deploy_file, workflow_name};
use crate::engine::{Engine, NewRun};
use crate::model::{Run, RunStatus};
use crate::worker::Worker;
use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit code when `--no-wait` stops at a pending gate.
pub const EXIT_WAITING: u8 = 3;
/// Exit code when the run was cancelled.
pub const EXIT_CANCELLED: u8 = 4;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The workflow component (`wasm32-wasip2`).
    #[arg(value_parser = super::absolute_path)]
    file: PathBuf,
    /// Input JSON for a new run.
    #[arg(long, conflicts_with = "input_file")]
    input: Option<String>,
    /// Read the input JSON from this file.
    #[arg(long, value_parser = super::absolute_path)]
    input_file: Option<PathBuf>,
    /// Resume this run instead of starting a new one.
    #[arg(long)]
    run_id: Option<String>,
    /// Workflow name (default: the file name without extension).
    #[arg(long)]
    workflow: Option<String>,
    /// Keep waiting at a pending gate until it is resolved (default).
    #[arg(long, overrides_with = "no_wait")]
    wait: bool,
    /// Exit with code 3 at a pending gate instead of waiting.
    #[arg(long)]
    no_wait: bool,
    /// Take a resumed run over even if another process still holds its lease
    /// (e.g. the process that crashed); that process is fenced out.
    #[arg(long)]
    takeover: bool,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    db: DbArgs,
}

impl RunArgs {
    fn input(&self) -> anyhow::Result<Value> {
        let text = match (&self.input, &self.input_file) {
            (Some(t), _) => t.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?,
            (None, None) => return Ok(Value::Object(Default::default())),
        };
        serde_json::from_str(&text).context("--input is not valid JSON")
    }

    /// The command that resumes `run_id`.
    fn resume_command(&self, run_id: &str) -> String {
        let mut cmd = format!(
            "tidebase-host run {} --run-id {run_id}",
            self.file.display()
        );
        if let Some(w) = &self.workflow {
            cmd += &format!(" --workflow {w}");
        }
        match &self.db.database_url {
            Some(url) => cmd += &format!(" --database-url '{url}'"),
            None => cmd += &format!(" --data-dir {}", self.db.data_dir.display()),
        }
        cmd
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let input = args.input()?;
    let vault = super::host::vault(&args.db)?;
    let (engine, runtime) =
        super::host::wasm_engine(&args.db, super::host::env_settings()?, 8).await?;
    let engine = engine.with_vault(vault);
    let name = workflow_name(&args.file, args.workflow.as_deref());
    let deployment = deploy_file(&engine, &args.file, &name, &args.limits).await?;
    eprintln!(
        "workflow {name} v{} ({})",
        deployment.version,
        &deployment.digest[..19]
    );

    let run = match &args.run_id {
        Some(id) => resume(&engine, id, &name, args.takeover).await?,
        None => engine.create_run(NewRun::named(&name, input)).await?,
    };
    eprintln!("run {}", run.id);
    let progress = Arc::new(|line: &str| eprintln!("  {line}"));
    let worker = Worker::new(engine.clone(), runtime, 8)
        .only_tree(&run.id)
        .with_progress(progress);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker_task = tokio::spawn(worker.run(stop_rx));
    let code = follow(&engine, &args, &run.id).await;
    let _ = stop_tx.send(true);
    let _ = worker_task.await;
    code
}

/// Load a run to resume, checking it belongs to this workflow.
async fn resume(engine: &Engine, id: &str, name: &str, takeover: bool) -> anyhow::Result<Run> {
    let run = engine
        .get_run(id)
        .await
        .with_context(|| format!("run {id}"))?;
    if run.workflow_name != name {
        bail!(
            "run {id} belongs to workflow {:?}, not {name:?} (pass --workflow)",
            run.workflow_name
        );
    }
    if takeover && run.live_lease_owner(engine.now()).is_some() {
        engine.release_lease(id).await?;
        eprintln!("took over the lease of run {id}");
    }
    if let Some(holder) = run.live_lease_owner(engine.now()).filter(|_| !takeover) {
        eprintln!(
            "run {id} is leased by {holder}; it resumes when that lease expires (or pass --takeover)"
        );
    }
    Ok(engine.reopen_run(id).await?)
}

/// Wait for the run to finish (or to stop at a gate with `--no-wait`).
async fn follow(engine: &Engine, args: &RunArgs, run_id: &str) -> anyhow::Result<ExitCode> {
    let mut wake = engine.subscribe();
    let mut announced = std::collections::HashSet::new();
    loop {
        let run = engine.get_run(run_id).await?;
        match run.status {
            RunStatus::Completed => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&run.result.unwrap_or(Value::Null))?
                );
                return Ok(ExitCode::SUCCESS);
            }
            RunStatus::Failed => {
                eprintln!(
                    "run {run_id} failed ({}): {}",
                    run.failure_class.as_deref().unwrap_or("error"),
                    super::show::error_text(run.error.as_ref())
                );
                eprintln!("resume with: {}", args.resume_command(run_id));
                return Ok(ExitCode::FAILURE);
            }
            RunStatus::Cancelled => {
                eprintln!("run {run_id} was cancelled");
                return Ok(ExitCode::from(EXIT_CANCELLED));
            }
            _ => {}
        }
        let parked = run.lease_owner.is_none() && run.parked_until.is_some();
        if parked {
            let gates = engine.pending_gates(run_id).await?;
            for g in gates.iter().filter(|g| announced.insert(g.id.clone())) {
                eprintln!("run {run_id} is waiting on gate {:?}: {}", g.name, g.prompt);
                eprintln!("  approve: tidebase-host gates approve {run_id} {}", g.name);
                eprintln!("  reject:  tidebase-host gates reject {run_id} {}", g.name);
                eprintln!(
                    "  HTTP:    curl -X POST {}/runs/{run_id}/gates/{}/resolve -H 'content-type: application/json' -d '{{\"token\":\"{}\",\"decision\":\"approved\"}}'",
                    engine.settings.public_url, g.id, g.resolve_token
                );
            }
            if args.no_wait && !gates.is_empty() {
                eprintln!("resume with: {}", args.resume_command(run_id));
                return Ok(ExitCode::from(EXIT_WAITING));
            }
        }
        tokio::select! {
            _ = wake.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
