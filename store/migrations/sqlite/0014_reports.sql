-- Reports: one per study, written by its reader. `reports` holds where
-- the report stands and the author's unsaved work (`draft`, private to
-- its author); every issued text (preliminary, final, addendum) is a row
-- of `report_versions`, never changed or deleted: a correction after the
-- final is an addendum. Times are Unix milliseconds (UTC).

CREATE TABLE reports (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL UNIQUE REFERENCES studies(id),
    status TEXT NOT NULL CHECK (status IN ('draft', 'preliminary', 'final', 'addendum')),
    template TEXT NOT NULL,
    -- The author's working copy (JSON), until it is issued.
    draft TEXT,
    draft_author TEXT REFERENCES radiologists(id),
    draft_saved_at BIGINT,
    -- Issued versions so far: a transition expects the count it read.
    versions BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE report_versions (
    id INTEGER PRIMARY KEY,
    report_id BIGINT NOT NULL REFERENCES reports(id),
    number BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('preliminary', 'final', 'addendum')),
    content TEXT NOT NULL,
    -- SHA-256 of `content`, hex: what the signer signed.
    content_hash TEXT NOT NULL,
    radiologist_id TEXT NOT NULL REFERENCES radiologists(id),
    -- The account that issued it (re-authenticated for final and addendum).
    signed_by TEXT NOT NULL,
    at BIGINT NOT NULL,
    UNIQUE (report_id, number)
);

-- A study whose final report is signed leaves its reader's open load.
ALTER TABLE assignments ADD COLUMN reported_at BIGINT;
