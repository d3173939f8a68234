//! The one lease rule. A lease is live while `now < expires_at`; from
//! `expires_at` on it has expired and the run or step may be taken over.
//! Rust code asks these functions; SQL that filters on leases restates the
//! same inequality (`lease_expires_at <= now` means expired) and points here.

use crate::clock::Micros;

/// The lease with this expiry still holds at `now`.
pub fn lease_live(expires_at: Micros, now: Micros) -> bool {
    now < expires_at
}

/// The lease with this expiry has run out at `now`: the complement of
/// [`lease_live`], so the boundary instant belongs to exactly one side.
pub fn lease_expired(expires_at: Micros, now: Micros) -> bool {
    !lease_live(expires_at, now)
}

/// The owner of a lease that is live at `now`, if any.
pub fn live_owner(owner: &Option<String>, expires_at: Option<Micros>, now: Micros) -> Option<&str> {
    match (owner, expires_at) {
        (Some(owner), Some(exp)) if lease_live(exp, now) => Some(owner),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_instant_belongs_to_expired() {
        let exp = 1_000_000;
        assert!(lease_live(exp, exp - 1));
        assert!(!lease_expired(exp, exp - 1));
        assert!(!lease_live(exp, exp));
        assert!(lease_expired(exp, exp));
        assert!(lease_expired(exp, exp + 1));
        let owner = Some("w1".to_string());
        assert_eq!(live_owner(&owner, Some(exp), exp - 1), Some("w1"));
        assert_eq!(live_owner(&owner, Some(exp), exp), None);
        assert_eq!(live_owner(&owner, None, exp), None);
    }
}
