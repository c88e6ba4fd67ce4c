//! Two telerad "processes" (archives and routers on pools of their own) on
//! one index database, with a clock the test moves: for tests of the event
//! log and of the router's timers.

use super::{Backend, PgDatabase};
use std::sync::Arc;
use telerad_router::service::Router;
use telerad_store::events::RetryPolicy;
use telerad_store::outbox::{Outbox, RetryPolicy as ForwardRetry};
use telerad_store::{Archive, Clock, ManualClock};

const CONFIG: &str = r#"
[[sites]]
name = "site-a"
ae_titles = ["SITE_A"]
allowed_networks = []
time_zone = "Europe/Paris"

[[radiologists]]
id = "dr-a"
name = "Dr A"
subspecialties = ["general"]
sites = ["site-a"]
max_open_studies = 50

"#;

/// Two telerad "processes" (archives and routers on their own pools) on one
/// database, and a clock the test moves.
pub struct Nodes {
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
    pub clock: Arc<ManualClock>,
    pub archives: Vec<Arc<Archive>>,
    pub routers: Vec<Arc<Router>>,
}

pub async fn nodes(backend: &Backend, extra_config: &str, retry: RetryPolicy) -> Nodes {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (database_url, pg) = match backend {
        Backend::Sqlite => (
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("index.db").display()
            ),
            None,
        ),
        Backend::Postgres { admin_url } => {
            let db = PgDatabase::create(admin_url).await;
            (db.url.clone(), Some(db))
        }
    };
    let text = format!(
        "[storage]\ndata_dir = \"{}\"\ndatabase_url = \"{database_url}\"\n{CONFIG}\n{extra_config}",
        dir.path().join("data").display()
    );
    let config = telerad_config::Config::from_toml_str(&text).expect("a valid config");
    let night: jiff::Timestamp = "2026-03-18T02:00:00Z".parse().expect("an instant");
    let clock = Arc::new(ManualClock::new(night.as_millisecond()));
    let mut archives = Vec::new();
    let mut routers = Vec::new();
    for _ in 0..2 {
        let archive = Arc::new(
            Archive::open(&config, clock.clone())
                .await
                .expect("open the archive"),
        );
        let outbox = Arc::new(Outbox::new(
            archive.index().database().clone(),
            ForwardRetry::default(),
        ));
        let router = Router::new(&config, archive.clone(), outbox)
            .expect("a router")
            .with_event_retry(retry);
        routers.push(Arc::new(router));
        archives.push(archive);
    }
    Nodes {
        _dir: dir,
        _pg: pg,
        clock,
        archives,
        routers,
    }
}

impl Nodes {
    pub fn pool(&self) -> &sqlx::AnyPool {
        self.archives[0].index().database().pool()
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// One single-slice study stored through the archive; its row id.
    pub async fn study(&self) -> i64 {
        let slices = tempfile::tempdir().expect("a temp dir");
        let mut study = telerad_fixtures::SyntheticStudy::ct(1);
        study.rows = 16;
        study.columns = 16;
        let paths = study.write_to(slices.path()).expect("generate");
        self.store(&paths[0]).await;
        let (id,): (i64,) = sqlx::query_as("SELECT id FROM studies WHERE study_instance_uid = $1")
            .bind(&study.study_instance_uid)
            .fetch_one(self.pool())
            .await
            .expect("the study row");
        id
    }

    /// Stores a Part 10 file through the archive, as received from site A.
    pub async fn store(&self, path: &std::path::Path) -> telerad_store::Stored {
        super::store(&self.archives[0], path)
            .await
            .unwrap_or_else(|e| panic!("commit: {e}"))
    }

    /// Lets the quiet period pass and runs the completion sweep.
    pub async fn complete_quiet_studies(&self) -> usize {
        self.clock.advance(3_600_000);
        self.archives[0]
            .index()
            .complete_quiet_studies(self.now())
            .await
            .expect("sweep")
            .len()
    }

    /// Runs both routers, alternately, until neither finds work.
    pub async fn drain(&self) {
        loop {
            let mut any = false;
            for router in &self.routers {
                any |= router
                    .process_next_event()
                    .await
                    .expect("no database error");
            }
            if !any {
                return;
            }
        }
    }

    pub async fn assigned(&self) -> Vec<i64> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT study_id FROM assignments ORDER BY study_id")
                .fetch_all(self.pool())
                .await
                .expect("assignments");
        rows.into_iter().map(|(id,)| id).collect()
    }

    pub async fn failure(&self, event_id: i64) -> Option<(i64, Option<i64>, Option<i64>, String)> {
        sqlx::query_as(
            "SELECT attempts, next_attempt_at, dead_at, last_error FROM event_failures \
             WHERE consumer = 'router' AND event_id = $1",
        )
        .bind(event_id)
        .fetch_optional(self.pool())
        .await
        .expect("event failures")
    }
}
