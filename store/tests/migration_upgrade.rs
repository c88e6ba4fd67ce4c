//! Migration 0010 rebuilds tables on SQLite (a foreign key or a column type
//! cannot be changed in place there) and alters them on PostgreSQL. A
//! database written by the schema before it keeps every row and every value
//! through the upgrade: assignments, their tried radiologists and history,
//! and forward jobs with their possible-duplicate flag.

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use telerad_fixtures::database::{Backend, PgDatabase};
use telerad_store::Database;
use telerad_store::flag::Flag;

telerad_fixtures::on_every_backend!(rows_written_before_0010_survive_it);

/// The last migration before the radiologists table and real booleans.
const BEFORE: i64 = 9;

async fn rows_written_before_0010_survive_it(backend: &Backend) {
    install_default_drivers();
    let dir = tempfile::tempdir().expect("a temp dir");
    let pg;
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display()),
        Backend::Postgres { admin_url } => {
            pg = PgDatabase::create(admin_url).await;
            pg.url.clone()
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
        .run_to(BEFORE, &old)
        .await
        .expect("migrate to 0009");
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
