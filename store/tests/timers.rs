//! Durable timers: each due timer is handled by one node, a node that stops
//! mid-way loses it when its lease runs out, the oldest due go first, a
//! rescheduled deadline survives the end of the old one, and nothing is
//! written while nothing is due.

use std::time::Duration;
use telerad_fixtures::database::{Backend, PgDatabase};
use telerad_store::Database;
use telerad_store::timers::{self, TimerKind};

const KIND: TimerKind = TimerKind::Acknowledgement;
const LEASE: i64 = 30_000;

async fn two_nodes(url: &str) -> (Database, Database) {
    (
        Database::connect(url).await.expect("node 1"),
        Database::connect(url).await.expect("node 2"),
    )
}

async fn schedule_all(db: &Database, count: i64, due_at: impl Fn(i64) -> i64) {
    let mut tx = db.begin().await.expect("begin");
    for subject in 1..=count {
        timers::schedule(&mut tx, KIND, subject, due_at(subject))
            .await
            .expect("schedule");
    }
    tx.commit().await.expect("commit");
}

async fn finish(db: &Database, timer: &timers::Timer, node: &str) {
    let mut tx = db.begin().await.expect("begin");
    timers::done(&mut tx, timer, node).await.expect("done");
    tx.commit().await.expect("commit");
}

async fn timers_behave(url: &str, backend: &Backend) {
    let (one, two) = two_nodes(url).await;
    // The database tells its time (the same machine's clock here).
    let offset = telerad_store::DatabaseClock::new()
        .synchronise(&one)
        .await
        .expect("the database's time");
    assert!(offset.abs() < 1_000, "offset {offset}");

    // Exactly once: two nodes claim 60 due timers at the same moment.
    schedule_all(&one, 60, |s| 1_000 + s).await;
    let (a, b) = tokio::join!(
        timers::claim_due(&one, KIND, "node-1", 2_000, LEASE, 100),
        timers::claim_due(&two, KIND, "node-2", 2_000, LEASE, 100)
    );
    let (a, b) = (a.expect("claim"), b.expect("claim"));
    let mut all: Vec<i64> = a.iter().chain(&b).map(|t| t.subject_id).collect();
    all.sort_unstable();
    assert_eq!(all, (1..=60).collect::<Vec<_>>(), "each timer claimed once");

    // Node 2 stops mid-way: its timers come back once its lease has run out.
    for timer in &a {
        finish(&one, timer, "node-1").await;
    }
    assert!(
        timers::claim_due(&one, KIND, "node-1", 2_000 + LEASE - 1, LEASE, 100)
            .await
            .expect("claim")
            .is_empty()
    );
    let taken_over = timers::claim_due(&one, KIND, "node-1", 2_000 + LEASE + 1, LEASE, 100)
        .await
        .expect("claim");
    assert_eq!(taken_over.len(), b.len());
    for timer in &taken_over {
        finish(&one, timer, "node-1").await;
    }
    assert_eq!(timers::next_due(&one, KIND).await.expect("next"), None);

    // Oldest first, by pages: 150 due, 100 per claim.
    schedule_all(&one, 150, |s| 10_000 - s).await;
    let first = timers::claim_due(&one, KIND, "node-1", 20_000, LEASE, 100)
        .await
        .expect("claim");
    let oldest: Vec<i64> = first.iter().map(|t| t.subject_id).take(3).collect();
    assert_eq!(oldest, [150, 149, 148]);
    for timer in &first {
        finish(&one, timer, "node-1").await;
    }
    let rest = timers::claim_due(&one, KIND, "node-1", 20_000, LEASE, 100)
        .await
        .expect("claim");
    assert_eq!(rest.len(), 50, "the others come next");

    // A deadline rescheduled while its old one was being handled stays.
    let timer = &rest[0];
    let mut tx = one.begin().await.expect("begin");
    timers::schedule(&mut tx, KIND, timer.subject_id, 50_000)
        .await
        .expect("reschedule");
    timers::done(&mut tx, timer, "node-1").await.expect("done");
    tx.commit().await.expect("commit");
    for timer in &rest[1..] {
        finish(&one, timer, "node-1").await;
    }
    assert_eq!(
        timers::next_due(&one, KIND).await.expect("next"),
        Some(50_000)
    );

    // Taken in the transaction that acts on it: once, whoever else saw it.
    let mut tx = one.begin().await.expect("begin");
    timers::schedule(&mut tx, TimerKind::StudyComplete, 7, 60_000)
        .await
        .expect("schedule");
    tx.commit().await.expect("commit");
    let seen_by_one = timers::due(&one, TimerKind::StudyComplete, 60_000, 10)
        .await
        .expect("due");
    let seen_by_two = timers::due(&two, TimerKind::StudyComplete, 60_000, 10)
        .await
        .expect("due");
    assert_eq!(seen_by_one, seen_by_two);
    let mut taken = 0;
    for (db, timer) in [(&one, &seen_by_one[0]), (&two, &seen_by_two[0])] {
        let mut tx = db.begin_write().await.expect("begin");
        taken += usize::from(timers::take(&mut tx, timer).await.expect("take"));
        tx.commit().await.expect("commit");
    }
    assert_eq!(taken, 1);

    // Nothing due: no write. Another connection holds what a write would
    // need (SQLite's write lock; on PostgreSQL the timer's row).
    let mut holder = two.begin().await.expect("begin");
    match backend {
        Backend::Sqlite => sqlx::query("UPDATE timers SET due_at = due_at"),
        Backend::Postgres { .. } => sqlx::query("SELECT id FROM timers FOR UPDATE"),
    }
    .execute(&mut *holder)
    .await
    .expect("hold");
    let nothing = tokio::time::timeout(
        Duration::from_secs(10),
        timers::claim_due(&one, KIND, "node-1", 49_999, LEASE, 100),
    )
    .await
    .expect("a claim with nothing due does not wait for a lock")
    .expect("claim");
    assert!(nothing.is_empty());
    holder.rollback().await.expect("release");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn sqlite_timers_fire_once_in_order_and_quietly() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    runtime().block_on(timers_behave(&url, &Backend::Sqlite));
}

#[test]
#[cfg_attr(not(telerad_postgres), ignore = "TELERAD_TEST_POSTGRES_URL is not set")]
fn postgres_timers_fire_once_in_order_and_quietly() {
    let backend = Backend::required_postgres();
    let Backend::Postgres { admin_url } = &backend else {
        unreachable!("required_postgres returns PostgreSQL or panics");
    };
    runtime().block_on(async {
        let db = PgDatabase::create(admin_url).await;
        timers_behave(&db.url, &backend).await;
    });
}
