//! Resources: named upstreams with a pinned base URL, optional method and
//! path limits, a scope ceiling, a custody backend, and an optional vaulted
//! secret with the rule that injects it. One model serves both doors: the
//! operator's resources (CLI, granted to wasm deployments) belong to no
//! tenant; the broker API connects resources of a tenant or of none.
//! Connecting is an upsert by tenant and name; revoking keeps the record for
//! the audit trail, drops its secret and revokes its live grants.

use super::super::broker::{Credential, GrantRefusal};
use super::super::{Engine, EngineError, Entity, Result, limits};
use crate::clock::iso;
use crate::ids;
use crate::model::ResourceRecord;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt;

pub const ACTIVE: &str = "active";
pub const REVOKED: &str = "revoked";
/// The providers a resource's credential can live in (broker.md §3.5).
pub const PROVIDERS: [&str; 3] = ["nango", "openbao", "static"];
/// The vault's provider, and the operator's.
pub const STATIC: &str = "static";

/// What connecting a resource asks for.
pub struct NewResource {
    /// The owning tenant (non-empty); `None` for none.
    pub principal: Option<String>,
    /// 1–256 characters, unique per tenant.
    pub name: String,
    /// One of [`PROVIDERS`].
    pub provider: String,
    /// Defaults to `dev:<provider>:<principal or default>:<name>`.
    pub connection_ref: Option<String>,
    /// Absolute http(s) URL without credentials, query or fragment.
    pub base_url: Option<String>,
    /// Empty allows any method.
    pub methods: Vec<String>,
    /// Path prefixes under the base URL's path; empty allows any.
    pub paths: Vec<String>,
    /// Scope ceiling of grants; empty caps nothing.
    pub scopes: Vec<String>,
    pub metadata: Value,
    /// Vaulted; never returned anywhere.
    pub secret: Option<String>,
    pub injection: Injection,
    /// Without a secret, keep the one vaulted before (the broker API);
    /// otherwise a connect replaces every field (the CLI).
    pub keep_secret: bool,
}

impl Default for NewResource {
    fn default() -> Self {
        NewResource {
            principal: None,
            name: String::new(),
            provider: STATIC.into(),
            connection_ref: None,
            base_url: None,
            methods: Vec::new(),
            paths: Vec::new(),
            scopes: Vec::new(),
            metadata: json!({}),
            secret: None,
            injection: Injection::default(),
            keep_secret: false,
        }
    }
}

impl NewResource {
    /// Secret and injection from a broker API credential (§7.3).
    pub fn with_credential(mut self, credential: Credential) -> NewResource {
        let (injection, secret) = credential.into_injection();
        self.injection = injection;
        self.secret = Some(secret);
        self
    }
}

impl fmt::Debug for NewResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewResource")
            .field("principal", &self.principal)
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("methods", &self.methods)
            .field("paths", &self.paths)
            .field("scopes", &self.scopes)
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
    /// `authorization: Basic base64(secret)`, the secret being
    /// `username:password`.
    Basic,
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
            Injection::Basic => json!({"header": "authorization", "scheme": "basic"}),
            Injection::Query { param } => json!({"query": param}),
        }
    }

    pub(crate) fn from_json(v: &Value) -> Option<Injection> {
        if v["scheme"] == "basic" {
            return Some(Injection::Basic);
        }
        if let (Some(name), Some(format)) = (v["header"].as_str(), v["format"].as_str()) {
            let (name, format) = (name.to_string(), format.to_string());
            return Some(Injection::Header { name, format });
        }
        let param = v["query"].as_str()?.to_string();
        Some(Injection::Query { param })
    }

    /// The header that carries the credential, if a header does.
    pub(crate) fn header(&self) -> Option<&str> {
        match self {
            Injection::Header { name, .. } => Some(name),
            Injection::Basic => Some("authorization"),
            Injection::Query { .. } => None,
        }
    }

    /// The value that carries `secret`.
    pub(crate) fn credential(&self, secret: &str) -> String {
        match self {
            Injection::Header { format, .. } => format.replace("{secret}", secret),
            Injection::Basic => format!("Basic {}", STANDARD.encode(secret)),
            Injection::Query { .. } => secret.to_string(),
        }
    }

    /// What of `secret` must never come back: a basic credential's
    /// password (its user name is no secret), else all of it.
    pub(crate) fn secret_part<'a>(&self, secret: &'a str) -> &'a str {
        match self {
            Injection::Basic => secret.split_once(':').map_or(secret, |(_, p)| p),
            _ => secret,
        }
    }

    /// Lower-cases the header name; refuses a rule that could not carry
    /// `secret` intact.
    fn checked(self, secret: &str) -> std::result::Result<Injection, String> {
        let injection = match self {
            Injection::Header { name, format } => {
                let name = name.to_ascii_lowercase();
                if HeaderName::from_bytes(name.as_bytes()).is_err()
                    || RESERVED_HEADERS.contains(&name.as_str())
                {
                    return Err(format!("header {name:?} cannot carry a credential"));
                }
                if !format.contains("{secret}") {
                    return Err("the header format must contain {secret}".into());
                }
                Injection::Header { name, format }
            }
            Injection::Query { param } if param.is_empty() => {
                return Err("the query parameter name must not be empty".into());
            }
            other => other,
        };
        if injection.header().is_some()
            && HeaderValue::from_str(&injection.credential(secret)).is_err()
        {
            return Err("the secret must make a valid header value".into());
        }
        Ok(injection)
    }
}

