//! Queue configuration, schedules, and the outbound webhook jobs the engine
//! hands to its sender (recovery/invoke webhooks and channel deliveries).

use super::ts;
use crate::clock::Micros;
use serde::Serialize;
use serde_json::Value;

/// A queue's optional settings (`QueueConfig` on the wire).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueConfig {
    pub name: String,
    pub concurrency: Option<i64>,
    pub rate_per_minute: Option<i64>,
    pub invoke_url: Option<String>,
    #[serde(skip)]
    pub created_at: Micros,
    #[serde(skip)]
    pub updated_at: Micros,
}

/// Per-status run counts of one queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub name: String,
    pub queued: i64,
    pub running: i64,
    pub failed: i64,
    pub completed: i64,
    pub cancelled: i64,
}

/// A cron schedule that enqueues runs (`Schedule` on the wire).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub name: String,
    pub cron: String,
    pub workflow_name: String,
    pub input: Value,
    pub queue: String,
    pub max_attempts: i32,
    pub enabled: bool,
    #[serde(serialize_with = "ts::opt")]
    pub next_run_at: Option<Micros>,
    #[serde(serialize_with = "ts::opt")]
    pub last_enqueued_at: Option<Micros>,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
    #[serde(serialize_with = "ts::req")]
    pub updated_at: Micros,
}

/// A recovery attempt row (`RecoveryAttempt` on the wire).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryAttempt {
    pub id: String,
    pub run_id: String,
    pub reason: String,
    pub webhook_url: String,
    pub status: String,
    pub http_status: Option<i32>,
    pub response_body: Option<String>,
    pub error_text: Option<String>,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
    #[serde(serialize_with = "ts::opt")]
    pub completed_at: Option<Micros>,
}

/// A channel delivery as its sender needs it: everything to build, sign and
/// address the request without re-reading the channel.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: String,
    pub run_id: Option<String>,
    pub channel_id: Option<String>,
    pub gate_id: Option<String>,
    pub event_type: String,
    pub url: String,
    pub secret: Option<String>,
    pub payload: Value,
    pub created_at: Micros,
}

/// A channel delivery and its outcome (`ChannelDelivery` on the wire, in
/// run detail).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub id: String,
    pub run_id: Option<String>,
    pub channel_id: Option<String>,
    pub gate_id: Option<String>,
    pub event_type: String,
    pub payload: Value,
    pub status: String,
    pub http_status: Option<i32>,
    pub response_body: Option<String>,
    pub error_text: Option<String>,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
    #[serde(serialize_with = "ts::opt")]
    pub completed_at: Option<Micros>,
}

/// How an outbound call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// A response arrived (any status); `body` holds at most 8000 characters.
    Response { status: u16, body: String },
    /// No response: connection refused, timeout, TLS failure…
    Transport(String),
}

impl CallOutcome {
    pub fn ok(&self) -> bool {
        matches!(self, CallOutcome::Response { status, .. } if (200..300).contains(status))
    }

    pub fn http_status(&self) -> Option<i32> {
        match self {
            CallOutcome::Response { status, .. } => Some(i32::from(*status)),
            CallOutcome::Transport(_) => None,
        }
    }

    pub fn body(&self) -> Option<&str> {
        match self {
            CallOutcome::Response { body, .. } => Some(body),
            CallOutcome::Transport(_) => None,
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            CallOutcome::Response { .. } => None,
            CallOutcome::Transport(e) => Some(e),
        }
    }
}
