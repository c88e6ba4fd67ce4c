//! The audit chain on both backends: appended one by one and in batches,
//! verified, pruned for retention without breaking it, and broken where a
//! row is changed; the batching writer and the transactions of changes
//! append to the one chain in any interleaving.

mod common;

use common::open;
use telerad_fixtures::database::Backend;
use telerad_store::audit::{self, AuditRecord, AuditWriter, Outcome};

telerad_fixtures::on_every_backend!(
    records_chain_across_batches_and_retention,
    the_writer_and_other_transactions_interleave
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

async fn records_chain_across_batches_and_retention(backend: &Backend) {
    let (db, _pg, _dir) = open(backend).await;
    for at in 1..=3 {
        audit::append_now(&db, &record(at, "alone"))
            .await
            .expect("append");
    }
    // Concurrent callers: the writer commits them in batches.
    let writer = AuditWriter::start(db.clone());
    let mut tasks = Vec::new();
    for at in 4..=40 {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            // One time for all: their order in the chain is the writer's.
            writer
                .append(record(100 + at % 2, "batched"))
                .await
                .expect("append")
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.expect("a task"));
    }
    seqs.sort();
    assert_eq!(seqs, (4..=40).collect::<Vec<i64>>());
    let verified = audit::verify(&db).await.expect("verify");
    assert_eq!((verified.records, verified.broken), (40, None));

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

/// The writer remembers the head its last batch left; records appended
/// meanwhile by changes' own transactions must not fork the chain. Batches
/// larger than one INSERT statement's rows, and records whose patient is
/// looked up, go the same way.
async fn the_writer_and_other_transactions_interleave(backend: &Backend) {
    let (db, _pg, _dir) = open(backend).await;
    let writer = AuditWriter::start(db.clone());
    // In turn: the writer's second batch finds its head taken.
    assert_eq!(
        writer.append(record(1, "batched")).await.expect("append"),
        1
    );
    audit::append_now(&db, &record(2, "change"))
        .await
        .expect("append");
    assert_eq!(
        writer.append(record(3, "batched")).await.expect("append"),
        3
    );
    // At once.
    let mut tasks = Vec::new();
    for round in 0..6_i64 {
        for i in 0..150_i64 {
            let writer = writer.clone();
            let mut batched = record(round * 1_000 + i, "batched");
            if i % 7 == 0 {
                batched.patient_id = None;
            }
            tasks.push(tokio::spawn(async move {
                writer.append(batched).await.expect("append")
            }));
        }
        // A change's record, in a transaction of its own, between batches.
        audit::append_now(&db, &record(round * 1_000 + 500, "change"))
            .await
            .expect("append");
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.expect("a task"));
    }
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 900, "every batched record has its own seq");
    let verified = audit::verify(&db).await.expect("verify");
    assert_eq!((verified.records, verified.broken), (909, None));
}
