-- Radiologists as rows that assignments refer to; real booleans; JSON
-- that is checked to be JSON.
--
-- `radiologists` is synced from the configuration at start-up, as `sites`
-- is. A radiologist the configuration no longer names is kept (their past
-- assignments and history still refer to them) with `configured` false.
--
-- The explanation stays TEXT rather than JSONB: sqlx's Any driver, through
-- which both backends are reached, carries no JSON type. A CHECK keeps
-- anything that is not JSON out.

CREATE TABLE radiologists (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    configured BOOLEAN NOT NULL DEFAULT TRUE
);
INSERT INTO radiologists (id, name, configured)
    SELECT known.radiologist_id, known.radiologist_id, FALSE FROM (
        SELECT radiologist_id FROM assignments WHERE radiologist_id IS NOT NULL
        UNION SELECT radiologist_id FROM assignment_history WHERE radiologist_id IS NOT NULL
        UNION SELECT radiologist_id FROM assignment_tried
    ) AS known;

ALTER TABLE assignments
    ADD FOREIGN KEY (radiologist_id) REFERENCES radiologists(id),
    ALTER COLUMN new_images DROP DEFAULT,
    ALTER COLUMN new_images TYPE BOOLEAN USING new_images <> 0,
    ALTER COLUMN new_images SET DEFAULT FALSE,
    ADD CHECK (explanation::jsonb IS NOT NULL);
ALTER TABLE assignment_history ADD FOREIGN KEY (radiologist_id) REFERENCES radiologists(id);
ALTER TABLE assignment_tried ADD FOREIGN KEY (radiologist_id) REFERENCES radiologists(id);

ALTER TABLE forward_jobs
    DROP CONSTRAINT forward_jobs_possible_duplicate_check,
    ALTER COLUMN possible_duplicate DROP DEFAULT,
    ALTER COLUMN possible_duplicate TYPE BOOLEAN USING possible_duplicate <> 0,
    ALTER COLUMN possible_duplicate SET DEFAULT FALSE;
