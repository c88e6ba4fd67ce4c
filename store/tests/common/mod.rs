//! What the store's tests share: a fresh database of either backend.

use telerad_fixtures::database::{Backend, PgDatabase};
use telerad_store::Database;

/// A fresh database of `backend`, and what keeps it alive (the
/// PostgreSQL database is dropped with its guard, the SQLite file with its
/// folder).
pub async fn open(backend: &Backend) -> (Database, Option<PgDatabase>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temp dir");
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.path().join("index.db").display());
            (Database::connect(&url).await.expect("connect"), None, dir)
        }
        Backend::Postgres { admin_url } => {
            let pg = PgDatabase::create(admin_url).await;
            let db = Database::connect(&pg.url).await.expect("connect");
            (db, Some(pg), dir)
        }
    }
}
