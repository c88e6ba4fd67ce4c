//! Migrations 0010 and 0018 rebuild tables on SQLite (a foreign key, a
//! column type or a CHECK cannot be changed in place there) and alter them
//! on PostgreSQL. A database written by the schema before keeps every row
//! and every value through the upgrade: assignments, their tried
//! radiologists and history, forward jobs with their possible-duplicate
//! flag (0010); the study event log and its failed events (0018).

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use telerad_fixtures::database::{Backend, PgDatabase};
use telerad_store::Database;
use telerad_store::flag::Flag;

telerad_fixtures::on_every_backend!(
    rows_written_before_0010_survive_it,
    events_written_before_0018_survive_it
);

/// The last migration before the radiologists table and real booleans.
const BEFORE: i64 = 9;

/// A database of `backend` migrated up to `version`, its URL, and what
/// keeps it alive.
async fn migrated_to(
    backend: &Backend,
    version: i64,
) -> (AnyPool, String, tempfile::TempDir, Option<PgDatabase>) {
    install_default_drivers();
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut pg = None;
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display()),
        Backend::Postgres { admin_url } => {
            let db = PgDatabase::create(admin_url).await;
            let url = db.url.clone();
            pg = Some(db);
            url
        }
    };
    let old: AnyPool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres { .. } => sqlx::migrate!("./migrations/postgres"),
    };
    migrator
        .run_to(version, &old)
        .await
        .unwrap_or_else(|e| panic!("migrate to {version}: {e}"));
    (old, url, dir, pg)
}

