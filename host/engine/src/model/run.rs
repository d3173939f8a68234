use super::ts;
use crate::clock::Micros;
use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    Pending,
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Every status, in lifecycle order.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Pending,
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// The status with this wire name; `None` for any other text (unlike
    /// [`RunStatus::parse`], which reads stored rows leniently).
    pub fn named(s: &str) -> Option<RunStatus> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
    }

    pub fn parse(s: &str) -> RunStatus {
        match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => RunStatus::Pending,
        }
    }

    /// A queue run in one of these holds its `(queue, dedupe key)`: another
    /// enqueue with the key returns it instead of creating a run.
    pub const HOLDS_DEDUPE_KEY: [RunStatus; 2] = [RunStatus::Queued, RunStatus::Running];

    /// Completed and cancelled runs never change again (our deviation from
    /// v0.5, which let a later complete/fail overwrite a completed run).
    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Cancelled)
    }
}

impl Serialize for RunStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why [`Run::fence`] refused a writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fenced {
    Cancelled,
    LeaseLost,
}

/// A run row. Internal columns are skipped on the wire.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: String,
    pub workflow_name: String,
    pub input: Value,
    pub metadata: Value,
    pub status: RunStatus,
    pub result: Option<Value>,
    pub error: Option<Value>,
    pub recovery_webhook: Option<String>,
    pub lease_owner: Option<String>,
    #[serde(serialize_with = "ts::opt")]
    pub lease_expires_at: Option<Micros>,
    pub attempt: i32,
    pub queue: Option<String>,
    pub dedupe_key: Option<String>,
    pub priority: i32,
    #[serde(serialize_with = "ts::opt")]
    pub run_at: Option<Micros>,
    pub max_attempts: i32,
    #[serde(serialize_with = "ts::opt")]
    pub deadline_at: Option<Micros>,
    #[serde(serialize_with = "ts::opt")]
    pub cancel_requested_at: Option<Micros>,
    #[serde(serialize_with = "ts::opt")]
    pub cancelled_at: Option<Micros>,
    pub cancel_reason: Option<String>,
    pub cancel_actor: Option<String>,
    pub failure_class: Option<String>,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
    #[serde(serialize_with = "ts::req")]
    pub updated_at: Micros,
    #[serde(serialize_with = "ts::opt")]
    pub completed_at: Option<Micros>,
    #[serde(skip)]
    pub claimed_at: Option<Micros>,
    /// Digest of the deployed component a wasm run is pinned to.
    #[serde(skip)]
    pub component_digest: Option<String>,
    /// A suspended wasm run is not claimable before this time.
    #[serde(skip)]
    pub parked_until: Option<Micros>,
}

impl Run {
    /// A fresh `pending` run with protocol defaults.
    pub fn new(id: String, workflow_name: String, now: Micros) -> Run {
        Run {
            id,
            workflow_name,
            input: Value::Object(Default::default()),
            metadata: Value::Object(Default::default()),
            status: RunStatus::Pending,
            result: None,
            error: None,
            recovery_webhook: None,
            lease_owner: None,
            lease_expires_at: None,
            attempt: 0,
            queue: None,
            dedupe_key: None,
            priority: 0,
            run_at: None,
            max_attempts: 1,
            deadline_at: None,
            cancel_requested_at: None,
            cancelled_at: None,
            cancel_reason: None,
            cancel_actor: None,
            failure_class: None,
            created_at: now,
            updated_at: now,
            completed_at: None,
            claimed_at: None,
            component_digest: None,
            parked_until: None,
        }
    }

    /// The lease owner while the lease is live (see `model::lease`).
    pub fn live_lease_owner(&self, now: Micros) -> Option<&str> {
        super::lease::live_owner(&self.lease_owner, self.lease_expires_at, now)
    }

    /// The fence on writes made under the run lease (a wasm step
    /// checkpoint): only the lease owner may write, and nobody once the run
    /// is cancelled.
    pub fn fence(&self, owner: &str) -> Result<(), Fenced> {
        if self.status == RunStatus::Cancelled {
            return Err(Fenced::Cancelled);
        }
        if self.lease_owner.as_deref() != Some(owner) {
            return Err(Fenced::LeaseLost);
        }
        Ok(())
    }

    pub fn clear_lease(&mut self) {
        self.lease_owner = None;
        self.lease_expires_at = None;
    }

    /// Whether the wasm worker's claim continues the run's attempt: a
    /// parked run picked up again (its gate was decided, its child
    /// finished, its sleep or a retry delay is over). Anything else is a
    /// new attempt, as a begin is (semantics §4): a new run, a failed run
    /// reopened, a run whose worker died (lease expired) or whose lease an
    /// operator released (takeover).
    pub fn claim_resumes(&self) -> bool {
        self.status == RunStatus::Running
            && self.lease_owner.is_none()
            && self.parked_until.is_some()
    }

    /// Take the run lease for the wasm worker `owner` until `expires_at`;
    /// returns the event that says so, `run.resumed` or `run.started`.
    pub fn claim(&mut self, owner: &str, expires_at: Micros, now: Micros) -> &'static str {
        let kind = if self.claim_resumes() {
            CLAIM_RESUMED
        } else {
            self.attempt = self.attempt.saturating_add(1);
            CLAIM_STARTED
        };
        self.status = RunStatus::Running;
        self.lease_owner = Some(owner.to_string());
        self.lease_expires_at = Some(expires_at);
        self.parked_until = None;
        self.updated_at = now;
        kind
    }
}

/// The events of [`Run::claim`]: neither reaches a channel, so a claim
/// records no deliveries.
pub const CLAIM_STARTED: &str = "run.started";
pub const CLAIM_RESUMED: &str = "run.resumed";
