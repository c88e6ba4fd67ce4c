//! The study event log: appends that no reader can overtake, one cursor per
//! consumer, failed events set aside for retries and then dead-lettered.
//!
//! On PostgreSQL an identity value is taken at insert and becomes visible at
//! commit, so two appenders could commit out of id order and a reader of
//! `id > cursor` would step over the slower one forever. Appends therefore
//! take one transaction-level advisory lock first: ids are handed out in the
//! order the appending transactions commit. SQLite's single writer gives the
//! same order by itself. Each append also sends a `NOTIFY`, delivered at
//! commit, so that consumers in other processes wake at once.

use crate::db::{Backend, Database};
use crate::ids::{EventId, StudyId};
use serde::Serialize;
use sqlx::{Any, FromRow, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The PostgreSQL channel on which appends are announced.
pub const CHANNEL: &str = "telerad_events";

/// The advisory lock that serialises appends ("telerad" + 1).
const APPEND_LOCK: i64 = 0x7465_6c65_7261_6401;

pub type Tx<'a> = Transaction<'a, Any>;

/// What happened to a study: its images (what the router reads) and its
/// reading workflow (what the notifiers read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The quiet period passed: the study is complete.
    Complete,
    /// A complete study received more images.
    Receiving,
    /// The study was assigned (or reassigned) to a radiologist.
    Assigned,
    /// Nobody acknowledged in time: the study went to someone else or to
    /// the pool.
    Escalated,
    /// A preliminary report was issued.
    Preliminary,
    /// The final report was signed.
    Final,
    /// An addendum was signed.
    Addendum,
    /// A critical finding was flagged.
    CriticalResult,
    /// A critical finding was not acknowledged within its delay.
    CriticalEscalated,
    /// The site acknowledged a critical finding (or the call was recorded).
    CriticalAcknowledged,
    /// A message was posted in the study's thread.
    Message,
    /// A request form was added to the study.
    Form,
    /// A second opinion was asked of a colleague.
    ConsultRequested,
    /// The colleague signed their answer.
    ConsultAnswered,
}

impl EventKind {
    pub const ALL: [EventKind; 14] = [
        EventKind::Complete,
        EventKind::Receiving,
        EventKind::Assigned,
        EventKind::Escalated,
        EventKind::Preliminary,
        EventKind::Final,
        EventKind::Addendum,
        EventKind::CriticalResult,
        EventKind::CriticalEscalated,
        EventKind::CriticalAcknowledged,
        EventKind::Message,
        EventKind::Form,
        EventKind::ConsultRequested,
        EventKind::ConsultAnswered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Complete => "complete",
            EventKind::Receiving => "receiving",
            EventKind::Assigned => "assigned",
            EventKind::Escalated => "escalated",
            EventKind::Preliminary => "preliminary",
            EventKind::Final => "final",
            EventKind::Addendum => "addendum",
            EventKind::CriticalResult => "critical_result",
            EventKind::CriticalEscalated => "critical_escalated",
            EventKind::CriticalAcknowledged => "critical_acknowledged",
            EventKind::Message => "message",
            EventKind::Form => "form",
            EventKind::ConsultRequested => "consult_requested",
            EventKind::ConsultAnswered => "consult_answered",
        }
    }

    /// Whether the event is part of the reading workflow (people are told
    /// of it) rather than of the images' arrival.
    pub fn is_workflow(self) -> bool {
        !matches!(self, EventKind::Complete | EventKind::Receiving)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown study event kind {0:?}")]
pub struct UnknownKind(pub String);

impl FromStr for EventKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<EventKind, UnknownKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event {id}: {source}")]
    Corrupt { id: EventId, source: UnknownKind },
    #[error("no consumer named {0:?}")]
    UnknownConsumer(String),
}

/// One event as a consumer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub study_id: StudyId,
    pub kind: EventKind,
    pub at: i64,
    pub instance_count: i64,
    /// What a workflow event is about (a JSON object); `Null` for the image
    /// events.
    pub detail: serde_json::Value,
}

#[derive(FromRow)]
struct EventRow {
    id: EventId,
    study_id: StudyId,
    kind: String,
    at: i64,
    instance_count: i64,
    detail: Option<String>,
}

