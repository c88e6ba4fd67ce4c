//! The study index: one transaction per received instance, queries for the
//! HTTP API, and the quiet-period sweep that marks studies complete.
//!
//! Rules that must hold across processes sharing one PostgreSQL database are
//! enforced by the database (unique keys, `WHERE status = …` guards), not by
//! in-process locks.

use crate::db::Database;
use crate::events::{self, EventKind};
use crate::ids::{EventId, StudyId};
use crate::scope::Scope;
use crate::timers::{self, TimerKind};
use serde::Serialize;
use sqlx::{AnyPool, FromRow};

#[derive(Debug, Clone)]
pub struct StudyIndex {
    db: Database,
    /// Who claims timers ([`crate::timers`]) for this process.
    node_id: String,
    /// Held by the one instance whose rows may wait, uncommitted, for its
    /// file's fsync ([`StudyIndex::try_stage_instance`]). On SQLite, every
    /// instance transaction also queues here: SQLite has one writer at a
    /// time, and a connection that finds the lock taken sleeps in SQLite's
    /// busy handler (1, 2, 5 … 100 ms) rather than queueing, so concurrent
    /// associations would spend more time asleep than writing.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// An instance's rows, written in a transaction that is not committed yet:
/// nobody else sees them, and dropping this rolls them back.
#[derive(Debug)]
pub struct StagedInstance {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _lock: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl StagedInstance {
    /// Makes the rows durable and visible (on SQLite, the WAL fsync).
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Rolls back now rather than on drop, so that the lock is released
    /// with the database's own.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

/// A UID of another site's (or another study's) reused by an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, utoipa::ToSchema)]
pub struct IdentityConflict {
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub site: String,
    pub calling_ae_title: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub sop_instance_uid: String,
    pub owner_site: String,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("{}", .0.detail)]
    Conflict(Box<IdentityConflict>),
}

/// What is written for one received instance.
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub site: String,
    pub attributes: telerad_dicom::inspect::InstanceAttributes,
    pub version: i64,
    pub transfer_syntax_uid: String,
    pub path: String,
    pub size_bytes: i64,
    pub checksum: String,
    pub calling_ae_title: String,
    pub received_at: i64,
    pub complete_after: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct StoredVersion {
    pub version: i64,
    /// The site whose study holds this version.
    pub site: String,
    pub checksum: String,
    pub transfer_syntax_uid: String,
    pub path: String,
}

/// Where a study's reception stands (`studies.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StudyStatus {
    /// Images may still come: the quiet period has not passed.
    Receiving,
    /// Quiet for its site's period: routed.
    Complete,
}

/// A stored status that is neither `receiving` nor `complete`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a study status")]
pub struct UnknownStudyStatus(pub String);

impl TryFrom<String> for StudyStatus {
    type Error = UnknownStudyStatus;

