-- The study event log carries the reading workflow too (assignment,
-- escalation, report issued, critical result, message, request form), with
-- a JSON `detail`, so that the notifiers (server-sent events, webhooks,
-- e-mail) read one ordered, durable log with the existing cursors, retries
-- and dead letters.
--
-- SQLite cannot change a CHECK constraint: the table is rebuilt. The failed
-- events that reference it are set aside first and put back after, so that
-- no foreign key points nowhere in between.

CREATE TABLE event_failures_copy AS SELECT * FROM event_failures;
DELETE FROM event_failures;

CREATE TABLE study_events_rebuilt (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies(id),
    kind TEXT NOT NULL CHECK (kind IN ('complete', 'receiving', 'assigned', 'escalated',
        'preliminary', 'final', 'addendum', 'critical_result', 'critical_escalated',
        'critical_acknowledged', 'message', 'form', 'consult_requested', 'consult_answered')),
    at BIGINT NOT NULL,
    instance_count BIGINT NOT NULL,
    -- What the workflow event is about, as a JSON object; NULL for the
    -- image events.
    detail TEXT
);
INSERT INTO study_events_rebuilt (id, study_id, kind, at, instance_count)
    SELECT id, study_id, kind, at, instance_count FROM study_events;
DROP TABLE study_events;
ALTER TABLE study_events_rebuilt RENAME TO study_events;
CREATE INDEX study_events_study ON study_events (study_id);

INSERT INTO event_failures SELECT * FROM event_failures_copy;
DROP TABLE event_failures_copy;

-- Notifications that leave telerad (a webhook call, an e-mail): one row per
-- event and recipient, planned in the transaction that moves the notifier's
-- cursor, so that none is lost or planned twice; sent by a worker that
-- claims it for a lease. A delivery whose worker died while sending goes
-- back to pending flagged `possible_duplicate` (the receiver dedupes by the
-- stable webhook-id / Message-ID).
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    event_id BIGINT NOT NULL REFERENCES study_events(id),
    channel TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    -- Whose configured address: 'site:NAME' or 'radiologist:ID'.
    recipient TEXT NOT NULL,
    -- The URL or the e-mail address, as it was when planned.
    target TEXT NOT NULL,
    -- The webhook's JSON body, or the e-mail's subject and text as JSON.
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
    attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at BIGINT,
    claimed_by TEXT,
    claimed_until BIGINT,
    -- A boolean (0/1; BOOLEAN on PostgreSQL, see migration 0010).
    possible_duplicate BIGINT NOT NULL DEFAULT 0 CHECK (possible_duplicate IN (0, 1)),
    last_error TEXT,
    -- The HTTP status of the last webhook attempt.
    last_status BIGINT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    UNIQUE (event_id, channel, recipient),
    CHECK ((state = 'pending') = (next_attempt_at IS NOT NULL)),
    CHECK ((state = 'sending') = (claimed_until IS NOT NULL))
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
