-- Queues, schedules, the reconciler and outbound webhooks.

-- A sender holds a pending channel delivery until this time, so replicas
-- (and the stale-delivery sweep) never send one delivery twice at once.
ALTER TABLE channel_deliveries ADD COLUMN claimed_until BIGINT;

-- ratePerMinute counts claims of a queue in a sliding window.
CREATE INDEX runs_queue_claimed ON runs (queue_name, claimed_at) WHERE claimed_at IS NOT NULL;
-- The deadline sweep.
CREATE INDEX runs_deadline ON runs (deadline_at)
    WHERE deadline_at IS NOT NULL AND status IN ('pending', 'queued', 'running');
-- The schedule sweep.
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE enabled;
