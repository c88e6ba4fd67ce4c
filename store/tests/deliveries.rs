//! The workflow side of the event log: a person's stream sees only their
//! scope's events (and skips the others in bounded steps); a delivery is
//! planned once per recipient, sent by one worker at a time, retried with
//! backoff, handed back flagged when its worker dies, dead when its
//! attempts are used up, and retried by an operator.

use std::time::Duration;
use telerad_dicom::inspect::InstanceAttributes;
use telerad_fixtures::database::{Backend, PgDatabase};
use telerad_store::deliveries::{self, Channel, NewDelivery, Outcome};
use telerad_store::events::{self, EventKind, RetryPolicy};
use telerad_store::index::NewInstance;
use telerad_store::{Database, EventId, Scope, StudyId, StudyIndex, notices};

async fn study(index: &StudyIndex, site: &str, uid: &str) -> StudyId {
    index
        .record_instance(&NewInstance {
            site: site.into(),
            attributes: InstanceAttributes {
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
                sop_instance_uid: format!("{uid}.1.1"),
                study_instance_uid: uid.into(),
                series_instance_uid: format!("{uid}.1"),
                patient_name: "DOE^JANE".into(),
                ..InstanceAttributes::default()
            },
            version: 1,
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            path: format!("studies/{uid}.dcm"),
            size_bytes: 1,
            checksum: "x".into(),
            calling_ae_title: "SITE".into(),
            received_at: 1,
            complete_after: 2,
        })
        .await
        .expect("an instance");
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM studies WHERE study_instance_uid = $1")
        .bind(uid)
        .fetch_one(index.database().pool())
        .await
        .expect("the study's id");
    StudyId(id)
}

async fn append(db: &Database, study: StudyId, kind: EventKind) -> EventId {
    let mut tx = db.begin().await.expect("begin");
    let id = events::append_workflow(&mut tx, study, kind, 10, serde_json::json!({"n": 1}))
        .await
        .expect("append");
    tx.commit().await.expect("commit");
    id
}

