//! Modality Performed Procedure Steps (migration 0022): kept as the
//! modality last set them, with the instances each says it produced. A
//! COMPLETED step whose instances are all indexed for its site completes
//! their study at once (DICOM PS3.4 Annex F gives the list; the quiet
//! period stays the fallback for a step that never completes or names
//! instances that never come).

use crate::events::{self, EventKind};
use crate::index::{StudyEvent, StudyIndex, StudySummary};
use crate::{EventId, StudyId};
use serde::Serialize;
use telerad_dicom::mpps::{PerformedStep, StepStatus};

/// A COMPLETED step still waiting for images is looked at for this long
/// after its last change; past it, the quiet period alone decides.
pub const WAIT_FOR_IMAGES_MS: i64 = 24 * 60 * 60 * 1000;

/// At most this many missing instances are listed on a study.
const MISSING_LISTED: i64 = 50;

/// A step as stored, for an N-SET to merge into.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredStep {
    pub id: i64,
    pub site: String,
    #[sqlx(try_from = "String")]
    pub status: StatusText,
    pub attributes: String,
    pub revision: i64,
}

/// The status column, read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusText(pub StepStatus);

impl TryFrom<String> for StatusText {
    type Error = String;
    fn try_from(value: String) -> Result<StatusText, String> {
        StepStatus::parse(&value)
            .map(StatusText)
            .ok_or_else(|| format!("unknown performed step status {value:?}"))
    }
}

/// What a step's write came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepWrite {
    Written {
        id: i64,
    },
    /// N-CREATE of a SOP Instance UID already used (PS3.7 C.5: 0111).
    Duplicate,
    /// Another writer changed the step since it was read.
    Conflict,
}

/// A step as shown on its study.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepView {
    pub sop_instance_uid: String,
    /// `IN PROGRESS`, `COMPLETED` or `DISCONTINUED`.
    pub status: String,
    pub step_id: String,
    pub description: String,
    pub modality: String,
    pub accession_number: String,
    pub started: String,
    pub ended: String,
    pub calling_ae_title: String,
    /// Instances the step names.
    pub referenced_instances: i64,
    /// Those not (yet) received; the first ones are listed.
    pub missing_instances: i64,
    pub missing_sop_instance_uids: Vec<String>,
    /// What the step did to the study once complete, e.g. "completed the study".
    pub outcome: Option<String>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub settled_at: Option<i64>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct StepRow {
    id: i64,
    sop_instance_uid: String,
    site: String,
    status: String,
    step_id: String,
    description: String,
    modality: String,
    accession_number: String,
    started: String,
    ended: String,
    calling_ae_title: String,
    outcome: Option<String>,
    settled_at: Option<i64>,
    updated_at: i64,
}

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

