-- The v0.7 credential broker for SDK clients (broker.md §12), on the egress
-- tables: one resources table serves the wasm egress broker and the SDK
-- broker API. Resources become unique per (principal, name), may lack a base
-- URL (simulated and delegated backends), and gain provider, connection
-- reference, scope ceiling and metadata. SQLite cannot drop a constraint or
-- a NOT NULL, so the table is rebuilt.

CREATE TABLE resources_next (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    provider TEXT NOT NULL DEFAULT 'static',
    connection_ref TEXT,
    base_url TEXT,
    methods_json TEXT NOT NULL,
    paths_json TEXT NOT NULL,
    scopes_json TEXT NOT NULL DEFAULT '[]',
    metadata_json TEXT NOT NULL DEFAULT '{}',
    injection_json TEXT NOT NULL,
    secret_sealed BLOB,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    revoked_at BIGINT
);
INSERT INTO resources_next (id, name, base_url, methods_json, paths_json,
    injection_json, secret_sealed, status, created_at, updated_at, revoked_at)
SELECT id, name, base_url, methods_json, paths_json, injection_json,
    secret_sealed, status, created_at, updated_at, revoked_at
FROM resources;
DROP TABLE resources;
ALTER TABLE resources_next RENAME TO resources;
CREATE UNIQUE INDEX resources_principal_name ON resources (principal, name);

-- Agents: identities that prove themselves for a short-lived session.
-- `principal` is the owning tenant; '' means none. Keeping it NOT NULL makes
-- (principal, name) a real key, so registering a principal-less name twice
-- upserts one agent instead of piling up duplicates.
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    principal TEXT NOT NULL DEFAULT '',
    identity_kind TEXT NOT NULL
        CHECK (identity_kind IN ('dev_token', 'keypair', 'cloud_key', 'spire')),
    public_key TEXT,
    status TEXT NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'disabled', 'revoked')),
    metadata_json TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (principal, name)
);

-- Session tokens are stored only as their SHA-256 hex digest.
CREATE TABLE agent_sessions (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX agent_sessions_agent ON agent_sessions (agent_id);

-- Keypair challenges already spent (single use), kept until they expire.
CREATE TABLE consumed_challenges (
    challenge_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX consumed_challenges_expiry ON consumed_challenges (expires_at);

-- Fixed-window request counters shared by every replica.
CREATE TABLE rate_limits (
    bucket TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);

-- The tenant that first brokered on a run (trust on first use); NULL while
-- unclaimed. Never part of the Run JSON.
ALTER TABLE runs ADD COLUMN grant_principal TEXT;

-- Run-bound grants. Mint tokens are stored only as their SHA-256 digest.
CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    agent_id TEXT,
    resource_id TEXT,
    resource TEXT NOT NULL,
    action TEXT NOT NULL,
    scopes_json TEXT NOT NULL DEFAULT '[]',
    reason TEXT,
    mode TEXT NOT NULL CHECK (mode IN ('proxy', 'mint')),
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'approved', 'active', 'denied', 'expired', 'revoked', 'used')),
    gate_id TEXT,
    token_hash TEXT,
    max_uses INTEGER NOT NULL,
    used_count INTEGER NOT NULL DEFAULT 0,
    ttl_seconds INTEGER NOT NULL,
    policy_json TEXT NOT NULL DEFAULT '{}',
    issued_at BIGINT,
    expires_at BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX grants_run ON grants (run_id);
CREATE INDEX grants_gate ON grants (gate_id);
CREATE INDEX grants_resource ON grants (resource_id);
CREATE INDEX grants_live_expiry ON grants (expires_at)
    WHERE status IN ('pending', 'approved', 'active');

-- A receipt of a proxied SDK call names its grant and agent; wasm egress
-- receipts leave both NULL.
ALTER TABLE egress_receipts ADD COLUMN grant_id TEXT;
ALTER TABLE egress_receipts ADD COLUMN agent_id TEXT;
