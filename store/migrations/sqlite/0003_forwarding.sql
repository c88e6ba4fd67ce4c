-- The forwarding outbox: one row per (destination, instance version) to be
-- delivered by C-STORE to a radiologist's workstation. The row is written in
-- the same database as the index, so an enqueued instance survives any crash
-- and is sent until it is `sent` or an operator sees it `dead`.
-- Times are Unix milliseconds (UTC).
--
-- Depends only on 0001 (instances), not on 0002 (assignments): the outbox
-- knows destinations by address, not by radiologist.

CREATE TABLE forward_jobs (
    id INTEGER PRIMARY KEY,
    study_instance_uid TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1),
    -- Relative to the storage root, as in `instances`.
    path TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    transfer_syntax_uid TEXT NOT NULL,
    -- A label for operators (e.g. the radiologist); the address is what
    -- identifies the destination.
    destination_name TEXT NOT NULL,
    destination_ae_title TEXT NOT NULL,
    destination_host TEXT NOT NULL,
    destination_port BIGINT NOT NULL CHECK (destination_port BETWEEN 1 AND 65535),
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
    -- C-STORE attempts made, successful or not.
    attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    -- Which forwarder holds a `sending` job, and since when (renewed while
    -- it runs): a claim older than the lease belongs to a dead process.
    claimed_by TEXT,
    claimed_at BIGINT,
    -- Set when the C-STORE of a claimed job begins: a job found `sending`
    -- with this set may have reached the destination.
    send_started_at BIGINT,
    -- 1 when the instance may already have reached the destination before
    -- this delivery (a crash or a lost response): said to the operator,
    -- never silent.
    possible_duplicate BIGINT NOT NULL DEFAULT 0 CHECK (possible_duplicate IN (0, 1)),
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    UNIQUE (destination_ae_title, destination_host, destination_port, sop_instance_uid, version),
    FOREIGN KEY (sop_instance_uid, version) REFERENCES instances (sop_instance_uid, version),
    CHECK (state <> 'sending' OR (claimed_by IS NOT NULL AND claimed_at IS NOT NULL)),
    CHECK (state <> 'sent' OR sent_at IS NOT NULL)
);
-- The forwarder's query: due jobs of one destination.
CREATE INDEX forward_jobs_due ON forward_jobs (state, next_attempt_at);
CREATE INDEX forward_jobs_claim ON forward_jobs (claimed_by);
CREATE INDEX forward_jobs_study ON forward_jobs (study_instance_uid);
