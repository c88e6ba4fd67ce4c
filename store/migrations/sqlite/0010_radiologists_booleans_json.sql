-- Radiologists as rows that assignments refer to; real booleans; JSON
-- that is checked to be JSON.
--
-- `radiologists` is synced from the configuration at start-up, as `sites`
-- is. A radiologist the configuration no longer names is kept (their past
-- assignments and history still refer to them) with `configured` false.
--
-- SQLite cannot add a foreign key or change a column's type in place: the
-- tables are rebuilt (copied, dropped, renamed), children before parents so
-- that no row is ever left without its parent.
--
-- A boolean is SQLite's idiom, INTEGER with CHECK (x IN (0, 1)), not a
-- BOOLEAN declaration: sqlx's Any driver refuses a column declared BOOLEAN
-- on SQLite. `forward_jobs.possible_duplicate` already is one; PostgreSQL's
-- side becomes BOOLEAN (`store/tests/schema.rs` takes the two as equal).

CREATE TABLE radiologists (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    configured INTEGER NOT NULL DEFAULT TRUE CHECK (configured IN (0, 1))
);
INSERT INTO radiologists (id, name, configured)
    SELECT known.radiologist_id, known.radiologist_id, FALSE FROM (
        SELECT radiologist_id FROM assignments WHERE radiologist_id IS NOT NULL
        UNION SELECT radiologist_id FROM assignment_history WHERE radiologist_id IS NOT NULL
        UNION SELECT radiologist_id FROM assignment_tried
    ) AS known;

CREATE TABLE assignment_tried_copy AS SELECT assignment_id, radiologist_id FROM assignment_tried;
DROP TABLE assignment_tried;

CREATE TABLE assignments_rebuilt (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL UNIQUE REFERENCES studies(id),
    state TEXT NOT NULL CHECK (state IN ('assigned', 'acknowledged', 'unassigned')),
    radiologist_id TEXT REFERENCES radiologists(id),
    subspecialty TEXT NOT NULL,
    priority TEXT NOT NULL CHECK (priority IN ('stat', 'urgent', 'routine')),
    rule TEXT NOT NULL,
    assigned_at BIGINT NOT NULL,
    acknowledge_by BIGINT,
    preliminary_by BIGINT NOT NULL,
    acknowledged_at BIGINT,
    escalation_level BIGINT NOT NULL DEFAULT 0,
    new_images INTEGER NOT NULL DEFAULT FALSE CHECK (new_images IN (0, 1)),
    assigned_instance_count BIGINT NOT NULL,
    explanation TEXT NOT NULL CHECK (json_valid(explanation)),
    updated_at BIGINT NOT NULL,
    last_instance_id BIGINT NOT NULL DEFAULT 0,
    CHECK ((state = 'unassigned') = (radiologist_id IS NULL))
);
INSERT INTO assignments_rebuilt (id, study_id, state, radiologist_id, subspecialty, priority,
    rule, assigned_at, acknowledge_by, preliminary_by, acknowledged_at, escalation_level,
    new_images, assigned_instance_count, explanation, updated_at, last_instance_id)
    SELECT id, study_id, state, radiologist_id, subspecialty, priority, rule, assigned_at,
    acknowledge_by, preliminary_by, acknowledged_at, escalation_level, new_images <> 0,
    assigned_instance_count, explanation, updated_at, last_instance_id FROM assignments;
DROP TABLE assignments;
ALTER TABLE assignments_rebuilt RENAME TO assignments;
CREATE INDEX assignments_timer ON assignments (state, acknowledge_by);
CREATE INDEX assignments_reader ON assignments (radiologist_id, state);
CREATE INDEX assignments_load ON assignments (state, radiologist_id, priority);

CREATE TABLE assignment_tried (
    assignment_id BIGINT NOT NULL REFERENCES assignments(id),
    radiologist_id TEXT NOT NULL REFERENCES radiologists(id),
    PRIMARY KEY (assignment_id, radiologist_id)
);
INSERT INTO assignment_tried (assignment_id, radiologist_id)
    SELECT assignment_id, radiologist_id FROM assignment_tried_copy;
DROP TABLE assignment_tried_copy;

CREATE TABLE assignment_history_rebuilt (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies(id),
    at BIGINT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('assigned', 'unassigned', 'escalated', 'reassigned', 'acknowledged', 'new_images')),
    radiologist_id TEXT REFERENCES radiologists(id),
    detail TEXT NOT NULL
);
INSERT INTO assignment_history_rebuilt SELECT id, study_id, at, action, radiologist_id, detail
    FROM assignment_history;
DROP TABLE assignment_history;
ALTER TABLE assignment_history_rebuilt RENAME TO assignment_history;
CREATE INDEX assignment_history_study ON assignment_history (study_id);
