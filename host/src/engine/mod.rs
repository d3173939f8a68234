//! The engine owns every rule of a run: lifecycle, leases and fencing, replay
//! classification, gates, children, state versions, usage and events. The HTTP
//! API and the wasm host imports both call into it; neither has rules of its own.

mod children;
mod error;
mod events;
mod gates;
mod hash;
mod runs;
mod state;
mod steps;
mod usage;
mod wasm;
mod write;

pub use children::NewChild;
pub use error::EngineError;
pub use events::EventFeed;
pub use gates::{GateBegin, GateResolve};
pub use hash::stable_hash;
pub use runs::{NewChannel, NewRun};
pub use state::{StateWrite, WriteMode};
pub use steps::{StepAction, StepBegin, StepFail, StepOutcome};
pub use usage::NewUsage;
pub use wasm::{DeployLimits, digest_of};

use crate::clock::{Clock, Micros};
use crate::config::Settings;
use crate::store::Store;
use std::sync::Arc;

pub type Result<T> = std::result::Result<T, EngineError>;

#[derive(Clone)]
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    feed: EventFeed,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: Settings) -> Engine {
        Engine { store, clock, settings: Arc::new(settings), feed: EventFeed::new() }
    }

    pub fn now(&self) -> Micros {
        self.clock.now()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn lease_expiry(&self, now: Micros) -> Micros {
        now + self.settings.lease_ms * 1000
    }
}
