//! Wall-clock time as Unix milliseconds, behind a trait so that tests of
//! time-driven behaviour (quiet periods, later rota and escalation) can set it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that stays where it is put.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock(AtomicI64::new(now_ms))
    }
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The system clock shifted to start at a chosen instant, then running at
/// normal speed: lets a drill or an end-to-end test live "at 03:00 on a
/// Sunday" with real timers.
#[derive(Debug)]
pub struct OffsetClock {
    offset_ms: i64,
}

impl OffsetClock {
    pub fn starting_at(start_ms: i64) -> OffsetClock {
        OffsetClock {
            offset_ms: start_ms - SystemClock.now_ms(),
        }
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.offset_ms
    }
}

/// The database's clock, read as an offset from this machine's: nodes that
/// share a PostgreSQL database agree on due times and leases whatever their
/// own clocks say. The offset is measured by [`DatabaseClock::synchronise`]
/// (at start-up, then now and then); until then it is this machine's clock.
#[derive(Debug, Default)]
pub struct DatabaseClock {
    offset_ms: AtomicI64,
}

impl DatabaseClock {
    pub fn new() -> DatabaseClock {
        DatabaseClock::default()
    }

    /// Measures the offset against the database; returns it.
    pub async fn synchronise(&self, db: &crate::db::Database) -> Result<i64, sqlx::Error> {
        let sql = match db.backend {
            crate::db::Backend::Postgres => {
                "SELECT CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)"
            }
            crate::db::Backend::Sqlite => {
                "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
            }
        };
        self.synchronise_with(async {
            let (now,): (i64,) = sqlx::query_as(sql).fetch_one(&db.pool).await?;
            Ok(now)
        })
        .await
    }

    /// The same, with the database's time read by `read`: the offset is
    /// taken against the middle of the round trip.
    pub async fn synchronise_with<F>(&self, read: F) -> Result<i64, sqlx::Error>
    where
        F: std::future::Future<Output = Result<i64, sqlx::Error>>,
    {
        let before = SystemClock.now_ms();
        let database_now = read.await?;
        let after = SystemClock.now_ms();
        let offset = database_now - (before + (after - before) / 2);
        self.offset_ms.store(offset, Ordering::SeqCst);
        Ok(offset)
    }
}

impl Clock for DatabaseClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_clock_follows_the_database_not_this_machine() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let clock = DatabaseClock::new();
        let hour = 3_600_000;
        let offset = runtime
            .block_on(clock.synchronise_with(async { Ok(SystemClock.now_ms() + hour) }))
            .expect("synchronise");
        assert!((offset - hour).abs() < 1_000, "offset {offset}");
        let ahead = clock.now_ms() - SystemClock.now_ms();
        assert!((ahead - hour).abs() < 1_000, "{ahead}");
    }

    #[test]
    fn both_databases_tell_their_time() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let db = runtime
            .block_on(crate::db::Database::connect(&url))
            .expect("SQLite");
        let clock = DatabaseClock::new();
        let offset = runtime
            .block_on(clock.synchronise(&db))
            .expect("SQLite's time");
        // The same machine's clock, read through SQLite.
        assert!(offset.abs() < 1_000, "offset {offset}");
    }
}
