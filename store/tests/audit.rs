//! The audit chain on both backends: appended one by one and from the
//! spool, verified, pruned for retention without breaking it, and broken
//! where a row is changed; the spool's moves and the transactions of
//! changes append to the one chain in any interleaving; a spool left by a
//! crash is chained once, whatever point the crash came at.

mod common;

use common::open;
use std::io::Write;
use telerad_fixtures::database::{Backend, PgDatabase};
use telerad_store::Database;
use telerad_store::audit::{self, AuditRecord, Outcome};
use telerad_store::audit_spool::{AuditSpool, MAX_PENDING_FILES, MOVE_AT, Orphans, SpoolError};

telerad_fixtures::on_every_backend!(
    records_chain_across_batches_and_retention,
    spool_moves_and_other_transactions_interleave,
    a_spool_left_by_a_crash_is_chained_once,
    a_file_another_process_writes_is_left_to_it,
    a_spool_the_chain_cannot_take_refuses_records_then_gives_them_all
);

fn record(at: i64, actor: &str) -> AuditRecord {
    AuditRecord {
        at,
        actor: actor.into(),
        role: "clinician".into(),
        sites: "site-a".into(),
        action: "study.read".into(),
        object: "study/1.2.3".into(),
        study_uid: Some("1.2.3".into()),
        patient_id: Some("P1".into()),
        outcome: Outcome::Success,
        source: "127.0.0.1".into(),
        detail: "{}".into(),
    }
}

async fn count(db: &Database, actor: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE actor = $1")
        .bind(actor)
        .fetch_one(db.pool())
        .await
        .expect("count");
    n
}

/// The URL of the database `open` made, for another connection to it.
fn url_of(pg: Option<&PgDatabase>, dir: &std::path::Path) -> String {
    match pg {
        Some(pg) => pg.url.clone(),
        None => format!("sqlite://{}", dir.join("index.db").display()),
    }
}

/// `work` on a runtime of its own in a thread of its own, as another
/// process: when it returns, the runtime stops, and its tasks (a spool's
/// mover) are cut wherever they are, as a process's end cuts them.
fn as_another_process<T, F>(work: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(work())
    })
    .join()
    .expect("the other process")
}

fn spool_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the spool folder")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

async fn records_chain_across_batches_and_retention(backend: &Backend) {
    let (db, _pg, dir) = open(backend).await;
    for at in 1..=3 {
        audit::append_now(&db, &record(at, "alone"))
            .await
            .expect("append");
    }
    // From several tasks: the spool chains them in batches.
    let spool =
        AuditSpool::start(db.clone(), dir.path().join("spool"), Orphans::Adopt).expect("spool");
    let mut tasks = Vec::new();
    for at in 4..=40 {
        let spool = spool.clone();
        tasks.push(tokio::spawn(async move {
            spool
                .append(&record(100 + at % 2, "batched"))
                .expect("append")
        }));
    }
    for task in tasks {
        task.await.expect("a task");
    }
    spool.flush().await.expect("flush");
    assert_eq!(count(&db, "batched").await, 37);
    let verified = audit::verify(&db).await.expect("verify");
    assert_eq!((verified.records, verified.broken), (40, None));
    assert!(
        spool_files(&dir.path().join("spool")).is_empty(),
        "moved files are removed"
    );

    // Retention removes the oldest and the rest still verifies.
    let removed = audit::prune(&db, 50).await.expect("prune");
    assert_eq!(removed, 3);
    let verified = audit::verify(&db).await.expect("verify");
    assert_eq!((verified.records, verified.broken), (37, None));

    // A changed row is named.
    let (seq,): (i64,) = sqlx::query_as("SELECT MIN(seq) + 5 FROM audit_log")
        .fetch_one(db.pool())
        .await
        .expect("a seq");
    sqlx::query("UPDATE audit_log SET patient_id = 'P2' WHERE seq = $1")
        .bind(seq)
        .execute(db.pool())
        .await
        .expect("tamper");
    let broken = audit::verify(&db)
        .await
        .expect("verify")
        .broken
        .expect("broken");
    assert_eq!(broken.seq, seq);
}

