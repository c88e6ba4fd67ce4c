-- The radiologists already given a study, so that escalation moves on: a
-- row each rather than comma-separated text in assignments.tried.

CREATE TABLE assignment_tried (
    assignment_id BIGINT NOT NULL REFERENCES assignments(id),
    radiologist_id TEXT NOT NULL,
    PRIMARY KEY (assignment_id, radiologist_id)
);

INSERT INTO assignment_tried (assignment_id, radiologist_id)
    SELECT DISTINCT a.id, t.value FROM assignments a, json_each('["' || replace(a.tried, ',', '","') || '"]') t WHERE a.tried <> '';

ALTER TABLE assignments DROP COLUMN tried;
