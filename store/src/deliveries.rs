//! Notifications that leave telerad (webhook calls, e-mails), durable: a
//! row of `deliveries` per event and recipient (migration 0018).
//!
//! ```text
//! pending ──claim──▶ sending ──delivered──▶ sent
//!    ▲                  │
//!    └──failure, backoff┤──failure, attempts used up──▶ dead
//!                       └──its worker died (lease run out)──▶ pending, possible_duplicate
//! dead ──retry (operator)──▶ pending
//! ```
//!
//! Every transition is one guarded `UPDATE`, so workers of several
//! processes sharing PostgreSQL never send the same delivery at once.

use crate::events::RetryPolicy;
use crate::ids::EventId;
use serde::Serialize;
use sqlx::FromRow;

pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// How a delivery reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Webhook,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Email => "email",
        }
    }
}

impl TryFrom<String> for Channel {
    type Error = String;
    fn try_from(text: String) -> Result<Channel, String> {
        match text.as_str() {
            "webhook" => Ok(Channel::Webhook),
            "email" => Ok(Channel::Email),
            _ => Err(format!("unknown delivery channel {text:?}")),
        }
    }
}

/// A delivery to plan.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub event_id: EventId,
    pub channel: Channel,
    /// `site:NAME` or `radiologist:ID`: whose configured address.
    pub recipient: String,
    pub target: String,
    pub payload: String,
}

/// A delivery, as the worker sends it and operators see it.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub event_id: EventId,
    pub kind: String,
    pub study_instance_uid: String,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    pub recipient: String,
    pub target: String,
    #[serde(skip)]
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<i64>,
    #[sqlx(try_from = "crate::flag::Flag")]
    pub possible_duplicate: bool,
    pub last_error: Option<String>,
    pub last_status: Option<i64>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<i64>,
}

const COLUMNS: &str = "d.id, d.event_id, e.kind, s.study_instance_uid, d.channel, d.recipient, \
    d.target, d.payload, d.state, d.attempts, d.next_attempt_at, d.possible_duplicate, \
    d.last_error, d.last_status, d.created_at, d.sent_at";
const FROM: &str =
    "deliveries d JOIN study_events e ON e.id = d.event_id JOIN studies s ON s.id = e.study_id";

/// Plans a delivery in the caller's transaction, due at once; `false` if
/// this event was planned for this recipient already.
pub async fn plan(tx: &mut Tx<'_>, new: &NewDelivery, now: i64) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO deliveries (event_id, channel, recipient, target, payload, state, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) \
         ON CONFLICT (event_id, channel, recipient) DO NOTHING",
    )
    .bind(new.event_id)
    .bind(new.channel.as_str())
    .bind(&new.recipient)
    .bind(&new.target)
    .bind(&new.payload)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Takes the most overdue pending delivery for `worker` until
/// `now + lease_ms`.
pub async fn claim_due(
    db: &crate::Database,
    worker: &str,
    now: i64,
    lease_ms: i64,
) -> Result<Option<Delivery>, sqlx::Error> {
    // Another worker may take the candidate first: then look again.
    for _ in 0..8 {
        let candidate: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&db.pool)
        .await?;
        let Some((id,)) = candidate else {
            return Ok(None);
        };
        let taken = sqlx::query(
            "UPDATE deliveries SET state = 'sending', claimed_by = $2, claimed_until = $3, \
             next_attempt_at = NULL, attempts = attempts + 1 WHERE id = $1 AND state = 'pending'",
        )
        .bind(id)
        .bind(worker)
        .bind(now.saturating_add(lease_ms))
        .execute(&db.pool)
        .await?
        .rows_affected();
        if taken == 1 {
            return by_id(db, id).await;
        }
    }
    Ok(None)
}

/// A delivery by id, for the worker and for operators.
pub async fn by_id(db: &crate::Database, id: i64) -> Result<Option<Delivery>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE d.id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// Deliveries whose worker stopped while sending go back to pending, at
/// once, flagged: the recipient may have had them already. One whose
/// attempts are used up is dead instead (a delivery that kills its worker
/// is not tried for ever).
pub async fn reclaim_expired(
    db: &crate::Database,
    now: i64,
    max_attempts: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE deliveries SET \
         state = CASE WHEN attempts >= $2 THEN 'dead' ELSE 'pending' END, \
         next_attempt_at = CASE WHEN attempts >= $2 THEN NULL ELSE $1 END, \
         claimed_by = NULL, claimed_until = NULL, possible_duplicate = TRUE, \
         last_error = 'the worker stopped while sending' \
         WHERE state = 'sending' AND claimed_until < $1",
    )
    .bind(now)
    .bind(max_attempts)
    .execute(&db.pool)
    .await?
    .rows_affected())
}

