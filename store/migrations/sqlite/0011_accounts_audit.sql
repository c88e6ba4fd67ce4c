-- Accounts, their credentials (sessions and API tokens) and the audit
-- trail.
--
-- A credential is stored as the hash of its token only: a copy of the
-- database does not let anyone sign in. Sessions always expire; an API
-- token may not.
--
-- The audit trail is append-only and chained: each record holds the hash
-- of the one before it, and `audit_head` the last one's, so that a row
-- changed or deleted afterwards (even the last) breaks the chain where it
-- was. Records name their actor as text, not by foreign key: they outlive
-- the accounts they speak of. `anchor_*` is where the chain starts after
-- records older than the retention period were removed.

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'radiologist', 'clinician', 'technician', 'integration')),
    radiologist_id TEXT REFERENCES radiologists(id),
    password_hash TEXT,
    disabled INTEGER NOT NULL DEFAULT FALSE CHECK (disabled IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK ((role = 'radiologist') = (radiologist_id IS NOT NULL)),
    CHECK (role <> 'integration' OR password_hash IS NULL)
);

CREATE TABLE user_sites (
    user_id BIGINT NOT NULL REFERENCES users(id),
    site TEXT NOT NULL REFERENCES sites(name),
    PRIMARY KEY (user_id, site)
);

CREATE TABLE credentials (
    id INTEGER PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL CHECK (kind IN ('session', 'token')),
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT,
    CHECK (kind = 'token' OR expires_at IS NOT NULL)
);
CREATE INDEX credentials_user ON credentials (user_id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    sites TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    study_uid TEXT,
    patient_id TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('success', 'refused', 'failed')),
    source TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
CREATE INDEX audit_log_study ON audit_log (study_uid, at);
CREATE INDEX audit_log_patient ON audit_log (patient_id, at);

CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    anchor_seq BIGINT NOT NULL,
    anchor_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash, anchor_seq, anchor_hash) VALUES
    (1, 0, '0000000000000000000000000000000000000000000000000000000000000000',
     0, '0000000000000000000000000000000000000000000000000000000000000000');
