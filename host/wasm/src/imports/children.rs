//! Children: start a child run and wait for its result.

use super::super::bindings::GuestError;
use super::super::ctx::RunCtx;
use super::super::interrupt::Interrupt;
use super::errors::{answer, guest_error, parse};
use crate::clock::Micros;
use crate::engine::{NewChild, NewRun};
use crate::model::RunStatus;
use serde_json::{Value, json};
use wasmtime::Result as Wt;

pub async fn child(
    cx: &mut RunCtx,
    edge: String,
    workflow: String,
    input: String,
) -> Wt<Result<String, GuestError>> {
    cx.live()?;
    let input = match parse("child input", &input) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let req = NewChild {
        edge_name: edge.clone(),
        run: NewRun::named(workflow, input),
        edge_type: "child".into(),
        edge_metadata: json!({}),
    };
    let (child, created) = match answer("child", cx.run.start_child(req).await)? {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    match child.status {
        RunStatus::Completed => {
            cx.say(format!("child {edge}: completed ({})", child.id));
            Ok(Ok(child.result.unwrap_or(Value::Null).to_string()))
        }
        RunStatus::Failed => Ok(Err(guest_error(
            "ChildFailed",
            format!(
                "child run {} failed: {}",
                child.id,
                child.error.unwrap_or(Value::Null)
            ),
        ))),
        RunStatus::Cancelled => Ok(Err(guest_error(
            "ChildCancelled",
            format!("child run {} was cancelled", child.id),
        ))),
        _ => {
            if created {
                cx.say(format!(
                    "child {edge}: started {} ({})",
                    child.workflow_name, child.id
                ));
                if child.component_digest.is_none() {
                    cx.say(format!(
                        "child {edge}: workflow {:?} is not deployed; it waits for a deploy or an SDK worker",
                        child.workflow_name
                    ));
                }
            }
            // Woken when the child finishes.
            Err(Interrupt::Suspend {
                until: Micros::MAX,
                reason: format!("child {edge}"),
            }
            .trap())
        }
    }
}
