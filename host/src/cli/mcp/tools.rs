//! The tools an assistant may call, each one engine method: the same reads
//! as `GET /runs`, `GET /runs/:id`, the event log and `GET /gates`, and the
//! operator's gate decision that `gates approve|reject` makes.

use super::rpc::RpcError;
use crate::clock::from_iso;
use crate::engine::{Decision, Engine, EngineError, GateQuery, RunQuery, limits};
use crate::model::RunStatus;
use serde_json::{Map, Value, json};

/// Events returned by one `run_events` call at most.
const EVENTS_MAX: i64 = 500;

/// `tools/list`'s answer.
pub fn list() -> Value {
    let statuses = RunStatus::ALL.map(RunStatus::as_str);
    let page = json!({
        "limit": {"type": "integer", "minimum": 1, "maximum": 200,
                  "description": "Page size (default 100)"},
        "before": {"type": "string", "description": "The nextCursor of the previous page"},
    });
    let mut list_runs = json!({
        "status": {"type": "array", "items": {"type": "string", "enum": statuses},
                   "description": "Only runs in these statuses"},
        "workflow": {"type": "string", "description": "Only runs of this workflow"},
        "queue": {"type": "string", "description": "Only runs enqueued on this queue"},
        "q": {"type": "string", "description": "Only runs whose id contains this text"},
        "since": {"type": "string", "format": "date-time",
                  "description": "Only runs created at or after this ISO 8601 time"},
        "until": {"type": "string", "format": "date-time",
                  "description": "Only runs created before this ISO 8601 time"},
    });
    list_runs
        .as_object_mut()
        .unwrap()
        .extend(page.as_object().unwrap().clone());
    let run_id = json!({"type": "string", "description": "The run's id (run_…)"});
    json!({"tools": [
        tool("list_runs",
             "List workflow runs, newest first, with optional filters. Answers {runs, nextCursor}; pass nextCursor as before for the next page.",
             list_runs, &[]),
        tool("get_run",
             "Everything about one run: the run, its steps, gates, state and versions, children, usage, deliveries and events.",
             json!({"runId": run_id}), &["runId"]),
        tool("run_events",
             "A run's event log in order (each event has seq, type, payload, createdAt). Answers {events}; pass the last seq as after to read on.",
             json!({"runId": run_id,
                    "after": {"type": "integer", "minimum": 0, "description": "Only events with a greater seq (default 0)"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": EVENTS_MAX, "description": "Events at most (default 100)"}}),
             &["runId"]),
        tool("list_pending_gates",
             "Gates waiting for a human decision across all runs, oldest first, with the run's workflow. Answers {gates, nextCursor}.",
             page, &[]),
        tool("resolve_gate",
             "Approve or reject a pending gate as a named person. The decision is final and resumes the run.",
             json!({"runId": run_id,
                    "gate": {"type": "string", "description": "The gate's name (the name field of list_pending_gates)"},
                    "decision": {"type": "string", "enum": ["approve", "reject"]},
                    "actor": {"type": "string", "description": "Who decides; recorded on the gate"},
                    "note": {"type": "string", "description": "Why, recorded with the decision"}}),
             &["runId", "gate", "decision", "actor"]),
    ]})
}

fn tool(name: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": properties, "required": required,
                        "additionalProperties": false},
    })
}

/// What a call produced: the answer, or a refusal the assistant should read
/// (an unknown run, a gate already decided).
pub enum Outcome {
    Answer(Value),
    Refused(String),
}

