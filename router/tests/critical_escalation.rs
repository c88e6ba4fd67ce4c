//! Critical results past their deadline are escalated once, by one of two
//! processes, on the durable timers; one acknowledged in time is not.

mod common;

use common::Backend;
use common::nodes::{Nodes, nodes};
use telerad_store::StudyId;
use telerad_store::critical::{self, Means, NewCritical, Receipt};
use telerad_store::events::RetryPolicy;
use telerad_store::timers::{self, TimerKind};

telerad_fixtures::on_every_backend!(an_unacknowledged_critical_result_is_escalated_once);

const READER: &str = r#"
[[radiologists]]
id = "dr-chief"
name = "Dr Chief"
subspecialties = ["general"]
sites = ["site-a"]
max_open_studies = 5
"#;

/// The default delay of ACR category 1: 30 minutes.
const CATEGORY_1_MS: i64 = 1_800_000;

async fn flag(nodes: &Nodes, study: i64, finding: &str) -> i64 {
    let due_at = nodes.now() + CATEGORY_1_MS;
    let mut tx = nodes.archives[0]
        .index()
        .database()
        .begin_write()
        .await
        .expect("a transaction");
    let id = critical::flag(
        &mut tx,
        &NewCritical {
            study_id: StudyId(study),
            category: 1,
            finding,
            flagged_by: "dr-chief",
            due_at,
        },
        nodes.now(),
    )
    .await
    .expect("flagged");
    timers::schedule(&mut tx, TimerKind::CriticalResult, id, due_at)
        .await
        .expect("timer");
    tx.commit().await.expect("commit");
    id
}

async fn state(nodes: &Nodes, id: i64) -> String {
    let (state,): (String,) = sqlx::query_as("SELECT state FROM critical_results WHERE id = $1")
        .bind(id)
        .fetch_one(nodes.pool())
        .await
        .expect("a row");
    state
}

async fn pass(nodes: &Nodes) -> usize {
    let mut escalated = 0;
    for router in &nodes.routers {
        escalated += router.escalate_critical_due().await.expect("a pass");
    }
    escalated
}

async fn an_unacknowledged_critical_result_is_escalated_once(backend: &Backend) {
    let nodes = nodes(backend, READER, RetryPolicy::default()).await;
    let study = nodes.study().await;
    let ignored = flag(&nodes, study, "Left M1 occlusion").await;
    let answered = flag(&nodes, study, "Pneumothorax").await;

    // The site answers one of them in time.
    let mut tx = nodes.archives[0]
        .index()
        .database()
        .begin_write()
        .await
        .expect("a transaction");
    let receipt = Receipt {
        by: "Dr Urgences",
        role: "emergency physician",
        means: Means::Phone,
        recorded_by: "rad",
        at: nodes.now(),
    };
    assert!(
        critical::acknowledge(&mut tx, answered, &receipt)
            .await
            .expect("ack")
    );
    assert!(
        !critical::acknowledge(&mut tx, answered, &receipt)
            .await
            .expect("ack")
    );
    timers::cancel(&mut tx, TimerKind::CriticalResult, answered)
        .await
        .expect("cancel");
    tx.commit().await.expect("commit");

    nodes.clock.advance(CATEGORY_1_MS - 1);
    assert_eq!(pass(&nodes).await, 0, "not due yet");
    assert_eq!(state(&nodes, ignored).await, "open");

    nodes.clock.advance(1);
    assert_eq!(pass(&nodes).await, 1, "escalated once, by one of the two");
    assert_eq!(state(&nodes, ignored).await, "escalated");
    assert_eq!(state(&nodes, answered).await, "acknowledged");
    nodes.clock.advance(CATEGORY_1_MS);
    assert_eq!(pass(&nodes).await, 0, "the timer is done");

    let alerts = nodes.routers[0].open_alerts(10).await.expect("alerts");
    let critical: Vec<_> = alerts
        .iter()
        .filter(|a| a.kind == "critical_result")
        .collect();
    assert_eq!(critical.len(), 1, "{alerts:?}");
    assert!(
        critical[0].message.contains("Left M1 occlusion"),
        "{alerts:?}"
    );

    // Acknowledged late: the escalated result closes too.
    let mut tx = nodes.archives[0]
        .index()
        .database()
        .begin_write()
        .await
        .expect("a transaction");
    assert!(
        critical::acknowledge(&mut tx, ignored, &receipt)
            .await
            .expect("ack")
    );
    tx.commit().await.expect("commit");
    assert_eq!(state(&nodes, ignored).await, "acknowledged");
}
