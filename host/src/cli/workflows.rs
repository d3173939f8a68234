//! `tidebase-host workflows …`: deployed workflow versions.

use super::{ReadArgs, show};
use crate::clock::iso;
use clap::Subcommand;
use serde_json::json;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum WorkflowsCmd {
    /// Every deployed version, newest version first per workflow
    /// (`--json`: as `GET /workflows`).
    List(ReadArgs),
}

pub async fn workflows(cmd: WorkflowsCmd) -> anyhow::Result<ExitCode> {
    let WorkflowsCmd::List(a) = cmd;
    let engine = super::host::engine(&a.db, super::host::env_settings()?).await?;
    let deployments = engine.deployments(None).await?;
    if a.json {
        return show::json(&json!({"deployments": deployments}));
    }
    if deployments.is_empty() {
        eprintln!("no workflows deployed (deploy one with: tidebase-host deploy FILE.wasm)");
        return Ok(ExitCode::SUCCESS);
    }
    let limit = |v: Option<i64>, unit: &str, scale: i64| {
        v.map_or_else(|| "default".into(), |v| format!("{}{unit}", v / scale))
    };
    let rows: Vec<Vec<String>> = deployments
        .iter()
        .map(|d| {
            vec![
                d.workflow_name.clone(),
                d.version.to_string(),
                show::cut(&d.digest, 19),
                limit(d.memory_limit_bytes, " MiB", 1 << 20),
                limit(d.cpu_limit_ms, " ms", 1),
                if d.allow.is_empty() {
                    "-".into()
                } else {
                    d.allow.join(",")
                },
                iso(d.created_at),
            ]
        })
        .collect();
    show::table(
        &[
            "WORKFLOW", "VERSION", "DIGEST", "MEMORY", "CPU", "ALLOW", "DEPLOYED",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}
