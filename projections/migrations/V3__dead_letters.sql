-- Events a generation of a projection could not apply (undecodable bytes,
-- or an event that makes no sense in it), set aside so that the rest of
-- the log goes on being applied. `careline status` shows them.
CREATE TABLE dead_letters (
    name        text NOT NULL,
    generation  integer NOT NULL,
    position    bigint NOT NULL,
    event_type  text NOT NULL,
    subject     text NOT NULL,
    reason      text NOT NULL,
    -- The stored bytes when they could not be decoded; else empty (the
    -- event is in the log at its position).
    bytes       bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, generation, position)
);
