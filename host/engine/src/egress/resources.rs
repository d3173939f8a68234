//! Resources: named upstreams with a pinned base URL, optional method and
//! path limits, and an optional vaulted secret with the rule that injects
//! it. Connecting is an upsert by name that replaces the whole record;
//! revoking keeps the record for the audit trail but drops its secret.

use super::super::{Engine, EngineError, Entity, Result, limits};
use crate::clock::iso;
use crate::ids;
use crate::model::ResourceRecord;
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt;

pub const ACTIVE: &str = "active";
pub const REVOKED: &str = "revoked";

/// What `resources connect` asks for.
pub struct NewResource {
    /// 1–256 characters, unique.
    pub name: String,
    /// Absolute http(s) URL without credentials, query or fragment.
    pub base_url: String,
    /// Empty allows any method.
    pub methods: Vec<String>,
    /// Path prefixes under the base URL's path; empty allows any.
    pub paths: Vec<String>,
    /// Vaulted; never returned anywhere.
    pub secret: Option<String>,
    pub injection: Injection,
}

impl fmt::Debug for NewResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewResource")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("methods", &self.methods)
            .field("paths", &self.paths)
            .field("has_secret", &self.secret.is_some())
            .field("injection", &self.injection)
            .finish()
    }
}

/// How the secret goes out with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Injection {
    /// Header `name` set to `format` with `{secret}` replaced.
    Header { name: String, format: String },
    /// Query parameter `param` set to the secret.
    Query { param: String },
}

impl Default for Injection {
    fn default() -> Self {
        Injection::Header {
            name: "authorization".into(),
            format: "Bearer {secret}".into(),
        }
    }
}

/// Headers the HTTP client itself owns; a credential there would break
/// the request or smuggle another one.
const RESERVED_HEADERS: [&str; 8] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "keep-alive",
    "idempotency-key",
];

impl Injection {
    /// The rule as stored and shown (it holds no secret).
    pub fn to_json(&self) -> Value {
        match self {
            Injection::Header { name, format } => json!({"header": name, "format": format}),
            Injection::Query { param } => json!({"query": param}),
        }
    }

    pub(crate) fn from_json(v: &Value) -> Option<Injection> {
        if let (Some(name), Some(format)) = (v["header"].as_str(), v["format"].as_str()) {
            let (name, format) = (name.to_string(), format.to_string());
            return Some(Injection::Header { name, format });
        }
        let param = v["query"].as_str()?.to_string();
        Some(Injection::Query { param })
    }

    /// The value that carries `secret`.
    pub(crate) fn credential(&self, secret: &str) -> String {
        match self {
            Injection::Header { format, .. } => format.replace("{secret}", secret),
            Injection::Query { .. } => secret.to_string(),
        }
    }

    /// Lower-cases the header name; refuses a rule that could not carry
    /// `secret` intact.
    fn checked(self, secret: &str) -> Result<Injection> {
        let bad = |why: String| Err(EngineError::BadRequest(why));
        match self {
            Injection::Header { name, format } => {
                let name = name.to_ascii_lowercase();
                if HeaderName::from_bytes(name.as_bytes()).is_err()
                    || RESERVED_HEADERS.contains(&name.as_str())
                {
                    return bad(format!("{name:?} cannot carry a credential"));
                }
                if !format.contains("{secret}") {
                    return bad("the header format must contain {secret}".into());
                }
                let injection = Injection::Header { name, format };
                if HeaderValue::from_str(&injection.credential(secret)).is_err() {
                    return bad("the secret and format must make a valid header value".into());
                }
                Ok(injection)
            }
            Injection::Query { param } if param.is_empty() => {
                bad("the query parameter name must not be empty".into())
            }
            Injection::Query { param } => Ok(Injection::Query { param }),
        }
    }
}

