//! Proving an agent's identity for a session (broker.md §3.4, §4.2): a dev
//! token where allowed, an Ed25519 signature over a single-use challenge
//! for keypair and cloud_key agents; other kinds cannot be verified here.

use super::{AuthRefusal, SessionGrant, challenge, same, sha256_hex};
use crate::{Engine, EngineError, Result};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signature, VerifyingKey};

/// A spent challenge is remembered a little longer than it lives.
const CONSUMED_MICROS: i64 = 90_000_000;

/// A `POST /agents/:id/prove` body; which fields count depends on the kind.
#[derive(Clone, Debug, Default)]
pub struct Proof {
    pub token: Option<String>,
    pub challenge: Option<String>,
    pub signature: Option<String>,
}

fn refused(r: AuthRefusal) -> EngineError {
    EngineError::Auth(r)
}

impl Engine {
    /// Check `proof` for agent `agent_id` and open a session.
    pub async fn prove(&self, agent_id: &str, proof: Proof) -> Result<SessionGrant> {
        let agent = self.active_agent(agent_id).await?;
        match agent.identity_kind.as_str() {
            "dev_token" => self.check_dev_token(&proof)?,
            "keypair" | "cloud_key" => {
                let key = agent.public_key.as_deref().filter(|k| !k.is_empty());
                let key = key.ok_or(refused(AuthRefusal::NoPublicKey))?;
                self.check_signature(agent_id, key, &proof).await?;
            }
            other => return Err(refused(AuthRefusal::NoProvider(other.to_string()))),
        }
        self.open_session(&agent).await
    }

    fn check_dev_token(&self, proof: &Proof) -> Result<()> {
        let identity = &self.settings.identity;
        if !identity.dev_tokens_allowed() {
            return Err(refused(AuthRefusal::DevTokenDisabled));
        }
        match &identity.dev_agent_token {
            Some(expected) if !same(proof.token.as_deref().unwrap_or(""), expected) => {
                Err(refused(AuthRefusal::InvalidProof))
            }
            _ => Ok(()),
        }
    }

    /// The checks of §4.2 in order. The challenge is spent before the
    /// signature is checked, so a wrong signature burns it.
    async fn check_signature(&self, agent_id: &str, key: &str, proof: &Proof) -> Result<()> {
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        let (Some(challenge), Some(signature)) =
            (nonempty(&proof.challenge), nonempty(&proof.signature))
        else {
            return Err(refused(AuthRefusal::ProofIncomplete));
        };
        let now = self.now();
        let valid = self
            .challenge_secret()
            .is_some_and(|secret| challenge::verify(secret, &challenge, agent_id, now));
        if !valid {
            return Err(refused(AuthRefusal::BadChallenge));
        }
        let mut w = self.write().await?;
        let fresh =
            w.tx.consume_challenge(&sha256_hex(&challenge), now + CONSUMED_MICROS)
                .await?;
        self.commit(w).await?;
        if !fresh {
            return Err(refused(AuthRefusal::ChallengeUsed));
        }
        if !signature_valid(key, &challenge, &signature) {
            return Err(refused(AuthRefusal::BadSignature));
        }
        Ok(())
    }
}

/// Standard or URL-safe base64, padded or not (§4.4).
fn decode_lenient(text: &str) -> Option<Vec<u8>> {
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    GeneralPurpose::new(&alphabet::STANDARD, config)
        .decode(standard)
        .ok()
}

/// `signature` is an Ed25519 signature by the SPKI PEM `public_key` over
/// the exact challenge text.
fn signature_valid(public_key: &str, challenge: &str, signature: &str) -> bool {
    let Ok(key) = VerifyingKey::from_public_key_pem(public_key) else {
        return false;
    };
    let Some(bytes) = decode_lenient(signature) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(&bytes) else {
        return false;
    };
    key.verify_strict(challenge.as_bytes(), &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use ed25519_dalek::pkcs8::EncodePublicKey;
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn signatures_verify_in_either_base64_alphabet_with_or_without_padding() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let sig = key.sign(b"c.m").to_bytes();
        for text in [STANDARD.encode(sig), URL_SAFE_NO_PAD.encode(sig)] {
            assert!(signature_valid(&pem, "c.m", &text), "{text}");
        }
        assert!(!signature_valid(&pem, "c.n", &STANDARD.encode(sig)));
        assert!(!signature_valid(&pem, "c.m", ""));
        assert!(!signature_valid(&pem, "c.m", "not base64!"));
        assert!(!signature_valid(&pem, "c.m", &STANDARD.encode(&sig[..63])));
        assert!(!signature_valid("not a key", "c.m", &STANDARD.encode(sig)));
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        let other = other.to_public_key_pem(LineEnding::LF).unwrap();
        assert!(!signature_valid(&other, "c.m", &STANDARD.encode(sig)));
    }
}
