-- The reminder pass walks staff messages from a watermark (a log position)
-- rather than every staff message older than the delay.
DROP INDEX IF EXISTS messages_staff;
CREATE INDEX messages_staff_position ON messages (position) WHERE author_kind = 'professional';