    fn try_from(value: String) -> Result<StudyStatus, UnknownStudyStatus> {
        match value.as_str() {
            "receiving" => Ok(StudyStatus::Receiving),
            "complete" => Ok(StudyStatus::Complete),
            _ => Err(UnknownStudyStatus(value)),
        }
    }
}

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct StudySummary {
    pub study_instance_uid: String,
    pub site: String,
    #[sqlx(try_from = "String")]
    pub status: StudyStatus,
    pub patient_name: String,
    pub patient_id: String,
    pub patient_birth_date: String,
    pub patient_sex: String,
    pub accession_number: String,
    pub study_date: String,
    pub study_time: String,
    pub study_description: String,
    pub referring_physician_name: String,
    pub modalities: String,
    pub body_parts: String,
    pub instance_count: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub first_received_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_received_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct SeriesSummary {
    pub series_instance_uid: String,
    pub modality: String,
    pub series_number: Option<i64>,
    pub series_description: String,
    pub body_part_examined: String,
    pub instance_count: i64,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct InstanceRecord {
    pub sop_instance_uid: String,
    pub version: i64,
    pub sop_class_uid: String,
    pub transfer_syntax_uid: String,
    pub instance_number: Option<i64>,
    pub path: String,
    pub size_bytes: i64,
    pub checksum: String,
    pub calling_ae_title: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub received_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StudyEvent {
    pub id: EventId,
    pub study_instance_uid: String,
    pub kind: EventKind,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub at: i64,
    pub instance_count: i64,
}

/// How long a claimed timer stays with its node: past it, a node that
/// stopped mid-way loses it to another.
pub const TIMER_LEASE_MS: i64 = 30_000;

const STUDY_COLUMNS: &str = "study_instance_uid, site, status, patient_name, patient_id, \
    patient_birth_date, patient_sex, accession_number, study_date, study_time, \
    study_description, referring_physician_name, modalities, body_parts, instance_count, \
    first_received_at, last_received_at, completed_at";

impl StudyIndex {
    pub fn new(db: Database) -> StudyIndex {
        StudyIndex {
            db,
            node_id: format!("telerad-{}", std::process::id()),
            writer: std::sync::Arc::default(),
        }
    }

    /// Names this process in timer leases: `NODE:PID`, so that an operator
    /// sees which node holds a timer, and two processes of one node differ.
    pub fn with_node(mut self, node_id: &str) -> StudyIndex {
        self.node_id = format!("{node_id}:{}", std::process::id());
        self
    }

    /// Who claims timers for this process.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.db.pool
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Records the configuration's sites and radiologists, which studies,
    /// assignments and accounts refer to (at start-up, and before the
    /// command line changes accounts).
    pub async fn sync_configuration(
        &self,
        config: &telerad_config::Config,
    ) -> Result<(), sqlx::Error> {
        for site in &config.sites {
            let quiet = site.quiet_period(&config.studies);
            self.sync_site(
                &site.name,
                &site.time_zone_name,
                i64::try_from(quiet.as_secs()).unwrap_or(i64::MAX),
            )
            .await?;
            self.sync_urgent_quiet_periods(&site.name, &site.urgent_quiet_periods(&config.studies))
                .await?;
        }
        let radiologists: Vec<(&str, &str)> = config
            .radiologists
            .iter()
            .map(|r| (r.id.as_str(), r.name.as_str()))
            .collect();
        self.sync_radiologists(&radiologists).await
    }

    /// Replaces a site's quiet periods for urgent requests.
    pub async fn sync_urgent_quiet_periods(
        &self,
        site: &str,
        periods: &[(&str, std::time::Duration)],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM site_urgent_quiet_periods WHERE site = $1")
            .bind(site)
            .execute(&mut *tx)
            .await?;
        for (urgency, period) in periods {
            sqlx::query(
                "INSERT INTO site_urgent_quiet_periods (site, urgency, quiet_period_secs) \
                 VALUES ($1, $2, $3)",
            )
            .bind(site)
            .bind(*urgency)
            .bind(i64::try_from(period.as_secs()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Records the configured sites, so that studies can refer to them.
    pub async fn sync_site(
        &self,
        name: &str,
        time_zone: &str,
        quiet_period_secs: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO sites (name, time_zone, quiet_period_secs) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET time_zone = excluded.time_zone, \
             quiet_period_secs = excluded.quiet_period_secs",
        )
        .bind(name)
        .bind(time_zone)
        .bind(quiet_period_secs)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records the configured radiologists, so that assignments can refer
    /// to them; those the configuration no longer names are kept (their
    /// past assignments refer to them) and marked as not configured.
    pub async fn sync_radiologists(
        &self,
        radiologists: &[(&str, &str)],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE radiologists SET configured = FALSE")
            .execute(&mut *tx)
            .await?;
        for (id, name) in radiologists {
            sqlx::query(
                "INSERT INTO radiologists (id, name, configured) VALUES ($1, $2, TRUE) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, configured = TRUE",
            )
            .bind(id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Claims the first version from `from` that neither an index row nor
    /// another node's claim holds, for `node` (see migration 0007).
    pub async fn claim_version(
        &self,
        sop_instance_uid: &str,
        from: i64,
        node: &str,
        now: i64,
    ) -> Result<i64, sqlx::Error> {
        let mut version = from.max(1);
        loop {
            let mut tx = self.pool().begin().await?;
            if self.db.backend == crate::db::Backend::Postgres {
                // No wait for the WAL flush: a claim lost in a crash had no
                // durable index row after it (the WAL is flushed in order),
                // so nothing acknowledged depended on it.
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut *tx)
                    .await?;
            }
            let claimed = sqlx::query(
                "INSERT INTO instance_claims (sop_instance_uid, version, node_id, claimed_at) \
                 SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM instances \
                 WHERE sop_instance_uid = $1 AND version = $2) \
                 ON CONFLICT (sop_instance_uid, version) DO NOTHING",
            )
            .bind(sop_instance_uid)
            .bind(version)
            .bind(node)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            if claimed == 1 {
                return Ok(version);
            }
            // Taken: by another node's reception, or indexed meanwhile.
            version += 1;
        }
    }

    /// Gives a claim up (the instance was not stored).
    pub async fn release_claim(
        &self,
        sop_instance_uid: &str,
        version: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM instance_claims WHERE sop_instance_uid = $1 AND version = $2")
            .bind(sop_instance_uid)
            .bind(version)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Removes the claims of versions indexed before `before`. Not at once:
    /// a node claiming meanwhile may have read the versions before the
    /// instance row was committed, and must still find the claim.
    pub async fn release_settled_claims(&self, before: i64) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query(
            "DELETE FROM instance_claims WHERE claimed_at < $1 AND EXISTS (SELECT 1 FROM \
             instances i WHERE i.sop_instance_uid = instance_claims.sop_instance_uid \
             AND i.version = instance_claims.version)",
        )
        .bind(before)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// Removes the claims a crash of `node` left behind; at its start-up,
    /// when none of its receptions is in progress.
    pub async fn release_claims_of(&self, node: &str) -> Result<u64, sqlx::Error> {
        Ok(
            sqlx::query("DELETE FROM instance_claims WHERE node_id = $1")
                .bind(node)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    pub async fn versions_of(
        &self,
        sop_instance_uid: &str,
    ) -> Result<Vec<StoredVersion>, sqlx::Error> {
        sqlx::query_as(
            "SELECT i.version, st.site, i.checksum, i.transfer_syntax_uid, i.path \
             FROM instances i JOIN studies st ON st.id = i.study_id \
             WHERE i.sop_instance_uid = $1 ORDER BY i.version",
        )
        .bind(sop_instance_uid)
        .fetch_all(self.pool())
        .await
    }

    /// Indexes one instance whose file is already durable at `path`.
    pub async fn record_instance(&self, new: &NewInstance) -> Result<(), IndexError> {
        let writer = match self.db.backend {
            crate::db::Backend::Sqlite => Some(self.writer.clone().lock_owned().await),
            crate::db::Backend::Postgres => None,
        };
        Ok(self.stage_rows(new, writer).await?.commit().await?)
    }

    /// Keeps an identity conflict for operators (in a transaction of its
    /// own: the instance's rows were rolled back).
    pub async fn record_conflict(&self, conflict: &IdentityConflict) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO identity_conflicts (at, site, calling_ae_title, study_instance_uid, \
             series_instance_uid, sop_instance_uid, owner_site, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(conflict.at)
        .bind(&conflict.site)
        .bind(&conflict.calling_ae_title)
        .bind(&conflict.study_instance_uid)
        .bind(&conflict.series_instance_uid)
        .bind(&conflict.sop_instance_uid)
        .bind(&conflict.owner_site)
        .bind(&conflict.detail)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Study events any consumer set aside, retrying or dead.
    pub async fn failed_events(&self) -> Result<Vec<events::FailedEvent>, sqlx::Error> {
        events::failed_events(&self.db).await
    }

    /// The most recent identity conflicts, newest first.
    pub async fn conflicts(&self, limit: i64) -> Result<Vec<IdentityConflict>, sqlx::Error> {
        sqlx::query_as(
            "SELECT at, site, calling_ae_title, study_instance_uid, series_instance_uid, \
             sop_instance_uid, owner_site, detail FROM identity_conflicts \
             ORDER BY at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }

    /// Writes an instance's rows without committing them, for a caller that
    /// must wait for something else (its file's fsync) before they may
    /// become visible: the writes then overlap that wait, and only the
    /// commit is left after it. `None` when another instance is staged: an
    /// uncommitted transaction holds SQLite's write lock, or on PostgreSQL
    /// the study's row, so a second one would wait for the first's fsync
    /// too; that caller should use [`StudyIndex::record_instance`] once its
    /// file is durable.
    pub async fn try_stage_instance(
        &self,
        new: &NewInstance,
    ) -> Option<Result<StagedInstance, IndexError>> {
        let lock = self.writer.clone().try_lock_owned().ok()?;
        Some(self.stage_rows(new, Some(lock)).await)
    }

    async fn stage_rows(
        &self,
        new: &NewInstance,
        lock: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> Result<StagedInstance, IndexError> {
        let a = &new.attributes;
        let counted = i64::from(new.version == 1);
        // Four round trips in the usual case (begin, study, series, instance),
        // and the caller's commit: on SQLite each one is a hop to sqlx's
        // worker thread, and they are most of the cost of indexing an
        // instance.
        let mut tx = self.pool().begin().await?;
        // The study's status is left alone here, so that the one returned
        // says whether late images reopen a complete study.
        // A study of another site is left alone (no row comes back): its
        // UID is not this site's to add to.
        let study: Option<(StudyId, String, i64, String, String, i64, i64)> = sqlx::query_as(
            "INSERT INTO studies (study_instance_uid, site, patient_name, patient_id, \
             patient_birth_date, patient_sex, accession_number, study_date, study_time, \
             study_description, referring_physician_name, first_received_at, last_received_at, \
             complete_after, instance_count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14) \
             ON CONFLICT (study_instance_uid) DO UPDATE SET \
             last_received_at = excluded.last_received_at, \
             complete_after = CASE WHEN studies.quiet_period_ms IS NULL \
             THEN excluded.complete_after \
             ELSE excluded.last_received_at + studies.quiet_period_ms END, \
             instance_count = studies.instance_count + excluded.instance_count \
             WHERE studies.site = excluded.site \
             RETURNING id, status, instance_count, modalities, body_parts, first_received_at, \
             complete_after",
        )
        .bind(&a.study_instance_uid)
        .bind(&new.site)
        .bind(&a.patient_name)
        .bind(&a.patient_id)
        .bind(&a.patient_birth_date)
        .bind(&a.patient_sex)
        .bind(&a.accession_number)
        .bind(&a.study_date)
        .bind(&a.study_time)
        .bind(&a.study_description)
        .bind(&a.referring_physician_name)
        .bind(new.received_at)
        .bind(new.complete_after)
        .bind(counted)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((
            study_id,
            status,
            instance_count,
            modalities,
            body_parts,
            first_received_at,
            complete_after,
        )) = study
        else {
            let (owner,): (String,) =
                sqlx::query_as("SELECT site FROM studies WHERE study_instance_uid = $1")
                    .bind(&a.study_instance_uid)
                    .fetch_one(&mut *tx)
                    .await?;
            return Err(conflict(
                new,
                owner.clone(),
                format!(
                    "Study Instance UID {} belongs to a study of site {owner}, not of {}",
                    a.study_instance_uid, new.site
                ),
            ));
        };
        if status == "complete" {
            sqlx::query(
                "UPDATE studies SET status = 'receiving', completed_at = NULL WHERE id = $1",
            )
            .bind(study_id)
            .execute(&mut *tx)
            .await?;
            // The event counts what the study held when it was reopened.
            let before = instance_count - counted;
            events::append(
                &mut tx,
                self.db.backend,
                study_id,
                EventKind::Receiving,
                new.received_at,
                before,
            )
            .await?;
            timers::schedule(
                &mut tx,
                TimerKind::StudyComplete,
                study_id.0,
                complete_after,
            )
            .await?;
        } else if first_received_at == new.received_at && instance_count == counted {
            // A study this instance created (or one created in the same
            // millisecond: the timer is only set if missing). Later
            // instances move `complete_after`, not the timer: it looks again
            // when it fires. A request form waiting for it may ask for a
            // shorter quiet period.
            let due = match urgent_quiet_period(&mut tx, &new.site, a).await? {
                Some(quiet_ms) if new.received_at + quiet_ms < complete_after => {
                    let due = new.received_at + quiet_ms;
                    sqlx::query(
                        "UPDATE studies SET quiet_period_ms = $2, complete_after = $3 \
                         WHERE id = $1",
                    )
                    .bind(study_id)
                    .bind(quiet_ms)
                    .bind(due)
                    .execute(&mut *tx)
                    .await?;
                    due
                }
                _ => complete_after,
            };
            timers::schedule_if_none(&mut tx, TimerKind::StudyComplete, study_id.0, due).await?;
        }
        let merged_modalities = merge_set(&modalities, &a.modality);
        let merged_body_parts = merge_set(&body_parts, &a.body_part_examined);
        if merged_modalities != modalities || merged_body_parts != body_parts {
            sqlx::query("UPDATE studies SET modalities = $2, body_parts = $3 WHERE id = $1")
                .bind(study_id)
                .bind(&merged_modalities)
                .bind(&merged_body_parts)
                .execute(&mut *tx)
                .await?;
        }
        let series: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO series (study_id, series_instance_uid, modality, series_number, \
             series_description, body_part_examined, instance_count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (series_instance_uid) DO UPDATE SET \
             instance_count = series.instance_count + excluded.instance_count \
             WHERE series.study_id = excluded.study_id \
             RETURNING id",
        )
        .bind(study_id)
        .bind(&a.series_instance_uid)
        .bind(&a.modality)
        .bind(a.series_number)
        .bind(&a.series_description)
        .bind(&a.body_part_examined)
        .bind(counted)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((series_id,)) = series else {
            let (owner, study_uid): (String, String) = sqlx::query_as(
                "SELECT st.site, st.study_instance_uid FROM series se \
                 JOIN studies st ON st.id = se.study_id WHERE se.series_instance_uid = $1",
            )
            .bind(&a.series_instance_uid)
            .fetch_one(&mut *tx)
            .await?;
            return Err(conflict(
                new,
                owner.clone(),
                format!(
                    "Series Instance UID {} belongs to study {study_uid} of site {owner}, \
                     not to study {}",
                    a.series_instance_uid, a.study_instance_uid
                ),
            ));
        };
        sqlx::query(
            "INSERT INTO instances (study_id, series_id, sop_instance_uid, version, sop_class_uid, \
             transfer_syntax_uid, instance_number, path, size_bytes, checksum, calling_ae_title, \
             received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(study_id)
        .bind(series_id)
        .bind(&a.sop_instance_uid)
        .bind(new.version)
        .bind(&a.sop_class_uid)
        .bind(&new.transfer_syntax_uid)
        .bind(a.instance_number)
        .bind(&new.path)
        .bind(new.size_bytes)
        .bind(&new.checksum)
        .bind(&new.calling_ae_title)
        .bind(new.received_at)
        .execute(&mut *tx)
        .await?;
        Ok(StagedInstance { tx, _lock: lock })
    }

    /// Marks complete every study whose quiet period has run out, recording a
    /// `complete` event for each: the due `study_complete` timers, each taken
    /// in the transaction that completes its study. A study that received
    /// images since its timer was set gets it again at its new quiet-period
    /// end. Safe to run from several processes at once: a timer is taken by
    /// one, and the `status = 'receiving'` guard lets only one complete a
    /// study.
    pub async fn complete_quiet_studies(&self, now: i64) -> Result<Vec<StudyEvent>, sqlx::Error> {
        // Each timer is taken in the transaction that completes its study:
        // one commit per study, and no lease to hold.
        let due = timers::due(&self.db, TimerKind::StudyComplete, now, 100).await?;
        let mut out = Vec::with_capacity(due.len());
        for timer in due {
            let mut tx = self.db.begin_write().await?;
            if !timers::take(&mut tx, &timer).await? {
                tx.rollback().await?;
                continue;
            }
            let completed: Option<(i64, String)> = sqlx::query_as(
                "UPDATE studies SET status = 'complete', completed_at = $2 \
                 WHERE id = $1 AND status = 'receiving' AND complete_after <= $2 \
                 RETURNING instance_count, study_instance_uid",
            )
            .bind(timer.subject_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            match completed {
                Some((instance_count, study_instance_uid)) => {
                    let id = events::append(
                        &mut tx,
                        self.db.backend,
                        StudyId(timer.subject_id),
                        EventKind::Complete,
                        now,
                        instance_count,
                    )
                    .await?;
                    out.push(StudyEvent {
                        id,
                        study_instance_uid,
                        kind: EventKind::Complete,
                        at: now,
                        instance_count,
                    });
                }
                None => {
                    let pending: Option<(i64,)> = sqlx::query_as(
                        "SELECT complete_after FROM studies WHERE id = $1 AND status = 'receiving'",
                    )
                    .bind(timer.subject_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    // More images came: look again when the quiet period ends.
                    if let Some((complete_after,)) = pending {
                        timers::schedule(
                            &mut tx,
                            TimerKind::StudyComplete,
                            timer.subject_id,
                            complete_after,
                        )
                        .await?;
                    }
                }
            }
            tx.commit().await?;
        }
        Ok(out)
    }

    /// Brings a receiving study's completion forward to `due_at` (never
    /// later than its quiet period would); whether it did. Images after
    /// that push it back as usual.
    pub async fn complete_at(
        &self,
        site: &str,
        study_instance_uid: &str,
        due_at: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let moved: Option<(i64,)> = sqlx::query_as(
            "UPDATE studies SET complete_after = $3 WHERE study_instance_uid = $1 \
             AND site = $2 AND status = 'receiving' AND complete_after > $3 RETURNING id",
        )
        .bind(study_instance_uid)
        .bind(site)
        .bind(due_at)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((id,)) = moved {
            timers::schedule(&mut tx, TimerKind::StudyComplete, id, due_at).await?;
        }
        tx.commit().await?;
        Ok(moved.is_some())
    }

    /// Events after `after_id`, oldest first, for operators and tests;
    /// consumers read the log through [`events::Consumer`].
    pub async fn events_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<StudyEvent>, events::EventError> {
        let rows: Vec<(EventId, String, String, i64, i64)> = sqlx::query_as(
            "SELECT e.id, s.study_instance_uid, e.kind, e.at, e.instance_count \
             FROM study_events e JOIN studies s ON s.id = e.study_id \
             WHERE e.id > $1 ORDER BY e.id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(id, study_instance_uid, kind, at, instance_count)| {
                let kind = kind
                    .parse()
                    .map_err(|source| events::EventError::Corrupt { id, source })?;
                Ok(StudyEvent {
                    id,
                    study_instance_uid,
                    kind,
                    at,
                    instance_count,
                })
            })
            .collect()
    }

    /// The study, if it exists within `scope`: another site's study is
    /// not found, as if it did not exist.
    pub async fn study(
        &self,
        study_instance_uid: &str,
        scope: &Scope,
    ) -> Result<Option<StudySummary>, sqlx::Error> {
        let sql = format!(
            "SELECT {STUDY_COLUMNS} FROM studies WHERE study_instance_uid = $1 AND {}",
            scope.condition("studies", 2)
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(study_instance_uid);
        for site in scope.values() {
            query = query.bind(site);
        }
        query.fetch_optional(self.pool()).await
    }

    pub async fn series_of(
        &self,
        study_instance_uid: &str,
        scope: &Scope,
    ) -> Result<Vec<SeriesSummary>, sqlx::Error> {
        let sql = format!(
            "SELECT se.series_instance_uid, se.modality, se.series_number, se.series_description, \
             se.body_part_examined, se.instance_count FROM series se \
             JOIN studies st ON st.id = se.study_id WHERE st.study_instance_uid = $1 AND {} \
             ORDER BY se.series_number, se.id",
            scope.condition("st", 2)
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(study_instance_uid);
        for site in scope.values() {
            query = query.bind(site);
        }
        query.fetch_all(self.pool()).await
    }

    /// Every stored version of every instance of a study within `scope`.
    pub async fn instances_of(
        &self,
        study_instance_uid: &str,
        scope: &Scope,
    ) -> Result<Vec<InstanceRecord>, sqlx::Error> {
        let sql = format!(
            "SELECT i.sop_instance_uid, i.version, i.sop_class_uid, i.transfer_syntax_uid, \
             i.instance_number, i.path, i.size_bytes, i.checksum, i.calling_ae_title, i.received_at \
             FROM instances i JOIN studies st ON st.id = i.study_id \
             WHERE st.study_instance_uid = $1 AND {} ORDER BY i.series_id, i.instance_number, i.id",
            scope.condition("st", 2)
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(study_instance_uid);
        for site in scope.values() {
            query = query.bind(site);
        }
        query.fetch_all(self.pool()).await
    }
}

fn conflict(new: &NewInstance, owner_site: String, detail: String) -> IndexError {
    let a = &new.attributes;
    IndexError::Conflict(Box::new(IdentityConflict {
        at: new.received_at,
        site: new.site.clone(),
        calling_ae_title: new.calling_ae_title.clone(),
        study_instance_uid: a.study_instance_uid.clone(),
        series_instance_uid: a.series_instance_uid.clone(),
        sop_instance_uid: a.sop_instance_uid.clone(),
        owner_site,
        detail,
    }))
}

/// Adds a value to a backslash-separated set (the DICOM multi-value form),
/// keeping it sorted so that equal sets compare equal.
fn merge_set(set: &str, value: &str) -> String {
    let value = value.trim();
    let mut items: Vec<&str> = set.split('\\').filter(|s| !s.is_empty()).collect();
    if value.is_empty() || items.contains(&value) {
        return set.to_string();
    }
    items.push(value);
    items.sort_unstable();
    items.join("\\")
}

/// The shortest quiet period, in ms, that a request form of `site` waiting
/// for this study asks for by its urgency (matched as forms are: accession
/// number, else patient and date; `forms::attach_waiting`).
async fn urgent_quiet_period(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    site: &str,
    a: &telerad_dicom::inspect::InstanceAttributes,
) -> Result<Option<i64>, sqlx::Error> {
    let found: Option<(Option<i64>,)> = sqlx::query_as(
        "SELECT MIN(q.quiet_period_secs) FROM request_forms f \
         JOIN site_urgent_quiet_periods q ON q.site = f.site AND q.urgency = f.urgency \
         WHERE f.site = $1 AND f.study_id IS NULL AND f.cancelled_at IS NULL \
         AND f.patient_id = $2 \
         AND ((f.accession_number <> '' AND f.accession_number = $3) \
              OR (f.study_date = $4 AND (f.accession_number = '' OR $3 = '')))",
    )
    .bind(site)
    .bind(&a.patient_id)
    .bind(&a.accession_number)
    .bind(&a.study_date)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found
        .and_then(|(secs,)| secs)
        .map(|secs| secs.saturating_mul(1000)))
}

#[cfg(test)]
mod tests {
    use super::{StudyStatus, UnknownStudyStatus, merge_set};

    #[test]
    fn a_stored_status_is_read_or_refused() {
        assert_eq!(
            StudyStatus::try_from("complete".to_owned()),
            Ok(StudyStatus::Complete)
        );
        assert_eq!(
            StudyStatus::try_from("Complete".to_owned()),
            Err(UnknownStudyStatus("Complete".to_owned()))
        );
    }

    #[test]
    fn modality_sets_merge_sorted_without_duplicates() {
        assert_eq!(merge_set("", "CT"), "CT");
        assert_eq!(merge_set("CT", "CT"), "CT");
        assert_eq!(merge_set("MR\\SR", "CT"), "CT\\MR\\SR");
        assert_eq!(merge_set("CT", " "), "CT");
    }
}
