-- A team's current public join code (lower case), for the "join this team"
-- link to find the team. Codes issued before this column existed appear
-- after `careline rebuild inbox`.
ALTER TABLE teams ADD COLUMN join_code text;
CREATE INDEX teams_join_code ON teams (join_code) WHERE join_code IS NOT NULL;
