//! PLACEHOLDER for the broker's Engine API (issue 10, /work/egress-contract.md),
//! so the wasm door, the guest SDK and the e2e tests compile and run before
//! broker-core lands. No policy, no vault, no SSRF vetting, no receipts:
//! `egress` is a plain reqwest call with the default timeout and size cap.
//! The lead drops this commit at merge.

use crate::{Activation, Engine, EngineError, Result};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BYTES: usize = 1 << 20;

#[derive(Clone)]
pub struct EgressCaller {
    _run_id: String,
}

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

impl std::fmt::Display for EgressRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

fn refused(class: EgressClass, reason: impl Into<String>) -> EngineError {
    EngineError::EgressRefused(EgressRefusal {
        class,
        reason: reason.into(),
    })
}

impl Activation {
    pub fn egress_caller(&self) -> Result<EgressCaller> {
        if !self.in_step() {
            return Err(refused(
                EgressClass::OutsideStep,
                "HTTP requests are only allowed inside a step: outside steps workflow code must be deterministic",
            ));
        }
        Ok(EgressCaller {
            _run_id: String::new(),
        })
    }
}

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

#[derive(Serialize)]
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

pub struct Vault;

impl Vault {
    pub fn new(_key: [u8; 32]) -> Vault {
        Vault
    }
}

impl Engine {
    pub fn with_vault(self, _vault: Vault) -> Engine {
        self
    }

    /// Stores nothing: the placeholder grants every URL.
    pub async fn connect_resource(&self, r: NewResource) -> Result<Resource> {
        Ok(Resource {
            id: crate::ids::new_id("res"),
            name: r.name,
            base_url: r.base_url,
            methods: r.methods,
            paths: r.paths,
            has_secret: r.secret.is_some(),
            injection: json!({}),
            status: "active".into(),
            created_at: String::new(),
            revoked_at: None,
        })
    }

    pub async fn revoke_resource(&self, name: &str) -> Result<Resource> {
        Err(EngineError::BadRequest(format!(
            "placeholder: cannot revoke {name}"
        )))
    }

    pub async fn egress(
        &self,
        _caller: EgressCaller,
        req: EgressRequest,
    ) -> Result<EgressResponse> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| EngineError::Internal(e.into()))?;
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| refused(EgressClass::Denied, "bad method"))?;
        let mut rb = client.request(method, &req.url).body(req.body);
        for (name, value) in req.headers {
            rb = rb.header(name, value);
        }
        let mut res = rb.send().await.map_err(|e| {
            if e.is_timeout() {
                refused(EgressClass::Timeout, "timed out")
            } else {
                refused(EgressClass::Denied, e.to_string())
            }
        })?;
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        let mut body = Vec::new();
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_BYTES {
                        return Err(refused(EgressClass::TooLarge, "response too large"));
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(refused(EgressClass::Timeout, "timed out")),
                Err(e) => return Err(refused(EgressClass::Denied, e.to_string())),
            }
        }
        Ok(EgressResponse {
            status,
            headers,
            body,
        })
    }
}
