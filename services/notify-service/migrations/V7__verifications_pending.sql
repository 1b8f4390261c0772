-- The worker looks for pending verification requests on every pass: only
-- those, not every address ever registered.
CREATE INDEX verifications_pending ON verifications (position) WHERE pending;
