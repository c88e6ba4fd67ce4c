-- The study index: what has been received, from which site, and whether each
-- study is still receiving or complete (quiet period elapsed).
-- Times are Unix milliseconds (UTC).

CREATE TABLE sites (
    name TEXT PRIMARY KEY,
    time_zone TEXT NOT NULL,
    quiet_period_secs BIGINT NOT NULL
);

CREATE TABLE studies (
    id INTEGER PRIMARY KEY,
    study_instance_uid TEXT NOT NULL UNIQUE,
    site TEXT NOT NULL REFERENCES sites(name),
    patient_name TEXT NOT NULL DEFAULT '',
    patient_id TEXT NOT NULL DEFAULT '',
    patient_birth_date TEXT NOT NULL DEFAULT '',
    patient_sex TEXT NOT NULL DEFAULT '',
    accession_number TEXT NOT NULL DEFAULT '',
    study_date TEXT NOT NULL DEFAULT '',
    study_time TEXT NOT NULL DEFAULT '',
    study_description TEXT NOT NULL DEFAULT '',
    referring_physician_name TEXT NOT NULL DEFAULT '',
    modalities TEXT NOT NULL DEFAULT '',
    body_parts TEXT NOT NULL DEFAULT '',
    first_received_at BIGINT NOT NULL,
    last_received_at BIGINT NOT NULL,
    instance_count BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'receiving' CHECK (status IN ('receiving', 'complete')),
    complete_after BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX studies_pending ON studies (status, complete_after);
CREATE INDEX studies_recent ON studies (last_received_at);

CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies(id),
    series_instance_uid TEXT NOT NULL UNIQUE,
    modality TEXT NOT NULL DEFAULT '',
    series_number BIGINT,
    series_description TEXT NOT NULL DEFAULT '',
    body_part_examined TEXT NOT NULL DEFAULT '',
    instance_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX series_study ON series (study_id);

CREATE TABLE instances (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies(id),
    series_id BIGINT NOT NULL REFERENCES series(id),
    sop_instance_uid TEXT NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1),
    sop_class_uid TEXT NOT NULL,
    transfer_syntax_uid TEXT NOT NULL,
    instance_number BIGINT,
    path TEXT NOT NULL UNIQUE,
    size_bytes BIGINT NOT NULL,
    checksum TEXT NOT NULL,
    calling_ae_title TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (sop_instance_uid, version)
);
CREATE INDEX instances_series ON instances (series_id);
CREATE INDEX instances_study ON instances (study_id);

-- Transitions of a study, consumed in order by the router.
CREATE TABLE study_events (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies(id),
    kind TEXT NOT NULL CHECK (kind IN ('complete', 'receiving')),
    at BIGINT NOT NULL,
    instance_count BIGINT NOT NULL
);
CREATE INDEX study_events_study ON study_events (study_id);
