-- Verification emails to send: one per request (the id of the event that
-- registered, changed or asked again for the verification of an address).
-- A request no longer pending (verified, or the address changed since) is
-- not sent.
CREATE TABLE verifications (
    request_id text PRIMARY KEY,
    person_id text NOT NULL,
    name text NOT NULL,
    email text NOT NULL,
    position bigint NOT NULL,
    -- µs since the epoch, like every time here.
    requested_at bigint NOT NULL,
    pending boolean NOT NULL DEFAULT true
);
