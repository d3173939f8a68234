//! End-to-end invariant tests for tidebase-host: every guarantee is asserted
//! through HTTP against a real server, once per storage backend (each test
//! expands to `<name>::postgres` and `<name>::sqlite`, each on its own fresh
//! database, so they run in parallel).
//!
//! Run with `cargo test -p tidebase-host --test e2e` (Postgres must be up;
//! `TIDEBASE_TEST_DATABASE_URL` overrides the admin connection URL).

#[macro_use]
mod harness;

mod auth;
mod broker_grants;
mod broker_identity;
mod cancel;
mod children;
mod claims;
mod cli;
mod conn;
mod egress;
mod egress_cli;
mod endings;
mod events;
mod gates;
mod group_commit;
mod guest;
mod heartbeat;
mod input;
mod leases;
mod limits;
mod lists;
mod metrics;
mod once;
mod operator;
mod ops_cli;
mod pool;
mod python;
mod queues;
mod reconciler;
mod replicas;
mod routes;
mod runs;
mod scale;
mod schedules;
mod serve;
mod state;
mod steps;
mod wasm;
mod webhooks;
