//! `tidebase-host gates …` and `tidebase-host runs …`: the API's everyday
//! operations without curl.

use super::DbArgs;
use crate::engine::Decision;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum GatesCmd {
    /// Approve a pending gate.
    Approve(GateArgs),
    /// Reject a pending gate.
    Reject(GateArgs),
}

#[derive(Args, Debug)]
pub struct GateArgs {
    run_id: String,
    /// The gate's name within the run.
    gate_name: String,
    /// Who decides (recorded as the gate's actor).
    #[arg(long, default_value = "cli")]
    actor: String,
    /// JSON payload recorded with the decision.
    #[arg(long)]
    payload: Option<String>,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Subcommand, Debug)]
pub enum RunsCmd {
    /// The 100 most recent runs.
    List(DbOnly),
    /// One run with its steps, gates, state and events.
    Get(RunArg),
    /// Cancel a run.
    Cancel(CancelArgs),
}

#[derive(Args, Debug)]
pub struct DbOnly {
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args, Debug)]
pub struct RunArg {
    run_id: String,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args, Debug)]
pub struct CancelArgs {
    run_id: String,
    #[arg(long)]
    reason: Option<String>,
    #[arg(long, default_value = "cli")]
    actor: String,
    #[command(flatten)]
    db: DbArgs,
}

fn print(v: &Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}

pub async fn gates(cmd: GatesCmd) -> anyhow::Result<ExitCode> {
    let (args, decision) = match cmd {
        GatesCmd::Approve(a) => (a, "approved"),
        GatesCmd::Reject(a) => (a, "rejected"),
    };
    let payload = match &args.payload {
        Some(p) => serde_json::from_str(p)
            .map_err(|e| anyhow::anyhow!("--payload is not valid JSON: {e}"))?,
        None => json!({}),
    };
    let engine = super::host::engine(&args.db, super::host::env_settings()?).await?;
    let req = Decision {
        decision: decision.into(),
        actor: Some(args.actor.clone()),
        payload,
    };
    let gate = engine
        .resolve_gate_as_operator(&args.run_id, &args.gate_name, req)
        .await?;
    eprintln!("gate {} on {}: {decision}", gate.name, gate.run_id);
    print(&json!({"gate": gate}))
}

pub async fn runs(cmd: RunsCmd) -> anyhow::Result<ExitCode> {
    let settings = super::host::env_settings()?;
    match cmd {
        RunsCmd::List(a) => {
            let engine = super::host::engine(&a.db, settings).await?;
            for run in engine.list_runs().await? {
                println!(
                    "{}  {:<10} {}  {}",
                    run.id,
                    run.status.as_str(),
                    crate::clock::iso(run.created_at),
                    run.workflow_name
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCmd::Get(a) => {
            let engine = super::host::engine(&a.db, settings).await?;
            print(&engine.run_detail(&a.run_id).await?)
        }
        RunsCmd::Cancel(a) => {
            let engine = super::host::engine(&a.db, settings).await?;
            let run = engine
                .cancel_run(&a.run_id, a.reason.clone(), Some(a.actor.clone()))
                .await?;
            print(&json!({"run": run}))
        }
    }
}
