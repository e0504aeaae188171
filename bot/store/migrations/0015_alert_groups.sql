-- Alert groups: alerts with the same group key (labels chosen by ``alerts.group_by``) share one page,
-- one escalation and one PagerDuty incident. One open group per key (partial unique index).
-- ``next_step_at`` is the group's paging timer (first page, escalation, repeat, ack timeout);
-- ``update_at`` is when membership changes are next shown (at most every ``group_interval``).
-- ``shown`` is the member list (alert id → state) the page showed last, to say what changed.
-- Alerts carry their labels (host, cluster, vcenter, kind, boot, build) and their group.
-- Silences carry label matchers; a row without them is the old form (``host`` and ``kind``).

CREATE TABLE alert_groups (
    id {pk},
    group_key {text} NOT NULL,
    labels {json} NOT NULL DEFAULT '{}',
    state {text} NOT NULL,
    severity {text} NOT NULL,
    first_seen {ts} NOT NULL,
    fired_at {ts},
    escalation_step {int} NOT NULL DEFAULT 0,
    next_step_at {ts},
    update_at {ts},
    updated_at {ts},
    muted {text},
    policy {json},
    page_key {text},
    page_rooms {json} NOT NULL DEFAULT '[]',
    shown {json} NOT NULL DEFAULT '{}',
    acked_by {text},
    acked_at {ts},
    resolved_at {ts},
    resolved_by {text},
    version {int} NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX alert_groups_one_open ON alert_groups (group_key) WHERE state <> 'resolved';
CREATE INDEX alert_groups_due ON alert_groups (next_step_at);
CREATE INDEX alert_groups_update ON alert_groups (update_at);

ALTER TABLE alerts ADD COLUMN labels {json} NOT NULL DEFAULT '{}';
ALTER TABLE alerts ADD COLUMN group_id {int};
CREATE INDEX alerts_group ON alerts (group_id, state);

ALTER TABLE silences ADD COLUMN matchers {json};
