-- Core tables: audit trail, pending confirmations, room subscriptions, the notification outbox,
-- inbound event dedupe, and a small key/value table for adapter state (sync tokens, device ids).

CREATE TABLE audit (
    id {pk},
    at {ts} NOT NULL,
    user_id {text} NOT NULL,
    conversation {text} NOT NULL,
    text {text} NOT NULL,
    command {text},
    outcome {text} NOT NULL,
    detail {text},
    ref {text}
);
CREATE INDEX audit_at ON audit (at);

CREATE TABLE confirmations (
    token {text} PRIMARY KEY,
    user_id {text} NOT NULL,
    conversation {text} NOT NULL,
    command {text} NOT NULL,
    text {text} NOT NULL,
    created_at {ts} NOT NULL,
    expires_at {ts} NOT NULL,
    second_person {bool} NOT NULL DEFAULT 0,
    state {text} NOT NULL DEFAULT 'pending',
    decided_by {text},
    decided_at {ts},
    message_id {text}
);

CREATE TABLE subscriptions (
    id {pk},
    conversation {text} NOT NULL,
    topic {text} NOT NULL,
    created_by {text} NOT NULL,
    created_at {ts} NOT NULL,
    UNIQUE (conversation, topic)
);

CREATE TABLE outbox (
    id {pk},
    platform {text} NOT NULL,
    room {text} NOT NULL,
    thread {text},
    key {text} UNIQUE,
    edit_of {text},
    payload {json} NOT NULL,
    created_at {ts} NOT NULL,
    state {text} NOT NULL DEFAULT 'pending',
    attempts {int} NOT NULL DEFAULT 0,
    next_attempt_at {ts} NOT NULL,
    sent_at {ts},
    message_id {text},
    last_error {text}
);
CREATE INDEX outbox_pending ON outbox (state, platform, room, id);

CREATE TABLE inbound_events (
    platform {text} NOT NULL,
    event_id {text} NOT NULL,
    received_at {ts} NOT NULL,
    PRIMARY KEY (platform, event_id)
);

CREATE TABLE kv (
    key {text} PRIMARY KEY,
    value {text} NOT NULL,
    updated_at {ts} NOT NULL
);
