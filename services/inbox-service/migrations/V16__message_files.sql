-- The files sent with each message (references into the bucket of files;
-- the bytes are never here), in the order sent.
CREATE TABLE message_files (
    thread_id  uuid NOT NULL,
    seq        integer NOT NULL,
    ord        integer NOT NULL,
    digest     text NOT NULL,
    file_name  text NOT NULL,
    media_type text NOT NULL,
    size       bigint NOT NULL,
    PRIMARY KEY (thread_id, seq, ord)
);
-- GetFile: is this file on a message of this thread?
CREATE INDEX message_files_by_digest ON message_files (thread_id, digest);
