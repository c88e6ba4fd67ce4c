-- Routing: who reads each complete study, by when, and every decision made.
-- One row per study in `assignments` (UNIQUE study_id): a study is assigned
-- exactly once, whatever the number of telerad processes; later changes
-- (escalation, manual reassignment, acknowledgement) update that row under a
-- guard on its state and are appended to `assignment_history`.
-- Times are Unix milliseconds (UTC).

CREATE TABLE assignments (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL UNIQUE REFERENCES studies(id),
    state TEXT NOT NULL CHECK (state IN ('assigned', 'acknowledged', 'unassigned')),
    radiologist_id TEXT,
    subspecialty TEXT NOT NULL,
    priority TEXT NOT NULL CHECK (priority IN ('stat', 'urgent', 'routine')),
    rule TEXT NOT NULL,
    assigned_at BIGINT NOT NULL,
    -- The escalation timer: due when not acknowledged by then.
    acknowledge_by BIGINT,
    preliminary_by BIGINT NOT NULL,
    acknowledged_at BIGINT,
    escalation_level BIGINT NOT NULL DEFAULT 0,
    -- Radiologists already given this study, so escalation moves on.
    tried TEXT NOT NULL DEFAULT '',
    new_images BIGINT NOT NULL DEFAULT 0,
    assigned_instance_count BIGINT NOT NULL,
    explanation TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK ((state = 'unassigned') = (radiologist_id IS NULL))
);
CREATE INDEX assignments_timer ON assignments (state, acknowledge_by);
CREATE INDEX assignments_reader ON assignments (radiologist_id, state);

CREATE TABLE assignment_history (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies(id),
    at BIGINT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('assigned', 'unassigned', 'escalated', 'reassigned', 'acknowledged', 'new_images')),
    radiologist_id TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX assignment_history_study ON assignment_history (study_id);

-- How far the router has read `study_events`.
CREATE TABLE router_cursor (
    name TEXT PRIMARY KEY,
    last_event_id BIGINT NOT NULL
);
INSERT INTO router_cursor (name, last_event_id) VALUES ('router', 0);

-- Things a human must see: a study nobody could be given.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies(id),
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    resolved_at BIGINT
);
