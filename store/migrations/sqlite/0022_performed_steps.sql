-- Modality Performed Procedure Steps (DICOM PS3.4 Annex F) a site's
-- modality created and set: the step as last set (DICOM JSON), and the
-- instances it says it produced, so that a COMPLETED step completes its
-- study as soon as they are all indexed, without waiting for the quiet
-- period. Times are Unix milliseconds (UTC).

CREATE TABLE performed_steps (
    id INTEGER PRIMARY KEY,
    sop_instance_uid TEXT NOT NULL UNIQUE,
    site TEXT NOT NULL REFERENCES sites(name),
    calling_ae_title TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('IN PROGRESS', 'COMPLETED', 'DISCONTINUED')),
    -- Of the first scheduled step; '' when the modality gave none.
    study_instance_uid TEXT NOT NULL DEFAULT '',
    accession_number TEXT NOT NULL DEFAULT '',
    step_id TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    modality TEXT NOT NULL DEFAULT '',
    started TEXT NOT NULL DEFAULT '',
    ended TEXT NOT NULL DEFAULT '',
    -- The whole data set as last set, DICOM JSON (PS3.18 F.2).
    attributes TEXT NOT NULL,
    -- Bumped by each N-SET: a set is written only over the revision it
    -- was computed from.
    revision BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- When a COMPLETED step was found with all its instances (or none to
    -- wait for), and what that did; NULL while it waits for images.
    settled_at BIGINT,
    outcome TEXT
);
CREATE INDEX performed_steps_study ON performed_steps (study_instance_uid);
CREATE INDEX performed_steps_waiting ON performed_steps (status, settled_at);

CREATE TABLE performed_step_instances (
    step_id BIGINT NOT NULL REFERENCES performed_steps(id),
    series_instance_uid TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    PRIMARY KEY (step_id, sop_instance_uid)
);
-- Which steps name an instance, to show a study its steps.
CREATE INDEX performed_step_instances_sop ON performed_step_instances (sop_instance_uid);
