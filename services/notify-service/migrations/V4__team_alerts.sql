-- Teams whose every member hears of patients' and carers' messages to the
-- team (team alerts, off by default).
CREATE TABLE team_alerts (
    team_id text PRIMARY KEY
);
