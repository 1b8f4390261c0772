-- Professionals' absences (`AbsenceRecorded`, `AbsenceEnded`): patients are
-- shown who is away until when, and teams who of them is away.
CREATE TABLE absences (
    absence_id uuid PRIMARY KEY,
    person_id  uuid NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    deputy_id  uuid,
    ended      boolean NOT NULL DEFAULT false
);
CREATE INDEX absences_person ON absences (person_id, ends_at);
-- Whom a deputy stands in for on a thread (reason `deputy`).
ALTER TABLE thread_participants ADD COLUMN deputy_for uuid;
