-- People whose accounts are closed: every call of theirs is refused, and
-- nothing more is sent to them. (`PersonDeactivated` adds them,
-- `PersonReactivated` removes them.)
CREATE TABLE deactivated_people (
    person_id text PRIMARY KEY
);

-- The team that brought a participant to a thread ('' for none): removed
-- from it, they leave the thread unless another of their teams keeps them.
-- Rows from before this column say '' until `careline rebuild notify`.
ALTER TABLE participants ADD COLUMN via_team text NOT NULL DEFAULT '';
