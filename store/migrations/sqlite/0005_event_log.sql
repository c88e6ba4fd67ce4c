-- The study event log and its consumers.
--
-- `study_events` is append-only. Appends are serialised (SQLite's write
-- lock; on PostgreSQL a transaction-level advisory lock taken by the
-- appender), so ids become visible in id order and a consumer that reads
-- `id > cursor` can never step over an event still being committed.
--
-- Each consumer (the router now; notifications, webhooks, audit export
-- later) has its own cursor, moved in the same transaction as the rows the
-- event caused. An event whose handling fails is set aside in
-- `event_failures` (the cursor moves on, the others are not held up), retried
-- with backoff, then kept there as a dead letter with its error.
-- Times are Unix milliseconds (UTC).

CREATE TABLE event_consumers (
    name TEXT PRIMARY KEY,
    last_event_id BIGINT NOT NULL CHECK (last_event_id >= 0)
);
INSERT INTO event_consumers (name, last_event_id) SELECT name, last_event_id FROM router_cursor;
DROP TABLE router_cursor;

CREATE TABLE event_failures (
    consumer TEXT NOT NULL REFERENCES event_consumers(name),
    event_id BIGINT NOT NULL REFERENCES study_events(id),
    attempts BIGINT NOT NULL CHECK (attempts >= 1),
    last_error TEXT NOT NULL,
    first_failed_at BIGINT NOT NULL,
    -- When the next attempt is due; NULL once the event is dead.
    next_attempt_at BIGINT,
    dead_at BIGINT,
    PRIMARY KEY (consumer, event_id),
    CHECK ((next_attempt_at IS NULL) = (dead_at IS NOT NULL))
);
CREATE INDEX event_failures_due ON event_failures (consumer, next_attempt_at);
