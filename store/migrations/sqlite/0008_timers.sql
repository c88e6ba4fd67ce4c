-- Durable timers: one row per deadline still to act on (store/src/timers.rs).
-- A node claims a due timer for a lease (claimed_by, claimed_until), acts
-- on it and deletes or reschedules it in the same transaction.
-- Times are Unix milliseconds (UTC).

CREATE TABLE timers (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('study_complete', 'acknowledgement')),
    subject_id BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_until BIGINT,
    UNIQUE (kind, subject_id),
    CHECK ((claimed_by IS NULL) = (claimed_until IS NULL))
);
CREATE INDEX timers_due ON timers (kind, due_at);

-- The deadlines of what is in progress when this migration runs.
INSERT INTO timers (kind, subject_id, due_at)
    SELECT 'study_complete', id, complete_after FROM studies WHERE status = 'receiving';
INSERT INTO timers (kind, subject_id, due_at)
    SELECT 'acknowledgement', id, acknowledge_by FROM assignments
    WHERE state IN ('assigned', 'unassigned') AND acknowledge_by IS NOT NULL;
