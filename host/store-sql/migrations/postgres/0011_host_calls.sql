-- Answers of the host calls a wasm run made outside step code (state reads
-- and writes, usage records, log lines), keyed by their position in the
-- run's sequence of such calls (`__state:3`). A re-activated run gets the
-- recorded answer instead of performing the call again.

CREATE TABLE host_calls (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    call_key TEXT NOT NULL,
    answer_json TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, call_key)
);
