-- The worklist reads the studies still to be signed (a few thousand at
-- most) out of every study ever read (hundreds of thousands), most urgent
-- first: a partial index on the open assignments in exactly the
-- worklist's order (priority rank, report deadline, study), so that a page
-- reads its own rows and stops, without sorting. The rank expression is
-- the one `store/src/worklist.rs` orders by, character for character.

CREATE INDEX assignments_open ON assignments
    ((CASE priority WHEN 'stat' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END), preliminary_by, study_id)
    WHERE reported_at IS NULL;
