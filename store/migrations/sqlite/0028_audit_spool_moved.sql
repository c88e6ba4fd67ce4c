-- Files of the audit spool (`store::audit_spool`) whose records are in the
-- chain. A file's records and its name here are committed together, so a
-- file found again after a crash (between that commit and the file's
-- removal) is removed, not chained twice.
CREATE TABLE audit_spool_moved (
    name TEXT PRIMARY KEY,
    moved_at BIGINT NOT NULL
);
CREATE INDEX audit_spool_moved_at ON audit_spool_moved (moved_at);
