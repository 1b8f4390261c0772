-- Notes only staff see: never shown to the patient or carers, never
-- counted unread for them.
CREATE TABLE staff_notes (
    thread_id   uuid NOT NULL,
    note_id     uuid NOT NULL UNIQUE,
    author_id   uuid NOT NULL,
    author_role text NOT NULL,
    body        text NOT NULL,
    posted_at   timestamptz NOT NULL,
    position    bigint NOT NULL,
    PRIMARY KEY (thread_id, position)
);
