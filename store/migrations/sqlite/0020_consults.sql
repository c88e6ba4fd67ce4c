-- Second opinions (téléexpertise): the reader of a study asks a colleague
-- of another subspecialty, chosen by the rota among those on duty and
-- licensed for the site. The consult has its own answer, signed (password
-- again) and hashed like a report; the consultant reads the study while
-- the consult is theirs.
-- Times are Unix milliseconds (UTC).

CREATE TABLE consults (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies(id),
    requested_by TEXT NOT NULL REFERENCES radiologists(id),
    subspecialty TEXT NOT NULL,
    question TEXT NOT NULL,
    consultant TEXT NOT NULL REFERENCES radiologists(id),
    state TEXT NOT NULL CHECK (state IN ('open', 'answered')),
    requested_at BIGINT NOT NULL,
    answer TEXT,
    -- SHA-256 of the answer, hex: what the consultant signed.
    answer_hash TEXT,
    -- The account that signed it.
    answered_by TEXT,
    answered_at BIGINT,
    CHECK ((state = 'answered') = (answered_at IS NOT NULL))
);
CREATE INDEX consults_study ON consults (study_id, consultant);
CREATE INDEX consults_consultant ON consults (consultant, state);
