//! The engine owns every rule of a run: lifecycle, leases and fencing, replay
//! classification, gates, children, state versions, usage and events. The HTTP
//! API and the wasm host imports both call into it; neither has rules of its own.
//!
//! This crate is the bottom of the dependency graph: it knows no HTTP server,
//! no wasm runtime and no SQL driver. [`model`] holds the records, [`store`]
//! the traits a persistence backend implements.

pub mod clock;
pub mod config;
pub mod ids;
pub mod model;
pub mod store;

mod activation;
mod begun;
pub mod broker;
mod calls;
mod channels;
mod children;
mod cron;
mod deliveries;
mod egress;
mod error;
mod events;
mod gates;
mod group_commit;
pub mod limits;
mod listing;
mod outbound;
mod outcome;
mod queues;
mod reconciler;
mod recovery;
mod runs;
mod schedules;
mod state;
mod steps;
pub mod telemetry;
mod usage;
mod wasm;
mod write;

pub use activation::{Activation, Attempt, Begun, Sleep};
pub use calls::HostCall;
pub use children::NewChild;
pub use cron::{Cron, next_fire};
pub use egress::{
    AuditPage, AuditQuery, DEFAULT_KEY_LABEL, DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS, EgressCaller,
    EgressClass, EgressRefusal, EgressRequest, EgressResponse, Injection, NewResource, PROVIDERS,
    Receipt, Refusals, Resource, Vault,
};
pub use error::{Conflict, EngineError, Entity, LeaseLost};
pub use events::{EventFeed, EventTail, FOLLOW_POLL};
pub use gates::{Decision, GateBegin, GateResolve, MAX_GATE_TIMEOUT_MS};
pub use group_commit::GroupCommit;
pub use listing::{GateFilter, GatePage, GateQuery, ListedGate, RunPage, RunQuery};
pub use outbound::sign as sign_webhook;
pub use outcome::{ActivationOutcome, Ended};
pub use queues::{Enqueue, Patch, QueueConfigPatch};
pub use reconciler::TickReport;
pub use runs::{NewChannel, NewRun};
pub use schedules::ScheduleSpec;
pub use state::{StateWrite, WriteMode};
pub use steps::{Settled, StepAction, StepBegin, StepFail, StepOutcome};
/// Step input hashes come from the crate the Rust guest SDK uses, so both sides agree.
pub use tidebase_stable_json::input_hash;
pub use usage::NewUsage;
pub use wasm::{ComponentCheck, DeployLimits, digest_of};

use crate::clock::{Clock, Micros};
use crate::config::Settings;
use crate::store::Store;
use std::sync::Arc;

pub type Result<T> = std::result::Result<T, EngineError>;

/// The engine: every rule, behind a handle that the HTTP door clones per
/// request, so a clone is one reference count, not one per part.
#[derive(Clone)]
pub struct Engine(Arc<Parts>);

/// What an [`Engine`] holds; reached through the handle (`Deref`).
#[derive(Clone)]
pub struct Parts {
    pub(crate) store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    feed: EventFeed,
    /// Rows of HTTP step attempts begun here, so completing one need not
    /// read it back.
    begun: Arc<begun::BegunSteps>,
    outbound: Arc<outbound::Outbound>,
    /// Signalled after a commit that made a wasm run claimable.
    wasm_ready: Arc<tokio::sync::Notify>,
    /// Flipped when the process starts shutting down, to end open streams.
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// What decides that deployed bytes are a runnable component; without
    /// it this engine deploys nothing.
    components: Option<Arc<dyn ComponentCheck>>,
    /// Encrypts and opens resource secrets; without it no resource can
    /// have one.
    vault: Option<Arc<Vault>>,
}

impl std::ops::Deref for Engine {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl Engine {
    /// The parts to set while building (copied first if the handle is shared).
    fn parts_mut(&mut self) -> &mut Parts {
        Arc::make_mut(&mut self.0)
    }
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: Settings) -> Engine {
        let outbound = Arc::new(outbound::Outbound::new(settings.webhook_timeout_ms));
        Engine(Arc::new(Parts {
            store,
            clock,
            settings: Arc::new(settings),
            feed: EventFeed::new(),
            begun: Arc::default(),
            outbound,
            wasm_ready: Arc::new(tokio::sync::Notify::new()),
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
            components: None,
            vault: None,
        }))
    }

    /// This engine deploys components that pass `check` (the wasm runtime).
    pub fn with_component_check(mut self, check: Arc<dyn ComponentCheck>) -> Engine {
        self.parts_mut().components = Some(check);
        self
    }

    /// Announce shutdown: long-lived streams end so the server can drain.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once [`Engine::begin_shutdown`] was called.
    pub async fn shutting_down(&self) {
        let mut rx = self.stopping.subscribe();
        let _ = rx.wait_for(|stopping| *stopping).await;
    }

    pub fn now(&self) -> Micros {
        self.clock.now()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Saturating: settings built in code bypass the `TIDEBASE_LEASE_MS` range.
    fn lease_expiry(&self, now: Micros) -> Micros {
        now.saturating_add(self.settings.lease_ms.saturating_mul(1000))
    }
}
