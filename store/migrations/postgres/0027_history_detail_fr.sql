-- The assignment history's detail in French too, where telerad wrote it
-- (older rows: English only).
ALTER TABLE assignment_history ADD COLUMN detail_fr TEXT;
