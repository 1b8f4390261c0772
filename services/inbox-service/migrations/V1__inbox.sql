-- The inbox read model. Every row is derived from events; the whole schema
-- can be dropped and rebuilt from the log.

-- Patients, carers and professionals, as the inbox shows them.
CREATE TABLE people (
    person_id      uuid PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('patient', 'carer', 'professional')),
    name           text NOT NULL,
    role_label     text NOT NULL DEFAULT '',
    email          text NOT NULL DEFAULT '',
    email_verified boolean NOT NULL DEFAULT false
);
-- Patient name search: case-insensitive prefix.
CREATE INDEX people_patient_name ON people (lower(name) text_pattern_ops) WHERE kind = 'patient';

CREATE TABLE teams (
    team_id         uuid PRIMARY KEY,
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    auto_cc         boolean NOT NULL DEFAULT false,
    default_contact uuid
);

CREATE TABLE team_members (
    team_id     uuid NOT NULL,
    person_id   uuid NOT NULL,
    contactable boolean NOT NULL,
    lead        boolean NOT NULL,
    PRIMARY KEY (team_id, person_id)
);
CREATE INDEX team_members_person ON team_members (person_id);

-- A patient's care teams.
CREATE TABLE patient_teams (
    patient_id uuid NOT NULL,
    team_id    uuid NOT NULL,
    method     text NOT NULL,
    joined_at  timestamptz NOT NULL,
    PRIMARY KEY (patient_id, team_id)
);
CREATE INDEX patient_teams_team ON patient_teams (team_id);

-- Consents granted and not revoked (they may have expired).
CREATE TABLE consents (
    patient_id   uuid NOT NULL,
    carer_id     uuid NOT NULL,
    relationship text NOT NULL,
    expires_at   timestamptz,
    PRIMARY KEY (patient_id, carer_id)
);
CREATE INDEX consents_carer ON consents (carer_id);

CREATE TABLE grants (
    grant_id   uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    team_id    uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    reason     text NOT NULL DEFAULT '',
    revoked_at timestamptz
);
CREATE INDEX grants_team ON grants (team_id);
CREATE INDEX grants_patient ON grants (patient_id);

CREATE TABLE threads (
    thread_id        uuid PRIMARY KEY,
    patient_id       uuid NOT NULL,
    subject          text NOT NULL,
    status           text NOT NULL CHECK (status IN ('open', 'complete', 'archived')),
    assignee         uuid,
    started_by       uuid NOT NULL,
    started_at       timestamptz NOT NULL,
    last_activity_at timestamptz NOT NULL,
    last_position    bigint NOT NULL,
    message_count    integer NOT NULL,
    -- People on the thread now.
    participant_count integer NOT NULL DEFAULT 0,
    -- The latest message by staff, for chasing unread messages.
    last_staff_seq   integer NOT NULL DEFAULT 0,
    last_staff_at    timestamptz
);
CREATE INDEX threads_patient ON threads (patient_id, last_activity_at DESC);
-- A page of an inbox: the visible threads looked up by key, sorted by
-- activity, filtered by status and assignee, without touching the table.
CREATE INDEX threads_list ON threads (thread_id) INCLUDE (last_activity_at, status, assignee, patient_id);

CREATE TABLE thread_teams (
    team_id   uuid NOT NULL,
    thread_id uuid NOT NULL,
    added_at  timestamptz NOT NULL,
    PRIMARY KEY (team_id, thread_id)
);
CREATE INDEX thread_teams_thread ON thread_teams (thread_id);

CREATE TABLE thread_participants (
    thread_id uuid NOT NULL,
    person_id uuid NOT NULL,
    kind      text NOT NULL,
    reason    text NOT NULL,
    via_team  uuid,
    active    boolean NOT NULL,
    joined_at timestamptz NOT NULL,
    left_at   timestamptz,
    PRIMARY KEY (thread_id, person_id)
);
-- "Threads I am on": an index-only scan.
CREATE INDEX thread_participants_person ON thread_participants (person_id, thread_id) WHERE active;
-- The first people to join a thread, for lists.
CREATE INDEX thread_participants_order ON thread_participants (thread_id, joined_at, person_id) WHERE active;

CREATE TABLE messages (
    thread_id   uuid NOT NULL,
    seq         integer NOT NULL,
    message_id  uuid NOT NULL UNIQUE,
    author_id   uuid NOT NULL,
    author_role text NOT NULL,
    body        text NOT NULL,
    posted_at   timestamptz NOT NULL,
    position    bigint NOT NULL,
    PRIMARY KEY (thread_id, seq)
);

-- The last message each person has read, per thread.
CREATE TABLE read_marks (
    thread_id uuid NOT NULL,
    person_id uuid NOT NULL,
    seq       integer NOT NULL,
    read_at   timestamptz NOT NULL,
    PRIMARY KEY (thread_id, person_id)
);

-- Assignment history: who was assigned (or nobody), by whom, when.
CREATE TABLE assignments (
    thread_id uuid NOT NULL,
    position  bigint NOT NULL,
    assignee  uuid,
    by_id     uuid NOT NULL,
    at        timestamptz NOT NULL,
    PRIMARY KEY (thread_id, position)
);
