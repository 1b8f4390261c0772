-- The chains that gained entries since the last anchor in the log.
CREATE INDEX entries_position ON entries (position);
