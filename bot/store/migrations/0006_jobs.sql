-- Host-action jobs (patch, shutdown, reboot, maintenance, power-on) as durable state machines.
-- ``plan`` is the JSON the confirmation showed (pre-check results, options); ``version`` is the fence:
-- every state change is a compare-and-set on it, so a stale runner (an old process, a second
-- instance) changes nothing. ``owner`` names the runner that holds a running job.
-- ``host_locks`` allows one job per host at a time through its primary key (works on PostgreSQL).

CREATE TABLE jobs (
    id {pk},
    kind {text} NOT NULL,
    state {text} NOT NULL,
    requested_by {text} NOT NULL,
    confirmed_by {text},
    conversation {text} NOT NULL,
    thread {text},
    targets {json} NOT NULL,
    plan {json} NOT NULL,
    current_step {int} NOT NULL DEFAULT 0,
    cancel_requested {bool} NOT NULL DEFAULT 0,
    cancelled_by {text},
    progress_key {text},
    progress_edits {int} NOT NULL DEFAULT 0,
    owner {text},
    result {text},
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    version {int} NOT NULL DEFAULT 0
);
CREATE INDEX jobs_state ON jobs (state, id);

CREATE TABLE job_steps (
    job_id {int} NOT NULL REFERENCES jobs (id),
    idx {int} NOT NULL,
    name {text} NOT NULL,
    host {text},
    destructive {bool} NOT NULL DEFAULT 0,
    started_at {ts},
    ended_at {ts},
    result {text},
    PRIMARY KEY (job_id, idx)
);

CREATE TABLE host_locks (
    host {text} PRIMARY KEY,
    job_id {int} NOT NULL REFERENCES jobs (id),
    locked_at {ts} NOT NULL
);