/// A resource as the CLI shows it: no secret, no sealed material, no
/// connection reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: String,
    /// The owning tenant; null for none.
    pub principal: Option<String>,
    pub name: String,
    pub provider: String,
    pub base_url: Option<String>,
    pub methods: Vec<String>,
    pub paths: Vec<String>,
    pub scopes: Vec<String>,
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
            principal: r.principal.clone(),
            name: r.name.clone(),
            provider: r.provider.clone(),
            base_url: r.base_url.clone(),
            methods: r.methods.clone(),
            paths: r.paths.clone(),
            scopes: r.scopes.clone(),
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

impl NewResource {
    /// Every field's limits, whichever door it came through.
    fn check(&self) -> Result<()> {
        limits::check_name("name", &self.name)?;
        if let Some(p) = &self.principal {
            limits::check_name("principal", p)?;
        }
        if !PROVIDERS.contains(&self.provider.as_str()) {
            let why = format!("provider must be one of {}", PROVIDERS.join(", "));
            return Err(EngineError::BadRequest(why));
        }
        limits::check_opt_text("connectionRef", self.connection_ref.as_deref())?;
        for scope in &self.scopes {
            limits::check_nonempty("scopesAllowed", scope)?;
        }
        Ok(())
    }
}

impl Engine {
    /// Connect (or reconnect) the resource `r.name` of `r.principal`.
    pub async fn connect_resource(&self, r: NewResource) -> Result<Resource> {
        r.check()?;
        let base_url = r.base_url.as_deref().map(checked_base_url).transpose()?;
        let methods = checked_methods(r.methods)?;
        let paths = checked_paths(r.paths)?;
        let principal = r.principal.as_deref();
        let vaulted = match &r.secret {
            None => None,
            Some(secret) => {
                let bad = |why: String| EngineError::Grant(GrantRefusal::BadSecret(why));
                limits::SECRET_BYTES
                    .check("secret", secret.len() as i64)
                    .map_err(|v| bad(v.to_string()))?;
                limits::check_text("secret", secret).map_err(|v| bad(v.to_string()))?;
                let injection = r.injection.checked(secret).map_err(bad)?.to_json();
                let vault = self.custody_vault()?;
                Some((injection, vault.seal(principal, &r.name, secret.as_bytes())))
            }
        };
        let now = self.now();
        let mut w = self.write().await?;
        let tenant = principal.unwrap_or_default();
        w.tx.lock_key(&format!("resource:{tenant}:{}", r.name))
            .await?;
        let existing = w.tx.resource(principal, &r.name, true).await?;
        let (injection, sealed) = match (vaulted, &existing) {
            (Some(v), _) => (v.0, Some(v.1)),
            (None, Some(e)) if r.keep_secret => (e.injection.clone(), e.sealed.clone()),
            (None, _) => (Value::Null, None),
        };
        let connection_ref = r.connection_ref.unwrap_or_else(|| {
            let owner = principal.unwrap_or("default");
            format!("dev:{}:{owner}:{}", r.provider, r.name)
        });
        let record = ResourceRecord {
            id: existing
                .as_ref()
                .map_or_else(|| ids::new_id("res"), |e| e.id.clone()),
            principal: r.principal,
            name: r.name,
            provider: r.provider,
            connection_ref: Some(connection_ref),
            base_url,
            methods,
            paths,
            scopes: r.scopes,
            metadata: r.metadata,
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

    /// Every resource, by tenant and name.
    pub async fn resources(&self) -> Result<Vec<Resource>> {
        let records = self.read().await?.resources().await?;
        Ok(records.iter().map(Resource::from).collect())
    }

    /// Revoke the operator's resource `name` (of no tenant).
    pub async fn revoke_resource(&self, name: &str) -> Result<Resource> {
        let mut w = self.write().await?;
        let record =
            w.tx.resource(None, name, true)
                .await?
                .ok_or(EngineError::NotFound(Entity::Resource))?;
        let (record, _) = self.revoke_record(w, record).await?;
        Ok(Resource::from(&record))
    }

    /// Revoke the resource with id `id` (broker.md §3.6): the number of
    /// live grants through it that were revoked with it.
    pub async fn revoke_resource_by_id(&self, id: &str) -> Result<usize> {
        let mut w = self.write().await?;
        let record =
            w.tx.resource_by_id(id, true)
                .await?
                .ok_or(EngineError::NotFound(Entity::Resource))?;
        Ok(self.revoke_record(w, record).await?.1)
    }

    /// Refuse every new call through `record`, forget its secret, and
    /// revoke its live grants; commits `w`.
    async fn revoke_record(
        &self,
        mut w: crate::write::Write,
        mut record: ResourceRecord,
    ) -> Result<(ResourceRecord, usize)> {
        let now = self.now();
        if record.status != REVOKED {
            record.status = REVOKED.into();
            record.sealed = None;
            record.revoked_at = Some(now);
            record.updated_at = now;
            w.tx.put_resource(&record).await?;
        }
        let revoked = self.revoke_grants_of(&mut w, &record.id, now).await?;
        self.commit(w).await?;
        Ok((record, revoked))
    }
}
