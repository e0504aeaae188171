-- Matrix inbox: commands and ✅ reactions recorded before the sync token moves past them, so a bot
-- killed mid-batch runs each one after restart (read-only ones again, host-changing ones never twice).

CREATE TABLE matrix_inbox (
    event_id {text} PRIMARY KEY,
    room {text} NOT NULL,
    sender {text} NOT NULL,
    kind {text} NOT NULL,
    text {text} NOT NULL,
    thread {text},
    reply_to {text} NOT NULL,
    direct {bool} NOT NULL DEFAULT 0,
    sent_at {ts} NOT NULL,
    received_at {ts} NOT NULL,
    state {text} NOT NULL DEFAULT 'pending'
);
CREATE INDEX matrix_inbox_state ON matrix_inbox (state, received_at);
