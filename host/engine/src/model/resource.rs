use crate::clock::Micros;
use serde_json::Value;
use std::fmt;

/// A connected upstream as stored. The API shows it as
/// [`crate::Resource`], which has no secret material at all.
#[derive(Clone, Debug)]
pub struct ResourceRecord {
    pub id: String,
    pub name: String,
    /// Absolute http(s) URL, normalised; requests must fall under it.
    pub base_url: String,
    /// Upper-case; empty allows any.
    pub methods: Vec<String>,
    /// Path prefixes under the base URL's path; empty allows any.
    pub paths: Vec<String>,
    /// The injection rule (`{"header","format"}` or `{"query"}`); null
    /// when there is no secret.
    pub injection: Value,
    /// The secret, encrypted by the vault; never plaintext.
    pub sealed: Option<Sealed>,
    /// `active` or `revoked`.
    pub status: String,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub revoked_at: Option<Micros>,
}

/// Secret material sealed by [`crate::Vault`]: opaque bytes that only the
/// master key opens. Debug output shows none of them.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub Vec<u8>);

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(..)")
    }
}
