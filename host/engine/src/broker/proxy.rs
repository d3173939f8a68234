//! One proxied call through a grant (broker.md §8), on the egress core: the
//! same address guard, sender, limits, redaction and receipt table as a
//! wasm step's call.
//!
//! Phase 1, one transaction with the grant locked: is it usable by this
//! agent, does its action permit the method, can its backend serve; then
//! the use is reserved (`grant.used`). Phase 2, outside it (the use is
//! spent: at most once): the credential, the target, the call. A failure
//! there is `grant.use_failed`. Every reserved use leaves one receipt.
//!
//! Differences from upstream: the target's path is normalised before it is
//! judged, and must stay under the base URL's path and the allowed prefix
//! on a segment boundary; the secret is redacted from the answer; an
//! answer over the cap is refused rather than truncated.

use super::actions;
use super::custody::Backend;
use super::grants::locked_grant;
use super::{AgentSession, GrantRefusal, ProxyFailure};
use crate::egress::broker::{Decided, finish_receipt, send_redacted};
use crate::egress::policy::{self, Target};
use crate::egress::send::Plan;
use crate::egress::{DEFAULT_MAX_BYTES, EgressClass, EgressRefusal, EgressRequest};
use crate::model::{GrantRecord, Receipt, ResourceRecord, grant_status as status};
use crate::{Engine, EngineError, Result};
use reqwest::Url;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Time for a proxied call, and its largest answer.
const TIMEOUT: Duration = Duration::from_secs(15);
const MAX_BYTES: u64 = DEFAULT_MAX_BYTES as u64;

/// What an agent asks the proxy to send.
#[derive(Clone, Debug)]
pub struct ProxyCall {
    pub method: String,
    /// Relative to the resource's base URL; may carry a query.
    pub path: String,
    /// Sent as JSON; never with `GET`.
    pub body: Option<Value>,
}

/// The `response` of a use (§3.8).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Proxied {
    pub ok: bool,
    pub mode: String,
    pub proxied: bool,
    pub simulated: bool,
    pub provider: String,
    pub status: u16,
    /// The upstream's answer, secret redacted: JSON when it parses, else
    /// text, null when empty. Absent when simulated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    pub method: String,
    pub path: String,
}

/// A phase 2 failure: its code for the answer and `grant.use_failed`, and
/// its refusal for the receipt.
struct Failed {
    failure: ProxyFailure,
    refusal: EgressRefusal,
}

fn failed(failure: ProxyFailure, reason: &str) -> Failed {
    let class = match failure {
        ProxyFailure::UpstreamUnreachable => EgressClass::Unreachable,
        ProxyFailure::UpstreamTooLarge => EgressClass::TooLarge,
        _ => EgressClass::Denied,
    };
    let refusal = EgressRefusal {
        class,
        reason: reason.into(),
    };
    Failed { failure, refusal }
}

/// Whether `path` starts like an absolute URL (`scheme:`) or a
/// protocol-relative one (`//`).
fn is_absolute(path: &str) -> bool {
    let scheme = path.split_once(':').map(|(s, _)| s.as_bytes());
    let is_scheme = |s: &[u8]| {
        s.first().is_some_and(u8::is_ascii_alphabetic)
            && s.iter()
                .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(b))
    };
    scheme.is_some_and(is_scheme) || path.starts_with("//")
}

/// The URL a proxied `path` reaches (§8.3): joined under the base URL's
/// path, resolved against its origin (dot segments removed, fragment
/// dropped), and still on that origin. Whether it stays under the base
/// path and the allowed prefix is [`policy::admits`]'s decision.
fn target_url(base_url: &str, path: &str) -> std::result::Result<Url, String> {
    if is_absolute(path) {
        return Err(
            "path must be relative; absolute URLs and protocol-relative paths are rejected".into(),
        );
    }
    let base = Url::parse(base_url).map_err(|_| "resource has an invalid base_url".to_string())?;
    let base_path = base.path().strip_suffix('/').unwrap_or(base.path());
    let slash = if path.starts_with('/') { "" } else { "/" };
    let origin = Url::parse(&base.origin().ascii_serialization())
        .map_err(|_| "resource has an invalid base_url".to_string())?;
    let mut url = origin
        .join(&format!("{base_path}{slash}{path}"))
        .map_err(|_| "invalid target path".to_string())?;
    url.set_fragment(None);
    if url.origin() != base.origin() || !url.username().is_empty() || url.password().is_some() {
        return Err("target must stay on the resource base_url origin".into());
    }
    Ok(url)
}

