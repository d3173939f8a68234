-- Pending wasm runs in creation order: a claim takes the oldest without
-- walking the finished runs before them (runs_created_idx did).
CREATE INDEX runs_wasm_pending ON runs (created_at)
    WHERE component_digest IS NOT NULL AND status = 'pending';
