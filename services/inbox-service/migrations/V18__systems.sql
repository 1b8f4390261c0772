-- The hospital's systems an admin registered (`SystemRegistered`), for the
-- admins' page; closed ones are in `deactivated_people`.
CREATE TABLE systems (
    system_id     uuid PRIMARY KEY,
    name          text NOT NULL,
    team_ids      uuid[] NOT NULL,
    registered_at timestamptz NOT NULL
);
