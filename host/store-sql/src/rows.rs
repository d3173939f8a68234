//! Every table's column list, mapped to its model type. JSON columns are
//! TEXT, timestamps BIGINT microseconds.

use super::table::table;
use crate::model::{
    AgentRecord, Channel, Delivery, DeliveryRecord, Deployment, Event, Gate, GrantRecord,
    LiveState, QueueConfig, Receipt, RecoveryAttempt, ResourceRecord, ResumeContract, Run, RunEdge,
    Schedule, SessionRecord, StateStream, StateVersion, Step, UsageRecord,
};

table!(RUNS: Run = "runs" {
    id: "id",
    workflow_name: "workflow_name",
    input: "input_json" as Json,
    metadata: "metadata_json" as Json,
    status: "status" as Status,
    result: "result_json" as Json,
    error: "error_json" as Json,
    recovery_webhook: "recovery_webhook",
    lease_owner: "lease_owner",
    lease_expires_at: "lease_expires_at",
    attempt: "attempt",
    queue: "queue_name",
    dedupe_key: "dedupe_key",
    priority: "priority",
    run_at: "run_at",
    max_attempts: "max_attempts",
    deadline_at: "deadline_at",
    cancel_requested_at: "cancel_requested_at",
    cancelled_at: "cancelled_at",
    cancel_reason: "cancel_reason",
    cancel_actor: "cancel_actor",
    failure_class: "failure_class",
    claimed_at: "claimed_at",
    component_digest: "component_digest",
    created_at: "created_at",
    updated_at: "updated_at",
    completed_at: "completed_at",
    parked_until: "parked_until",
});

table!(STEPS: Step = "steps" {
    id: "id",
    run_id: "run_id",
    name: "name",
    input_hash: "input_hash",
    input: "input_json" as Json,
    options: "options_json" as Json,
    status: "status",
    output: "output_json" as Json,
    error: "error_json" as Json,
    lease_owner: "lease_owner",
    lease_expires_at: "lease_expires_at",
    attempt: "attempt",
    started_at: "started_at",
    completed_at: "completed_at",
    created_at: "created_at",
    updated_at: "updated_at",
} + {
    resume_contract: ResumeContract::from_options(&options),
});

table!(EVENTS: Event = "events" {
    id: "id",
    run_id: "run_id",
    seq: "seq",
    kind: "type",
    payload: "payload_json" as Json,
    created_at: "created_at",
});

table!(GATES: Gate = "gates" {
    id: "id",
    run_id: "run_id",
    name: "name",
    prompt: "prompt",
    data: "data_json" as Json,
    status: "status",
    decision: "decision",
    actor: "actor",
    decision_payload: "decision_json" as Json,
    capability: "capability_json" as Json,
    channels: "channels_json" as Json,
    resolve_token: "resolve_token",
    timeout_ms: "timeout_ms",
    created_at: "created_at",
    updated_at: "updated_at",
    resolved_at: "resolved_at",
});

table!(EDGES: RunEdge = "run_edges" {
    id: "id",
    parent_run_id: "parent_run_id",
    child_run_id: "child_run_id",
    name: "name",
    edge_type: "edge_type",
    metadata: "metadata_json" as Json,
    created_at: "created_at",
});

table!(CHANNELS: Channel = "channels" {
    id: "id",
    run_id: "run_id",
    kind: "type",
    config: "config_json" as Json,
    events: "events_json" as Json,
    created_at: "created_at",
});

table!(LIVE_STATE: LiveState = "run_state" {
    run_id: "run_id",
    value: "value_json" as Json,
    version: "version",
    updated_at: "updated_at",
});

table!(STREAMS: StateStream = "state_streams" {
    id: "id",
    run_id: "run_id",
    name: "name",
    target_type: "target_type",
    target_id: "target_id",
    current_version: "current_version",
    current_value: "current_value_json" as Json,
    metadata: "metadata_json" as Json,
    created_at: "created_at",
    updated_at: "updated_at",
});

table!(VERSIONS: StateVersion = "state_versions" {
    id: "id",
    stream_id: "stream_id",
    run_id: "run_id",
    step_id: "step_id",
    version: "version",
    value: "value_json" as Json,
    patch: "patch_json" as Json,
    label: "label",
    reason: "reason",
    importance: "importance",
    metadata: "metadata_json" as Json,
    created_by: "created_by",
    created_at: "created_at",
});

table!(USAGE: UsageRecord = "usage_records" {
    id: "id",
    run_id: "run_id",
    step_id: "step_id",
    kind: "kind",
    provider: "provider",
    model: "model",
    label: "label",
    quantity: "quantity" as FloatText,
    unit: "unit",
    input_tokens: "input_tokens",
    output_tokens: "output_tokens",
    total_tokens: "total_tokens",
    cost_usd: "cost_usd" as FloatText,
    metadata: "metadata_json" as Json,
    created_at: "created_at",
});

