-- People and teams on a thread's staff side: told of staff notes, and of
-- messages only when they are mentioned; a staff-side team's alerts do not
-- fire on patients' messages.
ALTER TABLE participants ADD COLUMN staff_side boolean NOT NULL DEFAULT false;
ALTER TABLE thread_teams ADD COLUMN staff_side boolean NOT NULL DEFAULT false;
