//! The row operations of [`super::Tx`], one trait per table or consumer.

mod agents;
mod children;
mod deliveries;
mod deployments;
mod egress;
mod events;
mod gates;
mod ledger;
mod queues;
mod recovery;
mod runs;
mod schedules;
mod state;
mod steps;
mod sweeps;
mod usage;
mod wasm_runs;

pub use agents::{AbuseRows, AgentRows};
pub use children::{ChannelRows, EdgeRows};
pub use deliveries::DeliveryRows;
pub use deployments::{DeploymentRows, HostCallRows};
pub use egress::{GrantRows, ReceiptRows, ResourceRows};
pub use events::EventRows;
pub use gates::GateRows;
pub use ledger::LedgerRows;
pub use queues::{Claimant, QueueConfigRows, QueueRows};
pub use recovery::RecoveryRows;
pub use runs::RunRows;
pub use schedules::ScheduleRows;
pub use state::StateRows;
pub use steps::StepRows;
pub use sweeps::SweepRows;
pub use usage::UsageRows;
pub use wasm_runs::WasmRunRows;