table!(QUEUE_CONFIGS: QueueConfig = "queue_configs" {
    name: "name",
    concurrency: "concurrency" as Int32,
    rate_per_minute: "rate_per_minute" as Int32,
    invoke_url: "invoke_url",
    created_at: "created_at",
    updated_at: "updated_at",
});

table!(SCHEDULES: Schedule = "schedules" {
    name: "name",
    cron: "cron",
    workflow_name: "workflow_name",
    input: "input_json" as Json,
    queue: "queue_name",
    max_attempts: "max_attempts",
    enabled: "enabled" as Flag,
    next_run_at: "next_run_at",
    last_enqueued_at: "last_enqueued_at",
    created_at: "created_at",
    updated_at: "updated_at",
});

table!(RECOVERY_ATTEMPTS: RecoveryAttempt = "recovery_attempts" {
    id: "id",
    run_id: "run_id",
    reason: "reason",
    webhook_url: "webhook_url",
    status: "status",
    http_status: "http_status",
    response_body: "response_body",
    error_text: "error_text",
    created_at: "created_at",
    completed_at: "completed_at",
});

table!(
    /// A delivery as its sender needs it (inserted with status `pending`);
    /// [`DELIVERY_RECORDS`] adds the outcome.
    DELIVERIES: Delivery = "channel_deliveries" {
        id: "id",
        run_id: "run_id",
        channel_id: "channel_id",
        gate_id: "gate_id",
        event_type: "event_type",
        url: "url",
        secret: "secret",
        payload: "payload_json" as Json,
        created_at: "created_at",
    }
);

table!(
    /// A delivery and its outcome, as run detail shows it.
    DELIVERY_RECORDS: DeliveryRecord = "channel_deliveries" {
        id: "id",
        run_id: "run_id",
        channel_id: "channel_id",
        gate_id: "gate_id",
        event_type: "event_type",
        payload: "payload_json" as Json,
        status: "status",
        http_status: "http_status",
        response_body: "response_body",
        error_text: "error_text",
        created_at: "created_at",
        completed_at: "completed_at",
    }
);

table!(DEPLOYMENTS: Deployment = "deployments" {
    id: "id",
    workflow_name: "workflow_name",
    version: "version",
    digest: "digest",
    memory_limit_bytes: "memory_limit_bytes",
    cpu_limit_ms: "cpu_limit_ms",
    allow: "allow_json" as JsonList,
    egress_timeout_ms: "egress_timeout_ms",
    egress_max_bytes: "egress_max_bytes",
    created_at: "created_at",
});

table!(RESOURCES: ResourceRecord = "resources" {
    id: "id",
    principal: "principal" as Principal,
    name: "name",
    provider: "provider",
    connection_ref: "connection_ref",
    base_url: "base_url",
    methods: "methods_json" as JsonList,
    paths: "paths_json" as JsonList,
    scopes: "scopes_json" as JsonList,
    metadata: "metadata_json" as Json,
    injection: "injection_json" as Json,
    sealed: "secret_sealed" as Blob,
    status: "status",
    created_at: "created_at",
    updated_at: "updated_at",
    revoked_at: "revoked_at",
});

table!(GRANTS: GrantRecord = "grants" {
    id: "id",
    run_id: "run_id",
    agent_id: "agent_id",
    resource_id: "resource_id",
    resource: "resource",
    action: "action",
    scopes: "scopes_json" as JsonList,
    reason: "reason",
    mode: "mode",
    status: "status",
    gate_id: "gate_id",
    max_uses: "max_uses",
    used_count: "used_count",
    ttl_seconds: "ttl_seconds",
    policy: "policy_json" as Json,
    issued_at: "issued_at",
    expires_at: "expires_at",
    revoked_at: "revoked_at",
    created_at: "created_at",
    updated_at: "updated_at",
});

table!(RECEIPTS: Receipt = "egress_receipts" {
    id: "id",
    run_id: "run_id",
    grant_id: "grant_id",
    agent_id: "agent_id",
    step: "step_name",
    attempt: "attempt",
    resource: "resource",
    method: "method",
    host: "host",
    path: "path",
    decision: "decision",
    reason: "reason",
    class: "class",
    status: "status" as Status16,
    bytes: "bytes",
    duration_ms: "duration_ms",
    at: "created_at" as IsoTime,
});

table!(AGENTS: AgentRecord = "agents" {
    id: "id",
    name: "name",
    principal: "principal",
    identity_kind: "identity_kind",
    public_key: "public_key",
    status: "status",
    metadata: "metadata_json" as Json,
    created_at: "created_at",
    updated_at: "updated_at",
});

table!(SESSIONS: SessionRecord = "agent_sessions" {
    id: "id",
    agent_id: "agent_id",
    token_hash: "token_hash",
    expires_at: "expires_at",
    revoked_at: "revoked_at",
    created_at: "created_at",
});
