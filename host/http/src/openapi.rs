//! `GET /openapi.json`: the API's OpenAPI 3.1 document, a committed file
//! that a test holds to the route table.

use axum::http::header;
use axum::response::IntoResponse;

pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// Every route is documented with its method, and nothing else is.
    #[test]
    fn the_document_lists_exactly_the_routes() {
        let doc: Value = serde_json::from_str(super::DOCUMENT).expect("openapi.json is JSON");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| !matches!(k.as_str(), "parameters" | "summary" | "description"))
                    .map(move |m| (m.to_uppercase(), path.clone()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = super::super::routes()
            .into_iter()
            .map(|(method, path, _)| (method.to_string(), path.to_string()))
            .collect();
        let missing: Vec<_> = served.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&served).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "routes missing from openapi.json: {missing:?}; documented but not served: {extra:?}"
        );
    }
}
