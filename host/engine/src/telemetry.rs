//! What the host measures, each metric named and described once here. The
//! engine, the doors and the store call these functions; they record
//! through the `metrics` facade into whatever recorder the binary installed
//! (`serve` installs the Prometheus one behind `GET /metrics`; with none,
//! a call costs next to nothing).

use super::{ActivationOutcome, Engine, Result};
use crate::clock::Micros;
use crate::model::{CallOutcome, RunStatus};
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use std::collections::BTreeMap;

const RUNS: &str = "tidebase_runs";
const RUNS_FINISHED: &str = "tidebase_runs_finished_total";
const STEP_SECONDS: &str = "tidebase_step_attempt_seconds";
const HTTP_SECONDS: &str = "tidebase_http_request_seconds";
const QUEUE_DEPTH: &str = "tidebase_queue_depth";
const QUEUE_RUNNING: &str = "tidebase_queue_running";
const CLAIM_WAIT: &str = "tidebase_queue_claim_wait_seconds";
const WASM_ACTIVATIONS: &str = "tidebase_wasm_activations_total";
const WASM_SUSPENSIONS: &str = "tidebase_wasm_suspensions_total";
const WASM_CPU: &str = "tidebase_wasm_activation_cpu_seconds";
const WASM_LIMIT_FAILURES: &str = "tidebase_wasm_limit_failures_total";
const WEBHOOKS: &str = "tidebase_webhook_calls_total";
const STORE_SECONDS: &str = "tidebase_store_transaction_seconds";

/// Every metric's help text, for the exporter to print.
pub fn describe() {
    describe_gauge!(
        RUNS,
        "Runs in the store by workflow and status, read at scrape time"
    );
    describe_counter!(
        RUNS_FINISHED,
        "Runs that reached completed, failed or cancelled in this process"
    );
    describe_histogram!(
        STEP_SECONDS,
        Unit::Seconds,
        "Step attempts from begin to checkpoint, by outcome"
    );
    describe_histogram!(
        HTTP_SECONDS,
        Unit::Seconds,
        "HTTP requests from arrival to response head, by method, route and status"
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Runs waiting in each queue, read at scrape time"
    );
    describe_gauge!(
        QUEUE_RUNNING,
        "Runs of each queue that are running, read at scrape time"
    );
    describe_histogram!(
        CLAIM_WAIT,
        Unit::Seconds,
        "How long a queued run waited from becoming due to being claimed"
    );
    describe_counter!(WASM_ACTIVATIONS, "Wasm activations by how they ended");
    describe_counter!(
        WASM_SUSPENSIONS,
        "Wasm activations that parked their run (gate, sleep, child)"
    );
    describe_histogram!(
        WASM_CPU,
        Unit::Seconds,
        "Guest CPU time of each wasm activation, counted in 10 ms epoch ticks (the sandbox meters CPU by epochs, not fuel)"
    );
    describe_counter!(
        WASM_LIMIT_FAILURES,
        "Wasm runs failed by a sandbox limit, by class (cpu_limit, memory_limit, output_limit)"
    );
    describe_counter!(
        WEBHOOKS,
        "Outbound webhook calls (channels, recovery, invoke) by kind and outcome"
    );
    describe_histogram!(
        STORE_SECONDS,
        Unit::Seconds,
        "Store transactions from begin to end, by kind (read, commit, rollback)"
    );
}

fn seconds(from: Micros, to: Micros) -> f64 {
    (to.saturating_sub(from)).max(0) as f64 / 1e6
}

pub(crate) fn run_finished(workflow: &str, status: &'static str) {
    counter!(RUNS_FINISHED, "workflow" => workflow.to_string(), "status" => status).increment(1);
}

pub(crate) fn step_attempt(outcome: &'static str, began: Micros, ended: Micros) {
    histogram!(STEP_SECONDS, "outcome" => outcome).record(seconds(began, ended));
}

pub(crate) fn claimed(queue: &str, due: Micros, now: Micros) {
    histogram!(CLAIM_WAIT, "queue" => queue.to_string()).record(seconds(due, now));
}

pub(crate) fn webhook(kind: &'static str, outcome: &CallOutcome) {
    let result = match outcome {
        o if o.ok() => "ok",
        CallOutcome::Response { .. } => "rejected",
        CallOutcome::Transport(_) => "unreachable",
    };
    counter!(WEBHOOKS, "kind" => kind, "outcome" => result).increment(1);
}

pub fn http_request(method: &str, route: &str, status: u16, secs: f64) {
    histogram!(HTTP_SECONDS, "method" => method.to_string(), "route" => route.to_string(), "status" => status.to_string())
        .record(secs);
}

/// How an activation ended.
pub(crate) fn wasm_activation(outcome: &ActivationOutcome) {
    let label = match outcome {
        ActivationOutcome::Completed(_) => "completed",
        ActivationOutcome::Failed { .. } => "failed",
        ActivationOutcome::Suspended { .. } => "suspended",
        ActivationOutcome::Cancelled => "cancelled",
        ActivationOutcome::LeaseLost => "lease_lost",
        ActivationOutcome::Retry(_) => "retry",
    };
    counter!(WASM_ACTIVATIONS, "outcome" => label).increment(1);
    match outcome {
        ActivationOutcome::Suspended { .. } => counter!(WASM_SUSPENSIONS).increment(1),
        ActivationOutcome::Failed {
            class: class @ ("cpu_limit" | "memory_limit" | "output_limit"),
            ..
        } => counter!(WASM_LIMIT_FAILURES, "class" => *class).increment(1),
        _ => {}
    }
}

/// The guest CPU one activation used.
pub fn wasm_cpu(secs: f64) {
    histogram!(WASM_CPU).record(secs);
}

pub fn store_transaction(kind: &'static str, secs: f64) {
    histogram!(STORE_SECONDS, "kind" => kind).record(secs);
}

impl Engine {
    /// Set the gauges read at scrape time (runs by workflow and status,
    /// queue depth) from one read of the store. Every status of a workflow
    /// is set, so a count that dropped to zero reads zero.
    pub async fn record_gauges(&self) -> Result<()> {
        let mut r = self.read().await?;
        let runs = r.run_counts().await?;
        let queues = r.queue_counts().await?;
        let mut by_workflow: BTreeMap<String, [i64; RunStatus::ALL.len()]> = BTreeMap::new();
        for (workflow, status, n) in runs {
            let counts = by_workflow.entry(workflow).or_default();
            if let Some(i) = RunStatus::ALL.iter().position(|s| *s == status) {
                counts[i] += n;
            }
        }
        for (workflow, counts) in &by_workflow {
            for (status, n) in RunStatus::ALL.iter().zip(counts) {
                gauge!(RUNS, "workflow" => workflow.clone(), "status" => status.as_str())
                    .set(*n as f64);
            }
        }
        for q in queues {
            gauge!(QUEUE_DEPTH, "queue" => q.name.clone()).set(q.queued as f64);
            gauge!(QUEUE_RUNNING, "queue" => q.name).set(q.running as f64);
        }
        Ok(())
    }
}
