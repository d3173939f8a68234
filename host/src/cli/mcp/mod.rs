//! `tidebase-host mcp`: the Model Context Protocol over standard input and
//! output, so an AI assistant can list and inspect runs, read their events,
//! list the gates waiting for a person and approve or reject one.
//!
//! The protocol subset is implemented here rather than with an SDK: a
//! server needs only `initialize`, `ping`, `tools/list` and `tools/call` over
//! newline-delimited JSON-RPC, while the maintained Rust SDK (`rmcp`) brings
//! a JSON Schema generator and proc-macro stack whose feature unification
//! rebuilt most of this workspace's dependency tree (ten minutes when
//! measured, on two cores shared with other builds). Messages go out one per line on stdout; everything
//! else the process prints goes to stderr.

mod rpc;
mod tools;

use super::DbArgs;
use rpc::{Incoming, METHOD_NOT_FOUND, RpcError};
use serde_json::{Value, json};
use std::process::ExitCode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Protocol revisions this server speaks, newest first.
const PROTOCOL_VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];

pub async fn serve(db: DbArgs) -> anyhow::Result<ExitCode> {
    let engine = super::host::engine(&db, super::host::env_settings()?).await?;
    eprintln!("tidebase-host mcp: ready on stdin/stdout");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let answer = match rpc::parse(&line) {
            Incoming::Request { id, method, params } => {
                Some(rpc::response(id, handle(&engine, &method, &params).await))
            }
            // `notifications/initialized`, `notifications/cancelled`: nothing
            // to do (every call is answered before the next is read).
            Incoming::Notification => None,
            Incoming::Invalid { id, error } => Some(rpc::response(id, Err(error))),
        };
        if let Some(answer) = answer {
            let mut text = serde_json::to_string(&answer)?;
            text.push('\n');
            out.write_all(text.as_bytes()).await?;
            out.flush().await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn handle(
    engine: &crate::engine::Engine,
    method: &str,
    params: &Value,
) -> Result<Value, RpcError> {
    match method {
        "initialize" => Ok(initialize(params)),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(tools::list()),
        "tools/call" => {
            let name = params["name"]
                .as_str()
                .ok_or_else(|| RpcError::invalid_params("params.name must be a tool name"))?;
            let outcome = tools::call(engine, name, &params["arguments"]).await?;
            Ok(tool_result(outcome))
        }
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method not found: {other}"),
        )),
    }
}

/// The handshake: the client's protocol revision if this server speaks it,
/// else the newest one it does; the capability to list and call tools.
fn initialize(params: &Value) -> Value {
    let asked = params["protocolVersion"].as_str();
    let version = PROTOCOL_VERSIONS
        .into_iter()
        .find(|v| Some(*v) == asked)
        .unwrap_or(PROTOCOL_VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "tidebase-host", "version": env!("CARGO_PKG_VERSION")},
        "instructions": "Durable workflow runs of a tidebase-host database. list_runs and get_run \
            inspect runs, run_events reads a run's event log, list_pending_gates shows what waits \
            for a human, and resolve_gate approves or rejects one in a named person's name: \
            ask that person before deciding for them.",
    })
}

/// A call's result: the answer as JSON text (and as structured content),
/// or a refusal flagged `isError` for the assistant to read.
fn tool_result(outcome: tools::Outcome) -> Value {
    match outcome {
        tools::Outcome::Answer(v) => json!({
            "content": [{"type": "text", "text": v.to_string()}],
            "structuredContent": v,
            "isError": false,
        }),
        tools::Outcome::Refused(message) => json!({
            "content": [{"type": "text", "text": message}],
            "isError": true,
        }),
    }
}
