//! `tidebase-host gates …`: the gates of every run, and an operator's
//! decision on one, without the resolve token.

use super::{DbArgs, PageArgs, ReadArgs, show};
use crate::engine::{Decision, GateFilter, GateQuery};
use clap::{Args, Subcommand};
use serde_json::json;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum GatesCmd {
    /// Gates of every run: by default all, newest first; --pending lists
    /// those waiting for a person, oldest first.
    List(ListArgs),
    /// Approve a pending gate.
    Approve(DecideArgs),
    /// Reject a pending gate.
    Reject(DecideArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only gates waiting for a decision, oldest first (same as --status pending).
    #[arg(long, conflicts_with = "status")]
    pending: bool,
    /// Which gates: pending (oldest first), resolved or all (newest first).
    #[arg(long, default_value = "all", value_parser = GateFilter::NAMES)]
    status: String,
    #[command(flatten)]
    page: PageArgs,
    #[command(flatten)]
    read: ReadArgs,
}

#[derive(Args, Debug)]
pub struct DecideArgs {
    run_id: String,
    /// The gate's name within the run.
    gate_name: String,
    /// Who decides (recorded as the gate's actor).
    #[arg(long, default_value = "cli")]
    actor: String,
    /// A note recorded with the decision (its payload is `{"note": NOTE}`).
    #[arg(long, conflicts_with = "payload")]
    note: Option<String>,
    /// JSON payload recorded with the decision.
    #[arg(long)]
    payload: Option<String>,
    #[command(flatten)]
    db: DbArgs,
}

pub async fn gates(cmd: GatesCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        GatesCmd::List(a) => list(a).await,
        GatesCmd::Approve(a) => decide(a, true).await,
        GatesCmd::Reject(a) => decide(a, false).await,
    }
}

async fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let engine = super::host::engine(&a.read.db, super::host::env_settings()?).await?;
    let status = if a.pending { "pending" } else { &a.status };
    let filter = GateFilter::named(status).expect("clap checked the name");
    let page = engine
        .list_gates(GateQuery {
            filter,
            limit: a.page.limit,
            before: a.page.before,
        })
        .await?;
    if a.read.json {
        return show::json(&page);
    }
    if page.gates.is_empty() {
        match filter {
            GateFilter::All => eprintln!("no gates"),
            _ => eprintln!("no {status} gates"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let now = engine.now();
    let rows: Vec<Vec<String>> = page
        .gates
        .iter()
        .map(|g| {
            let gate = &g.gate;
            let (state, since) = match gate.resolved_at {
                None => (gate.status.clone(), show::age(now, gate.created_at)),
                Some(at) => match &gate.actor {
                    Some(actor) => (format!("{} by {actor}", gate.status), show::age(now, at)),
                    None => (gate.status.clone(), show::age(now, at)),
                },
            };
            vec![
                gate.run_id.clone(),
                gate.name.clone(),
                g.workflow_name.clone(),
                state,
                since,
                show::cut(&gate.prompt, 60),
            ]
        })
        .collect();
    show::table(
        &["RUN", "GATE", "WORKFLOW", "STATUS", "AGE", "PROMPT"],
        &rows,
    );
    if let Some(first) = page.gates.iter().find(|g| g.gate.is_pending()) {
        eprintln!(
            "decide: tidebase-host gates approve|reject {} {} --actor NAME [--note TEXT]",
            first.gate.run_id, first.gate.name
        );
    }
    if let Some(cursor) = &page.next_cursor {
        eprintln!("more gates: add --before {cursor}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn decide(a: DecideArgs, approve: bool) -> anyhow::Result<ExitCode> {
    let mut decision = Decision::noted(approve, a.actor.clone(), a.note.clone());
    if let Some(p) = &a.payload {
        decision.payload = serde_json::from_str(p)
            .map_err(|e| anyhow::anyhow!("--payload is not valid JSON: {e}"))?;
    }
    let engine = super::host::engine(&a.db, super::host::env_settings()?).await?;
    let gate = engine
        .resolve_gate_as_operator(&a.run_id, &a.gate_name, decision)
        .await?;
    eprintln!("gate {} on {}: {}", gate.name, gate.run_id, gate.status);
    show::json(&json!({"gate": gate}))
}
