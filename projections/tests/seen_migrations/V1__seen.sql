-- A test projection: the position and text of every message, once (the
-- primary key refuses a message applied twice).
CREATE TABLE seen (
    position bigint PRIMARY KEY,
    body     text NOT NULL
);
