-- Storage commitment reports sent on an association of their own (DICOM
-- PS3.4 J.3.3.1.2): the requester gets the N-ACTION response at once and
-- the report later, at the address configured for its AE title. A report
-- is written here before the N-ACTION is answered, so that a commitment
-- accepted is reported even across a restart; a worker claims it for a
-- lease, as deliveries are claimed (migration 0018). `outcomes` is JSON:
-- the transaction UID and, per instance asked, committed or its reason.
CREATE TABLE commitment_reports (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    -- The requester: its AE title is the called AE title of the report's
    -- association; the address is as configured when it asked.
    ae_title TEXT NOT NULL,
    address TEXT NOT NULL,
    transaction_uid TEXT NOT NULL,
    outcomes TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
    attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at BIGINT,
    claimed_by TEXT,
    claimed_until BIGINT,
    -- A boolean (0/1; BOOLEAN on PostgreSQL, see migration 0010).
    possible_duplicate BIGINT NOT NULL DEFAULT 0 CHECK (possible_duplicate IN (0, 1)),
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    CHECK ((state = 'pending') = (next_attempt_at IS NOT NULL)),
    CHECK ((state = 'sending') = (claimed_until IS NOT NULL))
);
CREATE INDEX commitment_reports_due ON commitment_reports (state, next_attempt_at);
