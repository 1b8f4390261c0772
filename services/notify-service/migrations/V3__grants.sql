-- Record-access grants (a team may see a patient's threads until the grant
-- expires or is revoked): its members may see whether the thread's people
-- were told, as they may read the thread itself.
CREATE TABLE grants (
    grant_id   text PRIMARY KEY,
    patient_id text NOT NULL,
    team_id    text NOT NULL,
    -- Microseconds since the epoch.
    expires_at bigint NOT NULL,
    revoked    boolean NOT NULL
);
CREATE INDEX grants_by_record ON grants (patient_id, team_id);
