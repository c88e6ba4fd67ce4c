-- The WADO-RS metadata of each stored instance version: its DICOM JSON
-- without bulk data (PS3.18 §F.2), built when the instance is stored and
-- written in the transaction that indexes it, so that a viewer's
-- `/metadata` of a series is one read of the index, not a file parsed per
-- instance. An instance stored before this table existed has no row: its
-- metadata is built at its first request and kept.
CREATE TABLE instance_metadata (
    instance_id BIGINT PRIMARY KEY REFERENCES instances(id),
    json TEXT NOT NULL
);
