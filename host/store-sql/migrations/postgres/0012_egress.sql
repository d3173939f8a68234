-- Brokered egress: resources (named upstreams, each with an optional
-- secret), the resources and limits a deployment grants, and a receipt of
-- every egress decision.

CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    base_url TEXT NOT NULL,
    methods_json TEXT NOT NULL,
    paths_json TEXT NOT NULL,
    -- How the secret is injected; never the secret itself.
    injection_json TEXT NOT NULL,
    -- The secret under AES-256-GCM envelope encryption (the engine's
    -- vault); never plaintext. NULL without a secret or once revoked.
    secret_sealed BYTEA,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    revoked_at BIGINT
);

ALTER TABLE deployments ADD COLUMN allow_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE deployments ADD COLUMN egress_timeout_ms BIGINT;
ALTER TABLE deployments ADD COLUMN egress_max_bytes BIGINT;

-- `seq` orders receipts (newest first) and pages them.
CREATE TABLE egress_receipts (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_name TEXT,
    attempt INTEGER,
    resource TEXT,
    method TEXT NOT NULL,
    host TEXT NOT NULL,
    path TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT,
    class TEXT,
    status INTEGER,
    bytes BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX egress_receipts_run ON egress_receipts (run_id, seq);
CREATE INDEX egress_receipts_resource ON egress_receipts (resource, seq);
