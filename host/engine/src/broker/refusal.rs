//! What the broker's identity door refuses. Each message is the protocol's
//! `error` text (broker.md §1.7); the HTTP door adds status and `code`.

use super::RateClass;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthRefusal {
    /// A broker route while no API key is configured (fail closed).
    #[error("credential broker disabled: set TIDEBASE_API_KEY to enable agent-auth endpoints")]
    BrokerDisabled,
    /// Neither the API key nor, where allowed, a live agent session.
    #[error("unauthorized")]
    Unauthorized,
    #[error("{}", match .0 {
        RateClass::Proof => "too many proof attempts; slow down",
        RateClass::Grant => "too many grant operations; slow down",
    })]
    RateLimited(RateClass),
    /// A broker request body over [`crate::limits::BROKER_BODY_BYTES`].
    #[error("request body too large")]
    BodyTooLarge,
    #[error("agent is not active")]
    AgentInactive,
    /// `TIDEBASE_CHALLENGE_SECRET` is set to the empty string.
    #[error("challenge issuance not configured")]
    ChallengeUnconfigured,
    #[error("dev_token identity is disabled in production; register a keypair identity")]
    DevTokenDisabled,
    /// A dev-token proof with the wrong token.
    #[error("invalid agent proof")]
    InvalidProof,
    #[error("agent has no registered public key")]
    NoPublicKey,
    #[error("challenge and signature required for keypair proof")]
    ProofIncomplete,
    #[error("invalid or expired challenge")]
    BadChallenge,
    #[error("challenge already used")]
    ChallengeUsed,
    #[error("invalid signature")]
    BadSignature,
    /// An identity kind this build cannot verify (`spire`).
    #[error("{0} proof provider is not configured in this build")]
    NoProvider(String),
}
