-- A professional's own message list reads index ranges only, like a team
-- inbox (V9): one row per thread a professional is on now, carrying its
-- thread's status, assignee, last activity and patient (kept by the
-- projection in the thread's transaction). Apart from thread_participants,
-- whose rows every summary reads, so that those stay narrow.
CREATE TABLE professional_threads (
    person_id        uuid NOT NULL,
    thread_id        uuid NOT NULL,
    status           text NOT NULL,
    assignee         uuid,
    last_activity_at timestamptz NOT NULL,
    patient_id       uuid NOT NULL,
    PRIMARY KEY (person_id, thread_id)
);
INSERT INTO professional_threads
SELECT p.person_id, p.thread_id, t.status, t.assignee, t.last_activity_at, t.patient_id
FROM thread_participants p JOIN threads t ON t.thread_id = p.thread_id
WHERE p.active AND p.kind = 'professional';
CREATE INDEX professional_threads_inbox
    ON professional_threads (person_id, last_activity_at DESC, thread_id DESC)
    INCLUDE (status, assignee, patient_id);
