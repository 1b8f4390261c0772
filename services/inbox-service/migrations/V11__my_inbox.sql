-- A professional's own message list reads index ranges only, like a team
-- inbox (V9): each of their participations carries its thread's status,
-- assignee, last activity and patient (kept by the projection in the same
-- transaction as the thread), so the threads they are on are one range,
-- newest first, however many threads their teams copy them into.
ALTER TABLE thread_participants
    ADD COLUMN status text,
    ADD COLUMN assignee uuid,
    ADD COLUMN last_activity_at timestamptz,
    ADD COLUMN patient_id uuid;
UPDATE thread_participants p SET status = t.status, assignee = t.assignee,
    last_activity_at = t.last_activity_at, patient_id = t.patient_id
FROM threads t WHERE t.thread_id = p.thread_id AND p.kind = 'professional';
CREATE INDEX thread_participants_inbox
    ON thread_participants (person_id, last_activity_at DESC, thread_id DESC)
    INCLUDE (status, assignee, patient_id) WHERE active AND kind = 'professional';
