-- A team inbox reads one index range: each thread_teams row carries its
-- thread's status, assignee, last activity and patient (kept by the
-- projection in the same transaction as the thread), so a team of 10,000
-- threads is paged, counted and grouped by assignee without looking each
-- thread up.
ALTER TABLE thread_teams
    ADD COLUMN status text,
    ADD COLUMN assignee uuid,
    ADD COLUMN last_activity_at timestamptz,
    ADD COLUMN patient_id uuid;
UPDATE thread_teams tt SET status = t.status, assignee = t.assignee,
    last_activity_at = t.last_activity_at, patient_id = t.patient_id
FROM threads t WHERE t.thread_id = tt.thread_id;
CREATE INDEX thread_teams_inbox ON thread_teams (team_id, last_activity_at DESC, thread_id DESC)
    INCLUDE (status, assignee, patient_id);
