//! Outbound webhook calls: one HTTP client with the configured timeout,
//! HMAC signatures, and running a call to its end even when the caller
//! that triggered it goes away. Knows nothing of runs or the store.

use crate::model::CallOutcome;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

pub const RECOVERY_USER_AGENT: &str = "tidebase-recovery/0.5.0";
pub const CHANNEL_USER_AGENT: &str = "tidebase-channel/0.3.0";
/// Stored response bodies keep this many characters.
const BODY_CHARS: usize = 8000;

/// Process-wide outbound machinery shared by every clone of an [`Engine`].
pub(crate) struct Outbound {
    client: reqwest::Client,
    pub(crate) timeout: Duration,
}

impl Outbound {
    pub(crate) fn new(timeout_ms: u64) -> Outbound {
        let timeout = Duration::from_millis(timeout_ms.max(1));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .unwrap_or_default();
        Outbound { client, timeout }
    }

    /// POST `body` to `url`; any 2xx is success. Never fails: transport
    /// problems come back as [`CallOutcome::Transport`]. `kind` names the
    /// webhook in metrics (`channel`, `recovery` for resume and invoke calls).
    pub(crate) async fn post(
        &self,
        kind: &'static str,
        url: &str,
        body: Vec<u8>,
        user_agent: &str,
        secret: Option<&str>,
    ) -> CallOutcome {
        let outcome = self.send(url, body, user_agent, secret).await;
        crate::telemetry::webhook(kind, &outcome);
        outcome
    }

    async fn send(
        &self,
        url: &str,
        body: Vec<u8>,
        user_agent: &str,
        secret: Option<&str>,
    ) -> CallOutcome {
        let mut req = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", user_agent);
        if let Some(secret) = secret {
            req = req.header("x-tidebase-signature", sign(secret, &body));
        }
        let mut res = match req.body(body).send().await {
            Ok(res) => res,
            Err(e) => return CallOutcome::Transport(self.describe(&e)),
        };
        let status = res.status().as_u16();
        // Read no more than the stored prefix can need (4 bytes a char).
        let mut raw = Vec::new();
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => {
                    raw.extend_from_slice(&chunk);
                    if raw.len() >= BODY_CHARS * 4 {
                        break;
                    }
                }
                Ok(None) => break,
                // The status arrived; a body cut short still counts as a response.
                Err(_) => break,
            }
        }
        // NUL becomes U+FFFD: Postgres text columns refuse it.
        let body: String = String::from_utf8_lossy(&raw)
            .chars()
            .take(BODY_CHARS)
            .map(|c| {
                if c == '\0' {
                    char::REPLACEMENT_CHARACTER
                } else {
                    c
                }
            })
            .collect();
        CallOutcome::Response { status, body }
    }

    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!(
                "fetch failed: timed out after {} ms",
                self.timeout.as_millis()
            );
        }
        let mut cause: &dyn std::error::Error = e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        format!("fetch failed: {cause}")
    }
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Run `work` to its end even if the caller is dropped (an HTTP client that
/// hung up mid-request), and wait for it: a webhook call, once its row is
/// committed, is always made and its outcome recorded. `None` only when the
/// runtime is shutting down.
pub(crate) async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    match tokio::spawn(work).await {
        Ok(value) => Some(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_prefixed_lowercase_hex_hmac() {
        // RFC 4231 test case 2.
        let sig = sign("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
