-- Where delivery state lives: outside the projection's generations (a
-- rebuild of the queue sends nothing again). `progress` holds two
-- watermarks (log positions) that keep the worker's queries to recent work
-- however long the history grows. IF NOT EXISTS: deployments made before
-- these migrations have the tables already.
CREATE TABLE IF NOT EXISTS deliveries (
    id              text PRIMARY KEY,
    -- sent, retrying or failed
    state           text NOT NULL,
    attempts        integer NOT NULL,
    next_attempt_at timestamptz,
    reason          text NOT NULL DEFAULT '',
    message_id      text NOT NULL,
    sent_at         timestamptz
);
CREATE INDEX IF NOT EXISTS deliveries_retrying
    ON deliveries (next_attempt_at) WHERE state = 'retrying';
CREATE TABLE IF NOT EXISTS progress (
    single   boolean PRIMARY KEY DEFAULT true CHECK (single),
    -- Every deliverable notification at or below this position has a
    -- delivery (sent, retrying or failed).
    settled  bigint NOT NULL DEFAULT 0,
    -- Every staff message at or below this position has been considered
    -- for a reminder.
    reminded bigint NOT NULL DEFAULT 0
);
INSERT INTO progress DEFAULT VALUES ON CONFLICT DO NOTHING;
