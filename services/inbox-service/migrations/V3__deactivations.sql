-- People whose accounts are closed: every call of theirs is refused.
-- (`PersonDeactivated` adds them, `PersonReactivated` removes them.)
CREATE TABLE deactivated_people (
    person_id text PRIMARY KEY
);