/// A resource as the API and CLI show it: no secret, no sealed material.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: String,
    pub name: String,
    pub base_url: String,
    pub methods: Vec<String>,
    pub paths: Vec<String>,
    pub has_secret: bool,
    /// The injection rule, e.g. `{"header":"authorization","format":"Bearer {secret}"}`;
    /// null without a secret.
    pub injection: Value,
    /// `active` or `revoked`.
    pub status: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<&ResourceRecord> for Resource {
    fn from(r: &ResourceRecord) -> Resource {
        Resource {
            id: r.id.clone(),
            name: r.name.clone(),
            base_url: r.base_url.clone(),
            methods: r.methods.clone(),
            paths: r.paths.clone(),
            has_secret: r.sealed.is_some(),
            injection: r.injection.clone(),
            status: r.status.clone(),
            created_at: iso(r.created_at),
            revoked_at: r.revoked_at.map(iso),
        }
    }
}

/// The base URL, normalised; refused unless it is absolute http(s) with a
/// host and nothing a pinned prefix cannot mean.
fn checked_base_url(text: &str) -> Result<String> {
    limits::check_http_url("baseUrl", text)?;
    let url = Url::parse(text).map_err(|e| EngineError::BadRequest(e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EngineError::BadRequest(
            "baseUrl must not carry credentials; give a secret instead".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(EngineError::BadRequest(
            "baseUrl must have no query or fragment".into(),
        ));
    }
    Ok(url.to_string())
}

fn checked_methods(methods: Vec<String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for m in methods {
        let m = m.trim().to_ascii_uppercase();
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(EngineError::BadRequest(format!("invalid method {m:?}")));
        }
        if !out.contains(&m) {
            out.push(m);
        }
    }
    Ok(out)
}

fn checked_paths(paths: Vec<String>) -> Result<Vec<String>> {
    for p in &paths {
        limits::check_text("paths", p)?;
        if !p.starts_with('/') || p.contains(['?', '#']) {
            return Err(EngineError::BadRequest(format!(
                "path prefix {p:?} must start with / and have no query or fragment"
            )));
        }
    }
    Ok(paths)
}

impl Engine {
    /// Connect (or reconnect, replacing every field) the resource `r.name`.
    pub async fn connect_resource(&self, r: NewResource) -> Result<Resource> {
        limits::check_name("name", &r.name)?;
        let base_url = checked_base_url(&r.base_url)?;
        let methods = checked_methods(r.methods)?;
        let paths = checked_paths(r.paths)?;
        let (injection, sealed) = match &r.secret {
            None => (Value::Null, None),
            Some(secret) => {
                limits::SECRET_BYTES.check("secret", secret.len() as i64)?;
                limits::check_text("secret", secret)?;
                let injection = r.injection.checked(secret)?.to_json();
                let Some(vault) = &self.vault else {
                    return Err(EngineError::Unprocessable(
                        "this server has no master key (TIDEBASE_MASTER_KEY) to encrypt secrets with",
                    ));
                };
                (injection, Some(vault.seal(&r.name, secret.as_bytes())))
            }
        };
        let now = self.now();
        let mut w = self.write().await?;
        w.tx.lock_key(&format!("resource:{}", r.name)).await?;
        let existing = w.tx.resource(&r.name, true).await?;
        let record = ResourceRecord {
            id: existing
                .as_ref()
                .map_or_else(|| ids::new_id("res"), |e| e.id.clone()),
            name: r.name,
            base_url,
            methods,
            paths,
            injection,
            sealed,
            status: ACTIVE.into(),
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
            revoked_at: None,
        };
        w.tx.put_resource(&record).await?;
        self.commit(w).await?;
        Ok(Resource::from(&record))
    }

    /// Every resource, by name.
    pub async fn resources(&self) -> Result<Vec<Resource>> {
        let records = self.read().await?.resources().await?;
        Ok(records.iter().map(Resource::from).collect())
    }

    /// Refuse every new call through `name` and forget its secret.
    pub async fn revoke_resource(&self, name: &str) -> Result<Resource> {
        let now = self.now();
        let mut w = self.write().await?;
        let mut record =
            w.tx.resource(name, true)
                .await?
                .ok_or(EngineError::NotFound(Entity::Resource))?;
        if record.status != REVOKED {
            record.status = REVOKED.into();
            record.sealed = None;
            record.revoked_at = Some(now);
            record.updated_at = now;
            w.tx.put_resource(&record).await?;
            self.commit(w).await?;
        }
        Ok(Resource::from(&record))
    }
}
