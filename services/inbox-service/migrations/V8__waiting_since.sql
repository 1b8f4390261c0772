-- Since when a thread's patient side has waited for an answer: the first
-- message by the patient or a carer after staff last wrote (NULL when
-- staff wrote last). Threads projected before this column get it from
-- their messages.
ALTER TABLE threads ADD COLUMN waiting_since timestamptz;
UPDATE threads t SET waiting_since = (
    SELECT min(m.posted_at) FROM messages m
    WHERE m.thread_id = t.thread_id AND m.seq > t.last_staff_seq);
