-- A night service's history for bench/worklist.sh: __N__ studies at 10
-- sites, one a minute up to __NOW__ (Unix ms), each with its assignment;
-- nine in ten with a request form; all but the last __OPEN__ read, with a
-- preliminary and a signed final; of the open ones a third unassigned, a
-- third assigned, a third claimed (half of those with a draft). Plain SQL
-- that SQLite and PostgreSQL both run; the sites and radiologists come
-- from the configuration, synced at start-up.

WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < __N__)
INSERT INTO studies (id, study_instance_uid, site, patient_name, patient_id, patient_birth_date,
    patient_sex, accession_number, study_date, study_time, study_description, modalities,
    body_parts, first_received_at, last_received_at, instance_count, status, complete_after,
    completed_at)
SELECT i, '2.25.' || CAST(1000000000 + i AS TEXT), 'site-' || CAST(i % 10 AS TEXT),
    'PATIENT^' || CAST(i AS TEXT), 'P' || CAST(i AS TEXT), '19500101', 'F',
    'ACC' || CAST(i AS TEXT), '20261126', '030000', 'CT HEAD', 'CT', 'HEAD',
    __NOW__ - (__N__ - i) * 60000, __NOW__ - (__N__ - i) * 60000 + 30000, 300, 'complete',
    __NOW__ - (__N__ - i) * 60000 + 50000, __NOW__ - (__N__ - i) * 60000 + 50000
FROM n;

WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < __N__)
INSERT INTO assignments (id, study_id, state, radiologist_id, subspecialty, priority, rule,
    assigned_at, acknowledge_by, preliminary_by, acknowledged_at, assigned_instance_count,
    explanation, updated_at, reported_at)
SELECT i, i,
    CASE WHEN i <= __N__ - __OPEN__ OR i % 3 = 2 THEN 'acknowledged'
         WHEN i % 3 = 1 THEN 'assigned' ELSE 'unassigned' END,
    CASE WHEN i > __N__ - __OPEN__ AND i % 3 = 0 THEN NULL ELSE 'dr-' || CAST(i % 20 AS TEXT) END,
    CASE WHEN i % 4 = 0 THEN 'neuro' ELSE 'general' END,
    CASE WHEN i % 20 = 0 THEN 'stat' WHEN i % 20 < 5 THEN 'urgent' ELSE 'routine' END,
    'default', __NOW__ - (__N__ - i) * 60000 + 60000,
    CASE WHEN i > __N__ - __OPEN__ AND i % 3 <> 2 THEN __NOW__ - (__N__ - i) * 60000 + 960000 END,
    __NOW__ - (__N__ - i) * 60000 + 60000 +
        CASE WHEN i % 20 = 0 THEN 1200000 WHEN i % 20 < 5 THEN 3600000 ELSE 43200000 END,
    CASE WHEN i <= __N__ - __OPEN__ OR i % 3 = 2 THEN __NOW__ - (__N__ - i) * 60000 + 120000 END,
    300, '{}', __NOW__ - (__N__ - i) * 60000 + 120000,
    CASE WHEN i <= __N__ - __OPEN__ THEN __NOW__ - (__N__ - i) * 60000 + 1800000 END
FROM n;

WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < __N__)
INSERT INTO request_forms (id, site, study_id, patient_id, accession_number, study_date, urgency,
    requested_examination, symptom_onset_at, form, filed_by, filed_at)
SELECT i, 'site-' || CAST(i % 10 AS TEXT), i, 'P' || CAST(i AS TEXT), 'ACC' || CAST(i AS TEXT),
    '20261126',
    CASE WHEN i % 20 = 0 THEN 'stroke' WHEN i % 20 < 5 THEN 'urgent' ELSE 'routine' END,
    'CT head',
    CASE WHEN i % 20 = 0 THEN __NOW__ - (__N__ - i) * 60000 - 3600000 END,
    '{"clinical_question": "?", "callback_number": "1234"}', 'tech', __NOW__ - (__N__ - i) * 60000
FROM n WHERE i % 10 <> 7;

WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < __N__)
INSERT INTO reports (id, study_id, status, template, draft, draft_author, draft_saved_at, versions,
    created_at, updated_at)
SELECT i, i, CASE WHEN i <= __N__ - __OPEN__ THEN 'final' ELSE 'draft' END, 'free-text',
    CASE WHEN i > __N__ - __OPEN__ THEN '{"template":"free-text","fields":{"conclusion":"draft"}}' END,
    CASE WHEN i > __N__ - __OPEN__ THEN 'dr-' || CAST(i % 20 AS TEXT) END,
    CASE WHEN i > __N__ - __OPEN__ THEN __NOW__ END,
    CASE WHEN i <= __N__ - __OPEN__ THEN 2 ELSE 0 END,
    __NOW__ - (__N__ - i) * 60000 + 300000, __NOW__ - (__N__ - i) * 60000 + 1800000
FROM n WHERE i <= __N__ - __OPEN__ OR (i % 3 = 2 AND i % 2 = 0);

WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < __N__ - __OPEN__)
INSERT INTO report_versions (report_id, number, kind, content, content_hash, radiologist_id,
    signed_by, at)
SELECT i, k.number, k.kind, '{"template":"free-text","fields":{"conclusion":"No acute finding."}}',
    '0000000000000000000000000000000000000000000000000000000000000000',
    'dr-' || CAST(i % 20 AS TEXT), 'rad', __NOW__ - (__N__ - i) * 60000 + k.number * 900000
FROM n, (SELECT 1 AS number, 'preliminary' AS kind UNION ALL SELECT 2, 'final') k;
