use crate::clock::Micros;
use serde_json::Value;
use std::fmt;

/// A connected upstream as stored, for both doors: the operator's resources
/// (CLI, wasm `--allow`) belong to no tenant, and the broker API's may
/// belong to one. The API shows it as [`crate::Resource`], which has no
/// secret material at all.
#[derive(Clone, Debug)]
pub struct ResourceRecord {
    pub id: String,
    /// The owning tenant; `None` for none (stored as `''`, so that
    /// `(principal, name)` is a real key).
    pub principal: Option<String>,
    pub name: String,
    /// The custody backend: `static` (the vault), `nango` or `openbao`.
    pub provider: String,
    /// The delegated backend's pointer to the credential; never shown.
    pub connection_ref: Option<String>,
    /// Absolute http(s) URL, normalised; requests must fall under it.
    /// `None`: calls cannot be sent (only simulated).
    pub base_url: Option<String>,
    /// Upper-case; empty allows any.
    pub methods: Vec<String>,
    /// Path prefixes under the base URL's path; empty allows any.
    pub paths: Vec<String>,
    /// The scope ceiling of grants on it; empty caps nothing.
    pub scopes: Vec<String>,
    /// Stored for the operator, never returned.
    pub metadata: Value,
    /// The injection rule (`{"header","format"}`, `{"header","scheme":"basic"}`
    /// or `{"query"}`); null when there is no secret.
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
