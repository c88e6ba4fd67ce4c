//! The connection to the index database: SQLite (embedded, the default) or
//! PostgreSQL (for several telerad processes or larger sites), chosen by URL.
//!
//! Both are reached through sqlx's `Any` driver so that one set of queries
//! serves both; the SQL is kept to what both understand (`$n` parameters,
//! `ON CONFLICT`, `RETURNING`). Each has its own migrations folder.

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL {0:?}: expected sqlite:… or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot create the folder of the SQLite database {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The index database. Crates above `store` reach it through transactions
/// ([`Database::begin`], [`Database::begin_write`]) and the repository
/// functions that take one, never through the pool itself.
#[derive(Clone)]
pub struct Database {
    pub(crate) pool: AnyPool,
    pub backend: Backend,
    /// As given (PostgreSQL's listener opens a connection of its own).
    pub url: String,
    /// Rung after workflow events are committed (by this process, or by
    /// another one sharing PostgreSQL, through `LISTEN`): what the
    /// notifiers wait on besides their polling.
    events_bell: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// Set when the process stops: readers that follow the database for
    /// long (event streams) end, so that the server's graceful shutdown
    /// does not wait for them.
    closing: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

// By hand: the URL may carry the database password, and archives (which
// hold a Database) are logged with `{:?}`.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .field("url", &telerad_config::redact_password(&self.url))
            .finish_non_exhaustive()
    }
}

impl Database {
    /// A transaction, for reads or for writes that begin with a write (on
    /// SQLite a read first then a write wants [`Database::begin_write`]).
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Tells the notifiers that events were committed. Call it after the
    /// commit: a notifier woken before would find nothing yet and wait for
    /// its next poll.
    pub fn ring_events(&self) {
        self.events_bell.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes whenever [`Database::ring_events`] is called.
    pub fn events_bell(&self) -> tokio::sync::watch::Receiver<u64> {
        self.events_bell.subscribe()
    }

    /// Tells long readers to stop: the process is shutting down.
    pub fn announce_closing(&self) {
        self.closing.send_replace(true);
    }

    /// Changes to `true` when [`Database::announce_closing`] is called.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Closes every connection (at shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool itself, for tests and benchmarks that inspect or arrange
    /// tables directly.
    #[cfg(feature = "test-support")]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that reads, then writes. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`): a read transaction cannot be
    /// upgraded once another connection has committed (the WAL snapshot is
    /// stale), and SQLite then fails at once with "database is locked"
    /// instead of waiting its busy timeout.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Connects and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Database, DbError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl(url.to_string()));
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let pool = match backend {
            Backend::Sqlite => {
                create_sqlite_dir(url)?;
                let url = &create_if_missing(url);
                options
                    // SQLite has one writer at a time; a few connections
                    // suffice and keep lock waits short.
                    .max_connections(8)
                    // An embedded database's connections do not go stale;
                    // the ping on each acquisition would be one more hop to
                    // sqlx's worker thread per transaction.
                    .test_before_acquire(false)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // WAL lets readers (HTTP) run beside the writer;
                            // synchronous=FULL makes each commit durable
                            // before C-STORE success is answered.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await
            }
            Backend::Postgres => options.max_connections(16).connect(url).await,
        }
        .map_err(DbError::Connect)?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Database {
            pool,
            backend,
            url: url.to_string(),
            events_bell: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
            closing: std::sync::Arc::new(tokio::sync::watch::channel(false).0),
        })
    }
}

/// A SQLite URL without an open mode would refuse a file that does not
/// exist yet ("unable to open database file"): a new database is created.
fn create_if_missing(url: &str) -> String {
    let has_mode = url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|p| p.starts_with("mode=")));
    let memory = url.contains(":memory:");
    match (has_mode || memory, url.contains('?')) {
        (true, _) => url.to_string(),
        (false, true) => format!("{url}&mode=rwc"),
        (false, false) => format!("{url}?mode=rwc"),
    }
}

/// The file of a SQLite URL; `None` for another database or in memory.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .strip_prefix("sqlite:")?
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    Some(path.into())
}

/// `sqlite://data/telerad.db?mode=rwc` → creates `data/`.
fn create_sqlite_dir(url: &str) -> Result<(), DbError> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    if let Some(parent) = Path::new(&path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| DbError::CreateDir {
            path: parent.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_url_without_a_mode_creates_its_file() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("new").join("telerad.db");
        let url = format!("sqlite://{}", path.display());
        assert!(url.starts_with("sqlite:///"), "an absolute path: {url}");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let db = runtime
            .block_on(Database::connect(&url))
            .expect("a new database is created");
        assert_eq!(db.backend, Backend::Sqlite);
        assert!(path.is_file());
    }

    #[test]
    fn debug_hides_the_password() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut db = runtime
            .block_on(Database::connect(&format!(
                "sqlite://{}",
                dir.path().join("d.db").display()
            )))
            .expect("SQLite");
        db.url = "postgres://telerad:hunter2@db.example/telerad".into();
        let debug = format!("{db:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("telerad:***@db.example"), "{debug}");
    }

    #[test]
    fn an_explicit_mode_is_kept() {
        assert_eq!(create_if_missing("sqlite://a.db"), "sqlite://a.db?mode=rwc");
        assert_eq!(
            create_if_missing("sqlite://a.db?cache=shared"),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            create_if_missing("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(create_if_missing("sqlite::memory:"), "sqlite::memory:");
    }
}
