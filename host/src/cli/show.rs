//! How the read verbs show records to a person: aligned tables, one-line
//! event summaries, a run's summary. `--json` bypasses all of this.

use crate::clock::{Micros, iso};
use crate::model::Event;
use serde_json::Value;
use std::process::ExitCode;

/// `v` as indented JSON on stdout.
pub fn json(v: &impl serde::Serialize) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}

/// Rows under a header, each column as wide as its widest cell (the last
/// column is not padded).
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < widths.len() {
                out += &format!("{cell:<w$}  ", w = widths[i]);
            } else {
                out += cell;
            }
        }
        println!("{}", out.trim_end());
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}

/// Compact JSON of at most `max` characters, cut with `…`.
pub fn compact(v: &Value, max: usize) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    cut(&text, max)
}

/// `text` on one line, at most `max` characters.
pub fn cut(text: &str, max: usize) -> String {
    let line = text.replace(['\n', '\r'], " ");
    if line.chars().count() <= max {
        return line;
    }
    let kept: String = line.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// A run or step error as a person reads it: `Name: message` for the usual
/// `{name, message}` object, compact JSON for anything else.
pub fn error_text(error: Option<&Value>) -> String {
    let Some(error) = error else {
        return "no error recorded".into();
    };
    match (error["name"].as_str(), error["message"].as_str(), error) {
        (Some(name), Some(message), _) => format!("{name}: {message}"),
        (None, Some(message), _) => message.to_string(),
        (_, _, Value::String(s)) => s.clone(),
        _ => error.to_string(),
    }
}

/// How long ago `at` was, coarsely (`42s`, `5m`, `3h`, `2d`).
pub fn age(now: Micros, at: Micros) -> String {
    let s = (now - at).max(0) / 1_000_000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// The time between two wire timestamps, in ms, when both are set.
fn duration_ms(from: &Value, to: &Value) -> Option<i64> {
    let (from, to) = (from.as_str()?, to.as_str()?);
    Some((crate::clock::from_iso(to)? - crate::clock::from_iso(from)?) / 1000)
}

/// One timeline line: time, seq, type and what happened.
pub fn event_line(ev: &Event) -> String {
    format!(
        "{}  #{:<4} {:<16} {}",
        iso(ev.created_at),
        ev.seq,
        ev.kind,
        event_summary(&ev.kind, &ev.payload)
    )
}

/// The few payload fields that say what an event was; other payloads as
/// compact JSON.
fn event_summary(kind: &str, p: &Value) -> String {
    let mut parts = Vec::new();
    if kind == "log" {
        parts.push(format!(
            "{}: {}",
            p["level"].as_str().unwrap_or("log"),
            p["message"].as_str().unwrap_or_default()
        ));
    }
    // Step events carry the step's name and attempt at the top level.
    if kind.starts_with("step.") {
        let mut text = format!("step {}", p["name"].as_str().unwrap_or("?"));
        if let Some(attempt) = p["attempt"].as_i64() {
            text += &format!(" attempt {attempt}");
        }
        parts.push(text);
    }
    if let Some(version) = p["stateVersion"]["version"].as_i64() {
        parts.push(format!("state version {version}"));
    }
    if let Some(gate) = p.get("gate").filter(|g| g.is_object()) {
        let mut text = format!(
            "gate {} {}",
            gate["name"].as_str().unwrap_or("?"),
            gate["status"].as_str().unwrap_or_default()
        );
        if let Some(actor) = gate["actor"].as_str() {
            text += &format!(" by {actor}");
        }
        parts.push(text);
    }
    if let Some(usage) = p.get("usage").filter(|u| u.is_object()) {
        let what = usage["model"].as_str().or(usage["kind"].as_str());
        parts.push(format!(
            "{} {} tokens",
            what.unwrap_or("usage"),
            usage["totalTokens"]
        ));
    }
    if kind == "egress.call" {
        parts.push(format!(
            "{} {} {}{}",
            p["decision"].as_str().unwrap_or_default(),
            p["method"].as_str().unwrap_or_default(),
            p["host"].as_str().unwrap_or_default(),
            p["path"].as_str().unwrap_or_default()
        ));
    }
    if let Some(error) = p.get("error").filter(|e| !e.is_null()) {
        parts.push(cut(&error_text(Some(error)), 100));
    }
    for key in ["reason", "actor", "leaseOwner", "queue"] {
        if let Some(v) = p.get(key).and_then(Value::as_str) {
            parts.push(format!("{key} {v}"));
        }
    }
    for key in ["input", "patch", "result"] {
        if let Some(v) = p.get(key) {
            parts.push(format!("{key} {}", compact(v, 80)));
        }
    }
    if parts.is_empty() && p.as_object().is_some_and(|o| !o.is_empty()) {
        parts.push(compact(p, 100));
    }
    parts.join("; ")
}

/// A run detail (`GET /runs/:id`) as a page a person reads: the run, then
/// one line per step, gate and child, then counts of the rest.
pub fn run_summary(detail: &Value) -> String {
    let run = &detail["run"];
    let mut out = format!(
        "run {}  workflow {}\n",
        run["id"].as_str().unwrap_or("?"),
        run["workflowName"].as_str().unwrap_or("?")
    );
    let mut field = |name: &str, value: String| out += &format!("  {name:<10} {value}\n");
    let mut status = format!(
        "{}  attempt {}",
        run["status"].as_str().unwrap_or("?"),
        run["attempt"]
    );
    if let Some(class) = run["failureClass"].as_str() {
        status += &format!("  ({class})");
    }
    field("status", status);
    field("created", run["createdAt"].as_str().unwrap_or("?").into());
    for (name, key) in [("updated", "updatedAt"), ("completed", "completedAt")] {
        if let Some(at) = run[key].as_str() {
            field(name, at.into());
        }
    }
    if let Some(queue) = run["queue"].as_str() {
        field("queue", format!("{queue} (priority {})", run["priority"]));
    }
    if let Some(owner) = run["leaseOwner"].as_str() {
        field("lease", owner.into());
    }
    field("input", compact(&run["input"], 100));
    if !run["result"].is_null() {
        field("result", compact(&run["result"], 100));
    }
    if !run["error"].is_null() {
        field("error", cut(&error_text(Some(&run["error"])), 100));
    }
    if let Some(reason) = run["cancelReason"].as_str() {
        let actor = run["cancelActor"].as_str().unwrap_or("?");
        field("cancelled", format!("by {actor}: {reason}"));
    }
    let list = |key: &str| detail[key].as_array().cloned().unwrap_or_default();
    let steps = list("steps");
    if !steps.is_empty() {
        out += &format!("steps ({})\n", steps.len());
        for s in &steps {
            let took = duration_ms(&s["startedAt"], &s["completedAt"])
                .map(|ms| format!("  {ms} ms"))
                .unwrap_or_default();
            let mut line = format!(
                "  {:<24} {:<10} attempt {}{took}",
                s["name"].as_str().unwrap_or("?"),
                s["status"].as_str().unwrap_or("?"),
                s["attempt"]
            );
            if !s["error"].is_null() {
                line += &format!("  {}", cut(&error_text(Some(&s["error"])), 80));
            }
            out += &line;
            out.push('\n');
        }
    }
    let gates = list("gates");
    if !gates.is_empty() {
        out += &format!("gates ({})\n", gates.len());
        for g in &gates {
            let by = g["actor"]
                .as_str()
                .map(|a| format!(" by {a}"))
                .unwrap_or_default();
            out += &format!(
                "  {:<24} {}{by}  {}\n",
                g["name"].as_str().unwrap_or("?"),
                g["status"].as_str().unwrap_or("?"),
                cut(g["prompt"].as_str().unwrap_or_default(), 80)
            );
        }
    }
    let children = list("childRuns");
    if !children.is_empty() {
        out += &format!("children ({})\n", children.len());
        for (edge, child) in list("runEdges").iter().zip(&children) {
            out += &format!(
                "  {:<24} {}  {}\n",
                edge["name"].as_str().unwrap_or("?"),
                child["id"].as_str().unwrap_or("?"),
                child["status"].as_str().unwrap_or("?")
            );
        }
    }
    let mut counts = Vec::new();
    for (key, what) in [
        ("stateVersions", "state versions"),
        ("usage", "usage records"),
        ("recoveryAttempts", "recovery attempts"),
        ("channelDeliveries", "channel deliveries"),
        ("events", "events"),
    ] {
        let n = list(key).len();
        if n > 0 {
            counts.push(format!("{n} {what}"));
        }
    }
    if !counts.is_empty() {
        out += &format!("also: {}\n", counts.join(", "));
    }
    out
}
