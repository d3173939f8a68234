//! The HTTP door: decode, call the engine, encode. No SQL and no rules here.

mod abuse;
mod agents;
mod audit;
mod body;
pub mod conn;
mod error;
mod gates;
mod grants;
mod guard;
mod metrics;
mod openapi;
mod params;
mod path;
mod queues;
mod reading;
mod receipts;
mod resources;
mod runs;
mod sse;
mod state;
mod steps;
mod studio;
mod workflows;

pub use body::MAX_BODY_BYTES;
pub use conn::{ConnLimits, serve};

// The engine's names at this crate's root, so modules read `crate::engine`.
use tidebase_engine::{self as engine, clock, ids};

use crate::engine::Engine;
use axum::Router;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};

/// One endpoint: method, path (axum's syntax, which is also OpenAPI's) and
/// handler.
type Route = (Method, &'static str, MethodRouter<Engine>);

fn route<H: Handler<T, Engine>, T: 'static>(
    method: Method,
    path: &'static str,
    handler: H,
) -> Route {
    let filter = MethodFilter::try_from(method.clone()).expect("a routable method");
    (method, path, on(filter, handler))
}

/// Every endpoint, in one list: the router is built from it and the OpenAPI
/// document is checked against it.
fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/", studio::index),
        route(M::GET, "/studio/{file}", studio::file),
        route(M::GET, "/health", runs::health),
        route(M::GET, "/metrics", metrics::render),
        route(M::GET, "/openapi.json", openapi::document),
        route(M::GET, "/runs", runs::list),
        route(M::GET, "/runs/{id}", runs::detail),
        route(M::POST, "/runs/{id}", runs::create),
        route(M::POST, "/runs/{id}/begin", runs::begin),
        route(M::POST, "/runs/{id}/heartbeat", runs::heartbeat),
        route(M::POST, "/runs/{id}/complete", runs::complete),
        route(M::POST, "/runs/{id}/fail", runs::fail),
        route(M::POST, "/runs/{id}/cancel", runs::cancel),
        route(M::POST, "/runs/{id}/recover", queues::recover),
        route(M::POST, "/runs/{id}/children", runs::child),
        route(M::POST, "/runs/{id}/steps/begin", steps::begin),
        route(M::POST, "/runs/{id}/steps/{step}/complete", steps::complete),
        route(M::POST, "/runs/{id}/steps/{step}/fail", steps::fail),
        route(M::POST, "/runs/{id}/gates/begin", gates::begin),
        route(M::GET, "/runs/{id}/gates/{gate}", gates::get),
        route(M::POST, "/runs/{id}/gates/{gate}/resolve", gates::resolve),
        route(M::PUT, "/runs/{id}/state", state::put),
        route(M::PATCH, "/runs/{id}/state", state::patch),
        route(M::POST, "/runs/{id}/state/save", state::save),
        route(M::GET, "/runs/{id}/state/versions", state::versions),
        route(M::POST, "/runs/{id}/snapshots", state::snapshot),
        route(M::GET, "/runs/{id}/snapshots", state::snapshots),
        route(M::POST, "/runs/{id}/usage", state::usage),
        route(M::GET, "/runs/{id}/events", sse::events),
        route(M::GET, "/gates", gates::list),
        route(M::GET, "/queues", queues::list),
        route(M::POST, "/queues/claim", queues::claim),
        route(M::POST, "/queues/{queue}/enqueue", queues::enqueue),
        route(M::PUT, "/queues/{queue}/config", queues::configure),
        route(M::GET, "/schedules", queues::list_schedules),
        route(M::PUT, "/schedules/{name}", queues::put_schedule),
        route(M::GET, "/schedules/{name}", queues::get_schedule),
        route(M::DELETE, "/schedules/{name}", queues::delete_schedule),
        route(M::GET, "/workflows", workflows::list),
        route(M::POST, "/workflows/{name}", workflows::deploy),
        route(M::GET, "/egress/receipts", receipts::list),
        route(M::POST, "/agents", agents::register),
        route(M::GET, "/agents/{agentId}", agents::get),
        route(M::POST, "/agents/{agentId}/challenge", agents::challenge),
        route(M::POST, "/agents/{agentId}/prove", agents::prove),
        route(M::GET, "/audit", audit::ledger),
        route(M::POST, "/resources", resources::connect),
        route(M::POST, "/resources/{id}/revoke", resources::revoke),
        route(M::POST, "/runs/{id}/grants", grants::request),
        route(M::POST, "/runs/{id}/grants/{grant}/use", grants::use_grant),
        route(M::POST, "/runs/{id}/grants/{grant}/revoke", grants::revoke),
    ]
}

/// The API. It deploys wasm workflows when the engine was given a
/// component check.
pub fn router(engine: Engine) -> Router {
    metrics::recorder(); // record from the start, not from the first scrape
    let api = routes()
        .into_iter()
        .fold(Router::new(), |api, (_, path, handler)| {
            api.route(path, handler)
        });
    api.route_layer(axum::middleware::from_fn(routed))
        .fallback(guard::not_found)
        .method_not_allowed_fallback(guard::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            engine.clone(),
            guard::front,
        ))
        .with_state(engine)
}

/// What every routed request passes: it is timed by its route's pattern and
/// its path parameters are checked. One layer for both (see `guard::front`).
async fn routed(
    params: Result<RawPathParams, RawPathParamsRejection>,
    req: Request,
    next: Next,
) -> Response {
    let timer = metrics::RequestTimer::start(&req);
    let res = match params::refusal(params) {
        Some(refusal) => refusal,
        None => next.run(req).await,
    };
    timer.finish(&res);
    res
}
