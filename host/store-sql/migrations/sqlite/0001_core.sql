-- Core schema. Timestamps are microseconds since the Unix epoch (BIGINT) and
-- JSON documents are TEXT, so the same SQL serves Postgres and SQLite.

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    workflow_name TEXT NOT NULL,
    input_json TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    status TEXT NOT NULL,
    result_json TEXT,
    error_json TEXT,
    recovery_webhook TEXT,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    attempt INTEGER NOT NULL DEFAULT 0,
    queue_name TEXT,
    dedupe_key TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    run_at BIGINT,
    max_attempts INTEGER NOT NULL DEFAULT 1,
    deadline_at BIGINT,
    cancel_requested_at BIGINT,
    cancelled_at BIGINT,
    cancel_reason TEXT,
    cancel_actor TEXT,
    failure_class TEXT,
    claimed_at BIGINT,
    component_digest TEXT,
    -- Highest event seq of this run; bumped in the event-append statement so
    -- the run row lock makes seq gap-free under concurrent writers.
    event_seq BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX runs_status_idx ON runs (status);
CREATE INDEX runs_created_idx ON runs (created_at);
CREATE UNIQUE INDEX runs_queue_dedupe_active ON runs (queue_name, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running');
CREATE INDEX runs_queue_claim ON runs (queue_name, status, run_at, priority)
    WHERE queue_name IS NOT NULL;
CREATE INDEX runs_lease_expiry ON runs (lease_expires_at) WHERE status = 'running';

CREATE TABLE steps (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    input_json TEXT NOT NULL,
    options_json TEXT NOT NULL,
    status TEXT NOT NULL,
    output_json TEXT,
    error_json TEXT,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    attempt INTEGER NOT NULL DEFAULT 0,
    started_at BIGINT,
    completed_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (run_id, name)
);

CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    type TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (run_id, seq)
);

CREATE TABLE run_state (
    run_id TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    value_json TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE state_streams (
    id TEXT PRIMARY KEY,
    run_id TEXT REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT,
    current_version INTEGER NOT NULL,
    current_value_json TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (run_id, name)
);

CREATE TABLE state_versions (
    id TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL REFERENCES state_streams (id) ON DELETE CASCADE,
    run_id TEXT REFERENCES runs (id) ON DELETE CASCADE,
    step_id TEXT,
    version INTEGER NOT NULL,
    value_json TEXT NOT NULL,
    patch_json TEXT,
    label TEXT,
    reason TEXT,
    importance TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE INDEX state_versions_run_id_idx ON state_versions (run_id);

CREATE TABLE run_edges (
    id TEXT PRIMARY KEY,
    parent_run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    child_run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    edge_type TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (parent_run_id, name)
);
CREATE INDEX run_edges_child_run_id_idx ON run_edges (child_run_id);

CREATE TABLE recovery_attempts (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    webhook_url TEXT NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER,
    response_body TEXT,
    error_text TEXT,
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX recovery_attempts_run_id_idx ON recovery_attempts (run_id);

CREATE TABLE channels (
    id TEXT PRIMARY KEY,
    run_id TEXT REFERENCES runs (id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    config_json TEXT NOT NULL,
    events_json TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX channels_run_id_idx ON channels (run_id);

CREATE TABLE channel_deliveries (
    id TEXT PRIMARY KEY,
    run_id TEXT REFERENCES runs (id) ON DELETE CASCADE,
    channel_id TEXT REFERENCES channels (id) ON DELETE SET NULL,
    gate_id TEXT,
    event_type TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT,
    payload_json TEXT NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER,
    response_body TEXT,
    error_text TEXT,
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX channel_deliveries_run_id_idx ON channel_deliveries (run_id);
CREATE INDEX channel_deliveries_pending_idx ON channel_deliveries (status) WHERE status = 'pending';

CREATE TABLE gates (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prompt TEXT NOT NULL,
    data_json TEXT NOT NULL,
    status TEXT NOT NULL,
    decision TEXT,
    actor TEXT,
    decision_json TEXT,
    capability_json TEXT NOT NULL,
    channels_json TEXT NOT NULL,
    resolve_token TEXT NOT NULL,
    timeout_ms BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    resolved_at BIGINT,
    UNIQUE (run_id, name)
);
CREATE INDEX gates_status_idx ON gates (status);

CREATE TABLE usage_records (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_id TEXT REFERENCES steps (id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    provider TEXT,
    model TEXT,
    label TEXT,
    quantity DOUBLE PRECISION,
    unit TEXT,
    input_tokens BIGINT,
    output_tokens BIGINT,
    total_tokens BIGINT,
    cost_usd DOUBLE PRECISION,
    metadata_json TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX usage_records_run_id_idx ON usage_records (run_id);

CREATE TABLE queue_configs (
    name TEXT PRIMARY KEY,
    concurrency INTEGER,
    rate_per_minute INTEGER,
    invoke_url TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    cron TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    input_json TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    max_attempts INTEGER NOT NULL,
    enabled BOOLEAN NOT NULL,
    next_run_at BIGINT,
    last_enqueued_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
