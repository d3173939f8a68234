//! `tidebase-host runs …`: list, inspect, follow and cancel runs.

use super::{DbArgs, PageArgs, ReadArgs, show};
use crate::clock::{Micros, from_iso, iso};
use crate::engine::{Engine, RunQuery};
use crate::model::{Run, RunStatus};
use anyhow::Context;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use serde_json::json;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum RunsCmd {
    /// Runs, newest first, filtered; a page at a time (100 by default).
    List(ListArgs),
    /// One run: a readable summary, or everything with --json.
    Get(GetArgs),
    /// A run's events as a timeline; --follow streams new ones as they happen.
    Events(EventsArgs),
    /// Cancel a run.
    Cancel(CancelArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only runs in these statuses, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = status_parser())]
    status: Vec<RunStatus>,
    /// Only runs of this workflow.
    #[arg(long)]
    workflow: Option<String>,
    /// Only runs enqueued on this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Only runs whose id contains this text.
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    /// Only runs created at or after this ISO 8601 time.
    #[arg(long, value_name = "TIME", value_parser = instant)]
    since: Option<Micros>,
    /// Only runs created before this ISO 8601 time.
    #[arg(long, value_name = "TIME", value_parser = instant)]
    until: Option<Micros>,
    #[command(flatten)]
    page: PageArgs,
    #[command(flatten)]
    read: ReadArgs,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    run_id: String,
    /// Print everything (as `GET /runs/:id`) instead of a summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    run_id: String,
    /// Keep printing new events until the run completes or is cancelled.
    #[arg(long, short)]
    follow: bool,
    /// Start after this event seq.
    #[arg(long, default_value_t = 0, value_name = "SEQ",
          value_parser = clap::value_parser!(i64).range(0..))]
    after: i64,
    /// One event per line as JSON (the `data` of `GET /runs/:id/events`).
    #[arg(long)]
    json: bool,
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

/// Run status names, refused with the list of valid ones.
fn status_parser() -> impl TypedValueParser<Value = RunStatus> {
    PossibleValuesParser::new(RunStatus::ALL.map(RunStatus::as_str))
        .map(|s| RunStatus::named(&s).expect("one of the possible values"))
}

/// An ISO 8601 instant flag.
pub fn instant(text: &str) -> Result<Micros, String> {
    from_iso(text.trim()).ok_or_else(|| {
        format!("expected an ISO 8601 time such as 2026-06-12T10:35:03Z, got {text:?}")
    })
}

/// Reads come in batches of this many events.
const EVENT_BATCH: i64 = 500;

pub async fn runs(cmd: RunsCmd) -> anyhow::Result<ExitCode> {
    let settings = super::host::env_settings()?;
    match cmd {
        RunsCmd::List(a) => {
            let engine = super::host::engine(&a.read.db, settings).await?;
            let page = engine
                .find_runs(RunQuery {
                    statuses: a.status,
                    workflow: a.workflow,
                    queue: a.queue,
                    search: a.search,
                    since: a.since,
                    until: a.until,
                    limit: a.page.limit,
                    before: a.page.before,
                })
                .await?;
            if a.read.json {
                return show::json(&page);
            }
            if page.runs.is_empty() {
                eprintln!("no runs");
                return Ok(ExitCode::SUCCESS);
            }
            let mut rows = Vec::with_capacity(page.runs.len());
            for run in &page.runs {
                rows.push(vec![
                    run.id.clone(),
                    run.status.as_str().into(),
                    iso(run.created_at),
                    run.workflow_name.clone(),
                    run.queue.clone().unwrap_or_else(|| "-".into()),
                    note(&engine, run).await?,
                ]);
            }
            show::table(
                &["ID", "STATUS", "CREATED", "WORKFLOW", "QUEUE", "NOTE"],
                &rows,
            );
            if let Some(cursor) = &page.next_cursor {
                eprintln!("more runs: add --before {cursor}");
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCmd::Get(a) => {
            let engine = super::host::engine(&a.db, settings).await?;
            let detail = engine
                .run_detail(&a.run_id)
                .await
                .with_context(|| format!("run {}", a.run_id))?;
            if a.json {
                return show::json(&detail);
            }
            print!("{}", show::run_summary(&detail));
            eprintln!(
                "events: tidebase-host runs events {}; everything: --json",
                a.run_id
            );
            Ok(ExitCode::SUCCESS)
        }
        RunsCmd::Events(a) => {
            let engine = super::host::engine(&a.db, settings).await?;
            events(&engine, &a).await
        }
        RunsCmd::Cancel(a) => {
            let engine = super::host::engine(&a.db, settings).await?;
            let run = engine
                .cancel_run(&a.run_id, a.reason.clone(), Some(a.actor.clone()))
                .await?;
            show::json(&json!({"run": run}))
        }
    }
}

/// What a run in a list is waiting for: its pending gates, or why it failed.
async fn note(engine: &Engine, run: &Run) -> anyhow::Result<String> {
    Ok(match run.status {
        RunStatus::Pending | RunStatus::Queued | RunStatus::Running => {
            let gates = engine.pending_gates(&run.id).await?;
            let names: Vec<&str> = gates.iter().map(|g| g.name.as_str()).collect();
            if names.is_empty() {
                String::new()
            } else {
                format!("waiting at gate {}", names.join(", "))
            }
        }
        RunStatus::Failed => run.failure_class.clone().unwrap_or_default(),
        RunStatus::Completed | RunStatus::Cancelled => String::new(),
    })
}

/// Print the run's events from `--after` on; with `--follow`, keep going
/// until the run is completed or cancelled and every event is printed.
async fn events(engine: &Engine, a: &EventsArgs) -> anyhow::Result<ExitCode> {
    // The run must exist: an unknown id would otherwise follow nothing forever.
    engine
        .get_run(&a.run_id)
        .await
        .with_context(|| format!("run {}", a.run_id))?;
    let mut tail = engine.tail_events(&a.run_id, a.after);
    loop {
        // Status before the read: once final, that read holds the last event.
        let done = !a.follow || engine.get_run(&a.run_id).await?.status.is_final();
        let batch = tail.read(EVENT_BATCH).await?;
        for ev in &batch {
            if a.json {
                println!("{}", serde_json::to_string(ev)?);
            } else {
                println!("{}", show::event_line(ev));
            }
        }
        if batch.len() as i64 == EVENT_BATCH {
            continue;
        }
        if done {
            return Ok(ExitCode::SUCCESS);
        }
        tail.changed().await;
    }
}
