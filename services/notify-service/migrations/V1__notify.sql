-- The notification queue, as the log defines it. Whether each notification
-- was sent lives outside the generations (careline_notify.deliveries), so a
-- rebuild recreates the same notifications and sends none of them again.

CREATE TABLE people (
    id             text PRIMARY KEY,
    -- patient, carer or professional
    kind           text NOT NULL,
    name           text NOT NULL,
    role_label     text NOT NULL,
    email          text NOT NULL,
    email_verified boolean NOT NULL
);

CREATE TABLE consents (
    patient_id text NOT NULL,
    carer_id   text NOT NULL,
    -- Microseconds since the epoch; NULL: no expiry.
    expires_at bigint,
    active     boolean NOT NULL,
    PRIMARY KEY (patient_id, carer_id)
);

CREATE TABLE threads (
    thread_id  text PRIMARY KEY,
    patient_id text NOT NULL
);

CREATE TABLE participants (
    thread_id text NOT NULL,
    person_id text NOT NULL,
    active    boolean NOT NULL,
    PRIMARY KEY (thread_id, person_id)
);

CREATE TABLE notifications (
    -- <event id>/<recipient id>
    id             text PRIMARY KEY,
    event_id       text NOT NULL,
    position       bigint NOT NULL,
    -- When the message was posted, µs since the epoch.
    created_at     bigint NOT NULL,
    thread_id      text NOT NULL,
    recipient_id   text NOT NULL,
    recipient_name text NOT NULL,
    recipient_kind text NOT NULL,
    email          text NOT NULL,
    sender_name    text NOT NULL,
    sender_role    text NOT NULL,
    deliverable    boolean NOT NULL,
    reason         text NOT NULL
);
CREATE INDEX notifications_thread ON notifications (thread_id, position);
CREATE INDEX notifications_queue ON notifications (position) WHERE deliverable;