/// The spool's moves (on its timer, when a file fills, and when asked)
/// and changes' own transactions append to one chain without forking it;
/// records whose patient is looked up (here, of a study
/// not in the index) go the same way.
async fn spool_moves_and_other_transactions_interleave(backend: &Backend) {
    let (db, _pg, dir) = open(backend).await;
    let spool =
        AuditSpool::start(db.clone(), dir.path().join("spool"), Orphans::Adopt).expect("spool");
    let mut tasks = Vec::new();
    for round in 0..6_i64 {
        for i in 0..1_000_i64 {
            let spool = spool.clone();
            let mut spooled = record(round * 10_000 + i, "spooled");
            if i % 7 == 0 {
                spooled.patient_id = None;
            }
            tasks.push(tokio::spawn(async move {
                spool.append(&spooled).expect("append")
            }));
        }
        // A change's record, in a transaction of its own, between moves.
        audit::append_now(&db, &record(round * 10_000 + 500, "change"))
            .await
            .expect("append");
        if round == 2 {
            spool.flush().await.expect("flush");
        }
    }
    for task in tasks {
        task.await.expect("a task");
    }
    spool.flush().await.expect("flush");
    assert_eq!(count(&db, "spooled").await, 6_000);
    let verified = audit::verify(&db).await.expect("verify");
    assert_eq!((verified.records, verified.broken), (6_006, None));
}

/// A process that stops without moving its spool leaves the records to the
/// next one; whatever moves happened before the stop, each record is
/// chained exactly once. A file whose records were committed but which
/// was not removed (a crash between the two) is removed, not chained
/// again; a line cut short by the machine's stop is skipped.
async fn a_spool_left_by_a_crash_is_chained_once(backend: &Backend) {
    let (db, pg, dir) = open(backend).await;
    let folder = dir.path().join("spool");
    let url = url_of(pg.as_ref(), dir.path());
    // The first process, on a runtime of its own that stops at once, as
    // a process ends: its mover is cut wherever it is.
    let first_folder = folder.clone();
    as_another_process(move || async move {
        let db = Database::connect(&url).await.expect("connect");
        let first = AuditSpool::start(db, first_folder, Orphans::Adopt).expect("spool");
        for at in 0..300 {
            first.append(&record(at, "before")).expect("append");
            if at == 99 {
                first.flush().await.expect("flush");
            }
            if at % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });

    // Committed, not removed: a file of three records whose name is known.
    let committed = "1-committed.jsonl";
    let mut file = std::fs::File::create(folder.join(committed)).expect("a file");
    for at in 0..3 {
        let mut line = serde_json::to_vec(&record(at, "twice")).expect("json");
        line.push(b'\n');
        file.write_all(&line).expect("write");
    }
    sqlx::query("INSERT INTO audit_spool_moved (name, moved_at) VALUES ($1, $2)")
        .bind(format!("spool/{committed}"))
        .bind(0_i64)
        .execute(db.pool())
        .await
        .expect("insert");
    // Cut short: one whole record and half of another.
    let mut torn = std::fs::File::create(folder.join("2-torn.jsonl")).expect("a file");
    let whole = serde_json::to_vec(&record(1, "torn")).expect("json");
    torn.write_all(&whole).expect("write");
    torn.write_all(b"\n").expect("write");
    torn.write_all(&whole[..whole.len() / 2]).expect("write");
    drop((file, torn));
    // Being created when its process stopped: empty, unnamed, old.
    let creating = std::fs::File::create(folder.join("3-creating.new")).expect("a file");
    creating
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3_600))
        .expect("an old time");
    drop(creating);

    let second = AuditSpool::start(db.clone(), folder.clone(), Orphans::Adopt).expect("spool");
    second.flush().await.expect("flush");
    assert_eq!(count(&db, "before").await, 300);
    assert_eq!(count(&db, "twice").await, 0);
    assert_eq!(count(&db, "torn").await, 1);
    let (last,): (String,) =
        sqlx::query_as("SELECT actor FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_one(db.pool())
            .await
            .expect("the last record");
    assert_eq!(last, "torn", "files are chained oldest first");
    assert!(
        spool_files(&folder).is_empty(),
        "{:?}",
        spool_files(&folder)
    );
    let verified = audit::verify(&db).await.expect("verify");
    assert_eq!((verified.records, verified.broken), (301, None));
}

