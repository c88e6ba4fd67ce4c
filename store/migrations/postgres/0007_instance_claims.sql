-- Nodes sharing a PostgreSQL database and a storage folder claim the
-- (SOP Instance UID, version) of an instance here, committed, before its
-- file takes that version's name: two nodes receiving the same SOP instance
-- at once (a modality retrying through a load balancer) then never write,
-- and so never replace or remove, the same file. The claim goes with the
-- instance's index rows; one left by a crash is removed when its node
-- starts again. (One SQLite process needs no claims.)
-- Times are Unix milliseconds (UTC).

CREATE TABLE instance_claims (
    sop_instance_uid TEXT NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1),
    node_id TEXT NOT NULL,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (sop_instance_uid, version)
);
CREATE INDEX instance_claims_node ON instance_claims (node_id);
