-- Security advisories: one JSON document per VMSA (merged from the list API, its page and CVE
-- records), what was last announced of it, and the CISA KEV entries seen (a CVE newly listed
-- re-announces its advisory once). Numbered after the issue that added it, to stay clear of
-- the migrations other branches add in parallel.

CREATE TABLE advisories (
    id {text} PRIMARY KEY,
    doc {json} NOT NULL,
    digest {text} NOT NULL,
    list_updated {text},
    source {text} NOT NULL,
    first_seen {ts} NOT NULL,
    changed_at {ts} NOT NULL,
    announced_digest {text}
);

CREATE TABLE kev_entries (
    cve {text} PRIMARY KEY,
    doc {json} NOT NULL,
    first_seen {ts} NOT NULL
);
