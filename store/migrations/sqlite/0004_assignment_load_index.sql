-- Candidate selection counts every open assignment per radiologist and
-- priority for each decision; without a covering index SQLite reads each
-- whole row (explanation included) to do it: 23 ms at 10,000 open studies,
-- 3 ms with this index (bench/results/routing.md).
CREATE INDEX assignments_load ON assignments (state, radiologist_id, priority);
