-- A site's newest studies (QIDO-RS without other keys, as a viewer opens
-- its study list): walked in order within the site instead of sorting
-- every study of it (197 ms p50 at 100,000 studies on SQLite, where the
-- planner took the (site, patient_id) index and sorted).
CREATE INDEX studies_site_recent ON studies (site, last_received_at, id);
