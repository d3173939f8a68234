-- Deployed wasm components, content-addressed, with per-workflow version history.

CREATE TABLE components (
    digest TEXT PRIMARY KEY,
    bytes BYTEA NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    workflow_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    digest TEXT NOT NULL REFERENCES components (digest),
    memory_limit_bytes BIGINT,
    cpu_limit_ms BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (workflow_name, version)
);

-- A suspended wasm run waits (lease released) until this time; a resolved
-- gate or finished child pulls it forward.
ALTER TABLE runs ADD COLUMN parked_until BIGINT;
CREATE INDEX runs_wasm_ready ON runs (status, parked_until) WHERE component_digest IS NOT NULL;
