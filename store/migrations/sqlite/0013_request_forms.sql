-- Request forms (the "fiche de demande"): what the emergency department
-- asks, filed before or after the images. A form is matched to a study of
-- its site and patient by accession number, else by study date; until
-- then `study_id` is NULL and the form waits for its images. A study has
-- one form at most.
--
-- The columns are what matching, routing and the worklist read; `form`
-- holds the whole validated form as JSON (clinical question, requester,
-- renal function, implants...), as the API answers it.

CREATE TABLE request_forms (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL REFERENCES sites(name),
    study_id BIGINT UNIQUE REFERENCES studies(id),
    patient_id TEXT NOT NULL,
    accession_number TEXT NOT NULL,
    study_date TEXT NOT NULL,
    urgency TEXT NOT NULL CHECK (urgency IN ('stroke', 'trauma', 'stat', 'urgent', 'routine')),
    requested_examination TEXT NOT NULL,
    symptom_onset_at BIGINT,
    form TEXT NOT NULL,
    filed_by TEXT NOT NULL,
    filed_at BIGINT NOT NULL
);
CREATE INDEX request_forms_waiting ON request_forms (site, patient_id) WHERE study_id IS NULL;
-- A form filed after its images looks for the patient's studies at its site.
CREATE INDEX studies_site_patient ON studies (site, patient_id, study_date);

-- A form that raises a study's priority after its assignment is recorded
-- in the study's history.
CREATE TABLE assignment_history_rebuilt (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies(id),
    at BIGINT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('assigned', 'unassigned', 'escalated', 'reassigned', 'acknowledged', 'new_images', 'reprioritised')),
    radiologist_id TEXT REFERENCES radiologists(id),
    detail TEXT NOT NULL
);
INSERT INTO assignment_history_rebuilt SELECT id, study_id, at, action, radiologist_id, detail
    FROM assignment_history;
DROP TABLE assignment_history;
ALTER TABLE assignment_history_rebuilt RENAME TO assignment_history;
CREATE INDEX assignment_history_study ON assignment_history (study_id);
