//! `GET /metrics`: every metric in Prometheus's text format, and the
//! middleware that times HTTP requests. The names and help texts live in
//! `engine::telemetry`; this door installs the Prometheus recorder and
//! renders it.

use crate::engine::{Engine, telemetry};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

use super::error::ApiError;

/// Histogram buckets in seconds, from a fast SQL statement to a slow step.
const BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// The process's recorder, installed on first use. The `metrics` facade has
/// one global recorder; if something else installed one first, this handle
/// renders an empty recorder rather than failing the server.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = || {
            PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .expect("buckets are not empty")
        };
        let handle = builder().install_recorder().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "metrics recorder already installed; /metrics stays empty");
            builder().build_recorder().handle()
        });
        telemetry::describe();
        handle
    })
}

/// Scrape-time gauges and the render happen under one lock, so that two
/// servers in one process (tests) never interleave their gauges.
static SCRAPE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn render(State(engine): State<Engine>) -> Result<Response, ApiError> {
    let _one = SCRAPE.lock().await;
    engine.record_gauges().await?;
    let text = recorder().render();
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(res)
}

/// Times a request up to its response head, labelled by the route's
/// pattern (not the path, which would name every run).
pub struct RequestTimer {
    started: Instant,
    method: Method,
    route: Option<MatchedPath>,
}

impl RequestTimer {
    pub fn start(req: &Request) -> RequestTimer {
        RequestTimer {
            started: Instant::now(),
            method: req.method().clone(),
            route: req.extensions().get::<MatchedPath>().cloned(),
        }
    }

    pub fn finish(self, res: &Response) {
        telemetry::http_request(
            self.method.as_str(),
            self.route.as_ref().map_or("unmatched", MatchedPath::as_str),
            res.status().as_u16(),
            self.started.elapsed().as_secs_f64(),
        );
    }
}
