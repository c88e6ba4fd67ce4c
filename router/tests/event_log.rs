//! The study event log as its consumers see it: an event committed after a
//! later one is still consumed (PostgreSQL hands out ids at insert, not at
//! commit), a poisoned event is retried and then dead-lettered without
//! holding up the others, and another process is woken by an append.

mod common;

use common::Backend;
use common::nodes::{Nodes, nodes};
use sqlx::Executor;
use std::time::{Duration, Instant};
use telerad_store::events::{self, EventKind, RetryPolicy};

telerad_fixtures::on_every_backend!(
    a_poisoned_event_is_retried_then_dead_lettered_without_holding_up_the_others
);

/// A `complete` event as the completion sweep writes it, in `tx`.
async fn complete(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: telerad_store::Backend,
    study_id: i64,
    now: i64,
) -> i64 {
    sqlx::query("UPDATE studies SET status = 'complete', completed_at = $2 WHERE id = $1")
        .bind(study_id)
        .bind(now)
        .execute(&mut **tx)
        .await
        .expect("mark complete");
    events::append(
        tx,
        backend,
        telerad_store::StudyId(study_id),
        EventKind::Complete,
        now,
        1,
    )
    .await
    .expect("append")
    .0
}

#[test]
#[cfg_attr(not(telerad_postgres), ignore = "TELERAD_TEST_POSTGRES_URL is not set")]
fn an_event_committed_after_a_later_one_is_consumed() {
    let backend = Backend::required_postgres();
    common::runtime().block_on(async {
        let nodes = nodes(&backend, "", RetryPolicy::default()).await;
        let first = nodes.study().await;
        let second = nodes.study().await;
        let pg = telerad_store::Backend::Postgres;

        // The first event's transaction stays open.
        let mut slow = nodes.archives[0]
            .index()
            .database()
            .begin()
            .await
            .expect("begin");
        complete(&mut slow, pg, first, nodes.now()).await;

        // A second process appends a later event and tries to commit it.
        let pool = nodes.archives[1].index().database().pool().clone();
        let now = nodes.now();
        let later = tokio::spawn(async move {
            let mut tx = pool.begin().await.expect("begin");
            let id = complete(&mut tx, pg, second, now).await;
            tx.commit().await.expect("commit");
            id
        });
        // Until it has either committed or is seen waiting for its turn.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (waiting,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            )
            .fetch_one(nodes.pool())
            .await
            .expect("pg_locks");
            if waiting > 0 || later.is_finished() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the later append neither committed nor waited"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // Both consumers run while the first event is still uncommitted.
        nodes.drain().await;
        slow.commit().await.expect("commit the first event");
        later.await.expect("the later append");
        nodes.drain().await;

        assert_eq!(
            nodes.assigned().await,
            [first, second],
            "both complete studies are assigned"
        );
        let (cursor,): (i64,) =
            sqlx::query_as("SELECT last_event_id FROM event_consumers WHERE name = 'router'")
                .fetch_one(nodes.pool())
                .await
                .expect("cursor");
        let (last,): (i64,) = sqlx::query_as("SELECT MAX(id) FROM study_events")
            .fetch_one(nodes.pool())
            .await
            .expect("events");
        assert_eq!(cursor, last);
    });
}

#[test]
#[cfg_attr(not(telerad_postgres), ignore = "TELERAD_TEST_POSTGRES_URL is not set")]
fn another_process_is_woken_by_an_append() {
    let backend = Backend::required_postgres();
    common::runtime().block_on(async {
        let nodes = nodes(&backend, "", RetryPolicy::default()).await;
        let study = nodes.study().await;
        let listener = nodes.archives[0].clone();
        let wait = |what: &'static str| {
            let listener = listener.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(20), listener.study_events().notified())
                    .await
                    .unwrap_or_else(|_| panic!("{what}: no wake-up within 20 s"));
            }
        };
        // The listener says once that it listens (and any permit left by
        // this process's own store is taken too).
        wait("listening").await;
        while tokio::time::timeout(Duration::from_millis(1), listener.study_events().notified())
            .await
            .is_ok()
        {}

        // The other process completes the study.
        nodes.clock.advance(3_600_000);
        let appended = nodes.archives[1]
            .index()
            .complete_quiet_studies(nodes.now())
            .await
            .expect("sweep");
        assert_eq!(appended.len(), 1);
        wait("an event appended by another process").await;
        nodes.drain().await;
        assert_eq!(nodes.assigned().await, [study]);
    });
}

