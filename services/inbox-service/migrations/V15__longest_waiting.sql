-- A team inbox longest-waiting first: each thread_teams row carries its
-- thread's waiting_since (copied with its status, V9), and `queue_key`
-- orders a team's threads in one index range: those waiting first, the
-- longest wait first (the microseconds of waiting_since), then those
-- answered, the newest activity first (2^62 less the microseconds of the
-- last activity). A page's cursor is its last row's key and id.
CREATE FUNCTION inbox_queue_key(waiting timestamptz, active timestamptz) RETURNS int8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN waiting IS NOT NULL
        THEN (extract(epoch FROM waiting) * 1000000)::int8
        ELSE 4611686018427387904 - (extract(epoch FROM coalesce(active, 'epoch')) * 1000000)::int8
    END
$$;
ALTER TABLE thread_teams ADD COLUMN waiting_since timestamptz;
UPDATE thread_teams tt SET waiting_since = t.waiting_since
FROM threads t WHERE t.thread_id = tt.thread_id AND t.waiting_since IS NOT NULL;
ALTER TABLE thread_teams ADD COLUMN queue_key int8
    GENERATED ALWAYS AS (inbox_queue_key(waiting_since, last_activity_at)) STORED;
CREATE INDEX thread_teams_waiting ON thread_teams (team_id, queue_key, thread_id)
    INCLUDE (status, assignee, patient_id);
