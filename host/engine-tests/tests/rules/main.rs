//! Fast tests of the engine's decision procedures, through the engine's own
//! API: no HTTP, no wasm, no Postgres. Each test drives one engine over its
//! own in-memory SQLite database with a clock it moves by hand, so lease and
//! timeout boundaries are hit to the microsecond instead of slept towards.
//!
//! Run with `cargo test -p tidebase-engine-tests`. The same rules are
//! asserted end to end, on both backends, by the `e2e` suite.

mod rig;

mod broker;
mod deployments;
mod egress;
mod fencing;
mod gates;
mod group_commit;
mod identity;
mod leases;
mod status;
mod steps;
