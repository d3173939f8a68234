//! Rows as the engine sees them. Each serialises straight to its wire shape
//! (camelCase fields, ISO timestamps), so the API never re-maps fields.

mod agent;
mod contract;
mod deployment;
mod gate;
mod grant;
mod lease;
mod misc;
mod queue;
mod receipt;
mod resource;
mod run;
mod state;
mod step;

pub use agent::{Agent, AgentRecord, SessionRecord, principal_of};
pub use contract::{ResumeContract, classify_failure};
pub use deployment::Deployment;
pub use gate::{Gate, TIMED_OUT};
pub use grant::{Grant, GrantRecord, grant_status};
pub use lease::{lease_expired, lease_live};
pub use misc::{Channel, Event, RunEdge, UsageRecord};
pub use queue::{
    CallOutcome, Delivery, DeliveryRecord, QueueConfig, QueueCounts, RecoveryAttempt, Schedule,
};
pub use receipt::Receipt;
pub use resource::{ResourceRecord, Sealed};
pub use run::{CLAIM_RESUMED, CLAIM_STARTED, Fenced, Run, RunStatus};
pub use state::{LiveState, StateStream, StateVersion};
pub use step::Step;

/// Serde helpers emitting stored microsecond timestamps as wire strings.
pub(crate) mod ts {
    use crate::clock::{Micros, iso};
    use serde::Serializer;

    pub fn req<S: Serializer>(v: &Micros, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&iso(*v))
    }

    pub fn opt<S: Serializer>(v: &Option<Micros>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&iso(*v)),
            None => s.serialize_none(),
        }
    }
}
