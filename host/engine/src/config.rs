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
    /// The broker's identity and abuse settings (broker.md §11).
    pub identity: IdentitySettings,
    /// How wasm activations group pure step checkpoints
    /// (`TIDEBASE_WASM_GROUP_COMMIT`).
    pub wasm_group_commit: crate::GroupCommit,
}

/// Agent identity and abuse controls, from the environment variables of
/// upstream v0.7 (broker.md §11), so a v0.7 deployment's environment works
/// unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentitySettings {
    /// `TIDEBASE_CHALLENGE_SECRET` when set, even to `""` (which switches
    /// challenge issuance off); `None` uses the API key.
    pub challenge_secret: Option<String>,
    /// Production mode (§1.5): `NODE_ENV`, or when that is unset
    /// `TIDEBASE_ENV`, is `production`.
    pub production: bool,
    /// `TIDEBASE_ALLOW_DEV_TOKEN=1`: dev-token proofs even in production.
    pub allow_dev_token: bool,
    /// `TIDEBASE_DEV_AGENT_TOKEN`, when non-empty: the token a dev-token
    /// proof must present.
    pub dev_agent_token: Option<String>,
    /// Proof requests (challenge and prove) per agent per minute
    /// (`TIDEBASE_PROVE_RATE`).
    pub prove_rate: i64,
    /// Grant operations per caller per minute (`TIDEBASE_GRANT_RATE`).
    pub grant_rate: i64,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        IdentitySettings {
            challenge_secret: None,
            production: false,
            allow_dev_token: false,
            dev_agent_token: None,
            prove_rate: 50,
            grant_rate: 300,
        }
    }
}

impl IdentitySettings {
    /// Read from variables as `var` returns them (`None`: unset). A rate
    /// that is not a positive integer is an error naming its variable.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<IdentitySettings, String> {
        let defaults = IdentitySettings::default();
        let rate = |name: &str, default: i64| match var(name) {
            None => Ok(default),
            Some(text) => crate::limits::RATE_PER_MINUTE
                .parse(name, text.trim())
                .map_err(|v| v.to_string()),
        };
        let environment = var("NODE_ENV").or_else(|| var("TIDEBASE_ENV"));
        Ok(IdentitySettings {
            challenge_secret: var("TIDEBASE_CHALLENGE_SECRET"),
            production: environment.as_deref() == Some("production"),
            allow_dev_token: var("TIDEBASE_ALLOW_DEV_TOKEN").as_deref() == Some("1"),
            dev_agent_token: var("TIDEBASE_DEV_AGENT_TOKEN").filter(|t| !t.is_empty()),
            prove_rate: rate("TIDEBASE_PROVE_RATE", defaults.prove_rate)?,
            grant_rate: rate("TIDEBASE_GRANT_RATE", defaults.grant_rate)?,
        })
    }

    /// Dev-token proofs are allowed (§1.5).
    pub fn dev_tokens_allowed(&self) -> bool {
        !self.production || self.allow_dev_token
    }
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
            identity: IdentitySettings::default(),
            wasm_group_commit: crate::GroupCommit::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<IdentitySettings, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        IdentitySettings::from_vars(|k| vars.get(k).cloned())
    }

    #[test]
    fn production_is_node_env_when_set_else_tidebase_env() {
        assert!(!read(&[]).unwrap().production);
        assert!(read(&[("TIDEBASE_ENV", "production")]).unwrap().production);
        assert!(read(&[("NODE_ENV", "production")]).unwrap().production);
        // NODE_ENV set to anything decides alone.
        let s = read(&[("NODE_ENV", "test"), ("TIDEBASE_ENV", "production")]).unwrap();
        assert!(!s.production);
        assert!(s.dev_tokens_allowed());
        let s = read(&[
            ("TIDEBASE_ENV", "production"),
            ("TIDEBASE_ALLOW_DEV_TOKEN", "1"),
        ])
        .unwrap();
        assert!(s.production && s.dev_tokens_allowed());
        let s = read(&[
            ("TIDEBASE_ENV", "production"),
            ("TIDEBASE_ALLOW_DEV_TOKEN", "yes"),
        ])
        .unwrap();
        assert!(!s.dev_tokens_allowed());
    }

    #[test]
    fn an_empty_challenge_secret_is_kept_and_an_empty_dev_token_is_none() {
        let s = read(&[
            ("TIDEBASE_CHALLENGE_SECRET", ""),
            ("TIDEBASE_DEV_AGENT_TOKEN", ""),
        ])
        .unwrap();
        assert_eq!(s.challenge_secret.as_deref(), Some(""));
        assert_eq!(s.dev_agent_token, None);
    }

    #[test]
    fn rates_default_and_must_be_positive_integers() {
        let s = read(&[]).unwrap();
        assert_eq!((s.prove_rate, s.grant_rate), (50, 300));
        let s = read(&[
            ("TIDEBASE_PROVE_RATE", "3"),
            ("TIDEBASE_GRANT_RATE", "100000"),
        ])
        .unwrap();
        assert_eq!((s.prove_rate, s.grant_rate), (3, 100_000));
        for bad in ["0", "-1", "x", "1.5"] {
            let err = read(&[("TIDEBASE_PROVE_RATE", bad)]).unwrap_err();
            assert!(err.contains("TIDEBASE_PROVE_RATE"), "{err}");
        }
    }
}
