-- The order a workstation receives its queue in: a STAT study before
-- urgent and routine work queued earlier for the same workstation, and
-- within a study the series its reader needs first (a stroke's
-- non-contrast head before its angiography, then perfusion). Lower first;
-- jobs of one rank in id order (series, then instance number).
ALTER TABLE forward_jobs ADD COLUMN send_rank BIGINT NOT NULL DEFAULT 0;
