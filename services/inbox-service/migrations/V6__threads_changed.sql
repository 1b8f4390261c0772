-- What changed since a position, for watchers (`Watch`): the threads the
-- log touched last, newest first.
CREATE INDEX threads_changed ON threads (last_position);
