//! Rate limits of the broker's proof and grant requests (broker.md §1.3):
//! a fixed 60 s window aligned to the epoch, counted in the shared
//! `rate_limits` table so every replica sees one count. Refused requests
//! count too.
//!
//! Unlike upstream, which keys buckets on `X-Forwarded-For` (anyone can
//! pick a fresh bucket), a bucket belongs to an authenticated identity:
//! the agent a proof is for, or the caller of a grant operation.

use super::AuthRefusal;
use crate::clock::Micros;
use crate::{Engine, EngineError, Result};

const WINDOW_MICROS: Micros = 60_000_000;
/// Windows are forgotten an hour after they started.
const KEEP_WINDOWS_MICROS: Micros = 3_600_000_000;

/// The limited request classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateClass {
    /// `POST /agents/:id/challenge` and `/prove`, per agent.
    Proof,
    /// `POST /runs/:id/grants…`, per session agent (or the admin key).
    Grant,
}

impl RateClass {
    fn bucket(self, subject: &str) -> String {
        match self {
            RateClass::Proof => format!("prove:{subject}"),
            RateClass::Grant => format!("grant:{subject}"),
        }
    }
}

/// The start of the window `now` falls in.
fn window_start(now: Micros) -> Micros {
    now.div_euclid(WINDOW_MICROS) * WINDOW_MICROS
}

impl Engine {
    /// Count one request of `class` by `subject`; refused once the count
    /// in the current window passes the class's limit.
    pub async fn count_request(&self, class: RateClass, subject: &str) -> Result<()> {
        let identity = &self.settings.identity;
        let limit = match class {
            RateClass::Proof => identity.prove_rate,
            RateClass::Grant => identity.grant_rate,
        };
        let mut w = self.write().await?;
        let count =
            w.tx.count_request(&class.bucket(subject), window_start(self.now()))
                .await?;
        self.commit(w).await?;
        if count > limit {
            return Err(EngineError::Auth(AuthRefusal::RateLimited(class)));
        }
        Ok(())
    }

    /// The reconciler's housekeeping of the abuse stores (§10.2): spent
    /// challenges past their expiry and windows over an hour old.
    pub(crate) async fn sweep_abuse_stores(&self, now: Micros) -> Result<()> {
        let mut w = self.write().await?;
        w.tx.sweep_abuse(now, now - KEEP_WINDOWS_MICROS).await?;
        self.commit(w).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_minutes_aligned_to_the_epoch() {
        assert_eq!(window_start(0), 0);
        assert_eq!(window_start(59_999_999), 0);
        assert_eq!(window_start(60_000_000), 60_000_000);
        assert_eq!(window_start(1_800_000_123_456_789), 1_800_000_120_000_000);
    }
}