/// Upper-cased for the methods every HTTP client normalises; others are
/// sent as given.
fn wire_method(method: &str) -> String {
    let upper = method.to_ascii_uppercase();
    let standard = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
    if standard.contains(&upper.as_str()) {
        upper
    } else {
        method.into()
    }
}

/// The answer body as the agent gets it: null when empty, JSON when it
/// parses, else text.
fn body_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    let text = String::from_utf8_lossy(bytes);
    serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
}

impl Engine {
    /// Use a grant once (§8): the grant after the use was counted, and what
    /// the upstream (or the simulation) answered.
    pub async fn use_grant(
        &self,
        session: &AgentSession,
        run_id: &str,
        grant_id: &str,
        call: ProxyCall,
    ) -> Result<(GrantRecord, Proxied)> {
        let (grant, resource, backend) = self.reserve_use(session, run_id, grant_id, &call).await?;
        let started = Instant::now();
        let mut receipt = self.new_receipt(run_id, &call.method);
        receipt.grant_id = Some(grant.id.clone());
        receipt.agent_id = Some(session.agent_id.clone());
        receipt.resource = Some(resource.name.clone());
        receipt.path = call.path.split('?').next().unwrap_or_default().into();
        let simulated = backend == Backend::DevReference;
        let outcome = if simulated {
            receipt.reason =
                Some("simulated by the dev-reference backend; nothing was sent".into());
            Ok(None)
        } else {
            self.send_call(&resource, &call, &mut receipt)
                .await
                .map(Some)
        };
        finish_receipt(
            &mut receipt,
            started,
            outcome.as_ref().err().map(|f| &f.refusal),
        );
        let mut w = self.write().await?;
        self.record_receipt(&mut w, &receipt).await?;
        if let Err(f) = &outcome {
            let mut payload = grant.receipt(grant.agent_id.as_deref());
            payload["failure"] = json!(f.failure.code());
            w.event(run_id, "grant.use_failed", payload, self.now())
                .await?;
        }
        self.commit(w).await?;
        let answer = outcome.map_err(|f| {
            EngineError::Grant(GrantRefusal::Proxy {
                failure: f.failure,
                provider: backend.name().into(),
                message: f.refusal.reason,
            })
        })?;
        let proxied = Proxied {
            ok: true,
            mode: grant.mode.clone(),
            proxied: true,
            simulated,
            provider: backend.name().into(),
            status: answer.as_ref().map_or(200, |(status, _)| *status),
            body: answer.map(|(_, body)| body),
            method: call.method,
            path: call.path,
        };
        Ok((grant, proxied))
    }

    /// Phase 1: check the grant, the call and the backend, and count the
    /// use; nothing is counted when any of them refuses.
    async fn reserve_use(
        &self,
        session: &AgentSession,
        run_id: &str,
        grant_id: &str,
        call: &ProxyCall,
    ) -> Result<(GrantRecord, ResourceRecord, Backend)> {
        let now = self.now();
        let mut w = self.write().await?;
        let mut grant = locked_grant(&mut w, run_id, grant_id).await?;
        let usable = grant.status == status::ACTIVE
            && grant.expires_at.is_some_and(|t| t > now)
            && grant.used_count < grant.max_uses
            && grant.agent_id.as_deref() == Some(session.agent_id.as_str());
        let resource = match (usable, &grant.resource_id) {
            (true, Some(id)) => w.tx.resource_by_id(id, false).await?,
            _ => None,
        };
        let Some(resource) = resource else {
            return Err(EngineError::Grant(GrantRefusal::GrantUnusable));
        };
        actions::bind_call(&grant.action, &call.method)
            .map_err(|why| EngineError::Grant(GrantRefusal::CallDenied(why)))?;
        if !policy::valid_method(&call.method) {
            let why = format!("invalid method {:?}", call.method);
            return Err(EngineError::BadRequest(why));
        }
        let backend = self.backend(&resource);
        if let Backend::Closed { provider, reason } = backend {
            return Err(EngineError::Grant(GrantRefusal::Proxy {
                failure: ProxyFailure::BackendNotConfigured,
                provider,
                message: reason,
            }));
        }
        grant.used_count += 1;
        if grant.used_count >= grant.max_uses {
            grant.status = status::USED.into();
        }
        grant.updated_at = now;
        w.tx.update_grant(&grant).await?;
        let mut payload = grant.receipt(grant.agent_id.as_deref());
        payload["call"] = json!({"method": call.method, "path": call.path});
        payload["simulated"] = json!(backend == Backend::DevReference);
        w.event(run_id, "grant.used", payload, now).await?;
        self.commit(w).await?;
        Ok((grant, resource, backend))
    }

