-- The radiologist's check of the indication: accepted, or more
-- information asked of the site (by a message in the study's thread).
--
-- A request form is a clinical document the site may correct until the
-- report is signed: each amendment keeps the text it replaces in
-- `request_form_revisions`. A form still waiting for its images can be
-- cancelled (the patient left, the examination was called off): it is kept,
-- marked, and no study is matched to it any more.

ALTER TABLE request_forms ADD COLUMN amended_at BIGINT;
ALTER TABLE request_forms ADD COLUMN amended_by TEXT;
ALTER TABLE request_forms ADD COLUMN cancelled_at BIGINT;
ALTER TABLE request_forms ADD COLUMN cancelled_by TEXT;
ALTER TABLE request_forms ADD COLUMN cancel_reason TEXT;
ALTER TABLE request_forms ADD COLUMN indication TEXT
    CHECK (indication IN ('accepted', 'more_information'));
ALTER TABLE request_forms ADD COLUMN indication_by TEXT;
ALTER TABLE request_forms ADD COLUMN indication_at BIGINT;
ALTER TABLE request_forms ADD COLUMN indication_note TEXT;

CREATE TABLE request_form_revisions (
    form_id BIGINT NOT NULL REFERENCES request_forms(id),
    -- 1 for the form as first filed, then each amendment's predecessor.
    revision BIGINT NOT NULL CHECK (revision >= 1),
    form TEXT NOT NULL,
    -- Who wrote that text, and when.
    written_by TEXT NOT NULL,
    written_at BIGINT NOT NULL,
    -- Who replaced it, and when.
    replaced_by TEXT NOT NULL,
    replaced_at BIGINT NOT NULL,
    PRIMARY KEY (form_id, revision)
);
