//! The durable outbox: which instance versions must reach which DICOM
//! destination (a radiologist's workstation), and how far each got.
//!
//! A [`ForwardJob`] is a row of `forward_jobs`, in the index database, so an
//! enqueued instance survives any crash. Its life:
//!
//! ```text
//! pending ──claim──▶ sending ──C-STORE success──▶ sent
//!    ▲                  │
//!    └──failure, backoff┤──failure, attempts used up or hopeless──▶ dead
//!                       └──its forwarder died (lease run out / next start)──▶ pending
//!                            (flagged possible_duplicate if its C-STORE had begun)
//! dead ──retry (operator)──▶ pending
//! ```
//!
//! Every transition is one guarded `UPDATE` (`WHERE state = …` and, while
//! `sending`, `AND claimed_by = <this forwarder>`), so several telerad
//! processes sharing one PostgreSQL database never deliver the same job at
//! the same time. The sending itself is the `telerad-forward` crate's job.

use crate::audit::{self, AuditRecord};
use crate::clock::{Clock, SystemClock};
use crate::db::{Backend, Database};
use crate::ids::ForwardJobId;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// A job's place in its workstation's queue (migration 0023), lower first:
/// the study's priority (its assignment's: STAT 0, urgent 4, routine or
/// none 8), plus the series' place within a study, from its description
/// (PS3.3 C.7.3.1: free text, so by the words scanners use): a plain
/// series 0 (a stroke's non-contrast head), an angiography 1, a perfusion 2.
const SEND_RANK: &str = "COALESCE((SELECT CASE a.priority WHEN 'stat' THEN 0 \
     WHEN 'urgent' THEN 4 ELSE 8 END FROM assignments a WHERE a.study_id = st.id), 8) + \
     CASE WHEN LOWER(se.series_description) LIKE '%perf%' THEN 2 \
     WHEN LOWER(se.series_description) LIKE '%angio%' \
     OR LOWER(se.series_description) LIKE '%cta%' THEN 1 ELSE 0 END";

/// How long a `sending` claim stays valid without renewal. A running
/// forwarder renews its claims every [`Outbox::renewal_interval`], so only
/// a process that died (or lost the database for this long) loses them.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(5 * 60);

/// Where instances are delivered: a DICOM storage SCP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Destination {
    /// A label for people and logs, such as the radiologist's id. The
    /// address (AE title, host, port) is what identifies a destination.
    pub name: String,
    pub ae_title: String,
    pub host: String,
    pub port: u16,
}

impl Destination {
    /// `HOST:PORT`, with an IPv6 host in brackets.
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Why this destination cannot be used, if it cannot.
    fn problem(&self) -> Option<String> {
        let ae = &self.ae_title;
        // PS3.5 §6.2: AE is 16 characters at most of the default repertoire,
        // no backslash or control characters; leading and trailing spaces
        // are padding.
        if ae.trim().is_empty() || ae.len() > 16 {
            return Some(format!("AE title {ae:?}: expected 1 to 16 characters"));
        }
        if ae.chars().any(|c| c == '\\' || !(' '..='~').contains(&c)) {
            return Some(format!(
                "AE title {ae:?}: only printable ASCII without backslash is allowed"
            ));
        }
        if self.host.trim().is_empty() {
            return Some("the host is empty".into());
        }
        if self.port == 0 {
            return Some("port 0 is not a port one can connect to".into());
        }
        None
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{} ({})", self.ae_title, self.address(), self.name)
    }
}

/// Where a job is in its life; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Sending,
    Sent,
    Dead,
}