async fn behaves(url: &str) {
    let index = StudyIndex::new(Database::connect(url).await.expect("connect"));
    for site in ["site-a", "site-b"] {
        index
            .sync_site(site, "Europe/Paris", 20)
            .await
            .expect("a site");
    }
    let db = index.database().clone();
    let a = study(&index, "site-a", "1.2.3.1").await;
    let b = study(&index, "site-b", "1.2.3.2").await;
    let start = notices::latest(&db).await.expect("latest");
    let first = append(&db, a, EventKind::Preliminary).await;
    let others = append(&db, b, EventKind::Message).await;
    let last = append(&db, a, EventKind::Final).await;

    // Site A's scope: its two events, with what they are about; the
    // cursor passes site B's too.
    let (seen, cursor) = notices::after(&db, &Scope::site("site-a"), start, 100)
        .await
        .expect("notices");
    let kinds: Vec<_> = seen.iter().map(|n| (n.id, n.kind)).collect();
    assert_eq!(
        kinds,
        [(first, EventKind::Preliminary), (last, EventKind::Final)]
    );
    assert_eq!(seen[0].study_instance_uid, "1.2.3.1");
    assert_eq!(seen[0].detail["n"], 1);
    assert_eq!(cursor, last);
    // One event per look: site B's event is read and not shown.
    let (seen, cursor) = notices::after(&db, &Scope::site("site-a"), first, 1)
        .await
        .expect("notices");
    assert!(seen.is_empty());
    assert_eq!(cursor, others);
    let (seen, _) = notices::after(&db, &Scope::Sites(Vec::new()), start, 100)
        .await
        .expect("notices");
    assert!(seen.is_empty(), "no sites, nothing: {seen:?}");

    // Planned once per event and recipient.
    let new = NewDelivery {
        event_id: first,
        channel: Channel::Webhook,
        recipient: "site:site-a".into(),
        target: "https://example.org/hook".into(),
        payload: "{}".into(),
    };
    let now = 1_000_000;
    for (attempt, planned) in [(1, true), (2, false)] {
        let mut tx = db.begin().await.expect("begin");
        let done = deliveries::plan(&mut tx, &new, now).await.expect("plan");
        tx.commit().await.expect("commit");
        assert_eq!(done, planned, "plan #{attempt}");
    }

    // Two workers at once: one takes it.
    let (one, two) = tokio::join!(
        deliveries::claim_due(&db, "w1", now, 60_000),
        deliveries::claim_due(&db, "w2", now, 60_000)
    );
    let taken: Vec<_> = [one.expect("claim"), two.expect("claim")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(taken.len(), 1, "{taken:?}");
    let delivery = taken[0].clone();
    let (worker,): (Option<String>,) =
        sqlx::query_as("SELECT claimed_by FROM deliveries WHERE id = $1")
            .bind(delivery.id)
            .fetch_one(db.pool())
            .await
            .expect("claimed_by");
    let worker = worker.expect("claimed by the worker that took it");
    assert!(
        !deliveries::mark_sent(&db, &delivery, "nobody", Some(200), now)
            .await
            .expect("mark"),
        "a worker without the claim marked it sent"
    );
    assert!(
        deliveries::claim_due(&db, "w3", now, 60_000)
            .await
            .expect("claim")
            .is_none(),
        "a delivery being sent was claimed again"
    );

    // Refused: retried after the policy's delay, not before.
    let retry = RetryPolicy {
        max_attempts: 2,
        first_delay: Duration::from_secs(5),
        max_delay: Duration::from_secs(60),
    };
    let outcome =
        deliveries::mark_failed(&db, &delivery, &worker, "HTTP 503", Some(503), &retry, now)
            .await
            .expect("failed");
    assert_eq!(
        outcome,
        Outcome::Retrying {
            next_attempt_at: now + 5_000
        }
    );
    assert!(
        deliveries::claim_due(&db, &worker, now + 4_999, 60_000)
            .await
            .expect("claim")
            .is_none()
    );
    // Its worker dies while sending: after the lease, it is due again,
    // flagged.
    let second = deliveries::claim_due(&db, "w1", now + 5_000, 1_000)
        .await
        .expect("claim")
        .expect("due after its delay");
    assert_eq!(second.attempts, 2);
    assert_eq!(
        deliveries::reclaim_expired(&db, now + 5_500, 10)
            .await
            .expect("reclaim"),
        0
    );
    assert_eq!(
        deliveries::reclaim_expired(&db, now + 6_001, 10)
            .await
            .expect("reclaim"),
        1
    );
    let back = deliveries::by_id(&db, second.id)
        .await
        .expect("read")
        .expect("the delivery");
    assert_eq!(
        (back.state.as_str(), back.possible_duplicate),
        ("pending", true)
    );
    // The same worker name with an earlier attempt (a stale task of a
    // restarted node) cannot mark the new claim either.
    let mut stale = second.clone();
    stale.attempts -= 1;
    assert!(
        !deliveries::mark_sent(&db, &stale, "w1", Some(200), now + 5_100)
            .await
            .expect("mark")
    );
    // The dead worker's late answer changes nothing.
    assert!(
        !deliveries::mark_sent(&db, &second, "w1", Some(200), now + 6_002)
            .await
            .expect("mark")
    );

    // Attempts used up: dead; an operator's retry makes it pending afresh.
    let third = deliveries::claim_due(&db, "w2", now + 6_001, 60_000)
        .await
        .expect("claim")
        .expect("due");
    let outcome = deliveries::mark_failed(&db, &third, "w2", "refused", None, &retry, now + 7_000)
        .await
        .expect("failed");
    assert_eq!(outcome, Outcome::Dead);
    let dead = deliveries::list(&db, Some("dead"), None, 10)
        .await
        .expect("list");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].kind, "preliminary");
    assert_eq!(dead[0].study_instance_uid, "1.2.3.1");
    let mut tx = db.begin().await.expect("begin");
    assert!(
        deliveries::retry(&mut tx, third.id, now + 8_000)
            .await
            .expect("retry")
    );
    assert!(
        !deliveries::retry(&mut tx, third.id, now + 8_000)
            .await
            .expect("retry")
    );
    tx.commit().await.expect("commit");
    let again = deliveries::claim_due(&db, "w1", now + 8_000, 60_000)
        .await
        .expect("claim")
        .expect("due");
    assert_eq!(again.attempts, 1);
    assert!(
        deliveries::mark_sent(&db, &again, "w1", Some(204), now + 8_100)
            .await
            .expect("sent")
    );
    assert_eq!(deliveries::next_due(&db).await.expect("next"), None);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn sqlite_deliveries_and_notices() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("index.db").display());
    runtime().block_on(behaves(&url));
}

#[test]
#[cfg_attr(not(telerad_postgres), ignore = "TELERAD_TEST_POSTGRES_URL is not set")]
fn postgres_deliveries_and_notices() {
    let backend = Backend::required_postgres();
    let Backend::Postgres { admin_url } = &backend else {
        unreachable!("required_postgres gives PostgreSQL");
    };
    runtime().block_on(async {
        let pg = PgDatabase::create(admin_url).await;
        behaves(&pg.url).await;
    });
}
