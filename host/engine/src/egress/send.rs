//! One brokered exchange: resolve and vet the host, connect to the vetted
//! address, send the request with the credential in place of whatever the
//! guest supplied, and read the response within the time and size limits.
//! Redirects are not followed: a 3xx goes back to the guest as it is, and
//! following it is a new request, decided anew.

use super::resources::Injection;
use super::{EgressClass, EgressRefusal, EgressRequest, ssrf};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url, redirect};
use std::time::Duration;
use url::Host;

pub const DEFAULT_TIMEOUT_MS: i64 = 10_000;
pub const DEFAULT_MAX_BYTES: i64 = 1 << 20;

/// Guest headers that are never passed on: credentials (replaced by the
/// injected one) and what the client frames the request with itself.
const DROPPED: [&str; 12] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "accept-encoding",
    "idempotency-key",
];

/// Response headers that described the upstream's framing, not the body
/// the guest gets (redaction may change its length).
const FRAMING: [&str; 4] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

/// Everything the exchange needs besides the guest's request.
pub(crate) struct Plan {
    pub url: Url,
    pub method: String,
    /// The injection rule and the secret it injects.
    pub credential: Option<(Injection, String)>,
    pub idempotency_key: Option<String>,
    pub timeout: Duration,
    pub max_bytes: u64,
    pub allow_private: bool,
}

/// What came back, before redaction.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// What the receipt reports of an exchange, even one that failed.
#[derive(Default)]
pub(crate) struct Meter {
    pub status: Option<u16>,
    /// Response body bytes received.
    pub bytes: u64,
    /// The target's address passed the address guard.
    pub vetted: bool,
}

pub(crate) async fn exchange(
    plan: Plan,
    req: EgressRequest,
) -> (Result<Answer, EgressRefusal>, Meter) {
    let mut meter = Meter::default();
    let timeout = plan.timeout;
    let result = tokio::time::timeout(timeout, run(plan, req, &mut meter)).await;
    let result = result.unwrap_or_else(|_| {
        let ms = timeout.as_millis();
        let why = format!("the upstream did not answer within {ms} ms");
        Err(refusal(EgressClass::Timeout, why))
    });
    (result, meter)
}

fn refusal(class: EgressClass, reason: String) -> EgressRefusal {
    EgressRefusal { class, reason }
}

fn denied(reason: String) -> EgressRefusal {
    refusal(EgressClass::Denied, reason)
}

async fn run(plan: Plan, req: EgressRequest, meter: &mut Meter) -> Result<Answer, EgressRefusal> {
    let addr = ssrf::vet(&plan.url, plan.allow_private)
        .await
        .map_err(denied)?;
    meter.vetted = true;
    let mut client = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        // A proxy from the environment would connect somewhere unvetted.
        .no_proxy();
    if let Some(Host::Domain(name)) = plan.url.host() {
        client = client.resolve(name, addr);
    }
    let client = client
        .build()
        .map_err(|_| refusal(EgressClass::Unreachable, "no HTTP client".into()))?;
    let method = Method::from_bytes(plan.method.as_bytes())
        .map_err(|_| denied(format!("invalid method {:?}", plan.method)))?;
    let mut url = plan.url.clone();
    let mut headers = guest_headers(&req.headers)?;
    headers.insert("accept-encoding", HeaderValue::from_static("identity"));
    if let Some(key) = &plan.idempotency_key {
        let value = HeaderValue::from_str(key)
            .map_err(|_| denied("the step's idempotency key is no valid header value".into()))?;
        headers.insert("idempotency-key", value);
    }
    match &plan.credential {
        Some((Injection::Query { param }, secret)) => set_query(&mut url, param, secret),
        Some((injection, secret)) => {
            let name = injection.header().unwrap_or_default();
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad_rule())?;
            let value = HeaderValue::from_str(&injection.credential(secret));
            let mut value = value.map_err(|_| bad_rule())?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        None => {}
    }
    let sent = client
        .request(method, url)
        .headers(headers)
        .body(req.body)
        .send()
        .await;
    let mut res = sent.map_err(|e| {
        let why = if e.is_connect() {
            "could not connect to the upstream"
        } else {
            "the request to the upstream failed"
        };
        refusal(EgressClass::Unreachable, why.into())
    })?;
    meter.status = Some(res.status().as_u16());
    if plan.credential.is_some()
        && let Some(encoding) = res.headers().get("content-encoding")
        && encoding.as_bytes() != b"identity"
    {
        return Err(denied(
            "the upstream sent an encoded body, which cannot be checked for the secret".into(),
        ));
    }
    let too_large = || {
        let why = format!("the response body exceeds {} bytes", plan.max_bytes);
        refusal(EgressClass::TooLarge, why)
    };
    if res.content_length().is_some_and(|n| n > plan.max_bytes) {
        return Err(too_large());
    }
    let headers = res
        .headers()
        .iter()
        .filter(|(name, _)| !FRAMING.contains(&name.as_str()))
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect();
    let mut body = Vec::new();
    loop {
        match res.chunk().await {
            Ok(Some(chunk)) => {
                meter.bytes += chunk.len() as u64;
                if meter.bytes > plan.max_bytes {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(_) => {
                let why = "the upstream broke off the response".into();
                return Err(refusal(EgressClass::Unreachable, why));
            }
        }
    }
    Ok(Answer {
        status: res.status().as_u16(),
        headers,
        body,
    })
}

fn bad_rule() -> EgressRefusal {
    denied("the resource's injection rule makes no valid header".into())
}

/// The guest's headers that may go out.
fn guest_headers(given: &[(String, Vec<u8>)]) -> Result<HeaderMap, EgressRefusal> {
    let mut headers = HeaderMap::new();
    for (name, value) in given {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| denied(format!("invalid header name {name:?}")))?;
        if DROPPED.contains(&name.as_str()) {
            continue;
        }
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| denied(format!("invalid value for header {name}")))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// `url` with `param` set to `value` (replacing any the guest gave).
fn set_query(url: &mut Url, param: &str, value: &str) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != param)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut pairs = url.query_pairs_mut();
    pairs.clear();
    pairs.extend_pairs(kept);
    pairs.append_pair(param, value);
}
