-- Pending wasm runs in creation order: a claim takes the oldest without
-- walking the finished runs before them (runs_created_idx did), and without
-- sorting every pending run (runs_wasm_ready would). `status` leads so that
-- SQLite's planner, which has no statistics, picks this index for
-- `status = 'pending' ORDER BY created_at`.
CREATE INDEX runs_wasm_pending ON runs (status, created_at)
    WHERE component_digest IS NOT NULL AND status = 'pending';
