//! Keypair challenges (broker.md §4.3): stateless, HMAC-signed, one
//! minute long. `<payload>.<mac>`, where the payload is base64url of
//! `{"agentId","exp","nonce"}` and the MAC is HMAC-SHA256 over the payload
//! text under the challenge secret. Nothing is stored at issue; single use
//! is enforced when a proof spends one (`prove.rs`).

use super::AuthRefusal;
use crate::clock::{Micros, iso};
use crate::{Engine, EngineError, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

/// How long a challenge may be answered.
const CHALLENGE_MS: i64 = 60_000;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Challenge {
    pub challenge: String,
    pub expires_at: String,
}

impl Engine {
    /// A challenge for agent `agent_id` (any identity kind).
    pub async fn issue_challenge(&self, agent_id: &str) -> Result<Challenge> {
        self.active_agent(agent_id).await?;
        let secret = self
            .challenge_secret()
            .ok_or(EngineError::Auth(AuthRefusal::ChallengeUnconfigured))?;
        let exp = self.now() / 1000 + CHALLENGE_MS;
        let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        // Key order and compact form as upstream writes them.
        let text = json!({"agentId": agent_id, "exp": exp, "nonce": nonce}).to_string();
        let payload = URL_SAFE_NO_PAD.encode(text);
        let mac = mac(secret, &payload);
        Ok(Challenge {
            challenge: format!("{payload}.{mac}"),
            expires_at: iso(exp * 1000),
        })
    }

    /// `TIDEBASE_CHALLENGE_SECRET` if set, else the API key; `None` when
    /// that is empty or there is neither.
    pub(crate) fn challenge_secret(&self) -> Option<&str> {
        let identity = &self.settings.identity;
        let secret = identity
            .challenge_secret
            .as_deref()
            .or(self.settings.api_key.as_deref());
        secret.filter(|s| !s.is_empty())
    }
}

fn mac(secret: &str, payload: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    m.update(payload.as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// A challenge this server issued for `agent_id` under `secret` that has
/// not expired at `now`.
pub(crate) fn verify(secret: &str, challenge: &str, agent_id: &str, now: Micros) -> bool {
    let Some((payload, given)) = challenge.split_once('.') else {
        return false;
    };
    if payload.is_empty() || !super::same(&mac(secret, payload), given) {
        return false;
    }
    let Ok(text) = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')) else {
        return false;
    };
    let Ok(claims) = serde_json::from_slice::<Value>(&text) else {
        return false;
    };
    let exp = claims["exp"].as_f64();
    claims["agentId"].as_str() == Some(agent_id) && exp.is_some_and(|exp| exp > (now / 1000) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Micros = 1_800_000_000_000_000;

    fn issue(secret: &str, agent: &str, exp: Value) -> String {
        let text = json!({"agentId": agent, "exp": exp, "nonce": "n"}).to_string();
        let payload = URL_SAFE_NO_PAD.encode(text);
        format!("{payload}.{}", mac(secret, &payload))
    }

    #[test]
    fn a_challenge_verifies_for_its_agent_until_it_expires() {
        let exp = json!(NOW / 1000 + 1);
        let c = issue("k", "agent_a", exp);
        assert!(verify("k", &c, "agent_a", NOW));
        assert!(!verify("k", &c, "agent_b", NOW));
        assert!(!verify("other", &c, "agent_a", NOW));
        // Expired from the millisecond of `exp` on.
        assert!(!verify("k", &c, "agent_a", NOW + 1000));
        assert!(!verify(
            "k",
            &issue("k", "agent_a", json!("9e15")),
            "agent_a",
            NOW
        ));
    }

    #[test]
    fn forged_or_malformed_challenges_fail() {
        let c = issue("k", "agent_a", json!(NOW / 1000 + 60_000));
        let (payload, mac_part) = c.split_once('.').unwrap();
        assert!(!verify("k", payload, "agent_a", NOW));
        assert!(!verify("k", &format!(".{mac_part}"), "agent_a", NOW));
        assert!(!verify(
            "k",
            &format!("{payload}.{mac_part}x"),
            "agent_a",
            NOW
        ));
        assert!(!verify(
            "k",
            &format!("{payload}x.{mac_part}"),
            "agent_a",
            NOW
        ));
        // A payload that is not JSON, under a valid MAC.
        let junk = URL_SAFE_NO_PAD.encode("not json");
        assert!(!verify(
            "k",
            &format!("{junk}.{}", mac("k", &junk)),
            "agent_a",
            NOW
        ));
    }
}
