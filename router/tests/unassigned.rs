//! A study nobody on duty can take is not left waiting: past its
//! acknowledgement deadline the escalation chain is called (a stroke CT at
//! 3 a.m. with nobody on the rota must still reach someone), and the retry
//! of unassigned studies reaches every one of them, not only the first
//! hundred.

mod common;

use common::Backend;
use common::nodes::{Nodes, nodes};
use telerad_store::events::RetryPolicy;

telerad_fixtures::on_every_backend!(
    past_its_deadline_an_unassigned_study_goes_to_the_escalation_chain,
    studies_nobody_can_take_do_not_hold_up_the_others,
    a_pass_with_nobody_to_give_a_study_to_writes_nothing
);

const CHAIN: &str = r#"
[[sites]]
name = "site-b"
ae_titles = ["SITE_B"]
allowed_networks = []
time_zone = "Europe/Paris"

[[radiologists]]
id = "dr-chief"
name = "Dr Chief"
subspecialties = ["general"]
sites = ["site-a"]
max_open_studies = 500

[escalation]
chain = ["dr-chief"]
"#;

/// The default SLA's routine acknowledgement (3600 s), in ms.
const ROUTINE_ACK_MS: i64 = 3_600_000;

async fn assignment(nodes: &Nodes, study_id: i64) -> (String, Option<String>, Option<i64>) {
    sqlx::query_as(
        "SELECT state, radiologist_id, acknowledge_by FROM assignments WHERE study_id = $1",
    )
    .bind(study_id)
    .fetch_one(nodes.pool())
    .await
    .expect("an assignment row")
}

async fn past_its_deadline_an_unassigned_study_goes_to_the_escalation_chain(backend: &Backend) {
    let nodes = nodes(backend, CHAIN, RetryPolicy::default()).await;
    let study = nodes.study().await;
    nodes.clock.advance(60_000);
    let completed_at = nodes.now();
    nodes.archives[0]
        .index()
        .complete_quiet_studies(completed_at)
        .await
        .expect("sweep");
    nodes.drain().await;
    // Nobody is on the rota: unassigned, with a deadline all the same.
    assert_eq!(
        assignment(&nodes, study).await,
        (
            "unassigned".into(),
            None,
            Some(completed_at + ROUTINE_ACK_MS)
        )
    );

    nodes.clock.advance(ROUTINE_ACK_MS - 1);
    assert_eq!(nodes.routers[0].escalate_due().await.expect("pass"), 0);
    assert_eq!(assignment(&nodes, study).await.0, "unassigned");

    nodes.clock.advance(1);
    let changed = nodes.routers[0].escalate_due().await.expect("pass")
        + nodes.routers[1].escalate_due().await.expect("pass");
    assert_eq!(changed, 1, "handed on once, by one of the two processes");
    assert_eq!(
        assignment(&nodes, study).await,
        (
            "assigned".into(),
            Some("dr-chief".into()),
            Some(nodes.now() + ROUTINE_ACK_MS)
        )
    );
    let (action, detail): (String, String) = sqlx::query_as(
        "SELECT action, detail FROM assignment_history WHERE study_id = $1 ORDER BY id DESC",
    )
    .bind(study)
    .fetch_one(nodes.pool())
    .await
    .expect("history");
    assert_eq!(action, "escalated");
    assert!(
        detail.contains("dr-chief is next in the escalation chain"),
        "{detail}"
    );
}

/// 150 unassigned studies of site B, for which nobody is licensed, all past
/// their deadline, then one of site A: their assignment ids.
async fn waiting_studies(nodes: &Nodes) -> Vec<i64> {
    let now = nodes.now();
    let mut tx = nodes.pool().begin().await.expect("begin");
    let mut ids = Vec::new();
    for (n, site) in (0..151).map(|n| (n, if n < 150 { "site-b" } else { "site-a" })) {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO studies (study_instance_uid, site, first_received_at, last_received_at, \
             complete_after, status, completed_at) VALUES ($1, $2, $3, $3, $3, 'complete', $3) \
             RETURNING id",
        )
        .bind(format!("1.2.826.0.1.3680043.10.1234.{n}"))
        .bind(site)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .expect("a study");
        sqlx::query(
            "INSERT INTO assignments (study_id, state, subspecialty, priority, rule, assigned_at, \
             acknowledge_by, preliminary_by, assigned_instance_count, explanation, updated_at) \
             VALUES ($1, 'unassigned', 'general', 'routine', 'default', $2, $2, $2, 1, '{}', $2)",
        )
        .bind(id)
        .bind(now - 1)
        .execute(&mut *tx)
        .await
        .expect("an unassigned row");
        ids.push(id);
    }
    tx.commit().await.expect("commit");
    ids
}

async fn studies_nobody_can_take_do_not_hold_up_the_others(backend: &Backend) {
    let nodes = nodes(backend, CHAIN, RetryPolicy::default()).await;
    let ids = waiting_studies(&nodes).await;

    assert_eq!(nodes.routers[0].escalate_due().await.expect("pass"), 1);
    let last = *ids.last().expect("ids");
    assert_eq!(
        assignment(&nodes, last).await.1.as_deref(),
        Some("dr-chief"),
        "the study after the first hundred is reached"
    );
    assert_eq!(assignment(&nodes, ids[0]).await.0, "unassigned");
}

async fn a_pass_with_nobody_to_give_a_study_to_writes_nothing(backend: &Backend) {
    let nodes = nodes(backend, CHAIN, RetryPolicy::default()).await;
    let ids = waiting_studies(&nodes).await;
    // Site A's study finds its reader; site B's 150 are left to wait.
    assert_eq!(nodes.routers[0].escalate_due().await.expect("pass"), 1);

    // Another connection holds what a write would need: SQLite's write
    // lock, or on PostgreSQL every assignment row.
    let mut holder = nodes.pool().begin().await.expect("begin");
    match backend {
        Backend::Sqlite => {
            sqlx::query("UPDATE sites SET quiet_period_secs = quiet_period_secs")
                .execute(&mut *holder)
                .await
                .expect("take the write lock");
        }
        Backend::Postgres { .. } => {
            sqlx::query("SELECT id FROM assignments FOR UPDATE")
                .fetch_all(&mut *holder)
                .await
                .expect("lock the rows");
        }
    }
    let pass = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        nodes.routers[1].escalate_due(),
    )
    .await
    .expect("a pass that writes nothing does not wait for the lock")
    .expect("pass");
    assert_eq!(pass, 0);
    holder.rollback().await.expect("release");
    assert_eq!(ids.len(), 151);
}
