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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
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
    pub amended_by: Option<String>,
    pub amended_at: Option<i64>,
    pub cancelled_at: Option<i64>,
    pub cancel_reason: Option<String>,
    #[sqlx(try_from = "OptionalIndication")]
    pub indication: Option<Indication>,
    pub indication_by: Option<String>,
    pub indication_at: Option<i64>,
    pub indication_note: Option<String>,
}

/// The radiologist's check of the indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Indication {
    Accepted,
    /// More information asked of the site.
    MoreInformation,
}

impl Indication {
    pub fn as_str(self) -> &'static str {
        match self {
            Indication::Accepted => "accepted",
            Indication::MoreInformation => "more_information",
        }
    }
}

/// The stored column, NULL until the radiologist checks.
pub struct OptionalIndication(Option<String>);

impl<'r> sqlx::Decode<'r, sqlx::Any> for OptionalIndication {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(OptionalIndication(<Option<String> as sqlx::Decode<
            sqlx::Any,
        >>::decode(value)?))
    }
}

impl sqlx::Type<sqlx::Any> for OptionalIndication {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as sqlx::Type<sqlx::Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

impl TryFrom<OptionalIndication> for Option<Indication> {
    type Error = String;

    fn try_from(stored: OptionalIndication) -> Result<Option<Indication>, String> {
        match stored.0.as_deref() {
            None => Ok(None),
            Some("accepted") => Ok(Some(Indication::Accepted)),
            Some("more_information") => Ok(Some(Indication::MoreInformation)),
            Some(other) => Err(format!("unknown indication check {other:?}")),
        }
    }
}

const COLUMNS: &str = "id, site, study_id, patient_id, accession_number, study_date, urgency, \
                       requested_examination, symptom_onset_at, form, filed_by, filed_at, \
                       amended_by, amended_at, cancelled_at, cancel_reason, indication, \
                       indication_by, indication_at, indication_note";

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
    let study_id = study_for(
        tx,
        form.site,
        form.accession_number,
        form.patient_id,
        form.study_date,
    )
    .await?;
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
        // The caller appends the form's event ([`form_added`]) once its
        // row locks are taken: the event log's lock comes last.
        Ok((id,)) => {
            if let Some(study_id) = study_id {
                hasten_completion(tx, study_id, form.site, form.urgency).await?;
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

/// The study of `site` a form of these identifiers belongs to, if it has
/// arrived and has no form yet: the study whose accession number is the
/// form's first, then the latest of the patient on that date.
async fn study_for(
    tx: &mut Tx<'_>,
    site: &str,
    accession_number: &str,
    patient_id: &str,
    study_date: &str,
) -> Result<Option<StudyId>, sqlx::Error> {
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
    .bind(site)
    .bind(accession_number)
    .bind(patient_id)
    .bind(study_date)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(study.map(|(id,)| StudyId(id)))
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
         WHERE f.study_id IS NULL AND f.cancelled_at IS NULL AND f.site = s.site \
         AND f.patient_id = s.patient_id \
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
    // The match is checked again as the row is written: on PostgreSQL a
    // cancellation or correction committed since the SELECT is seen here.
    let attached = sqlx::query(
        "UPDATE request_forms SET study_id = $1 WHERE id = $2 AND study_id IS NULL \
         AND cancelled_at IS NULL AND EXISTS (SELECT 1 FROM studies s WHERE s.id = $1 \
         AND s.site = request_forms.site AND s.patient_id = request_forms.patient_id \
         AND ((request_forms.accession_number <> '' \
               AND request_forms.accession_number = s.accession_number) \
              OR (request_forms.study_date = s.study_date \
                  AND (request_forms.accession_number = '' OR s.accession_number = ''))))",
    )
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

/// The study has its request form: the reader is told. Appended last in
/// the transaction (after the assignment's row lock, if any), as every
/// event append: the log's lock is never taken before a row lock.
pub async fn form_added(
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

/// A form by id, locked for the transaction on PostgreSQL (the caller
/// amends or cancels it next).
pub async fn by_id_for_update(
    tx: &mut Tx<'_>,
    id: i64,
    postgres: bool,
) -> Result<Option<StoredForm>, sqlx::Error> {
    let lock = if postgres { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM request_forms WHERE id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

/// The forms of `scope`'s sites still waiting for their images (not
/// cancelled), newest first. A radiologist reads forms through their
/// studies: none here.
pub async fn waiting(
    tx: &mut Tx<'_>,
    scope: &crate::Scope,
    limit: i64,
) -> Result<Vec<StoredForm>, sqlx::Error> {
    if matches!(scope, crate::Scope::Reader { .. }) {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM request_forms WHERE study_id IS NULL AND cancelled_at IS NULL \
         AND {filter} ORDER BY filed_at DESC, id DESC LIMIT $1",
        filter = scope.condition("request_forms", 2),
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit.max(1));
    for site in scope.values() {
        query = query.bind(site);
    }
    query.fetch_all(&mut **tx).await
}

/// What an amendment changes: every column the form feeds, and the form.
#[derive(Debug, Clone)]
pub struct Amendment<'a> {
    pub patient_id: &'a str,
    pub accession_number: &'a str,
    pub study_date: &'a str,
    pub urgency: Urgency,
    pub requested_examination: &'a str,
    pub symptom_onset_at: Option<i64>,
    pub form: &'a str,
    pub by: &'a str,
    pub at: i64,
}

/// Replaces `current`'s text, keeping the one it replaces as a revision;
/// a form still waiting is then matched to its study if it has arrived.
/// Returns the form's study, if any (the caller appends [`form_added`]
/// when it is new). The caller read and locked `current` and checked that
/// it may still be amended. A corrected form is checked again by the
/// radiologist: its indication check is cleared.
pub async fn amend(
    tx: &mut Tx<'_>,
    current: &StoredForm,
    amendment: &Amendment<'_>,
) -> Result<Option<StudyId>, FormError> {
    let (revisions,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM request_form_revisions WHERE form_id = $1")
            .bind(current.id)
            .fetch_one(&mut **tx)
            .await?;
    sqlx::query(
        "INSERT INTO request_form_revisions (form_id, revision, form, written_by, written_at, \
         replaced_by, replaced_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(current.id)
    .bind(revisions + 1)
    .bind(&current.form)
    .bind(current.amended_by.as_deref().unwrap_or(&current.filed_by))
    .bind(current.amended_at.unwrap_or(current.filed_at))
    .bind(amendment.by)
    .bind(amendment.at)
    .execute(&mut **tx)
    .await?;
    let study_id = match current.study_id {
        Some(study_id) => Some(study_id),
        None => {
            study_for(
                tx,
                &current.site,
                amendment.accession_number,
                amendment.patient_id,
                amendment.study_date,
            )
            .await?
        }
    };
    let updated = sqlx::query(
        "UPDATE request_forms SET patient_id = $2, accession_number = $3, study_date = $4, \
         urgency = $5, requested_examination = $6, symptom_onset_at = $7, form = $8, \
         amended_by = $9, amended_at = $10, study_id = $11, indication = NULL, \
         indication_by = NULL, indication_at = NULL, indication_note = NULL \
         WHERE id = $1 AND cancelled_at IS NULL",
    )
    .bind(current.id)
    .bind(amendment.patient_id)
    .bind(amendment.accession_number)
    .bind(amendment.study_date)
    .bind(amendment.urgency.as_str())
    .bind(amendment.requested_examination)
    .bind(amendment.symptom_onset_at)
    .bind(amendment.form)
    .bind(amendment.by)
    .bind(amendment.at)
    .bind(study_id)
    .execute(&mut **tx)
    .await;
    match updated {
        Ok(_) => {}
        Err(e)
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation()) =>
        {
            return Err(FormError::StudyHasForm);
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(study_id) = study_id {
        hasten_completion(tx, study_id, &current.site, amendment.urgency).await?;
    }
    Ok(study_id)
}

/// A form that reaches its study while the images are still arriving
/// (filed during the scan, as a stroke's often is) gives it the quiet
/// period its site sets for that urgency, if shorter than the study's:
/// the completion timer moves to the last image plus that period (at once
/// if it has passed). Returns the new due time, if it moved.
pub async fn hasten_completion(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    site: &str,
    urgency: Urgency,
) -> Result<Option<i64>, sqlx::Error> {
    let quiet: Option<(i64,)> = sqlx::query_as(
        "SELECT quiet_period_secs FROM site_urgent_quiet_periods WHERE site = $1 AND urgency = $2",
    )
    .bind(site)
    .bind(urgency.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    let Some((secs,)) = quiet else {
        return Ok(None);
    };
    let quiet_ms = secs.saturating_mul(1000);
    let receiving: Option<(i64, i64)> = sqlx::query_as(
        "SELECT last_received_at, complete_after FROM studies \
         WHERE id = $1 AND status = 'receiving'",
    )
    .bind(study_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((last_received_at, complete_after)) = receiving else {
        return Ok(None);
    };
    let due = last_received_at.saturating_add(quiet_ms);
    if due >= complete_after {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE studies SET quiet_period_ms = $2, complete_after = $3 \
         WHERE id = $1 AND status = 'receiving'",
    )
    .bind(study_id)
    .bind(quiet_ms)
    .bind(due)
    .execute(&mut **tx)
    .await?;
    crate::timers::schedule(tx, crate::timers::TimerKind::StudyComplete, study_id.0, due).await?;
    Ok(Some(due))
}

/// Cancels a form still waiting for its images: `false` if it has a
/// study or was cancelled already.
pub async fn cancel(
    tx: &mut Tx<'_>,
    id: i64,
    by: &str,
    reason: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE request_forms SET cancelled_at = $2, cancelled_by = $3, cancel_reason = $4 \
         WHERE id = $1 AND study_id IS NULL AND cancelled_at IS NULL",
    )
    .bind(id)
    .bind(at)
    .bind(by)
    .bind(reason)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// A form's earlier texts, oldest first.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Revision {
    pub revision: i64,
    #[serde(skip)]
    pub form: String,
    pub written_by: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub written_at: i64,
    pub replaced_by: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub replaced_at: i64,
}

pub async fn revisions(tx: &mut Tx<'_>, form_id: i64) -> Result<Vec<Revision>, sqlx::Error> {
    sqlx::query_as(
        "SELECT revision, form, written_by, written_at, replaced_by, replaced_at \
         FROM request_form_revisions WHERE form_id = $1 ORDER BY revision",
    )
    .bind(form_id)
    .fetch_all(&mut **tx)
    .await
}

/// Records the radiologist's check of `form`'s indication, as they read
/// it: `false` if the site corrected the form since (the check would
/// approve a text the radiologist has not seen).
pub async fn check_indication(
    tx: &mut Tx<'_>,
    form: &StoredForm,
    indication: Indication,
    by: &str,
    note: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE request_forms SET indication = $2, indication_by = $3, indication_at = $4, \
         indication_note = $5 WHERE id = $1 AND amended_at IS NOT DISTINCT FROM $6",
    )
    .bind(form.id)
    .bind(indication.as_str())
    .bind(by)
    .bind(at)
    .bind(note)
    .bind(form.amended_at)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(done == 1)
}
