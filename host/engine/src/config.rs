//! Runtime settings shared by the engine and the HTTP server.

#[derive(Clone, Debug)]
pub struct Settings {
    /// Run- and step-lease duration (`TIDEBASE_LEASE_MS`).
    pub lease_ms: i64,
    /// Opt-in bearer key (`TIDEBASE_API_KEY`); `None` leaves the API open.
    pub api_key: Option<String>,
    /// Base URL used in gate `resolveUrl`s (`TIDEBASE_PUBLIC_URL`).
    pub public_url: String,
    /// HMAC key for recovery and invoke webhooks (`TIDEBASE_WEBHOOK_SECRET`).
    pub webhook_secret: Option<String>,
    /// Timeout of every outbound webhook call (`TIDEBASE_WEBHOOK_TIMEOUT_MS`).
    pub webhook_timeout_ms: u64,
    /// The one origin browsers may call from (`TIDEBASE_CORS_ORIGIN`); `*`
    /// allows any.
    pub cors_origin: String,
    /// Let the egress broker reach loopback, private, link-local and other
    /// internal addresses (`TIDEBASE_ALLOW_PRIVATE_EGRESS=1`): development
    /// and tests only.
    pub allow_private_egress: bool,
    /// The credential backends of the broker API (broker.md §7.1).
    pub custody: crate::broker::Custody,
    /// How long a grant waits for approval, in seconds
    /// (`TIDEBASE_GRANT_APPROVAL_TTL_S`).
    pub grant_approval_ttl_s: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lease_ms: 60_000,
            api_key: None,
            public_url: "http://localhost:7373".into(),
            webhook_secret: None,
            webhook_timeout_ms: 10_000,
            cors_origin: "*".into(),
            allow_private_egress: false,
            custody: crate::broker::Custody::default(),
            grant_approval_ttl_s: 3600,
        }
    }
}
