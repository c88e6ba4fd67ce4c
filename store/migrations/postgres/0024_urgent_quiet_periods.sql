-- Per-site quiet periods for urgent requests: a study whose request form,
-- filed before its images, asks for one of these urgencies (a stroke at a
-- site whose scanner sends a study at once) completes after this shorter
-- quiet period. Synced from the configuration at start-up, like `sites`.
CREATE TABLE site_urgent_quiet_periods (
    site TEXT NOT NULL REFERENCES sites(name),
    urgency TEXT NOT NULL CHECK (urgency IN ('stroke', 'trauma', 'stat', 'urgent', 'routine')),
    quiet_period_secs BIGINT NOT NULL CHECK (quiet_period_secs > 0),
    PRIMARY KEY (site, urgency)
);

-- The study's own quiet period, when shorter than its site's (in ms); each
-- new instance then moves `complete_after` by this much.
ALTER TABLE studies ADD COLUMN quiet_period_ms BIGINT;