/// The recipient took it: `false` if the claim was lost meanwhile (the
/// claim is the worker and the attempt it took).
pub async fn mark_sent(
    db: &crate::Database,
    delivery: &Delivery,
    worker: &str,
    status: Option<u16>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE deliveries SET state = 'sent', sent_at = $3, last_status = $4, \
         last_error = NULL, claimed_by = NULL, claimed_until = NULL \
         WHERE id = $1 AND state = 'sending' AND claimed_by = $2 AND attempts = $5",
    )
    .bind(delivery.id)
    .bind(worker)
    .bind(now)
    .bind(status.map(i64::from))
    .bind(delivery.attempts)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// What became of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Retrying {
        next_attempt_at: i64,
    },
    Dead,
    /// The claim was lost meanwhile: nothing recorded.
    Superseded,
}

impl Outcome {
    /// What the `attempts`-th failed attempt leads to: a retry after the
    /// policy's delay, or dead once the attempts are used up.
    pub fn after_failure(attempts: i64, retry: &RetryPolicy, now: i64) -> Outcome {
        match retry.next_attempt(attempts, now) {
            None => Outcome::Dead,
            Some(next_attempt_at) => Outcome::Retrying { next_attempt_at },
        }
    }

    /// The row's state and next attempt for this outcome.
    pub fn state(self) -> (&'static str, Option<i64>) {
        match self {
            Outcome::Retrying { next_attempt_at } => ("pending", Some(next_attempt_at)),
            _ => ("dead", None),
        }
    }
}

/// The attempt failed: retried after the policy's delay, or dead once its
/// attempts are used up.
pub async fn mark_failed(
    db: &crate::Database,
    delivery: &Delivery,
    worker: &str,
    error: &str,
    status: Option<u16>,
    retry: &RetryPolicy,
    now: i64,
) -> Result<Outcome, sqlx::Error> {
    let outcome = Outcome::after_failure(delivery.attempts, retry, now);
    let (state, next) = outcome.state();
    // Bounded: a misbehaving endpoint's answer is not stored whole.
    let error: String = error.chars().take(500).collect();
    let done = sqlx::query(
        "UPDATE deliveries SET state = $3, next_attempt_at = $4, last_error = $5, \
         last_status = $6, claimed_by = NULL, claimed_until = NULL \
         WHERE id = $1 AND state = 'sending' AND claimed_by = $2 AND attempts = $7",
    )
    .bind(delivery.id)
    .bind(worker)
    .bind(state)
    .bind(next)
    .bind(error)
    .bind(status.map(i64::from))
    .bind(delivery.attempts)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(if done == 1 {
        outcome
    } else {
        Outcome::Superseded
    })
}

/// An operator's retry of a dead delivery, in the caller's transaction
/// (with its audit record): pending at once with its attempts counted
/// afresh. `false` if it is not dead.
pub async fn retry(tx: &mut Tx<'_>, id: i64, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $2 \
         WHERE id = $1 AND state = 'dead'",
    )
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// The delivery log, newest first, from before the delivery `before`:
/// every delivery, or those in `state`. One more than `limit` tells the
/// caller there is a next page.
pub async fn list(
    db: &crate::Database,
    state: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE ($1 = '' OR d.state = $1) AND d.id < $2 \
         ORDER BY d.id DESC LIMIT $3"
    )))
    .bind(state.unwrap_or_default())
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit.max(1))
    .fetch_all(&db.pool)
    .await
}

/// When the next pending delivery is due, if any: how long the worker may
/// sleep.
pub async fn next_due(db: &crate::Database) -> Result<Option<i64>, sqlx::Error> {
    let (next,): (Option<i64>,) =
        sqlx::query_as("SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'")
            .fetch_one(&db.pool)
            .await?;
    Ok(next)
}

/// What a notification says of its study: no names, no dates of birth.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StudyFacts {
    pub study_instance_uid: String,
    pub site: String,
    pub accession_number: String,
    pub patient_id: String,
    /// The assignment's priority, once the study is complete.
    pub priority: Option<String>,
}

pub async fn study_facts(
    tx: &mut Tx<'_>,
    study_id: crate::StudyId,
) -> Result<Option<StudyFacts>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.study_instance_uid, s.site, s.accession_number, s.patient_id, a.priority \
         FROM studies s LEFT JOIN assignments a ON a.study_id = s.id WHERE s.id = $1",
    )
    .bind(study_id)
    .fetch_optional(&mut **tx)
    .await
}