impl JobState {
    pub const ALL: [JobState; 4] = [
        JobState::Pending,
        JobState::Sending,
        JobState::Sent,
        JobState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Sending => "sending",
            JobState::Sent => "sent",
            JobState::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When to try again after a failed delivery, and when to give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure; doubled after each further one.
    pub base: Duration,
    /// The delay never exceeds this.
    pub max_delay: Duration,
    /// After this many attempts the job is `dead`, for an operator to see.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 15 s, 30 s, 1 min, … up to 10 min between attempts, 20 attempts:
    /// about two and a half hours of trying, enough to ride out a
    /// workstation reboot or a night-time network cut, short enough that a
    /// study still undelivered is seen by an operator during the same shift.
    fn default() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(15),
            max_delay: Duration::from_secs(10 * 60),
            max_attempts: 20,
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempt`-th failed attempt (1-based):
    /// `base × 2^(attempt-1)`, capped by `max_delay`.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(62);
        self.base
            .checked_mul(1u32.checked_shl(doublings).unwrap_or(u32::MAX))
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// When to try again after the `attempt`-th failed attempt at `now`
    /// (Unix milliseconds), or `None` once the attempts are used up.
    pub fn next_attempt(&self, attempt: u32, now: i64) -> Option<i64> {
        if attempt >= self.max_attempts {
            return None;
        }
        let delay = i64::try_from(self.delay_after(attempt).as_millis()).unwrap_or(i64::MAX / 4);
        Some(now.saturating_add(delay))
    }
}

/// One instance version to deliver to one destination.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ForwardJob {
    pub id: ForwardJobId,
    pub study_instance_uid: String,
    pub sop_instance_uid: String,
    pub version: i64,
    /// Relative to the storage root, as in the index.
    pub path: String,
    pub sop_class_uid: String,
    /// The transfer syntax the instance is stored in.
    pub transfer_syntax_uid: String,
    pub destination: Destination,
    pub state: JobState,
    /// C-STORE attempts made, successful or not.
    pub attempts: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub claimed_by: Option<String>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub claimed_at: Option<i64>,
    /// The destination may already have had this instance before this
    /// delivery (telerad stopped, or the response was lost, after the data
    /// set had been sent).
    pub possible_duplicate: bool,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<i64>,
    /// Lower goes first: the study's priority (STAT 0, urgent 4, routine
    /// 8) plus the series' (plain 0, angiography 1, perfusion 2).
    pub send_rank: i64,
}

/// A page of [`Outbox::page`].
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    pub jobs: Vec<ForwardJob>,
    /// The `before` of the next page; `None` on the last page.
    pub next: Option<ForwardJobId>,
}

/// Which dead jobs [`Outbox::retry_dead`] puts back in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryScope<'a> {
    /// Every dead job of the study with this Study Instance UID.
    Study(&'a str),
    /// Every dead job to the destination with this name or AE title.
    Destination(&'a str),
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("no study {0} in the index")]
    UnknownStudy(String),
    #[error("destination {destination}: {reason}")]
    InvalidDestination { destination: String, reason: String },
    #[error("state {0:?}: expected pending, sending, sent or dead")]
    InvalidState(String),
    #[error("job {id} is {state}: only dead or pending jobs can be retried")]
    NotRetryable { id: ForwardJobId, state: JobState },
    #[error("job {id} in the database is unreadable: {reason}")]
    Corrupt { id: ForwardJobId, reason: String },
}

/// How a delivery attempt failed, as the forwarder saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    /// Trying again cannot help (e.g. the destination refuses the
    /// instance's compressed transfer syntax): `dead` at once.
    pub hopeless: bool,
    /// The data set had been sent when the failure happened: the
    /// destination may have stored it, so the next delivery is flagged.
    pub possibly_delivered: bool,
}

/// A job found `sending` whose claim had run out, put back in the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Abandoned {
    pub job: ForwardJob,
    /// Its C-STORE had begun: the destination may have it already.
    pub send_started: bool,
}

const JOB_COLUMNS: &str = "id, study_instance_uid, sop_instance_uid, version, path, \
    sop_class_uid, transfer_syntax_uid, destination_name, destination_ae_title, \
    destination_host, destination_port, state, attempts, next_attempt_at, last_error, \
    claimed_by, claimed_at, possible_duplicate, created_at, sent_at, send_rank";

/// A row as stored; [`ForwardJob`] is its checked form.
#[derive(Debug, FromRow)]
struct JobRow {
    id: ForwardJobId,
    study_instance_uid: String,
    sop_instance_uid: String,
    version: i64,
    path: String,
    sop_class_uid: String,
    transfer_syntax_uid: String,
    destination_name: String,
    destination_ae_title: String,
    destination_host: String,
    destination_port: i64,
    state: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    claimed_by: Option<String>,
    claimed_at: Option<i64>,
    #[sqlx(try_from = "crate::flag::Flag")]
    possible_duplicate: bool,
    created_at: i64,
    sent_at: Option<i64>,
    send_rank: i64,
}

impl TryFrom<JobRow> for ForwardJob {
    type Error = OutboxError;
    fn try_from(row: JobRow) -> Result<ForwardJob, OutboxError> {
        let corrupt = |reason: String| OutboxError::Corrupt { id: row.id, reason };
        let state = JobState::parse(&row.state)
            .ok_or_else(|| corrupt(format!("unknown state {:?}", row.state)))?;
        let port = u16::try_from(row.destination_port)
            .map_err(|_| corrupt(format!("port {} out of range", row.destination_port)))?;
        Ok(ForwardJob {
            id: row.id,
            study_instance_uid: row.study_instance_uid,
            sop_instance_uid: row.sop_instance_uid,
            version: row.version,
            path: row.path,
            sop_class_uid: row.sop_class_uid,
            transfer_syntax_uid: row.transfer_syntax_uid,
            destination: Destination {
                name: row.destination_name,
                ae_title: row.destination_ae_title,
                host: row.destination_host,
                port,
            },
            state,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
            claimed_by: row.claimed_by,
            claimed_at: row.claimed_at,
            possible_duplicate: row.possible_duplicate,
            created_at: row.created_at,
            sent_at: row.sent_at,
            send_rank: row.send_rank,
        })
    }
}

fn jobs(mut rows: Vec<JobRow>) -> Result<Vec<ForwardJob>, OutboxError> {
    // RETURNING gives no order; callers send in queue order (rank, then
    // enqueue order).
    rows.sort_by_key(|row| (row.send_rank, row.id));
    rows.into_iter().map(ForwardJob::try_from).collect()
}

/// Gives the study's jobs not yet sent the rank its assignment's priority
/// now gives them (a request form raised it), in `tx`. Returns how many
/// jobs changed; the caller calls [`Outbox::reranked`] after committing.
pub async fn rerank_study(
    tx: &mut crate::events::Tx<'_>,
    study_instance_uid: &str,
) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "UPDATE forward_jobs SET send_rank = (SELECT {SEND_RANK} \
         FROM instances i JOIN studies st ON st.id = i.study_id \
         JOIN series se ON se.id = i.series_id \
         WHERE st.study_instance_uid = forward_jobs.study_instance_uid \
         AND i.sop_instance_uid = forward_jobs.sop_instance_uid \
         AND i.version = forward_jobs.version LIMIT 1) \
         WHERE study_instance_uid = $1 AND state IN ('pending', 'sending') \
         AND EXISTS (SELECT 1 FROM instances i JOIN studies st ON st.id = i.study_id \
         WHERE st.study_instance_uid = forward_jobs.study_instance_uid \
         AND i.sop_instance_uid = forward_jobs.sop_instance_uid \
         AND i.version = forward_jobs.version)"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(study_instance_uid)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// The queue of deliveries, shared by whoever enqueues (assignment, the
/// HTTP API) and the forwarder.
#[derive(Debug)]
pub struct Outbox {
    db: Database,
    policy: RetryPolicy,
    lease: Duration,
    /// Times in `forward_jobs` are on this clock: the archive's, so that
    /// they compare with the assignments' (a drill's `--clock-start` moves
    /// both). It must run in real time: backoff waits are slept for real.
    clock: Arc<dyn Clock>,
    /// Wakes the forwarder when work is enqueued, so that it need not wait
    /// for its next poll.
    work: Notify,
    /// Counts enqueues that added jobs: a forwarder that sees it move
    /// looks whether more urgent work than its own is now waiting.
    enqueues: AtomicU64,
}

impl Outbox {
    pub fn new(db: Database, policy: RetryPolicy) -> Outbox {
        Outbox {
            db,
            policy,
            lease: DEFAULT_CLAIM_LEASE,
            clock: Arc::new(SystemClock),
            work: Notify::new(),
            enqueues: AtomicU64::new(0),
        }
    }

    /// Changes how long an unrenewed claim lasts (tests use a short one to
    /// see a crashed forwarder's jobs recovered on PostgreSQL).
    pub fn with_claim_lease(mut self, lease: Duration) -> Outbox {
        self.lease = lease.max(Duration::from_millis(10));
        self
    }

    /// Puts the jobs' times on `clock` (see the field).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Outbox {
        self.clock = clock;
        self
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    pub fn claim_lease(&self) -> Duration {
        self.lease
    }

    /// How often a forwarder renews its claims: well inside the lease, so
    /// that a slow database or a long C-STORE does not let it run out.
    pub fn renewal_interval(&self) -> Duration {
        self.lease / 5
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Resolves when work was enqueued or made due since the last call.
    pub async fn work_enqueued(&self) {
        self.work.notified().await;
    }

    /// Enqueues, for `destination`, the current (latest) version of every
    /// instance of the study not yet enqueued for it, and returns how many
    /// jobs were added. Calling it again after late images adds only those;
    /// a new version of an instance is a new job.
    pub async fn enqueue_study(
        &self,
        study_instance_uid: &str,
        destination: &Destination,
    ) -> Result<u64, OutboxError> {
        self.insert_jobs(study_instance_uid, destination, &[]).await
    }

    /// [`Outbox::enqueue_study`] for the instances named in `only` (all
    /// when empty).
    async fn insert_jobs(
        &self,
        study_instance_uid: &str,
        destination: &Destination,
        only: &[String],
    ) -> Result<u64, OutboxError> {
        if let Some(reason) = destination.problem() {
            return Err(OutboxError::InvalidDestination {
                destination: destination.to_string(),
                reason,
            });
        }
        let known: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM studies WHERE study_instance_uid = $1")
                .bind(study_instance_uid)
                .fetch_optional(&self.db.pool)
                .await?;
        if known.is_none() {
            return Err(OutboxError::UnknownStudy(study_instance_uid.to_string()));
        }
        let named = if only.is_empty() {
            String::new()
        } else {
            format!(
                "AND i.sop_instance_uid IN ({})",
                placeholders(7, only.len())
            )
        };
        // One statement: the set of instances and the insertion are one
        // atomic step, and the unique key makes a repeated or concurrent
        // call add nothing twice. The latest version is taken within the
        // study (a SOP Instance UID re-used by another study is not this
        // study's instance). The ORDER BY gives ids in series and instance
        // order, which is the order the forwarder sends in.
        let sql = format!(
            "INSERT INTO forward_jobs (study_instance_uid, sop_instance_uid, version, path, \
             sop_class_uid, transfer_syntax_uid, destination_name, destination_ae_title, \
             destination_host, destination_port, state, attempts, next_attempt_at, created_at, \
             send_rank) \
             SELECT st.study_instance_uid, i.sop_instance_uid, i.version, i.path, \
             i.sop_class_uid, i.transfer_syntax_uid, $2, $3, $4, $5, 'pending', 0, $6, $6, \
             {SEND_RANK} \
             FROM instances i JOIN studies st ON st.id = i.study_id \
             JOIN series se ON se.id = i.series_id \
             WHERE st.study_instance_uid = $1 AND i.version = \
             (SELECT MAX(v.version) FROM instances v \
              WHERE v.sop_instance_uid = i.sop_instance_uid AND v.study_id = i.study_id) {named} \
             ORDER BY i.series_id, i.instance_number, i.id \
             ON CONFLICT (destination_ae_title, destination_host, destination_port, \
             sop_instance_uid, version) DO NOTHING"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(study_instance_uid)
            .bind(&destination.name)
            .bind(destination.ae_title.trim())
            .bind(destination.host.trim())
            .bind(i64::from(destination.port))
            .bind(self.now_ms());
        for uid in only {
            query = query.bind(uid);
        }
        let added = query.execute(&self.db.pool).await?.rows_affected();
        if added > 0 {
            tracing::info!(
                study_instance_uid,
                destination = %destination,
                added,
                "instances enqueued for forwarding"
            );
            self.enqueues.fetch_add(1, Ordering::Release);
            self.work.notify_one();
        }
        Ok(added)
    }

    /// A retrieval (C-MOVE) of these instances of a study to
    /// `destination`, which asks because it does not have them: jobs are
    /// added for those never enqueued for it, and those already sent,
    /// given up or waiting for a retry are due again now.
    pub async fn enqueue_retrieval(
        &self,
        study_instance_uid: &str,
        destination: &Destination,
        sop_instance_uids: &[String],
    ) -> Result<(), OutboxError> {
        if sop_instance_uids.is_empty() {
            return Ok(());
        }
        self.insert_jobs(study_instance_uid, destination, sop_instance_uids)
            .await?;
        let n = sop_instance_uids.len();
        let sql = format!(
            "UPDATE forward_jobs SET state = 'pending', attempts = 0, next_attempt_at = ${}, \
             sent_at = NULL WHERE {} \
             AND (state IN ('sent', 'dead') OR (state = 'pending' AND attempts > 0))",
            n + 5,
            retrieval_jobs(n)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(study_instance_uid)
            .bind(destination.ae_title.trim())
            .bind(destination.host.trim())
            .bind(i64::from(destination.port));
        for uid in sop_instance_uids {
            query = query.bind(uid);
        }
        let again = query
            .bind(self.now_ms())
            .execute(&self.db.pool)
            .await?
            .rows_affected();
        if again > 0 {
            self.enqueues.fetch_add(1, Ordering::Release);
            self.work.notify_one();
        }
        Ok(())
    }

    /// Where a retrieval enqueued by [`Outbox::enqueue_retrieval`] stands.
    pub async fn retrieval_progress(
        &self,
        study_instance_uid: &str,
        destination: &Destination,
        sop_instance_uids: &[String],
    ) -> Result<RetrievalProgress, OutboxError> {
        let mut progress = RetrievalProgress::default();
        if sop_instance_uids.is_empty() {
            return Ok(progress);
        }
        let rows: Vec<(String, i64)> = self
            .retrieval_rows(
                "state, attempts",
                "",
                (study_instance_uid, destination),
                sop_instance_uids,
            )
            .await?;
        for (state, attempts) in rows {
            match state.as_str() {
                "sent" => progress.sent += 1,
                "dead" => progress.failed += 1,
                // Tried and waiting for its retry: failed as far as this
                // retrieval goes; the outbox keeps trying.
                "pending" if attempts > 0 => progress.failed += 1,
                _ => progress.remaining += 1,
            }
        }
        Ok(progress)
    }

    /// Which of `sop_instance_uids` a retrieval has delivered to
    /// `destination` (the newest version of each).
    pub async fn retrieval_sent(
        &self,
        study_instance_uid: &str,
        destination: &Destination,
        sop_instance_uids: &[String],
    ) -> Result<Vec<String>, OutboxError> {
        if sop_instance_uids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String,)> = self
            .retrieval_rows(
                "sop_instance_uid",
                " AND state = 'sent'",
                (study_instance_uid, destination),
                sop_instance_uids,
            )
            .await?;
        Ok(rows.into_iter().map(|(uid,)| uid).collect())
    }

    /// `columns` of the jobs of a retrieval of `sop_instance_uids` to
    /// `destination` ([`retrieval_jobs`]), `and` added to the condition.
    async fn retrieval_rows<T>(
        &self,
        columns: &str,
        and: &str,
        (study_instance_uid, destination): (&str, &Destination),
        sop_instance_uids: &[String],
    ) -> Result<Vec<T>, OutboxError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        let sql = format!(
            "SELECT {columns} FROM forward_jobs WHERE {}{and}",
            retrieval_jobs(sop_instance_uids.len())
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(study_instance_uid)
            .bind(destination.ae_title.trim())
            .bind(destination.host.trim())
            .bind(i64::from(destination.port));
        for uid in sop_instance_uids {
            query = query.bind(uid);
        }
        Ok(query.fetch_all(&self.db.pool).await?)
    }

    /// Jobs, newest first, optionally only those in `state`.
    pub async fn list(
        &self,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ForwardJob>, OutboxError> {
        let state = match state {
            Some(s) => JobState::parse(s)
                .ok_or_else(|| OutboxError::InvalidState(s.to_string()))?
                .as_str(),
            None => "",
        };
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM forward_jobs WHERE ($1 = '' OR state = $1) \
             ORDER BY id DESC LIMIT $2"
        );
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(state)
            .bind(limit.max(0))
            .fetch_all(&self.db.pool)
            .await?;
        let mut out = jobs(rows)?;
        out.reverse();
        Ok(out)
    }

    /// One page of jobs, newest first: those older than job `before` when
    /// given. `next` is where the following page starts, `None` on the last.
    pub async fn page(
        &self,
        state: Option<&str>,
        before: Option<ForwardJobId>,
        limit: i64,
    ) -> Result<JobPage, OutboxError> {
        let state = match state {
            Some(s) => JobState::parse(s)
                .ok_or_else(|| OutboxError::InvalidState(s.to_string()))?
                .as_str(),
            None => "",
        };
        let limit = limit.max(1);
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM forward_jobs WHERE ($1 = '' OR state = $1) AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        );
        // One more than asked: whether it exists says if there is a next page.
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(state)
            .bind(before.unwrap_or(ForwardJobId(i64::MAX)))
            .bind(limit.saturating_add(1))
            .fetch_all(&self.db.pool)
            .await?;
        let mut jobs = jobs(rows)?;
        jobs.reverse();
        let more = i64::try_from(jobs.len()).unwrap_or(i64::MAX) > limit;
        jobs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = jobs.last().filter(|_| more).map(|job| job.id);
        Ok(JobPage { jobs, next })
    }

    pub async fn job(&self, id: ForwardJobId) -> Result<Option<ForwardJob>, OutboxError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM forward_jobs WHERE id = $1");
        let row: Option<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.map(ForwardJob::try_from).transpose()
    }

    /// Every job of a study, in enqueue order.
    pub async fn jobs_of_study(
        &self,
        study_instance_uid: &str,
    ) -> Result<Vec<ForwardJob>, OutboxError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM forward_jobs WHERE study_instance_uid = $1 ORDER BY id"
        );
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(study_instance_uid)
            .fetch_all(&self.db.pool)
            .await?;
        jobs(rows)
    }

    /// Puts a `dead` (or waiting `pending`) job back in the queue, due now,
    /// with its attempts reset, committed with `audit` (the operator's
    /// record); `None` if there is no such job. The last error is kept
    /// until the next attempt replaces it.
    pub async fn retry(
        &self,
        id: ForwardJobId,
        audit: &AuditRecord,
    ) -> Result<Option<ForwardJob>, OutboxError> {
        let sql = format!(
            "UPDATE forward_jobs SET state = 'pending', attempts = 0, next_attempt_at = $2, \
             claimed_by = NULL, claimed_at = NULL, send_started_at = NULL \
             WHERE id = $1 AND state IN ('dead', 'pending') RETURNING {JOB_COLUMNS}"
        );
        let mut tx = self.db.begin_write().await?;
        let row: Option<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(self.now_ms())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return match self.job(id).await? {
                None => Ok(None),
                Some(job) => Err(OutboxError::NotRetryable {
                    id,
                    state: job.state,
                }),
            };
        };
        let job = ForwardJob::try_from(row)?;
        audit::append(&mut tx, audit).await?;
        tx.commit().await?;
        tracing::info!(
            job = id.0,
            sop_instance_uid = %job.sop_instance_uid,
            destination = %job.destination,
            "forward job put back in the queue by request"
        );
        self.work.notify_one();
        Ok(Some(job))
    }

    /// Puts every `dead` job of a study or destination back in the queue,
    /// committed with the record `audit` makes of how many; returns that
    /// number.
    pub async fn retry_dead(
        &self,
        scope: RetryScope<'_>,
        audit: impl FnOnce(u64) -> AuditRecord,
    ) -> Result<u64, OutboxError> {
        let (condition, value) = match scope {
            RetryScope::Study(uid) => ("study_instance_uid = $2", uid),
            RetryScope::Destination(name) => {
                ("(destination_name = $2 OR destination_ae_title = $2)", name)
            }
        };
        let sql = format!(
            "UPDATE forward_jobs SET state = 'pending', attempts = 0, next_attempt_at = $1, \
             claimed_by = NULL, claimed_at = NULL, send_started_at = NULL \
             WHERE state = 'dead' AND {condition}"
        );
        let mut tx = self.db.begin_write().await?;
        let requeued = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.now_ms())
            .bind(value)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        audit::append(&mut tx, &audit(requeued)).await?;
        tx.commit().await?;
        if requeued > 0 {
            tracing::info!(
                ?scope,
                requeued,
                "dead forward jobs put back in the queue by request"
            );
            self.work.notify_one();
        }
        Ok(requeued)
    }

    // The forwarder's side. Every call that touches a `sending` job names
    // the forwarder (`worker`) and is guarded by `claimed_by = worker`, so a
    // forwarder whose claim was taken over can no longer change the job.

    /// Destinations with jobs due now.
    pub async fn due_destinations(&self) -> Result<Vec<Destination>, OutboxError> {
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT destination_ae_title, destination_host, destination_port, \
             MIN(destination_name) FROM forward_jobs \
             WHERE state = 'pending' AND next_attempt_at <= $1 \
             GROUP BY destination_ae_title, destination_host, destination_port",
        )
        .bind(self.now_ms())
        .fetch_all(&self.db.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (ae_title, host, port, name) in rows {
            match u16::try_from(port) {
                Ok(port) => out.push(Destination {
                    name,
                    ae_title,
                    host,
                    port,
                }),
                // The schema's CHECK rules this out.
                Err(_) => tracing::error!(ae_title, host, port, "forward job with a bad port"),
            }
        }
        Ok(out)
    }

    /// When the next `pending` job comes due, if any.
    pub async fn next_due_at(&self) -> Result<Option<i64>, OutboxError> {
        let (next,): (Option<i64>,) =
            sqlx::query_as("SELECT MIN(next_attempt_at) FROM forward_jobs WHERE state = 'pending'")
                .fetch_one(&self.db.pool)
                .await?;
        Ok(next)
    }

    /// Takes up to `limit` due jobs of `destination` for `worker`, oldest
    /// first, marking them `sending`. Atomic: a job is claimed by one
    /// forwarder only. On PostgreSQL the rows are chosen with
    /// `FOR UPDATE SKIP LOCKED`, so concurrent claimers take different jobs
    /// instead of waiting for each other; SQLite runs the single statement
    /// under its one write lock, and the `state = 'pending'` guard holds.
    /// How many enqueues (and re-rankings) in this process added or
    /// moved jobs so far (only this process's: another node's STAT is seen
    /// at the next claim).
    pub fn enqueue_count(&self) -> u64 {
        self.enqueues.load(Ordering::Acquire)
    }

    /// Says that jobs were re-ranked ([`rerank_study`]), once that
    /// transaction is committed: forwarders then look whether they hold
    /// work that now ranks after waiting work.
    pub fn reranked(&self) {
        self.enqueues.fetch_add(1, Ordering::Release);
        self.work.notify_one();
    }

    /// Whether a job due for `destination` ranks before `rank`.
    pub async fn more_urgent_due(
        &self,
        destination: &Destination,
        rank: i64,
    ) -> Result<bool, OutboxError> {
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM forward_jobs WHERE state = 'pending' AND next_attempt_at <= $1 \
             AND destination_ae_title = $2 AND destination_host = $3 AND destination_port = $4 \
             AND send_rank < $5 LIMIT 1",
        )
        .bind(self.now_ms())
        .bind(&destination.ae_title)
        .bind(&destination.host)
        .bind(i64::from(destination.port))
        .bind(rank)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Gives back claimed jobs whose sending never began, so that a claim
    /// in queue order can take more urgent work first. Returns how many
    /// went back.
    pub async fn give_back(&self, ids: &[ForwardJobId], worker: &str) -> Result<u64, OutboxError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let list = (2..2 + ids.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE forward_jobs SET state = 'pending', claimed_by = NULL, claimed_at = NULL \
             WHERE id IN ({list}) AND claimed_by = $1 AND state = 'sending' \
             AND send_started_at IS NULL"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(worker);
        for id in ids {
            query = query.bind(*id);
        }
        Ok(query.execute(&self.db.pool).await?.rows_affected())
    }

    pub async fn claim(
        &self,
        destination: &Destination,
        worker: &str,
        limit: i64,
    ) -> Result<Vec<ForwardJob>, OutboxError> {
        let lock = match self.db.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // The chosen ids are materialized once: as a plain `IN (SELECT …
        // LIMIT n FOR UPDATE SKIP LOCKED)`, PostgreSQL may evaluate the
        // subquery again for later rows and claim more than `limit` jobs
        // (seen in the outbox tests: 6 claimed for a limit of 5).
        let sql = format!(
            "WITH picked AS MATERIALIZED (SELECT id FROM forward_jobs \
             WHERE state = 'pending' AND next_attempt_at <= $2 AND destination_ae_title = $3 \
             AND destination_host = $4 AND destination_port = $5 \
             ORDER BY send_rank, id LIMIT $6 {lock}) \
             UPDATE forward_jobs SET state = 'sending', claimed_by = $1, claimed_at = $2, \
             send_started_at = NULL \
             WHERE state = 'pending' AND id IN (SELECT id FROM picked) \
             RETURNING {JOB_COLUMNS}"
        );
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(worker)
            .bind(self.now_ms())
            .bind(&destination.ae_title)
            .bind(&destination.host)
            .bind(i64::from(destination.port))
            .bind(limit.max(1))
            .fetch_all(&self.db.pool)
            .await?;
        jobs(rows)
    }

    /// Records that the C-STOREs of these claimed jobs are about to begin,
    /// in one transaction for the batch, and returns those whose claim is
    /// still `worker`'s: the others were taken over by another forwarder and
    /// must not be sent. Marking a batch at once errs on the safe side: after
    /// a crash every marked job is re-sent flagged `possible_duplicate`,
    /// including those whose C-STORE had not begun.
    pub async fn begin_send(
        &self,
        ids: &[ForwardJobId],
        worker: &str,
    ) -> Result<Vec<ForwardJobId>, OutboxError> {
        self.update_claimed("send_started_at = $2, claimed_at = $2", ids, worker)
            .await
    }

    /// Marked jobs that were not sent after all (the association broke or
    /// the forwarder is stopping before their turn): their C-STORE never
    /// began, so a restart must not flag them. Their claim is renewed on the
    /// way, as any write by its holder does.
    pub async fn unmark_unsent(
        &self,
        ids: &[ForwardJobId],
        worker: &str,
    ) -> Result<(), OutboxError> {
        self.update_claimed("send_started_at = NULL, claimed_at = $2", ids, worker)
            .await?;
        Ok(())
    }

    /// The destination acknowledged these instances: recorded in one
    /// transaction. Returns the jobs recorded; one missing had lost its claim
    /// meanwhile (it is then someone else's, flagged).
    pub async fn record_sent(
        &self,
        ids: &[ForwardJobId],
        worker: &str,
    ) -> Result<Vec<ForwardJobId>, OutboxError> {
        self.update_claimed(
            "state = 'sent', sent_at = $2, attempts = attempts + 1, claimed_by = NULL, \
             claimed_at = NULL, send_started_at = NULL",
            ids,
            worker,
        )
        .await
    }

    /// Applies `set` (an SQL assignment list that may use `$2`, now) to those
    /// of `ids` that `worker` still holds, in one statement; returns their ids.
    async fn update_claimed(
        &self,
        set: &'static str,
        ids: &[ForwardJobId],
        worker: &str,
    ) -> Result<Vec<ForwardJobId>, OutboxError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = (3..3 + ids.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE forward_jobs SET {set} \
             WHERE id IN ({list}) AND claimed_by = $1 AND state = 'sending' RETURNING id"
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(worker)
            .bind(self.now_ms());
        for id in ids {
            query = query.bind(*id);
        }
        let rows: Vec<(ForwardJobId,)> = query.fetch_all(&self.db.pool).await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Records failed attempts (one transaction: a connection failure fails
    /// a whole batch), each either back to `pending` after its backoff or
    /// `dead`. Returns the jobs as they now are.
    pub async fn record_failures(
        &self,
        failures: &[(&ForwardJob, Failure)],
        worker: &str,
    ) -> Result<Vec<ForwardJob>, OutboxError> {
        let now = self.now_ms();
        let mut tx = self.db.pool.begin().await?;
        let mut out = Vec::with_capacity(failures.len());
        let sql = format!(
            "UPDATE forward_jobs SET state = $3, attempts = attempts + 1, next_attempt_at = $4, \
             last_error = $5, \
             possible_duplicate = (possible_duplicate OR $6), \
             claimed_by = NULL, claimed_at = NULL, send_started_at = NULL \
             WHERE id = $1 AND claimed_by = $2 AND state = 'sending' RETURNING {JOB_COLUMNS}"
        );
        for (job, failure) in failures {
            let attempts = u32::try_from(job.attempts.saturating_add(1)).unwrap_or(u32::MAX);
            let next = self
                .policy
                .next_attempt(attempts, now)
                .filter(|_| !failure.hopeless);
            let row: Option<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(job.id)
                .bind(worker)
                .bind(if next.is_some() { "pending" } else { "dead" })
                .bind(next.unwrap_or(now))
                .bind(&failure.message)
                .bind(failure.possibly_delivered)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = row {
                out.push(ForwardJob::try_from(row)?);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Keeps `worker`'s claims alive.
    pub async fn renew_claims(&self, worker: &str) -> Result<u64, OutboxError> {
        let done = sqlx::query(
            "UPDATE forward_jobs SET claimed_at = $2 WHERE claimed_by = $1 AND state = 'sending'",
        )
        .bind(worker)
        .bind(self.now_ms())
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Gives back `worker`'s claimed jobs whose sending never began (at a
    /// graceful stop): they return to `pending` untouched.
    pub async fn release_claims(&self, worker: &str) -> Result<u64, OutboxError> {
        let done = sqlx::query(
            "UPDATE forward_jobs SET state = 'pending', claimed_by = NULL, claimed_at = NULL \
             WHERE claimed_by = $1 AND state = 'sending' AND send_started_at IS NULL",
        )
        .bind(worker)
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Puts back in the queue the `sending` jobs of forwarders that died:
    /// those whose claim is older than the lease, or, with `all`, every
    /// one (at start-up on SQLite, whose database one process serves).
    /// A job whose C-STORE had begun counts as an attempt and is flagged
    /// `possible_duplicate`: the destination may have stored it before the
    /// crash. One whose sending never began is put back as it was.
    pub async fn requeue_abandoned(&self, all: bool) -> Result<Vec<Abandoned>, OutboxError> {
        let now = self.now_ms();
        let lease = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let cutoff = if all {
            i64::MAX
        } else {
            now.saturating_sub(lease)
        };
        // Two statements so that each says which kind it put back; each is
        // guarded by `state = 'sending'`, so concurrent recoveries by two
        // processes requeue a job once.
        let started = format!(
            "UPDATE forward_jobs SET \
             state = CASE WHEN attempts + 1 >= $3 THEN 'dead' ELSE 'pending' END, \
             attempts = attempts + 1, next_attempt_at = $1, possible_duplicate = TRUE, \
             last_error = 'interrupted: the forwarder stopped while sending (crash or lost \
             claim); the destination may already have this instance', \
             claimed_by = NULL, claimed_at = NULL, send_started_at = NULL \
             WHERE state = 'sending' AND claimed_at < $2 AND send_started_at IS NOT NULL \
             RETURNING {JOB_COLUMNS}"
        );
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(started))
            .bind(now)
            .bind(cutoff)
            .bind(i64::from(self.policy.max_attempts))
            .fetch_all(&self.db.pool)
            .await?;
        let mut out: Vec<Abandoned> = jobs(rows)?
            .into_iter()
            .map(|job| Abandoned {
                job,
                send_started: true,
            })
            .collect();
        let untouched = format!(
            "UPDATE forward_jobs SET state = 'pending', claimed_by = NULL, claimed_at = NULL \
             WHERE state = 'sending' AND claimed_at < $1 AND send_started_at IS NULL \
             RETURNING {JOB_COLUMNS}"
        );
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(untouched))
            .bind(cutoff)
            .fetch_all(&self.db.pool)
            .await?;
        out.extend(jobs(rows)?.into_iter().map(|job| Abandoned {
            job,
            send_started: false,
        }));
        if !out.is_empty() {
            self.work.notify_one();
        }
        Ok(out)
    }
}

/// `$first, $first+1, …` for `n` parameters.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a retrieval's jobs stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetrievalProgress {
    pub remaining: u64,
    pub sent: u64,
    pub failed: u64,
}

/// The jobs of a retrieval: the latest version of each of `n` named
/// instances of the study, for the destination. Parameters: the study
/// ($1), the destination's AE title, host and port ($2–$4), the instances
/// from $5.
fn retrieval_jobs(n: usize) -> String {
    format!(
        "study_instance_uid = $1 AND destination_ae_title = $2 AND destination_host = $3 \
         AND destination_port = $4 AND sop_instance_uid IN ({}) AND version = \
         (SELECT MAX(v.version) FROM instances v JOIN studies s ON s.id = v.study_id \
          WHERE s.study_instance_uid = forward_jobs.study_instance_uid \
          AND v.sop_instance_uid = forward_jobs.sop_instance_uid)",
        placeholders(5, n)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_base_and_is_capped() {
        let policy = RetryPolicy {
            base: Duration::from_secs(10),
            max_delay: Duration::from_secs(60),
            max_attempts: 5,
        };
        let delays: Vec<u64> = (1..=6).map(|n| policy.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 60, 60, 60]);
        assert_eq!(policy.delay_after(0).as_secs(), 10);
        assert_eq!(policy.delay_after(u32::MAX).as_secs(), 60);
        // The third failure waits 40 s; the fifth is the last.
        assert_eq!(policy.next_attempt(3, 1_000), Some(41_000));
        assert_eq!(policy.next_attempt(5, 1_000), None);
    }

    #[test]
    fn destinations_are_checked() {
        let good = Destination {
            name: "dr-martin".into(),
            ae_title: "MARTIN_WS".into(),
            host: "10.0.0.5".into(),
            port: 104,
        };
        assert_eq!(good.problem(), None);
        assert_eq!(good.address(), "10.0.0.5:104");
        let v6 = Destination {
            host: "::1".into(),
            ..good.clone()
        };
        assert_eq!(v6.address(), "[::1]:104");
        for bad in [
            Destination {
                ae_title: "".into(),
                ..good.clone()
            },
            Destination {
                ae_title: "A_TITLE_FAR_TOO_LONG".into(),
                ..good.clone()
            },
            Destination {
                ae_title: "BACK\\SLASH".into(),
                ..good.clone()
            },
            Destination {
                host: " ".into(),
                ..good.clone()
            },
            Destination {
                port: 0,
                ..good.clone()
            },
        ] {
            assert!(bad.problem().is_some(), "{bad:?} accepted");
        }
    }

    #[test]
    fn states_round_trip() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        assert_eq!(JobState::parse("Dead"), None);
    }
}
