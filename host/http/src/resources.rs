//! The broker API's resources (broker.md §3.5, §3.6): connect (upsert) and
//! revoke. Admin only: the auth middleware keeps agent sessions out.

use super::body::RawBody;
use super::error::ApiResult;
use super::path::Path;
use crate::engine::broker::{Credential, GrantRefusal};
use crate::engine::{Engine, EngineError, NewResource, PROVIDERS};
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn connect(State(engine): State<Engine>, body: RawBody) -> ApiResult {
    let mut f = body.fields()?;
    let name = f.name("name");
    let provider = f.opt_enum("provider", &PROVIDERS);
    let principal = f.opt_name("principal");
    let scopes = f.opt_strings("scopesAllowed");
    let base_url = f.opt_str("baseUrl");
    let prefix = f.opt_name("allowedPathPrefix");
    let connection_ref = f.opt_name("connectionRef");
    let metadata = f.opt_record("metadata");
    let secret = match f.any("secret") {
        Some(Value::String(s)) if s.is_empty() => f.opt_name("secret").map(Value::String),
        Some(v @ (Value::String(_) | Value::Object(_))) => Some(v),
        Some(_) => {
            f.push_issue(json!({
                "code": "invalid_union", "message": "Expected string or object",
                "path": ["secret"],
            }));
            None
        }
        None => None,
    };
    f.finish()?;
    let resource = NewResource {
        principal,
        name,
        provider: provider.unwrap_or_else(|| "nango".into()),
        connection_ref,
        base_url,
        paths: prefix.into_iter().collect(),
        scopes,
        metadata: metadata.unwrap_or_else(|| json!({})),
        keep_secret: true,
        ..NewResource::default()
    };
    let resource = match secret {
        None => resource,
        Some(s) => match Credential::parse(&s) {
            Some(credential) => resource.with_credential(credential),
            None => {
                let why = "unrecognized secret format".into();
                return Err(EngineError::Grant(GrantRefusal::BadSecret(why)).into());
            }
        },
    };
    let r = engine.connect_resource(resource).await?;
    Ok(Json(json!({
        "resourceId": r.id, "name": r.name, "provider": r.provider, "status": "connected",
    })))
}

pub async fn revoke(State(engine): State<Engine>, Path(id): Path<String>) -> ApiResult {
    let revoked = engine.revoke_resource_by_id(&id).await?;
    Ok(Json(json!({"revoked": id, "grantsRevoked": revoked})))
}
