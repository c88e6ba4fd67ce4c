//! Storage commitment reports sent on an association of their own (DICOM
//! PS3.4 J.3.3.1.2), one row each (migration 0026), written before the
//! N-ACTION is answered so that an accepted request is always reported.
//!
//! ```text
//! pending ──claim──▶ sending ──the requester answered──▶ sent
//!    ▲                  │
//!    └──failure, backoff┤──failure, attempts used up──▶ dead
//!                       └──its worker died (lease run out)──▶ pending, possible_duplicate
//! ```
//!
//! Every transition is one guarded `UPDATE`, as for deliveries, so that
//! workers of several processes sharing PostgreSQL never send the same
//! report at once. A report sent twice tells the requester nothing new
//! (the same transaction, the same instances): the flag is kept for
//! operators.

use crate::Database;
use crate::clock::Clock;
use crate::deliveries::Outcome;
use crate::events::RetryPolicy;
use serde::Serialize;
use sqlx::FromRow;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A report to send.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub site: String,
    pub ae_title: String,
    pub address: String,
    pub transaction_uid: String,
    /// `telerad_dicom::commitment::Outcomes` as JSON.
    pub outcomes: String,
}

/// A report, as the worker sends it and operators see it.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Report {
    pub id: i64,
    pub site: String,
    pub ae_title: String,
    pub address: String,
    pub transaction_uid: String,
    #[serde(skip)]
    pub outcomes: String,
    pub state: String,
    pub attempts: i64,
    #[sqlx(try_from = "crate::flag::Flag")]
    pub possible_duplicate: bool,
    pub last_error: Option<String>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    pub sent_at: Option<i64>,
}

const COLUMNS: &str = "id, site, ae_title, address, transaction_uid, outcomes, state, \
    attempts, possible_duplicate, last_error, created_at, sent_at";

/// The reports' queue, shared by the associations that fill it and the
/// worker that empties it.
#[derive(Debug)]
pub struct CommitmentReports {
    db: Database,
    clock: Arc<dyn Clock>,
    work: Notify,
}

impl CommitmentReports {
    pub fn new(db: Database, clock: Arc<dyn Clock>) -> CommitmentReports {
        CommitmentReports {
            db,
            clock,
            work: Notify::new(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Writes a report due at once and wakes the worker; its id.
    pub async fn enqueue(&self, new: &NewReport) -> Result<i64, sqlx::Error> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO commitment_reports (site, ae_title, address, transaction_uid, outcomes, \
             state, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) \
             RETURNING id",
        )
        .bind(&new.site)
        .bind(&new.ae_title)
        .bind(&new.address)
        .bind(&new.transaction_uid)
        .bind(&new.outcomes)
        .bind(self.now_ms())
        .fetch_one(&self.db.pool)
        .await?;
        self.work.notify_one();
        Ok(id)
    }

    /// Until a report is enqueued here, or `limit` has passed.
    pub async fn wait_for_work(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.work.notified()).await;
    }

    /// Takes the most overdue pending report for `worker` until
    /// `now + lease_ms`.
    pub async fn claim_due(
        &self,
        worker: &str,
        lease_ms: i64,
    ) -> Result<Option<Report>, sqlx::Error> {
        let now = self.now_ms();
        // Another worker may take the candidate first: then look again.
        for _ in 0..8 {
            let candidate: Option<(i64,)> = sqlx::query_as(
                "SELECT id FROM commitment_reports WHERE state = 'pending' \
                 AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT 1",
            )
            .bind(now)
            .fetch_optional(&self.db.pool)
            .await?;
            let Some((id,)) = candidate else {
                return Ok(None);
            };
            let taken = sqlx::query(
                "UPDATE commitment_reports SET state = 'sending', claimed_by = $2, \
                 claimed_until = $3, next_attempt_at = NULL, attempts = attempts + 1 \
                 WHERE id = $1 AND state = 'pending'",
            )
            .bind(id)
            .bind(worker)
            .bind(now.saturating_add(lease_ms))
            .execute(&self.db.pool)
            .await?
            .rows_affected();
            if taken == 1 {
                return self.by_id(id).await;
            }
        }
        Ok(None)
    }

    pub async fn by_id(&self, id: i64) -> Result<Option<Report>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM commitment_reports WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await
    }

    /// The newest reports first, for operators and tests.
    pub async fn recent(&self, limit: i64) -> Result<Vec<Report>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM commitment_reports ORDER BY id DESC LIMIT $1"
        )))
        .bind(limit.max(1))
        .fetch_all(&self.db.pool)
        .await
    }

    /// Reports whose worker stopped while sending are due again at once,
    /// flagged; one whose attempts are used up is dead instead.
    pub async fn reclaim_expired(&self, max_attempts: i64) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query(
            "UPDATE commitment_reports SET \
             state = CASE WHEN attempts >= $2 THEN 'dead' ELSE 'pending' END, \
             next_attempt_at = CASE WHEN attempts >= $2 THEN NULL ELSE $1 END, \
             claimed_by = NULL, claimed_until = NULL, possible_duplicate = TRUE, \
             last_error = 'the worker stopped while sending' \
             WHERE state = 'sending' AND claimed_until < $1",
        )
        .bind(self.now_ms())
        .bind(max_attempts)
        .execute(&self.db.pool)
        .await?
        .rows_affected())
    }

    /// The requester answered the report: `false` if the claim was lost
    /// meanwhile.
    pub async fn mark_sent(&self, report: &Report, worker: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE commitment_reports SET state = 'sent', sent_at = $3, last_error = NULL, \
             claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1 AND state = 'sending' AND claimed_by = $2 AND attempts = $4",
        )
        .bind(report.id)
        .bind(worker)
        .bind(self.now_ms())
        .bind(report.attempts)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// The attempt failed: retried after the policy's delay, or dead once
    /// its attempts are used up.
    pub async fn mark_failed(
        &self,
        report: &Report,
        worker: &str,
        error: &str,
        retry: &RetryPolicy,
    ) -> Result<Outcome, sqlx::Error> {
        let now = self.now_ms();
        let outcome = Outcome::after_failure(report.attempts, retry, now);
        let (state, next) = outcome.state();
        let error: String = error.chars().take(500).collect();
        let done = sqlx::query(
            "UPDATE commitment_reports SET state = $3, next_attempt_at = $4, last_error = $5, \
             claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1 AND state = 'sending' AND claimed_by = $2 AND attempts = $6",
        )
        .bind(report.id)
        .bind(worker)
        .bind(state)
        .bind(next)
        .bind(error)
        .bind(report.attempts)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        Ok(if done == 1 {
            outcome
        } else {
            Outcome::Superseded
        })
    }

    /// When the next pending report is due, if any.
    pub async fn next_due(&self) -> Result<Option<i64>, sqlx::Error> {
        let (next,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(next_attempt_at) FROM commitment_reports WHERE state = 'pending'",
        )
        .fetch_one(&self.db.pool)
        .await?;
        Ok(next)
    }
}