/// A spool file locked by its writer (another process: `flock` locks of
/// two opens conflict as two processes' do) is not moved until it is let
/// go.
async fn a_file_another_process_writes_is_left_to_it(backend: &Backend) {
    let (db, _pg, dir) = open(backend).await;
    let folder = dir.path().join("spool");
    std::fs::create_dir_all(&folder).expect("a folder");
    let path = folder.join("1-other.jsonl");
    let mut other = std::fs::File::create(&path).expect("a file");
    other.try_lock().expect("the other writer's lock");
    let mut line = serde_json::to_vec(&record(1, "other")).expect("json");
    line.push(b'\n');
    other.write_all(&line).expect("write");

    let spool = AuditSpool::start(db.clone(), folder.clone(), Orphans::Adopt).expect("spool");
    spool.flush().await.expect("flush");
    assert_eq!(count(&db, "other").await, 0);
    assert!(path.exists());

    drop(other);
    // A command's spool leaves it to the server.
    let command = AuditSpool::start(db.clone(), folder.clone(), Orphans::Leave).expect("spool");
    command.flush().await.expect("flush");
    assert_eq!(count(&db, "other").await, 0);
    assert!(path.exists());
    spool.flush().await.expect("flush");
    assert_eq!(count(&db, "other").await, 1);
    assert!(!path.exists());
}

/// While the chain cannot take the spool (the database is away), records
/// are still accepted up to a bound, then refused rather than left to fill
/// the disk; once the database is back, every accepted record is chained.
async fn a_spool_the_chain_cannot_take_refuses_records_then_gives_them_all(backend: &Backend) {
    let (db, pg, dir) = open(backend).await;
    let folder = dir.path().join("spool");
    let url = url_of(pg.as_ref(), dir.path());
    // A process of its own (a runtime that stops at the end, its mover
    // with it), whose database went away.
    let away_folder = folder.clone();
    let (accepted, refusal) = as_another_process(move || async move {
        let away = Database::connect(&url).await.expect("connect");
        away.pool().close().await;
        let spool = AuditSpool::start(away, away_folder, Orphans::Adopt).expect("spool");
        let bound = MAX_PENDING_FILES * MOVE_AT;
        let mut accepted = 0;
        loop {
            match spool.append(&record(accepted, "waiting")) {
                Ok(()) => accepted += 1,
                Err(e) => return (accepted, e),
            }
            assert!(
                accepted <= (bound + MOVE_AT) as i64,
                "still accepting after {accepted} records"
            );
        }
    });
    assert!(matches!(refusal, SpoolError::Full(_)), "{refusal}");
    // The bound is on files (the mover's passes start new ones too).
    let files = spool_files(&folder).len();
    assert!(
        (MAX_PENDING_FILES..=MAX_PENDING_FILES + 1).contains(&files),
        "{files} files for {accepted} records"
    );

    let back = AuditSpool::start(db.clone(), folder.clone(), Orphans::Adopt).expect("spool");
    back.flush().await.expect("flush");
    assert_eq!(count(&db, "waiting").await, accepted);
    let verified = audit::verify(&db).await.expect("verify");
    assert_eq!((verified.records, verified.broken), (accepted as u64, None));
}