async fn rows_written_before_0010_survive_it(backend: &Backend) {
    let (old, url, _dir, _pg) = migrated_to(backend, BEFORE).await;
    for sql in [
        "INSERT INTO sites (name, time_zone, quiet_period_secs) VALUES ('a', 'Europe/Paris', 20)",
        "INSERT INTO studies (id, study_instance_uid, site, first_received_at, last_received_at, \
         complete_after) VALUES (1, '1.2.1', 'a', 1, 2, 3), (2, '1.2.2', 'a', 1, 2, 3)",
        "INSERT INTO series (id, study_id, series_instance_uid) VALUES (1, 1, '1.3.1')",
        "INSERT INTO instances (id, study_id, series_id, sop_instance_uid, version, sop_class_uid, \
         transfer_syntax_uid, path, size_bytes, checksum, calling_ae_title, received_at) \
         VALUES (1, 1, 1, '1.4.1', 1, '1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.1.2.1', \
         'p/1', 10, 'c', 'CT', 5)",
        "INSERT INTO assignments (id, study_id, state, radiologist_id, subspecialty, priority, \
         rule, assigned_at, acknowledge_by, preliminary_by, escalation_level, new_images, \
         assigned_instance_count, explanation, updated_at, last_instance_id) VALUES \
         (10, 1, 'assigned', 'dr-b', 'neuro', 'stat', 'stroke', 100, 200, 300, 1, 1, 1, \
          '{\"why\": \"dr-a did not answer\"}', 150, 1), \
         (11, 2, 'unassigned', NULL, 'general', 'routine', 'default', 100, NULL, 300, 0, 0, 0, \
          '{\"why\": \"nobody\"}', 100, 0)",
        "INSERT INTO assignment_tried (assignment_id, radiologist_id) VALUES (10, 'dr-a'), (10, 'dr-b')",
        "INSERT INTO assignment_history (study_id, at, action, radiologist_id, detail) VALUES \
         (1, 100, 'assigned', 'dr-a', 'on duty'), (1, 150, 'escalated', 'dr-b', 'no answer'), \
         (2, 100, 'unassigned', NULL, 'nobody')",
        "INSERT INTO forward_jobs (id, study_instance_uid, sop_instance_uid, version, path, \
         sop_class_uid, transfer_syntax_uid, destination_name, destination_ae_title, \
         destination_host, destination_port, state, attempts, next_attempt_at, \
         possible_duplicate, created_at) VALUES \
         (7, '1.2.1', '1.4.1', 1, 'p/1', '1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.1.2.1', \
          'dr-b', 'WS', 'ws.example', 104, 'pending', 1, 400, 1, 300)",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&old)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    old.close().await;

    let db = Database::connect(&url).await.expect("upgrade");
    let pool = db.pool();
    let radiologists: Vec<(String, String)> =
        sqlx::query_as("SELECT id, name FROM radiologists WHERE configured = FALSE ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("radiologists");
    assert_eq!(
        radiologists,
        [
            ("dr-a".into(), "dr-a".into()),
            ("dr-b".into(), "dr-b".into())
        ],
        "every radiologist referred to, kept until the configuration names them"
    );
    let assignments: Vec<(i64, String, Option<String>, String, i64, String)> = sqlx::query_as(
        "SELECT id, state, radiologist_id, priority, escalation_level, explanation \
         FROM assignments ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .expect("assignments");
    assert_eq!(
        assignments,
        [
            (
                10,
                "assigned".into(),
                Some("dr-b".into()),
                "stat".into(),
                1,
                "{\"why\": \"dr-a did not answer\"}".into()
            ),
            (
                11,
                "unassigned".into(),
                None,
                "routine".into(),
                0,
                "{\"why\": \"nobody\"}".into()
            ),
        ]
    );
    let flags: Vec<(i64, Flag)> =
        sqlx::query_as("SELECT id, new_images FROM assignments ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("new_images");
    assert_eq!(flags, [(10, Flag(true)), (11, Flag(false))]);
    let tried: Vec<(i64, String)> = sqlx::query_as(
        "SELECT assignment_id, radiologist_id FROM assignment_tried ORDER BY radiologist_id",
    )
    .fetch_all(pool)
    .await
    .expect("tried");
    assert_eq!(tried, [(10, "dr-a".into()), (10, "dr-b".into())]);
    let history: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT study_id, action, radiologist_id FROM assignment_history ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .expect("history");
    assert_eq!(history.len(), 3, "{history:?}");
    let (duplicate,): (Flag,) =
        sqlx::query_as("SELECT possible_duplicate FROM forward_jobs WHERE id = 7")
            .fetch_one(pool)
            .await
            .expect("forward job");
    assert_eq!(duplicate, Flag(true), "the possible-duplicate flag is kept");

    // The new constraints hold: an unknown radiologist, an explanation that
    // is not JSON, a flag that is not a boolean are refused.
    for (what, sql) in [
        (
            "unknown radiologist",
            "UPDATE assignments SET radiologist_id = 'dr-nobody' WHERE id = 10",
        ),
        (
            "not JSON",
            "UPDATE assignments SET explanation = 'dr-a did not answer' WHERE id = 10",
        ),
        (
            "unknown radiologist in history",
            "INSERT INTO assignment_history (study_id, at, action, radiologist_id, detail) \
             VALUES (1, 200, 'reassigned', 'dr-nobody', 'x')",
        ),
    ] {
        let refused = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await;
        assert!(refused.is_err(), "{what} must be refused: {sql}");
    }
}

async fn events_written_before_0018_survive_it(backend: &Backend) {
    let (old, url, _dir, _pg) = migrated_to(backend, 17).await;
    for sql in [
        "INSERT INTO sites (name, time_zone, quiet_period_secs) VALUES ('a', 'Europe/Paris', 20)",
        "INSERT INTO studies (id, study_instance_uid, site, first_received_at, last_received_at, \
         complete_after) VALUES (1, '1.2.1', 'a', 1, 2, 3)",
        // Ids as the log gives them (PostgreSQL's identity, SQLite's rowid):
        // 1, 2, 3.
        "INSERT INTO study_events (study_id, kind, at, instance_count) VALUES \
         (1, 'complete', 10, 4), (1, 'receiving', 20, 4), (1, 'complete', 30, 6)",
        "INSERT INTO event_consumers (name, last_event_id) VALUES ('router', 3) \
         ON CONFLICT (name) DO UPDATE SET last_event_id = 3",
        "INSERT INTO event_failures (consumer, event_id, attempts, last_error, first_failed_at, \
         next_attempt_at, dead_at) VALUES ('router', 2, 5, 'no rota', 25, NULL, 60)",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&old)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    old.close().await;

    let db = Database::connect(&url).await.expect("upgrade");
    let pool = db.pool();
    let events: Vec<(i64, String, i64, i64, Option<String>)> =
        sqlx::query_as("SELECT id, kind, at, instance_count, detail FROM study_events ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("events");
    assert_eq!(
        events,
        [
            (1, "complete".into(), 10, 4, None),
            (2, "receiving".into(), 20, 4, None),
            (3, "complete".into(), 30, 6, None),
        ]
    );
    let failures: Vec<(String, i64, i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT consumer, event_id, attempts, last_error, dead_at FROM event_failures",
    )
    .fetch_all(pool)
    .await
    .expect("failures");
    assert_eq!(
        failures,
        [("router".into(), 2, 5, "no rota".into(), Some(60))]
    );
    // Workflow kinds are accepted now, unknown ones still refused, and the
    // next event follows the old ones.
    let (next,): (i64,) = sqlx::query_as(
        "INSERT INTO study_events (study_id, kind, at, instance_count, detail) \
         VALUES (1, 'final', 40, 0, '{}') RETURNING id",
    )
    .fetch_one(pool)
    .await
    .expect("a workflow event");
    assert_eq!(next, 4);
    let refused = sqlx::query(
        "INSERT INTO study_events (study_id, kind, at, instance_count) VALUES (1, 'lost', 1, 0)",
    )
    .execute(pool)
    .await;
    assert!(refused.is_err(), "an unknown kind must be refused");
}