/// Appends an event of a kind no telerad writes, as a corrupt row would be.
async fn append_corrupt(nodes: &Nodes, backend: &Backend, study_id: i64) -> i64 {
    let mut conn = nodes.pool().acquire().await.expect("a connection");
    match backend {
        Backend::Sqlite => {
            conn.execute("PRAGMA ignore_check_constraints = ON")
                .await
                .expect("pragma");
        }
        Backend::Postgres { .. } => {
            conn.execute(
                "ALTER TABLE study_events DROP CONSTRAINT IF EXISTS study_events_kind_check",
            )
            .await
            .expect("drop the check");
        }
    }
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO study_events (study_id, kind, at, instance_count) \
         VALUES ($1, 'bogus', $2, 1) RETURNING id",
    )
    .bind(study_id)
    .bind(nodes.now())
    .fetch_one(&mut *conn)
    .await
    .expect("a corrupt event");
    if matches!(backend, Backend::Sqlite) {
        conn.execute("PRAGMA ignore_check_constraints = OFF")
            .await
            .expect("pragma");
    }
    id
}

async fn a_poisoned_event_is_retried_then_dead_lettered_without_holding_up_the_others(
    backend: &Backend,
) {
    let retry = RetryPolicy {
        max_attempts: 3,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
    };
    let nodes = nodes(backend, "", retry).await;
    let db_backend = nodes.archives[0].index().database().backend;
    let (a, b, c, d) = (
        nodes.study().await,
        nodes.study().await,
        nodes.study().await,
        nodes.study().await,
    );
    let mut tx = nodes.pool().begin().await.expect("begin");
    complete(&mut tx, db_backend, a, nodes.now()).await;
    tx.commit().await.expect("commit");
    // B's event will be repaired after its first failure; C's never is.
    let repaired = append_corrupt(&nodes, backend, b).await;
    let poisoned = append_corrupt(&nodes, backend, c).await;
    let mut tx = nodes.pool().begin().await.expect("begin");
    complete(&mut tx, db_backend, d, nodes.now()).await;
    tx.commit().await.expect("commit");

    nodes.drain().await;
    assert_eq!(
        nodes.assigned().await,
        [a, d],
        "the good events went through"
    );
    let t0 = nodes.now();
    for id in [repaired, poisoned] {
        let (attempts, next, dead, error) = nodes.failure(id).await.expect("set aside");
        assert_eq!((attempts, next, dead), (1, Some(t0 + 1_000), None));
        assert!(
            error.contains("unknown study event kind \"bogus\""),
            "{error}"
        );
    }

    // Not due yet: nothing to do.
    nodes.clock.advance(999);
    assert!(!nodes.routers[0].process_next_event().await.expect("run"));

    sqlx::query("UPDATE study_events SET kind = 'complete' WHERE id = $1")
        .bind(repaired)
        .execute(nodes.pool())
        .await
        .expect("repair");
    nodes.clock.advance(1);
    nodes.drain().await;
    assert_eq!(
        nodes.assigned().await,
        [a, b, d],
        "the repaired event went through"
    );
    assert_eq!(nodes.failure(repaired).await, None);
    let (attempts, next, dead, _) = nodes.failure(poisoned).await.expect("still set aside");
    assert_eq!((attempts, next, dead), (2, Some(t0 + 1_000 + 2_000), None));

    nodes.clock.advance(2_000);
    nodes.drain().await;
    let (attempts, next, dead, _) = nodes.failure(poisoned).await.expect("a dead letter");
    assert_eq!((attempts, next, dead), (3, None, Some(t0 + 3_000)));

    // Dead: never tried again, and shown to operators.
    nodes.clock.advance(3_600_000);
    assert!(!nodes.routers[1].process_next_event().await.expect("run"));
    let failed = events::failed_events(nodes.archives[0].index().database())
        .await
        .expect("list");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].event_id.0, poisoned);
    assert_eq!(failed[0].consumer, "router");
    assert_eq!(failed[0].dead_at, Some(t0 + 3_000));
}
