//! The broker's abuse controls, after authentication (broker.md §1.3,
//! §1.4): rate limits on proof and grant requests, then the body cap of
//! broker routes. Both apply to `POST` only.

use super::error::ApiError;
use super::guard::{is_broker_path, is_grants_path, proof_agent};
use super::reading::read_capped;
use crate::engine::broker::{AuthRefusal, Caller, RateClass};
use crate::engine::{Engine, EngineError, limits};
use axum::body::Body;
use axum::extract::Request;
use axum::http::Method;

/// The bucket a request counts in: proofs per agent proved, grant
/// operations per calling agent (or the admin key). Never a client
/// address, which a client could choose.
fn rate_bucket<'a>(caller: &'a Caller, path: &'a str) -> Option<(RateClass, &'a str)> {
    if let Some(agent) = proof_agent(path) {
        return Some((RateClass::Proof, agent));
    }
    if !is_grants_path(path) {
        return None;
    }
    match caller {
        Caller::Agent(session) => Some((RateClass::Grant, &session.agent_id)),
        Caller::Admin | Caller::Open => Some((RateClass::Grant, "admin")),
    }
}

/// `req` as the handler may read it, or the refusal.
pub async fn admit(engine: &Engine, caller: &Caller, req: Request) -> Result<Request, ApiError> {
    if req.method() != Method::POST {
        return Ok(req);
    }
    let path = req.uri().path();
    if let Some((class, subject)) = rate_bucket(caller, path) {
        engine.count_request(class, subject).await?;
    }
    if !is_broker_path(path) {
        return Ok(req);
    }
    let (parts, body) = req.into_parts();
    let capped = Request::from_parts(parts.clone(), body);
    let too_large = ApiError::from(EngineError::Auth(AuthRefusal::BodyTooLarge));
    let bytes = read_capped(capped, limits::BROKER_BODY_BYTES, too_large).await?;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::broker::AgentSession;

    #[test]
    fn buckets_belong_to_identities() {
        let agent = Caller::Agent(AgentSession {
            agent_id: "agent_9".into(),
            principal: None,
        });
        assert_eq!(
            rate_bucket(&Caller::Admin, "/agents/agent_1/prove"),
            Some((RateClass::Proof, "agent_1"))
        );
        assert_eq!(
            rate_bucket(&agent, "/runs/r/grants/g/use"),
            Some((RateClass::Grant, "agent_9"))
        );
        assert_eq!(
            rate_bucket(&Caller::Admin, "/runs/r/grants"),
            Some((RateClass::Grant, "admin"))
        );
        assert_eq!(rate_bucket(&Caller::Admin, "/agents"), None);
        assert_eq!(rate_bucket(&Caller::Admin, "/runs/r/cancel"), None);
    }
}
