-- Release intelligence: releases and their fixes as read from sources, which source entries were
-- already seen (so a restart neither re-announces nor misses a release), and each source's poll state.

CREATE TABLE releases (
    build {int} PRIMARY KEY,
    line {text} NOT NULL,
    name {text} NOT NULL,
    version {text},
    release_date {text},
    iso_build {int},
    notes_url {text},
    image_profiles {json} NOT NULL DEFAULT '[]',
    bulletins {json} NOT NULL DEFAULT '[]',
    source {text} NOT NULL,
    first_seen {ts} NOT NULL,
    announced_at {ts}
);

CREATE TABLE release_fixes (
    build {int} NOT NULL,
    pr {text} NOT NULL,
    title {text} NOT NULL,
    body {text} NOT NULL,
    component {text},
    cves {json} NOT NULL DEFAULT '[]',
    position {int} NOT NULL,
    PRIMARY KEY (build, pr)
);
CREATE INDEX release_fixes_pr ON release_fixes (pr);

CREATE TABLE feed_seen (
    source {text} NOT NULL,
    entry_key {text} NOT NULL,
    seen_at {ts} NOT NULL,
    PRIMARY KEY (source, entry_key)
);

CREATE TABLE feed_sources (
    name {text} PRIMARY KEY,
    last_success {ts},
    last_error {text},
    last_error_at {ts},
    next_poll {ts},
    failures {int} NOT NULL DEFAULT 0,
    etag {text},
    last_modified {text},
    primed {int} NOT NULL DEFAULT 0
);
