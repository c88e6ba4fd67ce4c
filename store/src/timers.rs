//! Durable timers: "do X for subject S at time T, once", for every kind of
//! deadline (study completion, acknowledgement, critical result).
//!
//! A timer is a row (kind, subject, due time). A node claims the due ones
//! for a lease, handles each in a transaction of its own and, in that same
//! transaction, deletes it or schedules the next deadline of the subject. A
//! claim is a guarded `UPDATE`, so each due timer is handled by one node at
//! a time; a node that dies loses its lease and another takes the timer
//! over. Due timers are taken oldest first, and a handled one leaves the
//! queue, so none waits behind another for ever; nothing is written while
//! nothing is due (a read finds the next due time first).

use crate::db::Database;
use sqlx::{Any, FromRow, Transaction};

pub type Tx<'a> = Transaction<'a, Any>;

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// A study's quiet period ends (subject: the study's id).
    StudyComplete,
    /// An assignment's acknowledgement deadline (subject: its id).
    Acknowledgement,
    /// A critical result's acknowledgement deadline (subject: its id).
    CriticalResult,
}

impl TimerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::StudyComplete => "study_complete",
            TimerKind::Acknowledgement => "acknowledgement",
            TimerKind::CriticalResult => "critical_result",
        }
    }
}

/// A due timer claimed by this node.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Timer {
    pub id: i64,
    pub subject_id: i64,
    pub due_at: i64,
}

/// Sets the subject's deadline of this kind (replacing an earlier one, and
/// any claim on it), in the caller's transaction.
pub async fn schedule(
    tx: &mut Tx<'_>,
    kind: TimerKind,
    subject_id: i64,
    due_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO timers (kind, subject_id, due_at) VALUES ($1, $2, $3) \
         ON CONFLICT (kind, subject_id) DO UPDATE SET due_at = excluded.due_at, \
         claimed_by = NULL, claimed_until = NULL",
    )
    .bind(kind.as_str())
    .bind(subject_id)
    .bind(due_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The same, unless the subject already has one.
pub async fn schedule_if_none(
    tx: &mut Tx<'_>,
    kind: TimerKind,
    subject_id: i64,
    due_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO timers (kind, subject_id, due_at) VALUES ($1, $2, $3) \
         ON CONFLICT (kind, subject_id) DO NOTHING",
    )
    .bind(kind.as_str())
    .bind(subject_id)
    .bind(due_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes the subject's deadline of this kind, if any.
pub async fn cancel(tx: &mut Tx<'_>, kind: TimerKind, subject_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM timers WHERE kind = $1 AND subject_id = $2")
        .bind(kind.as_str())
        .bind(subject_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Claims up to `limit` due timers of `kind` for `node` until
/// `now + lease_ms`, oldest due first. Reads first: no write while nothing
/// is due.
pub async fn claim_due(
    db: &Database,
    kind: TimerKind,
    node: &str,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<Timer>, sqlx::Error> {
    let due: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM timers WHERE kind = $1 AND due_at <= $2 \
         AND (claimed_until IS NULL OR claimed_until < $2) ORDER BY due_at, id LIMIT $3",
    )
    .bind(kind.as_str())
    .bind(now)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    let mut claimed = Vec::with_capacity(due.len());
    for (id,) in due {
        // Guarded: of several nodes, one gets it.
        let timer: Option<Timer> = sqlx::query_as(
            "UPDATE timers SET claimed_by = $2, claimed_until = $3 \
             WHERE id = $1 AND due_at <= $4 AND (claimed_until IS NULL OR claimed_until < $4) \
             RETURNING id, subject_id, due_at",
        )
        .bind(id)
        .bind(node)
        .bind(now.saturating_add(lease_ms))
        .bind(now)
        .fetch_optional(&db.pool)
        .await?;
        claimed.extend(timer);
    }
    Ok(claimed)
}

/// Due timers of `kind`, oldest first, unclaimed or with a lapsed claim:
/// for a handler that takes each one ([`take`]) in the transaction that
/// acts on it, and so needs no lease. Read-only.
pub async fn due(
    db: &Database,
    kind: TimerKind,
    now: i64,
    limit: i64,
) -> Result<Vec<Timer>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, subject_id, due_at FROM timers WHERE kind = $1 AND due_at <= $2 \
         AND (claimed_until IS NULL OR claimed_until < $2) ORDER BY due_at, id LIMIT $3",
    )
    .bind(kind.as_str())
    .bind(now)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// Removes a due timer at the start of the transaction that acts on it:
/// `false` when another node took it first (or it was rescheduled). Its row
/// lock, held to the commit, keeps the others out meanwhile.
pub async fn take(tx: &mut Tx<'_>, timer: &Timer) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM timers WHERE id = $1 AND due_at = $2")
            .bind(timer.id)
            .bind(timer.due_at)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1,
    )
}

/// The timer has been handled: removed, in the transaction that did the
/// work, unless that work scheduled the subject's next deadline (a new due
/// time then stays).
pub async fn done(tx: &mut Tx<'_>, timer: &Timer, node: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM timers WHERE id = $1 AND due_at = $2 AND claimed_by = $3")
        .bind(timer.id)
        .bind(timer.due_at)
        .bind(node)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The earliest due time of `kind`, claimed or not.
pub async fn next_due(db: &Database, kind: TimerKind) -> Result<Option<i64>, sqlx::Error> {
    let (due,): (Option<i64>,) = sqlx::query_as("SELECT MIN(due_at) FROM timers WHERE kind = $1")
        .bind(kind.as_str())
        .fetch_one(&db.pool)
        .await?;
    Ok(due)
}
