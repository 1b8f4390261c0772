-- A team inbox's counts and "who is helping whom" as rows, instead of two
-- scans of the team's thread_teams range on every page (10,000 rows for a
-- busy team): how many of the team's threads are in each bucket, a bucket
-- being (archived, assignee) with archived threads all in one bucket and
-- the nil UUID standing for "unassigned". Kept by triggers on
-- thread_teams, in the statement's transaction, so they are never out of
-- step with the rows they count. A row whose status is not known yet
-- (NULL) is in no bucket, as the scans had it. A bucket that empties is
-- removed, so the table is the same however the log was cut into
-- batches (a rebuild equals the live run).
CREATE TABLE team_tallies (
    team_id  uuid NOT NULL,
    archived boolean NOT NULL,
    assignee uuid NOT NULL,
    threads  bigint NOT NULL,
    PRIMARY KEY (team_id, archived, assignee)
);

CREATE FUNCTION team_tallies_bucket(status text, assignee uuid) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN status = 'archived' THEN '00000000-0000-0000-0000-000000000000'::uuid
                ELSE coalesce(assignee, '00000000-0000-0000-0000-000000000000'::uuid) END
$$;

-- Statement triggers see every row a statement changed at once (the
-- projection updates a batch of threads' copies in one statement): one
-- grouped upsert per statement, not one per row.
CREATE FUNCTION team_tallies_apply() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO team_tallies AS t (team_id, archived, assignee, threads)
        SELECT team_id, status = 'archived', team_tallies_bucket(status, assignee), count(*)
        FROM added WHERE status IS NOT NULL GROUP BY 1, 2, 3
        ON CONFLICT (team_id, archived, assignee) DO UPDATE SET threads = t.threads + excluded.threads;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO team_tallies AS t (team_id, archived, assignee, threads)
        SELECT team_id, status = 'archived', team_tallies_bucket(status, assignee), -count(*)
        FROM removed WHERE status IS NOT NULL GROUP BY 1, 2, 3
        ON CONFLICT (team_id, archived, assignee) DO UPDATE SET threads = t.threads + excluded.threads;
        DELETE FROM team_tallies WHERE threads = 0 AND team_id IN (SELECT team_id FROM removed);
    ELSE
        INSERT INTO team_tallies AS t (team_id, archived, assignee, threads)
        SELECT team_id, archived, bucket, sum(d)::bigint FROM (
            SELECT team_id, status = 'archived' AS archived,
                   team_tallies_bucket(status, assignee) AS bucket, 1 AS d
            FROM added WHERE status IS NOT NULL
            UNION ALL
            SELECT team_id, status = 'archived', team_tallies_bucket(status, assignee), -1
            FROM removed WHERE status IS NOT NULL
        ) delta GROUP BY 1, 2, 3 HAVING sum(d) <> 0
        ON CONFLICT (team_id, archived, assignee) DO UPDATE SET threads = t.threads + excluded.threads;
        DELETE FROM team_tallies WHERE threads = 0 AND team_id IN (SELECT team_id FROM removed);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER team_tallies_insert AFTER INSERT ON thread_teams
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION team_tallies_apply();
CREATE TRIGGER team_tallies_update AFTER UPDATE ON thread_teams
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION team_tallies_apply();
CREATE TRIGGER team_tallies_delete AFTER DELETE ON thread_teams
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION team_tallies_apply();

INSERT INTO team_tallies
SELECT team_id, status = 'archived', team_tallies_bucket(status, assignee), count(*)
FROM thread_teams WHERE status IS NOT NULL GROUP BY 1, 2, 3;
