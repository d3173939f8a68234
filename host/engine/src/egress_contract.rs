//! PLACEHOLDER of the brokered-egress Engine API (/work/egress-contract.md)
//! so the CLI and HTTP doors compile before broker-core lands. Drop this file
//! at merge: the real `egress/` module replaces every item here.

use super::{Activation, Engine, EngineError, Result};
use serde::Serialize;
use serde_json::Value;

const NOT_YET: &str = "brokered egress is not implemented in this build (placeholder)";

pub struct NewResource {
    pub name: String,
    pub base_url: String,
    pub methods: Vec<String>,
    pub paths: Vec<String>,
    pub secret: Option<String>,
    pub injection: Injection,
}

pub enum Injection {
    Header { name: String, format: String },
    Query { param: String },
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: String,
    pub name: String,
    pub base_url: String,
    pub methods: Vec<String>,
    pub paths: Vec<String>,
    pub has_secret: bool,
    pub injection: Value,
    pub status: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

pub struct Vault {
    _key: [u8; 32],
}

impl Vault {
    pub fn new(key: [u8; 32]) -> Vault {
        Vault { _key: key }
    }

    /// Hex only here (the real vault also takes base64), so that `run` and
    /// `serve`, which open the vault at start, keep working.
    pub fn parse_key(text: &str) -> std::result::Result<[u8; 32], String> {
        let bytes = hex::decode(text).map_err(|e| format!("not hex: {e}"))?;
        bytes
            .try_into()
            .map_err(|_| "a key is 32 bytes (64 hex digits)".to_string())
    }
}

pub struct AuditQuery {
    pub run_id: Option<String>,
    pub resource: Option<String>,
    pub decision: Option<String>,
    pub limit: i64,
    pub before: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub receipts: Vec<Receipt>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub id: String,
    pub run_id: String,
    pub step: Option<String>,
    pub attempt: Option<i32>,
    pub resource: Option<String>,
    pub method: String,
    pub host: String,
    pub path: String,
    pub decision: String,
    pub reason: Option<String>,
    pub class: Option<String>,
    pub status: Option<u16>,
    pub bytes: i64,
    pub duration_ms: i64,
    pub at: String,
}

#[derive(Clone)]
pub struct EgressCaller;

pub struct EgressRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

pub struct EgressResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
pub enum EgressClass {
    Denied,
    Timeout,
    TooLarge,
    OutsideStep,
}

impl EgressClass {
    pub fn as_str(&self) -> &'static str {
        match self {
            EgressClass::Denied | EgressClass::OutsideStep => "egress_denied",
            EgressClass::Timeout => "egress_timeout",
            EgressClass::TooLarge => "egress_too_large",
        }
    }
}

#[derive(Debug)]
pub struct EgressRefusal {
    pub class: EgressClass,
    pub reason: String,
}

impl Engine {
    pub fn with_vault(self, _vault: Vault) -> Engine {
        self
    }

    pub async fn connect_resource(&self, _r: NewResource) -> Result<Resource> {
        Err(EngineError::Unprocessable(NOT_YET))
    }

    pub async fn resources(&self) -> Result<Vec<Resource>> {
        Err(EngineError::Unprocessable(NOT_YET))
    }

    pub async fn revoke_resource(&self, _name: &str) -> Result<Resource> {
        Err(EngineError::Unprocessable(NOT_YET))
    }

    pub async fn audit(&self, _q: AuditQuery) -> Result<AuditPage> {
        Err(EngineError::Unprocessable(NOT_YET))
    }

    pub async fn egress(
        &self,
        _caller: EgressCaller,
        _req: EgressRequest,
    ) -> Result<EgressResponse> {
        Err(EngineError::Unprocessable(NOT_YET))
    }
}

impl Activation {
    pub fn egress_caller(&self) -> Result<EgressCaller> {
        Err(EngineError::Unprocessable(NOT_YET))
    }
}
