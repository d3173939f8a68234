//! The HTTP door: decode, call the engine, encode. No SQL and no rules here.

mod body;
mod error;
mod gates;
mod guard;
mod params;
mod queues;
mod runs;
mod sse;
mod state;
mod steps;
mod workflows;

pub use body::MAX_BODY_BYTES;

use crate::engine::Engine;
use crate::runtime::Runtime;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router};
use std::sync::Arc;

/// The API; with a runtime, also the wasm deploy endpoints.
pub fn router(engine: Engine, runtime: Option<Arc<Runtime>>) -> Router {
    let mut api = Router::new()
        .route("/health", get(runs::health))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::detail).post(runs::create))
        .route("/runs/{id}/begin", post(runs::begin))
        .route("/runs/{id}/heartbeat", post(runs::heartbeat))
        .route("/runs/{id}/complete", post(runs::complete))
        .route("/runs/{id}/fail", post(runs::fail))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/recover", post(queues::recover))
        .route("/runs/{id}/children", post(runs::child))
        .route("/runs/{id}/steps/begin", post(steps::begin))
        .route("/runs/{id}/steps/{step}/complete", post(steps::complete))
        .route("/runs/{id}/steps/{step}/fail", post(steps::fail))
        .route("/runs/{id}/gates/begin", post(gates::begin))
        .route("/runs/{id}/gates/{gate}", get(gates::get))
        .route("/runs/{id}/gates/{gate}/resolve", post(gates::resolve))
        .route(
            "/runs/{id}/state",
            axum::routing::put(state::put).patch(state::patch),
        )
        .route("/runs/{id}/state/save", post(state::save))
        .route("/runs/{id}/state/versions", get(state::versions))
        .route(
            "/runs/{id}/snapshots",
            post(state::snapshot).get(state::snapshots),
        )
        .route("/runs/{id}/usage", post(state::usage))
        .route("/runs/{id}/events", get(sse::events))
        .route("/queues", get(queues::list))
        .route("/queues/claim", post(queues::claim))
        .route("/queues/{queue}/enqueue", post(queues::enqueue))
        .route(
            "/queues/{queue}/config",
            axum::routing::put(queues::configure),
        )
        .route("/schedules", get(queues::list_schedules))
        .route(
            "/schedules/{name}",
            axum::routing::put(queues::put_schedule)
                .get(queues::get_schedule)
                .delete(queues::delete_schedule),
        );
    if let Some(runtime) = runtime {
        let deploy = post(workflows::deploy)
            .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(
                workflows::MAX_COMPONENT_BYTES,
            ))
            .layer::<_, std::convert::Infallible>(Extension(runtime));
        api = api
            .route("/workflows", get(workflows::list))
            .route("/workflows/{name}", deploy);
    }
    api.route_layer(axum::middleware::from_fn(params::check))
        .fallback(guard::not_found)
        .method_not_allowed_fallback(guard::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            engine.clone(),
            guard::auth,
        ))
        .layer(axum::middleware::from_fn_with_state(
            engine.clone(),
            guard::cors,
        ))
        .with_state(engine)
}
