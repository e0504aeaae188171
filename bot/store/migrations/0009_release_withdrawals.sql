-- Releases an admin marked as withdrawn (`release withdraw`), on top of the bundled catalog's facts.

CREATE TABLE release_withdrawals (
    build {int} PRIMARY KEY,
    reason {text} NOT NULL,
    replaced_by {int},
    withdrawn_by {text} NOT NULL,
    withdrawn_at {ts} NOT NULL
);
