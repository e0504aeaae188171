-- Alerts: one open alert per (host, kind), enforced by a partial unique index (SQLite and PostgreSQL
-- both support it). ``version`` is the fence: every scheduled step is a compare-and-set on it.
-- ``next_step_at`` is when the engine's tick must look at the alert again (NULL: nothing scheduled).

CREATE TABLE alerts (
    id {pk},
    host {text} NOT NULL,
    kind {text} NOT NULL,
    state {text} NOT NULL,
    severity {text} NOT NULL,
    summary {text} NOT NULL,
    detail {text} NOT NULL DEFAULT '',
    device {text},
    first_seen {ts} NOT NULL,
    last_seen {ts} NOT NULL,
    sources {json} NOT NULL DEFAULT '[]',
    signal_count {int} NOT NULL DEFAULT 1,
    fired_at {ts},
    escalation_step {int} NOT NULL DEFAULT 0,
    next_step_at {ts},
    muted {text},
    policy {json},
    page_key {text},
    page_rooms {json} NOT NULL DEFAULT '[]',
    acked_by {text},
    acked_at {ts},
    resolved_at {ts},
    resolved_by {text},
    version {int} NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (host, kind) WHERE state <> 'resolved';
CREATE INDEX alerts_due ON alerts (next_step_at);
CREATE INDEX alerts_state ON alerts (state, id);

CREATE TABLE silences (
    id {pk},
    host {text} NOT NULL,
    kind {text},
    starts_at {ts} NOT NULL,
    ends_at {ts} NOT NULL,
    reason {text} NOT NULL DEFAULT '',
    created_by {text} NOT NULL,
    created_at {ts} NOT NULL,
    cancelled_by {text},
    cancelled_at {ts}
);
CREATE INDEX silences_host ON silences (host, ends_at);

CREATE TABLE vcenter_events (
    vcenter {text} NOT NULL,
    event_key {int} NOT NULL,
    handled_at {ts} NOT NULL,
    PRIMARY KEY (vcenter, event_key)
);
