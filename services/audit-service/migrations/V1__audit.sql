-- The audit trail. Entries are appended, never changed or removed (the
-- triggers below refuse it); each record's entries form a hash chain.

CREATE TABLE entries (
    -- `patient/<id>`, `team/<id>` or `person/<id>`.
    chain         text        NOT NULL,
    seq           bigint      NOT NULL,
    position      bigint      NOT NULL,
    event_id      text        NOT NULL,
    event_type    text        NOT NULL,
    -- 1 = an action, 2 = a view.
    kind          smallint    NOT NULL,
    -- Microseconds since the Unix epoch: hashed exactly as stored.
    occurred_at   bigint      NOT NULL,
    actor_id      text        NOT NULL,
    actor_name    text        NOT NULL,
    role          text        NOT NULL,
    on_behalf_of  text        NOT NULL,
    action        text        NOT NULL,
    patient_id    text        NOT NULL,
    thread_id     text        NOT NULL,
    call          text        NOT NULL,
    previous_hash bytea       NOT NULL,
    hash          bytea       NOT NULL,
    PRIMARY KEY (chain, position)
);
CREATE INDEX entries_thread ON entries (thread_id, position, chain) WHERE thread_id <> '';
CREATE INDEX entries_actor ON entries (actor_id, position, chain);

-- What the trail needs to name things and place thread events in records.
CREATE TABLE names (
    id   text PRIMARY KEY,
    name text NOT NULL
);
CREATE TABLE thread_records (
    thread_id  text PRIMARY KEY,
    patient_id text NOT NULL
);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are never changed or removed';
END $$;
CREATE TRIGGER entries_never_change BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER entries_never_truncated BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