impl TryFrom<EventRow> for Event {
    type Error = EventError;
    fn try_from(row: EventRow) -> Result<Event, EventError> {
        let kind = row
            .kind
            .parse()
            .map_err(|source| EventError::Corrupt { id: row.id, source })?;
        let detail = match row.detail {
            None => serde_json::Value::Null,
            Some(text) => serde_json::from_str(&text).map_err(|e| EventError::Corrupt {
                id: row.id,
                source: UnknownKind(format!("detail is not JSON: {e}")),
            })?,
        };
        Ok(Event {
            id: row.id,
            study_id: row.study_id,
            kind,
            at: row.at,
            instance_count: row.instance_count,
            detail,
        })
    }
}

/// Appends an image event in the caller's transaction, visible when it
/// commits.
pub async fn append(
    tx: &mut Tx<'_>,
    backend: Backend,
    study_id: StudyId,
    kind: EventKind,
    at: i64,
    instance_count: i64,
) -> Result<EventId, sqlx::Error> {
    insert(tx, backend, study_id, kind, at, instance_count, None).await
}

/// Appends a workflow event (what people are notified of) in the caller's
/// transaction: the event exists exactly when the change it tells of does.
pub async fn append_workflow(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    kind: EventKind,
    at: i64,
    detail: serde_json::Value,
) -> Result<EventId, sqlx::Error> {
    // `Postgres::NAME`; the callers' transactions do not carry a Backend.
    let backend = if tx.backend_name().eq_ignore_ascii_case("postgresql") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let detail = detail.to_string();
    insert(tx, backend, study_id, kind, at, 0, Some(&detail)).await
}

async fn insert(
    tx: &mut Tx<'_>,
    backend: Backend,
    study_id: StudyId,
    kind: EventKind,
    at: i64,
    instance_count: i64,
    detail: Option<&str>,
) -> Result<EventId, sqlx::Error> {
    if backend == Backend::Postgres {
        // Held to the end of the transaction: the next appender takes its
        // id only after this one's event is visible.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut **tx)
            .await?;
    }
    let (id,): (EventId,) = sqlx::query_as(
        "INSERT INTO study_events (study_id, kind, at, instance_count, detail) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(study_id)
    .bind(kind.as_str())
    .bind(at)
    .bind(instance_count)
    .bind(detail)
    .fetch_one(&mut **tx)
    .await?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut **tx)
            .await?;
    }
    Ok(id)
}

/// How a failed event is retried before it is given up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: i64,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failure: doubling from the first
    /// delay, capped.
    pub fn delay_after(&self, attempts: i64) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }

    /// When to try again after the `attempts`-th failure at `now` (Unix
    /// milliseconds), or `None` once the attempts are used up (dead).
    pub fn next_attempt(&self, attempts: i64, now: i64) -> Option<i64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let delay = i64::try_from(self.delay_after(attempts).as_millis()).unwrap_or(i64::MAX / 4);
        Some(now.saturating_add(delay))
    }
}

/// What became of a failed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Will be tried again at `next_attempt_at`.
    Retrying { attempts: i64, next_attempt_at: i64 },
    /// Given up: kept as a dead letter.
    Dead { attempts: i64 },
    /// Another process moved the cursor meanwhile: nothing recorded.
    Superseded,
}

/// A failed event as operators see it.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct FailedEvent {
    pub consumer: String,
    pub event_id: EventId,
    pub study_instance_uid: String,
    pub kind: String,
    pub attempts: i64,
    pub last_error: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub first_failed_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<i64>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub dead_at: Option<i64>,
}

/// One reader of the log, with its own cursor.
#[derive(Debug, Clone)]
pub struct Consumer {
    name: String,
    retry: RetryPolicy,
}

const EVENT_COLUMNS: &str = "id, study_id, kind, at, instance_count, detail";

impl Consumer {
    pub fn new(name: &str, retry: RetryPolicy) -> Consumer {
        Consumer {
            name: name.to_string(),
            retry,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the cursor at the start of the log if it does not exist.
    pub async fn register(&self, db: &Database) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO event_consumers (name, last_event_id) VALUES ($1, 0) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&self.name)
        .execute(&db.pool)
        .await?;
        Ok(())
    }