/// Runs tool `name`. Unknown tools and malformed arguments are protocol
/// errors; what the engine refuses is an [`Outcome::Refused`].
pub async fn call(engine: &Engine, name: &str, args: &Value) -> Result<Outcome, RpcError> {
    let a = Args::new(args)?;
    let result = match name {
        "list_runs" => {
            a.only(&[
                "status", "workflow", "queue", "q", "since", "until", "limit", "before",
            ])?;
            let q = RunQuery {
                statuses: a.statuses("status")?,
                workflow: a.opt_str("workflow")?,
                queue: a.opt_str("queue")?,
                search: a.opt_str("q")?,
                since: a.instant("since")?,
                until: a.instant("until")?,
                limit: a
                    .int("limit", limits::LIST_LIMIT)?
                    .unwrap_or(limits::LIST_LIMIT_DEFAULT),
                before: a.opt_str("before")?,
            };
            engine.find_runs(q).await.map(|p| json!(p))
        }
        "get_run" => {
            a.only(&["runId"])?;
            engine.run_detail(&a.str("runId")?).await
        }
        "run_events" => {
            a.only(&["runId", "after", "limit"])?;
            let after = a
                .int("after", limits::Range::new(0, i64::MAX))?
                .unwrap_or(0);
            let limit = a
                .int("limit", limits::Range::new(1, EVENTS_MAX))?
                .unwrap_or(100);
            engine
                .run_events(&a.str("runId")?, after, limit)
                .await
                .map(|events| json!({"events": events}))
        }
        "list_pending_gates" => {
            a.only(&["limit", "before"])?;
            let q = GateQuery {
                limit: a
                    .int("limit", limits::LIST_LIMIT)?
                    .unwrap_or(limits::LIST_LIMIT_DEFAULT),
                before: a.opt_str("before")?,
                ..GateQuery::default()
            };
            engine.list_gates(q).await.map(|p| json!(p))
        }
        "resolve_gate" => {
            a.only(&["runId", "gate", "decision", "actor", "note"])?;
            let approve = match a.str("decision")?.as_str() {
                "approve" => true,
                "reject" => false,
                other => {
                    return Err(RpcError::invalid_params(format!(
                        "decision must be approve or reject, not {other:?}"
                    )));
                }
            };
            let decision = Decision::noted(approve, a.str("actor")?, a.opt_str("note")?);
            engine
                .resolve_gate_as_operator(&a.str("runId")?, &a.str("gate")?, decision)
                .await
                .map(|gate| json!({"gate": gate}))
        }
        other => return Err(RpcError::invalid_params(format!("unknown tool {other:?}"))),
    };
    match result {
        Ok(v) => Ok(Outcome::Answer(v)),
        Err(e @ EngineError::Store(_) | e @ EngineError::Internal(_)) => {
            Err(RpcError::new(super::rpc::INTERNAL_ERROR, e.to_string()))
        }
        Err(e) => Ok(Outcome::Refused(e.to_string())),
    }
}

/// A call's `arguments`, read with messages that name the argument.
struct Args(Map<String, Value>);

impl Args {
    fn new(v: &Value) -> Result<Args, RpcError> {
        match v {
            Value::Object(m) => Ok(Args(m.clone())),
            Value::Null => Ok(Args(Map::new())),
            _ => Err(RpcError::invalid_params("arguments must be an object")),
        }
    }

    fn only(&self, known: &[&str]) -> Result<(), RpcError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(RpcError::invalid_params(format!(
                "unknown argument {k:?}; expected {}",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    fn opt_str(&self, key: &str) -> Result<Option<String>, RpcError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                limits::check_name(key, s).map_err(|v| RpcError::invalid_params(v.to_string()))?;
                Ok(Some(s.clone()))
            }
            Some(_) => Err(RpcError::invalid_params(format!("{key} must be a string"))),
        }
    }

    fn str(&self, key: &str) -> Result<String, RpcError> {
        self.opt_str(key)?
            .ok_or_else(|| RpcError::invalid_params(format!("{key} is required")))
    }

    fn int(&self, key: &str, range: limits::Range) -> Result<Option<i64>, RpcError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                let v = limits::json_int(n)
                    .ok_or_else(|| RpcError::invalid_params(format!("{key} must be an integer")))?;
                range
                    .check(key, v)
                    .map(Some)
                    .map_err(|v| RpcError::invalid_params(v.to_string()))
            }
            Some(_) => Err(RpcError::invalid_params(format!(
                "{key} must be an integer"
            ))),
        }
    }

    fn instant(&self, key: &str) -> Result<Option<crate::clock::Micros>, RpcError> {
        self.opt_str(key)?
            .map(|s| {
                from_iso(&s).ok_or_else(|| {
                    RpcError::invalid_params(format!("{key} must be an ISO 8601 time, not {s:?}"))
                })
            })
            .transpose()
    }

    /// A list of run statuses (a single name is read as a list of one).
    fn statuses(&self, key: &str) -> Result<Vec<RunStatus>, RpcError> {
        let names: Vec<&Value> = match self.0.get(key) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one) => vec![one],
        };
        names
            .into_iter()
            .map(|v| {
                v.as_str().and_then(RunStatus::named).ok_or_else(|| {
                    let all = RunStatus::ALL.map(RunStatus::as_str).join(", ");
                    RpcError::invalid_params(format!("{key} items must be among {all}, not {v}"))
                })
            })
            .collect()
    }
}
