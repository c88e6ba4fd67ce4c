-- Critical results (ACR practice parameter on communication): a finding
-- the radiologist flags with a category (1: minutes, 2: hours, 3: days)
-- must be acknowledged by the site by `due_at`, in telerad by one of its
-- clinicians or by a call the radiologist records; past it, the result is
-- escalated (on the durable timers, kind 'critical_result').
-- Times are Unix milliseconds (UTC).

CREATE TABLE critical_results (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies(id),
    category BIGINT NOT NULL CHECK (category IN (1, 2, 3)),
    finding TEXT NOT NULL,
    flagged_by TEXT NOT NULL REFERENCES radiologists(id),
    flagged_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'escalated', 'acknowledged')),
    escalated_at BIGINT,
    -- Who received it: a clinician's name, or the person called.
    acknowledged_by TEXT,
    acknowledged_role TEXT,
    acknowledged_at BIGINT,
    means TEXT CHECK (means IN ('telerad', 'phone', 'in person')),
    -- The account that recorded the acknowledgement.
    recorded_by TEXT,
    CHECK ((state = 'acknowledged') = (acknowledged_at IS NOT NULL))
);
CREATE INDEX critical_results_study ON critical_results (study_id);

-- A new kind of timer: the table is rebuilt for its CHECK.
CREATE TABLE timers_rebuilt (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('study_complete', 'acknowledgement', 'critical_result')),
    subject_id BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_until BIGINT,
    UNIQUE (kind, subject_id),
    CHECK ((claimed_by IS NULL) = (claimed_until IS NULL))
);
INSERT INTO timers_rebuilt SELECT id, kind, subject_id, due_at, claimed_by, claimed_until FROM timers;
DROP TABLE timers;
ALTER TABLE timers_rebuilt RENAME TO timers;
CREATE INDEX timers_due ON timers (kind, due_at);