    /// Creates the cursor at the newest event if it does not exist: a
    /// consumer added to a running installation starts from now. (The
    /// `WHERE` is SQLite's: an upsert's SELECT needs one to parse.)
    pub async fn register_at_end(&self, db: &Database) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO event_consumers (name, last_event_id) \
             SELECT $1, COALESCE(MAX(id), 0) FROM study_events WHERE TRUE \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&self.name)
        .execute(&db.pool)
        .await?;
        Ok(())
    }

    /// Takes this consumer's turn (the cursor row's lock on PostgreSQL, the
    /// write lock on SQLite) and returns its position: processes sharing the
    /// database handle each event once.
    pub async fn lock_cursor(&self, tx: &mut Tx<'_>) -> Result<EventId, EventError> {
        let row: Option<(EventId,)> = sqlx::query_as(
            "UPDATE event_consumers SET last_event_id = last_event_id WHERE name = $1 \
             RETURNING last_event_id",
        )
        .bind(&self.name)
        .fetch_optional(&mut **tx)
        .await?;
        row.map(|(id,)| id)
            .ok_or_else(|| EventError::UnknownConsumer(self.name.clone()))
    }

    /// The first event after `cursor`: its id, and the event or why it
    /// cannot be read (a corrupt row is that event's failure, not the log's).
    pub async fn next_after(
        &self,
        tx: &mut Tx<'_>,
        cursor: EventId,
    ) -> Result<Option<(EventId, Result<Event, EventError>)>, sqlx::Error> {
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM study_events WHERE id > $1 ORDER BY id LIMIT 1");
        let row: Option<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(cursor)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(row.map(|row| (row.id, Event::try_from(row))))
    }

    /// Moves the cursor, in the transaction that wrote the event's effects.
    pub async fn advance(&self, tx: &mut Tx<'_>, event_id: EventId) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE event_consumers SET last_event_id = $2 WHERE name = $1")
            .bind(&self.name)
            .bind(event_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// A failed event whose next attempt is due, oldest due first.
    pub async fn due_retry(
        &self,
        tx: &mut Tx<'_>,
        now: i64,
    ) -> Result<Option<(EventId, Result<Event, EventError>)>, sqlx::Error> {
        let row: Option<EventRow> = sqlx::query_as(
            "SELECT e.id, e.study_id, e.kind, e.at, e.instance_count, e.detail \
             FROM event_failures f \
             JOIN study_events e ON e.id = f.event_id \
             WHERE f.consumer = $1 AND f.next_attempt_at <= $2 \
             ORDER BY f.next_attempt_at, f.event_id LIMIT 1",
        )
        .bind(&self.name)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(row.map(|row| (row.id, Event::try_from(row))))
    }

    /// The retried event went through: it is no longer a failure.
    pub async fn clear_failure(
        &self,
        tx: &mut Tx<'_>,
        event_id: EventId,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM event_failures WHERE consumer = $1 AND event_id = $2")
            .bind(&self.name)
            .bind(event_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Records that handling `event_id` failed, in a transaction of its own
    /// (the handler's was rolled back). `at_cursor` says whether the event
    /// came from the cursor (`Some(cursor)`: the cursor moves past it only if
    /// it is still there) or from the retry queue (`None`).
    pub async fn record_failure(
        &self,
        db: &Database,
        event_id: EventId,
        at_cursor: Option<EventId>,
        error: &str,
        now: i64,
    ) -> Result<Failure, sqlx::Error> {
        let mut tx = db.pool.begin().await?;
        if let Some(cursor) = at_cursor {
            let moved = sqlx::query(
                "UPDATE event_consumers SET last_event_id = $3 \
                 WHERE name = $1 AND last_event_id = $2",
            )
            .bind(&self.name)
            .bind(cursor)
            .bind(event_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved != 1 {
                tx.rollback().await?;
                return Ok(Failure::Superseded);
            }
        }
        let previous: Option<(i64,)> = sqlx::query_as(
            "SELECT attempts FROM event_failures WHERE consumer = $1 AND event_id = $2",
        )
        .bind(&self.name)
        .bind(event_id)
        .fetch_optional(&mut *tx)
        .await?;
        let attempts = previous.map_or(1, |(n,)| n + 1);
        let outcome = match self.retry.next_attempt(attempts, now) {
            None => Failure::Dead { attempts },
            Some(next_attempt_at) => Failure::Retrying {
                attempts,
                next_attempt_at,
            },
        };
        let (next_attempt_at, dead_at) = match outcome {
            Failure::Retrying {
                next_attempt_at, ..
            } => (Some(next_attempt_at), None),
            _ => (None, Some(now)),
        };
        sqlx::query(
            "INSERT INTO event_failures (consumer, event_id, attempts, last_error, \
             first_failed_at, next_attempt_at, dead_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (consumer, event_id) DO UPDATE SET attempts = excluded.attempts, \
             last_error = excluded.last_error, next_attempt_at = excluded.next_attempt_at, \
             dead_at = excluded.dead_at",
        )
        .bind(&self.name)
        .bind(event_id)
        .bind(attempts)
        .bind(error)
        .bind(now)
        .bind(next_attempt_at)
        .bind(dead_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }
}

/// Events set aside by any consumer, retrying or dead, for operators.
pub async fn failed_events(db: &Database) -> Result<Vec<FailedEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT f.consumer, f.event_id, s.study_instance_uid, e.kind, f.attempts, f.last_error, \
         f.first_failed_at, f.next_attempt_at, f.dead_at FROM event_failures f \
         JOIN study_events e ON e.id = f.event_id JOIN studies s ON s.id = e.study_id \
         ORDER BY f.first_failed_at, f.event_id",
    )
    .fetch_all(&db.pool)
    .await
}

/// Wakes `notify` whenever another connection appends an event (PostgreSQL
/// `LISTEN`), until the returned guard is dropped. On SQLite there is one
/// process, which wakes its consumers itself.
pub fn wake_on_append(
    database: &crate::db::Database,
    notify: Arc<tokio::sync::Notify>,
) -> Option<AbortOnDrop> {
    if database.backend != Backend::Postgres {
        return None;
    }
    let url = database.url.clone();
    let database = database.clone();
    Some(AbortOnDrop(tokio::spawn(async move {
        loop {
            match listen(&url, &notify, &database).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!("listening for study events failed ({e}); retrying in 1 s");
                    // Events appended meanwhile are found by the consumers'
                    // own polling; this only restores the immediate wake-up.
                    notify.notify_waiters();
                    database.ring_events();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    })))
}

async fn listen(
    url: &str,
    notify: &tokio::sync::Notify,
    database: &Database,
) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    // Appends made while nobody listened were not announced: consumers look
    // once now that the next ones will be.
    notify.notify_one();
    database.ring_events();
    loop {
        listener.recv().await?;
        notify.notify_waiters();
        database.ring_events();
        // A consumer busy when the notification came (not waiting) must
        // still see it: the stored permit covers that case.
        notify.notify_one();
    }
}

/// Aborts a background task when dropped.
#[derive(Debug)]
pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    pub(crate) fn new(task: tokio::task::JoinHandle<()>) -> Self {
        AbortOnDrop(task)
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The newest event's id (0 for an empty log): where a reader that only
/// wants what happens from now on starts.
pub async fn newest_event_id(db: &Database) -> Result<EventId, sqlx::Error> {
    let (id,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM study_events")
        .fetch_one(&db.pool)
        .await?;
    Ok(EventId(id.unwrap_or(0)))
}

/// Studies that completed after event `after`, oldest first, at most
/// `limit`: each completion's event id and Study Instance UID.
pub async fn completions_after(
    db: &Database,
    after: EventId,
    limit: i64,
) -> Result<Vec<(EventId, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT e.id, s.study_instance_uid FROM study_events e \
         JOIN studies s ON s.id = e.study_id \
         WHERE e.id > $1 AND e.kind = 'complete' ORDER BY e.id LIMIT $2",
    )
    .bind(after)
    .bind(limit.max(1))
    .fetch_all(&db.pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
        };
        let delays: Vec<u64> = (1..=6).map(|n| policy.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert_eq!(policy.next_attempt(9, 500), Some(10_500));
        assert_eq!(policy.next_attempt(10, 500), None);
    }

    #[test]
    fn kinds_round_trip_and_unknown_ones_are_errors() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>().ok(), Some(kind));
        }
        assert!("Complete".parse::<EventKind>().is_err());
        assert!("".parse::<EventKind>().is_err());
    }
}
