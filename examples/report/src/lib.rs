//! `report`: research a topic and write a report once a person approves it.
//!
//! plan → fetch-sources → live state → gate `approve-report` → write-report.
//! Input `{"topic": "..."}`; output the report as JSON. The "model calls" are
//! deterministic stand-ins so that tests can predict every byte, but their
//! usage is recorded as if they were real.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidebase_guest::{Error, Importance, Replay, Run, StateOptions, StepOptions, Usage};

#[derive(Deserialize)]
struct Input {
    topic: String,
}

#[derive(Serialize, Deserialize)]
struct Plan {
    sections: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Source {
    title: String,
    url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    topic: String,
    approved: bool,
    approved_by: Option<String>,
    sections: Vec<String>,
    sources: Vec<Source>,
    /// The written report; `None` when the gate was not approved.
    body: Option<String>,
    reviewer_note: Option<String>,
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Usage of a simulated model call, attributed to the running step.
fn model_usage(run: &Run, label: &str, input_tokens: u64, output_tokens: u64) -> Usage {
    Usage {
        kind: Some("llm".into()),
        provider: Some("example-ai".into()),
        model: Some("small-1".into()),
        label: Some(label.into()),
        input_tokens: Some(input_tokens),
        output_tokens: Some(output_tokens),
        cost_usd: Some((input_tokens + 4 * output_tokens) as f64 * 1e-6),
        step_id: run.current_step_id(),
        ..Usage::default()
    }
}

fn report(run: &Run, input: Input) -> Result<Report, Error> {
    let topic = input.topic.trim().to_owned();
    if topic.is_empty() {
        return Err(Error::new("ValueError", "topic must not be empty"));
    }

    let plan: Plan = run.step_with(
        "plan",
        StepOptions::new()
            .input(&json!({ "topic": topic }))
            .replay(Replay::Auto),
        || {
            run.usage().record(model_usage(run, "plan", 120, 40))?;
            Ok::<_, Error>(Plan {
                sections: ["Background", "Current state", "Outlook"]
                    .iter()
                    .map(|s| format!("{s}: {topic}"))
                    .collect(),
            })
        },
    )?;

    let sources: Vec<Source> = run.step_with(
        "fetch-sources",
        StepOptions::new()
            .input(&plan.sections)
            .side_effects(["read"])
            .retries(2),
        || {
            Ok::<_, Error>(
                plan.sections
                    .iter()
                    .enumerate()
                    .map(|(i, section)| Source {
                        title: format!("Notes on {section}"),
                        url: format!("https://sources.example/{}/{i}", slug(&topic)),
                    })
                    .collect(),
            )
        },
    )?;

    run.state().set_with(
        &json!({ "phase": "awaiting-approval", "topic": topic, "sections": plan.sections.len() }),
        StateOptions::new().reason("research done"),
    )?;
    run.state().patch_with(
        &json!({ "sources": sources.len() }),
        StateOptions::new().importance(Importance::Checkpoint),
    )?;

    let decision = run.gate_with(
        "approve-report",
        &format!(
            "Write the report on {topic:?} from {} sources?",
            sources.len()
        ),
        tidebase_guest::GateOptions::new()
            .data(&json!({ "topic": topic, "sections": plan.sections, "sources": sources.len() })),
    )?;
    let reviewer_note = decision
        .payload
        .get("note")
        .and_then(|n| n.as_str())
        .map(str::to_owned);

    if !decision.approved() {
        run.state().patch(
            &json!({ "phase": "rejected", "decision": format!("{:?}", decision.decision) }),
        )?;
        run.warn(format!("report on {topic:?} was not approved"));
        return Ok(Report {
            topic,
            approved: false,
            approved_by: decision.actor,
            sections: plan.sections,
            sources,
            body: None,
            reviewer_note,
        });
    }

    let body: String = run.step_with(
        "write-report",
        StepOptions::new()
            .input(&json!({ "topic": topic, "sections": plan.sections }))
            .side_effects(["report.write"])
            .idempotency_key(format!("report:{}", slug(&topic)))
            .checkpoint_invariant("the report text was stored exactly once"),
        || {
            run.usage().record(model_usage(run, "write", 900, 600))?;
            let mut body = format!("# {topic}\n");
            for (section, source) in plan.sections.iter().zip(&sources) {
                body.push_str(&format!("\n## {section}\n\nSee {}.\n", source.url));
            }
            Ok::<_, Error>(body)
        },
    )?;

    run.state()
        .patch(&json!({ "phase": "done", "bytes": body.len() }))?;
    run.info(format!(
        "report on {topic:?} written ({} bytes)",
        body.len()
    ));
    Ok(Report {
        topic,
        approved: true,
        approved_by: decision.actor,
        sections: plan.sections,
        sources,
        body: Some(body),
        reviewer_note,
    })
}

tidebase_guest::workflow!(report);
