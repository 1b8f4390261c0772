-- People and teams on a thread's staff side: shown to staff only, never to
-- the patient or carers (nor counted for them).
ALTER TABLE thread_participants ADD COLUMN staff_side boolean NOT NULL DEFAULT false;
ALTER TABLE thread_teams ADD COLUMN staff_side boolean NOT NULL DEFAULT false;
CREATE INDEX thread_participants_staff_side ON thread_participants (thread_id, person_id)
    WHERE active AND staff_side;
