//! Studio, the browser UI: static assets compiled into the binary and
//! served at `/` and `/studio/{file}`. They hold no data (every view reads
//! the API with the caller's key), so they are served without auth.

use super::error::ApiError;
use super::path::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// `(file, content type, contents)`, one entry per asset.
const ASSETS: &[(&str, &str, &str)] = &[
    ("index.html", HTML, include_str!("../studio/index.html")),
    (
        "studio.css",
        "text/css; charset=utf-8",
        include_str!("../studio/studio.css"),
    ),
    ("app.js", JS, include_str!("../studio/app.js")),
    ("api.js", JS, include_str!("../studio/api.js")),
    ("dom.js", JS, include_str!("../studio/dom.js")),
    ("diff.js", JS, include_str!("../studio/diff.js")),
    ("runs.js", JS, include_str!("../studio/runs.js")),
    ("run.js", JS, include_str!("../studio/run.js")),
    ("timeline.js", JS, include_str!("../studio/timeline.js")),
    ("state.js", JS, include_str!("../studio/state.js")),
    ("gateform.js", JS, include_str!("../studio/gateform.js")),
    ("gates.js", JS, include_str!("../studio/gates.js")),
    ("workflows.js", JS, include_str!("../studio/workflows.js")),
    ("queues.js", JS, include_str!("../studio/queues.js")),
    ("audit.js", JS, include_str!("../studio/audit.js")),
];

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Same-origin scripts, styles and connections only: no CDN, no inline code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; form-action 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

/// Requests for these paths skip the API key check ([`super::guard::front`]).
pub fn is_public(path: &str) -> bool {
    path == "/"
        || path
            .strip_prefix("/studio/")
            .is_some_and(|file| ASSETS.iter().any(|(name, _, _)| *name == file))
}

fn asset(file: &str) -> Option<Response> {
    let (_, kind, body) = ASSETS.iter().find(|(name, _, _)| *name == file)?;
    let mut res = (*body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Revalidated on every load, so a new binary's assets are picked up.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(res)
}

/// `GET /`: the Studio page.
pub async fn index() -> Response {
    asset("index.html").expect("index.html is an asset")
}

/// `GET /studio/{file}`.
pub async fn file(Path(file): Path<String>) -> Response {
    asset(&file).unwrap_or_else(|| {
        ApiError::not_found(format!("no Studio asset named {file:?}")).into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_page_and_its_assets_are_public() {
        assert!(is_public("/"));
        assert!(is_public("/studio/app.js"));
        assert!(!is_public("/studio/"));
        assert!(!is_public("/studio/nope.js"));
        assert!(!is_public("/runs"));
        assert!(!is_public("/metrics"));
    }

    /// Every module an asset imports, and every file the page links, is
    /// served, so the page cannot load half its code.
    #[test]
    fn every_referenced_file_is_an_asset() {
        for (name, _, body) in ASSETS {
            let imports = body.lines().filter_map(|l| l.split_once("from \"./"));
            let links = body.split("\"/studio/").skip(1).map(|rest| ("", rest));
            for (_, rest) in imports.chain(links) {
                let target = rest.split('"').next().unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == target),
                    "{name} refers to {target}, which is not served"
                );
            }
        }
    }
}
