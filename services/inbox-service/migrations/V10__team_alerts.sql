-- Whether a team alerts every member of each new message from a patient or
-- carer (TeamAlertsSet), for the admins' team page. Teams switched before
-- this column existed show it after `careline rebuild inbox`.
ALTER TABLE teams ADD COLUMN alerts boolean NOT NULL DEFAULT false;
