-- A study belongs to the site that sent it first. An instance from another
-- site that reuses its Study Instance UID (or a Series Instance UID of
-- another study, or a SOP Instance UID stored for another site) is refused,
-- never merged, and recorded here for an operator.
-- Times are Unix milliseconds (UTC).

CREATE TABLE identity_conflicts (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    site TEXT NOT NULL REFERENCES sites(name),
    calling_ae_title TEXT NOT NULL,
    study_instance_uid TEXT NOT NULL,
    series_instance_uid TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    -- The site that holds the UID.
    owner_site TEXT NOT NULL REFERENCES sites(name),
    detail TEXT NOT NULL
);
CREATE INDEX identity_conflicts_at ON identity_conflicts (at);

-- The newest instance row (any version) an assignment has accounted for: a
-- corrected re-send (same SOP Instance UID, new content) after assignment
-- is new to the reader too, though the study's instance count is unchanged.
ALTER TABLE assignments ADD COLUMN last_instance_id BIGINT NOT NULL DEFAULT 0;
UPDATE assignments SET last_instance_id =
    (SELECT COALESCE(MAX(i.id), 0) FROM instances i WHERE i.study_id = assignments.study_id);
