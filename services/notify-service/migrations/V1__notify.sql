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

-- Who is in which team, and which teams each thread is addressed to: staff
-- of an addressed team may see whether the thread's people were told.
CREATE TABLE team_members (
    team_id   text NOT NULL,
    person_id text NOT NULL,
    PRIMARY KEY (team_id, person_id)
);
CREATE TABLE thread_teams (
    thread_id text NOT NULL,
    team_id   text NOT NULL,
    PRIMARY KEY (thread_id, team_id)
);

-- Every message, for unread reminders.
CREATE TABLE messages (
    event_id    text PRIMARY KEY,
    message_id  text NOT NULL,
    thread_id   text NOT NULL,
    position    bigint NOT NULL,
    author_id   text NOT NULL,
    author_kind text NOT NULL,
    author_name text NOT NULL,
    author_role text NOT NULL,
    -- µs since the epoch
    posted_at   bigint NOT NULL
);
CREATE UNIQUE INDEX messages_id ON messages (thread_id, message_id);
CREATE INDEX messages_staff ON messages (posted_at) WHERE author_kind = 'professional';

-- How far each person has read each thread (a message's position).
CREATE TABLE read_marks (
    thread_id text NOT NULL,
    person_id text NOT NULL,
    position  bigint NOT NULL,
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
