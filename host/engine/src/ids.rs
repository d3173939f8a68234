//! Identifier formats of the wire protocol: a type prefix plus 32 lowercase hex.

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Gate resolve tokens: 32 lowercase hex, no prefix.
pub fn resolve_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Server-generated lease owners: a dashed UUID.
pub fn lease_owner() -> String {
    uuid::Uuid::new_v4().to_string()
}
