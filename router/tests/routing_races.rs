//! Two routers (as two telerad processes would have: separate pools on one
//! database) race for the same work: eight tasks at once handle the same
//! study event, then eight at once escalate the same overdue assignment.
//! Each must happen exactly once.

mod common;

use common::{Backend, PgDatabase};
use std::sync::Arc;
use telerad_router::service::Router;
use telerad_store::events::EventKind;
use telerad_store::outbox::{Outbox, RetryPolicy};
use telerad_store::{Archive, InstanceHeader, ManualClock};
use tokio::sync::Barrier;

telerad_fixtures::on_every_backend!(events_and_escalations_happen_once_under_contention);

const RACERS: usize = 8;

fn config_text(data_dir: &std::path::Path, database_url: &str) -> String {
    format!(
        r#"
[storage]
data_dir = "{data_dir}"
database_url = "{database_url}"

[[sites]]
name = "site-a"
ae_titles = ["SITE_A"]
allowed_networks = []
time_zone = "Europe/Paris"

[[radiologists]]
id = "dr-a"
name = "Dr A"
subspecialties = ["neuro"]
sites = ["site-a"]
max_open_studies = 10

[[radiologists]]
id = "dr-b"
name = "Dr B"
subspecialties = ["neuro"]
sites = ["site-a"]
max_open_studies = 10

[rota]
time_zone = "Europe/Paris"

[[rota.shifts]]
radiologist = "dr-a"
role = "primary"
subspecialty = "neuro"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"

[[rota.shifts]]
radiologist = "dr-b"
role = "backup"
subspecialty = "neuro"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"

[[rules]]
name = "stroke"
description = "(?i)AVC"
subspecialty = "neuro"
priority = "stat"
"#,
        data_dir = data_dir.display()
    )
}

async fn history_actions(archive: &Archive) -> Vec<(String, Option<String>)> {
    sqlx::query_as("SELECT action, radiologist_id FROM assignment_history ORDER BY id")
        .fetch_all(archive.index().database().pool())
        .await
        .expect("history")
}

async fn events_and_escalations_happen_once_under_contention(backend: &Backend) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut _pg: Option<PgDatabase> = None;
    let database_url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("index.db").display()
        ),
        Backend::Postgres { admin_url } => {
            let db = PgDatabase::create(admin_url).await;
            let url = db.url.clone();
            _pg = Some(db);
            url
        }
    };
    let config = telerad_config::Config::from_toml_str(&config_text(
        &dir.path().join("data"),
        &database_url,
    ))
    .expect("a valid config");
    // 03:00 on a Wednesday night in Paris.
    let night: jiff::Timestamp = "2026-03-18T02:00:00Z".parse().expect("an instant");
    let clock = Arc::new(ManualClock::new(night.as_millisecond()));
    let mut routers = Vec::new();
    let mut archives = Vec::new();
    for _ in 0..2 {
        let archive = Arc::new(
            Archive::open(&config, clock.clone())
                .await
                .expect("open the archive"),
        );
        let outbox = Arc::new(Outbox::new(
            archive.index().database().clone(),
            RetryPolicy::default(),
        ));
        routers.push(Arc::new(
            Router::new(&config, archive.clone(), outbox).expect("a router"),
        ));
        archives.push(archive);
    }

    // One stroke CT, stored and complete.
    let slices = tempfile::tempdir().expect("a temp dir");
    let mut study = telerad_fixtures::SyntheticStudy::ct(1);
    study.rows = 64;
    study.columns = 64;
    study.study_description = "CT AVC".into();
    let paths = study.write_to(slices.path()).expect("generate");
    let file = telerad_scp::FileToSend::read(&paths[0]).expect("a slice");
    let mut pending = archives[0]
        .begin(InstanceHeader {
            sop_class_uid: file.sop_class_uid.clone(),
            sop_instance_uid: file.sop_instance_uid.clone(),
            transfer_syntax_uid: file.transfer_syntax_uid.clone(),
            calling_ae_title: "SITE_A".into(),
        })
        .expect("begin");
    pending.write(&common::dataset_bytes(&paths[0]));
    archives[0].commit(pending, "site-a").await.expect("commit");
    clock.advance(60_000);
    let events = archives[0]
        .index()
        .complete_quiet_studies(telerad_store::Clock::now_ms(clock.as_ref()))
        .await
        .expect("sweep");
    assert_eq!(events.len(), 1);

    // Eight racers for one event.
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let router = routers[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            router.process_next_event().await
        }));
    }
    let mut handled = 0;
    for task in tasks {
        if task.await.expect("a racer").expect("no database error") {
            handled += 1;
        }
    }
    // The complete event, and the `assigned` workflow event its handling
    // appended: each handled by exactly one racer.
    let log: Vec<EventKind> = archives[0]
        .index()
        .events_after(0, 100)
        .await
        .expect("the log")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(log, [EventKind::Complete, EventKind::Assigned]);
    assert_eq!(
        handled,
        log.len(),
        "{} events handled {handled} times",
        log.len()
    );
    assert_eq!(
        history_actions(&archives[1]).await,
        [("assigned".to_string(), Some("dr-a".to_string()))]
    );

    // Past the STAT acknowledgement deadline (5 min by default): eight
    // racers escalate.
    clock.advance(10 * 60_000);
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let router = routers[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            router.escalate_due().await
        }));
    }
    let mut escalated = 0;
    for task in tasks {
        escalated += task.await.expect("a racer").expect("no database error");
    }
    assert_eq!(
        escalated, 1,
        "one overdue assignment escalated {escalated} times"
    );
    assert_eq!(
        history_actions(&archives[0]).await,
        [
            ("assigned".to_string(), Some("dr-a".to_string())),
            ("escalated".to_string(), Some("dr-b".to_string())),
        ]
    );
}
