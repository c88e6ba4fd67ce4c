//! Request forms (migration 0013): what the emergency department asks of
//! the radiologist, and how a form finds its study.
//!
//! A form names its site, the patient and either the accession number or
//! the study date. It is matched to a study of that site and patient by
//! accession number, else (when either side has none) by study date: an
//! accession number mistyped into another patient's never attaches the
//! form to that patient's study. A study has one form at most. A form filed before its images waits:
//! the router matches it when the study completes ([`attach_waiting`]).

use crate::StudyId;
use crate::events::{self, EventKind};
use serde::Serialize;

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// The urgency written on a form, as French emergency departments grade
/// it; the router maps it onto a priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    /// Suspected stroke: thrombolysis within 4 h 30 of symptom onset.
    Stroke,
    Trauma,
    Stat,
    Urgent,
    Routine,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Stroke => "stroke",
            Urgency::Trauma => "trauma",
            Urgency::Stat => "stat",
            Urgency::Urgent => "urgent",
            Urgency::Routine => "routine",
        }
    }
}

impl TryFrom<String> for Urgency {
    type Error = String;

    fn try_from(s: String) -> Result<Urgency, String> {
        Ok(match s.as_str() {
            "stroke" => Urgency::Stroke,
            "trauma" => Urgency::Trauma,
            "stat" => Urgency::Stat,
            "urgent" => Urgency::Urgent,
            "routine" => Urgency::Routine,
            _ => return Err(format!("unknown urgency {s:?}")),
        })
    }
}

/// A validated form, to store.
#[derive(Debug, Clone)]
pub struct NewForm<'a> {
    pub site: &'a str,
    pub patient_id: &'a str,
    /// Empty when the requester does not know it.
    pub accession_number: &'a str,
    /// `YYYYMMDD`, the date the examination is done at the site.
    pub study_date: &'a str,
    pub urgency: Urgency,
    pub requested_examination: &'a str,
    /// Unix ms.
    pub symptom_onset_at: Option<i64>,
    /// The whole form, as JSON.
    pub form: &'a str,
    pub filed_by: &'a str,
    pub filed_at: i64,
}

/// A stored form.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredForm {
    pub id: i64,
    pub site: String,
    pub study_id: Option<StudyId>,
    pub patient_id: String,
    pub accession_number: String,
    pub study_date: String,
    #[sqlx(try_from = "String")]
    pub urgency: Urgency,
    pub requested_examination: String,
    pub symptom_onset_at: Option<i64>,
    pub form: String,
    pub filed_by: String,
    pub filed_at: i64,
}

const COLUMNS: &str = "id, site, study_id, patient_id, accession_number, study_date, urgency, \
                       requested_examination, symptom_onset_at, form, filed_by, filed_at";

#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// Two forms matched to one study at once: the later loses, and is
    /// filed again (it then waits for a study of its own).
    #[error("the study was given another request form meanwhile: file it again")]
    StudyHasForm,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Stores `form`, matched to a study of its site if one has arrived and
/// has no form yet; returns the form's id and the study it was matched to.
pub async fn insert(
    tx: &mut Tx<'_>,
    form: &NewForm<'_>,
) -> Result<(i64, Option<StudyId>), FormError> {
    // The study whose accession number is the form's first, then the
    // latest of the patient on that date.
    let study: Option<(i64,)> = sqlx::query_as(
        "SELECT s.id FROM studies s WHERE s.site = $1 \
         AND NOT EXISTS (SELECT 1 FROM request_forms f WHERE f.study_id = s.id) \
         AND s.patient_id = $3 \
         AND (($2 <> '' AND s.accession_number = $2) \
              OR (s.study_date = $4 AND ($2 = '' OR s.accession_number = ''))) \
         ORDER BY CASE WHEN $2 <> '' AND s.accession_number = $2 THEN 0 ELSE 1 END, \
         s.first_received_at DESC \
         LIMIT 1",
    )
    .bind(form.site)
    .bind(form.accession_number)
    .bind(form.patient_id)
    .bind(form.study_date)
    .fetch_optional(&mut **tx)
    .await?;
    let study_id = study.map(|(id,)| StudyId(id));
    let inserted: Result<(i64,), sqlx::Error> = sqlx::query_as(
        "INSERT INTO request_forms (site, study_id, patient_id, accession_number, study_date, \
         urgency, requested_examination, symptom_onset_at, form, filed_by, filed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(form.site)
    .bind(study_id)
    .bind(form.patient_id)
    .bind(form.accession_number)
    .bind(form.study_date)
    .bind(form.urgency.as_str())
    .bind(form.requested_examination)
    .bind(form.symptom_onset_at)
    .bind(form.form)
    .bind(form.filed_by)
    .bind(form.filed_at)
    .fetch_one(&mut **tx)
    .await;
    match inserted {
        Ok((id,)) => {
            if let Some(study_id) = study_id {
                form_added(tx, study_id, id, form.filed_at).await?;
            }
            Ok((id, study_id))
        }
        // Nothing more may run in the transaction: PostgreSQL has aborted it.
        Err(e)
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation()) =>
        {
            Err(FormError::StudyHasForm)
        }
        Err(e) => Err(e.into()),
    }
}

/// The form of a study, if it has one.
pub async fn of_study(
    tx: &mut Tx<'_>,
    study_id: StudyId,
) -> Result<Option<StoredForm>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM request_forms WHERE study_id = $1"
    )))
    .bind(study_id)
    .fetch_optional(&mut **tx)
    .await
}

/// Gives the study the oldest waiting form that matches it, if it has
/// none yet; returns the study's form either way.
pub async fn attach_waiting(
    tx: &mut Tx<'_>,
    study_id: StudyId,
) -> Result<Option<StoredForm>, sqlx::Error> {
    if let Some(form) = of_study(tx, study_id).await? {
        return Ok(Some(form));
    }
    let waiting: Option<(i64,)> = sqlx::query_as(
        "SELECT f.id FROM request_forms f JOIN studies s ON s.id = $1 \
         WHERE f.study_id IS NULL AND f.site = s.site AND f.patient_id = s.patient_id \
         AND ((f.accession_number <> '' AND f.accession_number = s.accession_number) \
              OR (f.study_date = s.study_date \
                  AND (f.accession_number = '' OR s.accession_number = ''))) \
         ORDER BY CASE WHEN f.accession_number <> '' AND f.accession_number = s.accession_number \
         THEN 0 ELSE 1 END, f.filed_at \
         LIMIT 1",
    )
    .bind(study_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((form_id,)) = waiting else {
        return Ok(None);
    };
    let attached =
        sqlx::query("UPDATE request_forms SET study_id = $1 WHERE id = $2 AND study_id IS NULL")
            .bind(study_id)
            .bind(form_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    let form = of_study(tx, study_id).await?;
    if attached == 1
        && let Some(form) = &form
    {
        form_added(tx, study_id, form_id, form.filed_at).await?;
    }
    Ok(form)
}

/// The study has its request form: the reader is told.
async fn form_added(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    form_id: i64,
    at: i64,
) -> Result<(), sqlx::Error> {
    events::append_workflow(
        tx,
        study_id,
        EventKind::Form,
        at,
        serde_json::json!({ "form": form_id }),
    )
    .await?;
    Ok(())
}
