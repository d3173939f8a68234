//! What an engine call can refuse, as values the doors branch on. Each
//! variant's message is the protocol's `error` text; the HTTP door adds
//! the status and the record a variant carries.

use super::limits::Violation;
use crate::model::{Gate, Run, RunStatus, TIMED_OUT};
use std::fmt;

/// Outcomes the doors translate into protocol responses.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The entity the request names does not exist.
    #[error("{0} not found")]
    NotFound(Entity),
    /// The caller no longer holds the lease it wrote under.
    #[error("{0}")]
    LeaseLost(LeaseLost),
    /// The run is cancelled; with its record when the door shows it.
    #[error("run is cancelled")]
    RunCancelled(Option<Box<Run>>),
    /// The request contradicts the current record.
    #[error("{0}")]
    Conflict(Conflict),
    /// A request the engine refuses as malformed, with the reason.
    #[error("{0}")]
    BadRequest(String),
    /// A field that broke its limit.
    #[error("{0}")]
    Invalid(#[from] Violation),
    /// A well-formed request the run's configuration cannot serve.
    #[error("{0}")]
    Unprocessable(&'static str),
    /// Deployed bytes are not a runnable component; says why.
    #[error("not a runnable tidebase:workflow component: {0}")]
    InvalidComponent(String),
    /// This engine was given no component check, so it deploys nothing.
    #[error("this server does not run wasm workflows")]
    WasmDisabled,
    /// The egress broker did not complete a call; says why, never with
    /// a secret.
    #[error("{0}")]
    EgressRefused(crate::EgressRefusal),
    /// The credential broker refused a resource, grant or proxied call
    /// (broker.md §1.7).
    #[error("{0}")]
    Grant(crate::broker::GrantRefusal),
    /// The credential broker refused an identity, authentication or abuse
    /// check (broker.md §1, §4).
    #[error("{0}")]
    Auth(crate::broker::AuthRefusal),
    /// The store failed (it says whether it was unavailable).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The host itself failed: shutting down mid-call, a body that did not
    /// serialise.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What a request named that does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    Run,
    /// The run a child would be created under.
    ParentRun,
    Step,
    Gate,
    /// A run's live state, or a state stream of it.
    RunState,
    Schedule,
    Deployment,
    Component,
    Resource,
    Grant,
    Agent,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::Run => "run",
            Entity::ParentRun => "parent run",
            Entity::Step => "step",
            Entity::Gate => "gate",
            Entity::RunState => "run state",
            Entity::Schedule => "schedule",
            Entity::Deployment => "deployment",
            Entity::Component => "component",
            Entity::Resource => "resource",
            Entity::Grant => "grant",
            Entity::Agent => "agent",
        })
    }
}

/// Which lease the caller lost, and what holds it now.
#[derive(Debug)]
pub enum LeaseLost {
    /// A write fenced by the run lease found it held by `owner`, or by no one.
    Run { owner: Option<String> },
    /// A step write by a lease owner the step no longer has; also a step
    /// that does not exist, so the answer tells a guesser nothing.
    Step,
    /// A heartbeat of a run no longer running under the caller's lease:
    /// the run as it is now.
    Heartbeat(Box<Run>),
}

impl fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeaseLost::Run { .. } => "run lease lost",
            LeaseLost::Step => "step not found or lease lost",
            LeaseLost::Heartbeat(_) => "lease lost",
        })
    }
}

/// Why a request conflicts with the current record, and that record.
#[derive(Debug)]
pub enum Conflict {
    /// Another owner's live lease holds the run.
    RunLeased { owner: String },
    /// The run completed, which is final.
    RunCompleted(Box<Run>),
    /// A resolve by token was refused: an unknown gate, a wrong token and a
    /// decided gate read the same.
    GateRefused,
    /// An operator's resolve of a gate already decided (its token blanked).
    GateDecided(Box<Gate>),
    /// A wasm run's replay asked for a recorded value with another input
    /// than it was recorded with: the workflow is not deterministic.
    ReplayDiverged { key: String },
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::RunLeased { .. } => f.write_str("run is leased"),
            Conflict::RunCompleted(_) => f.write_str("run already completed"),
            Conflict::GateRefused => {
                f.write_str("gate not found, already resolved, or invalid token")
            }
            Conflict::GateDecided(gate) if gate.status == TIMED_OUT => {
                write!(f, "gate {} timed out", gate.name)
            }
            Conflict::GateDecided(gate) => {
                write!(f, "gate {} is already {}", gate.name, gate.status)
            }
            Conflict::ReplayDiverged { key } => {
                write!(f, "recorded value {key} has a different input")
            }
        }
    }
}

impl EngineError {
    pub fn run_not_found() -> EngineError {
        EngineError::NotFound(Entity::Run)
    }

    /// The request itself was refused (bad input, something missing), as
    /// opposed to a conflict with the run's state or a store failure.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            EngineError::BadRequest(_)
                | EngineError::NotFound(_)
                | EngineError::Unprocessable(_)
                | EngineError::InvalidComponent(_)
                | EngineError::WasmDisabled
                | EngineError::Invalid(_)
                | EngineError::EgressRefused(_)
                | EngineError::Grant(_)
                | EngineError::Auth(_)
        )
    }

    /// Refused because the run is cancelled, whatever else the refusal
    /// reports (a heartbeat of a cancelled run has lost its lease too).
    pub fn is_cancelled(&self) -> bool {
        match self {
            EngineError::RunCancelled(_) => true,
            EngineError::LeaseLost(LeaseLost::Heartbeat(run)) => run.status == RunStatus::Cancelled,
            _ => false,
        }
    }

    /// Another worker holds the run lease now (or nobody does): the caller's
    /// writes for that run are fenced out.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, EngineError::LeaseLost(_))
    }

    /// The caller's run lease is over: lost, the run cancelled, or the run gone.
    pub fn ends_lease(&self) -> bool {
        matches!(
            self,
            EngineError::LeaseLost(_) | EngineError::RunCancelled(_) | EngineError::NotFound(_)
        )
    }
}