    /// Phase 2 through the vault: open the secret, build and vet the
    /// target, send: the upstream's status and body, secret redacted.
    async fn send_call(
        &self,
        r: &ResourceRecord,
        call: &ProxyCall,
        receipt: &mut Receipt,
    ) -> std::result::Result<(u16, Value), Failed> {
        if r.sealed.is_none() {
            let why = "no secret stored for resource";
            return Err(failed(ProxyFailure::BackendNotConfigured, why));
        }
        let credential = match self.credential(r) {
            Ok(Some(c)) => Some(c),
            _ => {
                let why = "failed to decrypt stored credential";
                return Err(failed(ProxyFailure::ProviderError, why));
            }
        };
        let Some(base_url) = &r.base_url else {
            let why = "resource has no base_url to proxy to";
            return Err(failed(ProxyFailure::BackendNotConfigured, why));
        };
        let method = wire_method(&call.method);
        let blocked = |why: String| failed(ProxyFailure::SsrfBlocked, &why);
        let url = target_url(base_url, &call.path).map_err(blocked)?;
        let target = Target::parse(&method, url.as_str()).map_err(blocked)?;
        receipt.host.clone_from(&target.host);
        receipt.path.clone_from(&target.path);
        policy::admits(r, &target).map_err(blocked)?;
        let body = match &call.body {
            Some(body) if !method.eq_ignore_ascii_case("GET") => body.to_string().into_bytes(),
            _ => Vec::new(),
        };
        let req = EgressRequest {
            method: method.clone(),
            url: target.url.to_string(),
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body,
        };
        let plan = Plan {
            url: target.url,
            method,
            credential,
            idempotency_key: None,
            timeout: TIMEOUT,
            max_bytes: MAX_BYTES,
            allow_private: self.settings.allow_private_egress,
        };
        let (decided, vetted): (Decided, bool) = send_redacted(plan, req, receipt).await;
        match decided {
            Ok(answer) => Ok((answer.status, body_value(&answer.body))),
            Err(refusal) => {
                let failure = match refusal.class {
                    EgressClass::Denied if !vetted => ProxyFailure::SsrfBlocked,
                    EgressClass::TooLarge => ProxyFailure::UpstreamTooLarge,
                    _ => ProxyFailure::UpstreamUnreachable,
                };
                Err(Failed { failure, refusal })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_join_under_the_base_and_stay_on_its_origin() {
        let join = |base: &str, path: &str| target_url(base, path).map(|u| u.to_string());
        assert_eq!(
            join("https://example.com/v2", "/widgets").unwrap(),
            "https://example.com/v2/widgets"
        );
        assert_eq!(
            join("http://h/base/", "items/1?x=1#f").unwrap(),
            "http://h/base/items/1?x=1"
        );
        assert_eq!(
            join("https://api.github.com/", "/repos/acme/app/pulls").unwrap(),
            "https://api.github.com/repos/acme/app/pulls"
        );
        assert_eq!(
            join("http://h/base", "/a/../../etc").unwrap(),
            "http://h/etc"
        );
        for bad in [
            "http://evil.com/x",
            "//evil.com/x",
            "javascript:alert(1)",
            "/\\evil.com",
        ] {
            assert!(join("http://h", bad).is_err(), "{bad}");
        }
        assert_eq!(wire_method("delete"), "DELETE");
        assert_eq!(wire_method("patch"), "patch");
        assert_eq!(body_value(b""), Value::Null);
        assert_eq!(body_value(b"{\"a\":1}"), json!({"a": 1}));
        assert_eq!(body_value(b"{\"a\":"), json!("{\"a\":"));
    }
}