async fn write_references(
    tx: &mut Tx<'_>,
    id: i64,
    step: &PerformedStep,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM performed_step_instances WHERE step_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for reference in &step.references {
        sqlx::query(
            "INSERT INTO performed_step_instances (step_id, series_instance_uid, sop_instance_uid) \
             VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(&reference.series_instance_uid)
        .bind(&reference.sop_instance_uid)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl StudyIndex {
    /// Keeps a step an N-CREATE made (PS3.4 F.7.2.1).
    pub async fn create_performed_step(
        &self,
        sop_instance_uid: &str,
        site: &str,
        calling_ae_title: &str,
        step: &PerformedStep,
        attributes: &str,
        now: i64,
    ) -> Result<StepWrite, sqlx::Error> {
        let mut tx = self.database().begin_write().await?;
        let inserted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO performed_steps (sop_instance_uid, site, calling_ae_title, status, \
             study_instance_uid, accession_number, step_id, description, modality, started, \
             ended, attributes, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
             ON CONFLICT (sop_instance_uid) DO NOTHING RETURNING id",
        )
        .bind(sop_instance_uid)
        .bind(site)
        .bind(calling_ae_title)
        .bind(step.status.as_str())
        .bind(step.study_instance_uid.as_deref().unwrap_or(""))
        .bind(&step.accession_number)
        .bind(&step.step_id)
        .bind(&step.description)
        .bind(&step.modality)
        .bind(&step.started)
        .bind(&step.ended)
        .bind(attributes)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id,)) = inserted else {
            tx.rollback().await?;
            return Ok(StepWrite::Duplicate);
        };
        write_references(&mut tx, id, step).await?;
        tx.commit().await?;
        Ok(StepWrite::Written { id })
    }

    /// The step `sop_instance_uid` of `site`; another site's is none.
    pub async fn performed_step(
        &self,
        sop_instance_uid: &str,
        site: &str,
    ) -> Result<Option<StoredStep>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, site, status, attributes, revision FROM performed_steps \
             WHERE sop_instance_uid = $1 AND site = $2",
        )
        .bind(sop_instance_uid)
        .bind(site)
        .fetch_optional(self.pool())
        .await
    }

    /// Writes an N-SET's result over the revision it was computed from.
    pub async fn update_performed_step(
        &self,
        stored: &StoredStep,
        step: &PerformedStep,
        attributes: &str,
        now: i64,
    ) -> Result<StepWrite, sqlx::Error> {
        let mut tx = self.database().begin_write().await?;
        let updated = sqlx::query(
            "UPDATE performed_steps SET status = $3, study_instance_uid = $4, \
             accession_number = $5, step_id = $6, description = $7, modality = $8, \
             started = $9, ended = $10, attributes = $11, updated_at = $12, \
             revision = revision + 1 WHERE id = $1 AND revision = $2",
        )
        .bind(stored.id)
        .bind(stored.revision)
        .bind(step.status.as_str())
        .bind(step.study_instance_uid.as_deref().unwrap_or(""))
        .bind(&step.accession_number)
        .bind(&step.step_id)
        .bind(&step.description)
        .bind(&step.modality)
        .bind(&step.started)
        .bind(&step.ended)
        .bind(attributes)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            tx.rollback().await?;
            return Ok(StepWrite::Conflict);
        }
        write_references(&mut tx, stored.id, step).await?;
        tx.commit().await?;
        Ok(StepWrite::Written { id: stored.id })
    }

    /// Settles every COMPLETED step whose instances have all arrived; the
    /// completion sweep calls it, and the SCP right after an N-SET.
    pub async fn settle_performed_steps(&self, now: i64) -> Result<Vec<StudyEvent>, sqlx::Error> {
        let waiting: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, site FROM performed_steps WHERE status = 'COMPLETED' \
             AND settled_at IS NULL AND updated_at > $1 ORDER BY id LIMIT 100",
        )
        .bind(now - WAIT_FOR_IMAGES_MS)
        .fetch_all(self.pool())
        .await?;
        let mut events = Vec::new();
        for (id, site) in waiting {
            events.extend(self.settle_performed_step(id, &site, now).await?);
        }
        Ok(events)
    }

    /// Settles one COMPLETED step if its instances have all arrived.
    pub async fn settle_performed_step(
        &self,
        id: i64,
        site: &str,
        now: i64,
    ) -> Result<Vec<StudyEvent>, sqlx::Error> {
        // A read first, without the write lock: most looks find images
        // still missing, and write nothing.
        let (referenced, missing) = self.reference_counts(id, site).await?;
        if missing > 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.database().begin_write().await?;
        let studies: Vec<(i64,)> = sqlx::query_as(
            "SELECT DISTINCT s.id FROM performed_step_instances r \
             JOIN instances i ON i.sop_instance_uid = r.sop_instance_uid \
             JOIN studies s ON s.id = i.study_id \
             WHERE r.step_id = $1 AND s.site = $2",
        )
        .bind(id)
        .bind(site)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Vec::new();
        for (study_id,) in studies {
            let completed: Option<(i64, String)> = sqlx::query_as(
                "UPDATE studies SET status = 'complete', completed_at = $2 \
                 WHERE id = $1 AND status = 'receiving' \
                 RETURNING instance_count, study_instance_uid",
            )
            .bind(study_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            // Its quiet-period timer stays: when it fires, the study is no
            // longer receiving and the timer goes.
            if let Some((instance_count, study_instance_uid)) = completed {
                let event: EventId = events::append(
                    &mut tx,
                    self.database().backend,
                    StudyId(study_id),
                    EventKind::Complete,
                    now,
                    instance_count,
                )
                .await?;
                events.push(StudyEvent {
                    id: event,
                    study_instance_uid,
                    kind: EventKind::Complete,
                    at: now,
                    instance_count,
                });
            }
        }
        let outcome = if referenced == 0 {
            "named no instances: the quiet period completes the study"
        } else if events.is_empty() {
            "all instances received; the study was already complete"
        } else {
            "all instances received: completed the study"
        };
        let settled = sqlx::query(
            "UPDATE performed_steps SET settled_at = $2, outcome = $3 \
             WHERE id = $1 AND status = 'COMPLETED' AND settled_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .bind(outcome)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if settled == 0 {
            // Another node settled it first: its completions stand.
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        tx.commit().await?;
        Ok(events)
    }

    /// (instances the step names, those not indexed for its site).
    async fn reference_counts(&self, id: i64, site: &str) -> Result<(i64, i64), sqlx::Error> {
        sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM instances i \
             JOIN studies s ON s.id = i.study_id \
             WHERE i.sop_instance_uid = r.sop_instance_uid AND s.site = $2) \
             THEN 0 ELSE 1 END), 0) \
             FROM performed_step_instances r WHERE r.step_id = $1",
        )
        .bind(id)
        .bind(site)
        .fetch_one(self.pool())
        .await
    }

    /// The steps of a study the caller may see (checked before, as its
    /// summary was read within the caller's scope): those of its site
    /// scheduled for it, and those naming one of its instances.
    pub async fn performed_steps_of(
        &self,
        study: &StudySummary,
    ) -> Result<Vec<StepView>, sqlx::Error> {
        let rows: Vec<StepRow> = sqlx::query_as(
            "SELECT p.id, p.sop_instance_uid, p.site, p.status, p.step_id, p.description, \
             p.modality, p.accession_number, p.started, p.ended, p.calling_ae_title, \
             p.outcome, p.settled_at, p.updated_at FROM performed_steps p \
             WHERE p.site = $2 AND (p.study_instance_uid = $1 OR p.id IN (SELECT r.step_id \
             FROM performed_step_instances r JOIN instances i \
             ON i.sop_instance_uid = r.sop_instance_uid \
             JOIN studies st ON st.id = i.study_id WHERE st.study_instance_uid = $1)) \
             ORDER BY p.id",
        )
        .bind(&study.study_instance_uid)
        .bind(&study.site)
        .fetch_all(self.pool())
        .await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            let (referenced, missing) = self.reference_counts(row.id, &row.site).await?;
            let listed: Vec<(String,)> = sqlx::query_as(
                "SELECT r.sop_instance_uid FROM performed_step_instances r \
                 WHERE r.step_id = $1 AND NOT EXISTS (SELECT 1 FROM instances i \
                 JOIN studies s ON s.id = i.study_id \
                 WHERE i.sop_instance_uid = r.sop_instance_uid AND s.site = $2) \
                 ORDER BY r.sop_instance_uid LIMIT $3",
            )
            .bind(row.id)
            .bind(&row.site)
            .bind(MISSING_LISTED)
            .fetch_all(self.pool())
            .await?;
            views.push(StepView {
                sop_instance_uid: row.sop_instance_uid,
                status: row.status,
                step_id: row.step_id,
                description: row.description,
                modality: row.modality,
                accession_number: row.accession_number,
                started: row.started,
                ended: row.ended,
                calling_ae_title: row.calling_ae_title,
                referenced_instances: referenced,
                missing_instances: missing,
                missing_sop_instance_uids: listed.into_iter().map(|(uid,)| uid).collect(),
                outcome: row.outcome,
                settled_at: row.settled_at,
                updated_at: row.updated_at,
            });
        }
        Ok(views)
    }
}
