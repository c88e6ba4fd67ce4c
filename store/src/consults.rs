//! Second opinions (téléexpertise, migration 0020): asked by a study's
//! reader of a colleague of another subspecialty; answered once, signed.
//! Each step appends its workflow event in the same transaction.

use crate::StudyId;
use crate::events::{self, EventKind};
use serde::Serialize;
use sqlx::FromRow;

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// A second opinion asked of a colleague, and its answer.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Consult {
    pub id: i64,
    #[serde(skip)]
    pub study_id: StudyId,
    pub study_instance_uid: String,
    /// The asking radiologist's id.
    pub requested_by: String,
    pub subspecialty: String,
    pub question: String,
    /// The id of the radiologist asked.
    pub consultant: String,
    /// `open` or `answered`.
    pub state: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: i64,
    pub answer: Option<String>,
    /// The SHA-256 of the answer, in hex, as signed.
    pub answer_hash: Option<String>,
    /// The login of the account that answered.
    pub answered_by: Option<String>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub answered_at: Option<i64>,
}

const COLUMNS: &str = "c.id, c.study_id, s.study_instance_uid, c.requested_by, c.subspecialty, \
    c.question, c.consultant, c.state, c.requested_at, c.answer, c.answer_hash, c.answered_by, \
    c.answered_at";

#[derive(Debug, Clone)]
pub struct NewConsult<'a> {
    pub study_id: StudyId,
    pub requested_by: &'a str,
    pub subspecialty: &'a str,
    pub question: &'a str,
    pub consultant: &'a str,
    pub at: i64,
}

pub async fn request(tx: &mut Tx<'_>, new: &NewConsult<'_>) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO consults (study_id, requested_by, subspecialty, question, consultant, \
         state, requested_at) VALUES ($1, $2, $3, $4, $5, 'open', $6) RETURNING id",
    )
    .bind(new.study_id)
    .bind(new.requested_by)
    .bind(new.subspecialty)
    .bind(new.question)
    .bind(new.consultant)
    .bind(new.at)
    .fetch_one(&mut **tx)
    .await?;
    events::append_workflow(
        tx,
        new.study_id,
        EventKind::ConsultRequested,
        new.at,
        serde_json::json!({ "consult": id, "radiologist": new.consultant,
                            "requested_by": new.requested_by }),
    )
    .await?;
    Ok(id)
}

/// The study's consults, oldest first.
pub async fn of_study(tx: &mut Tx<'_>, study_id: StudyId) -> Result<Vec<Consult>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM consults c JOIN studies s ON s.id = c.study_id \
         WHERE c.study_id = $1 ORDER BY c.id"
    )))
    .bind(study_id)
    .fetch_all(&mut **tx)
    .await
}

pub async fn by_id(tx: &mut Tx<'_>, id: i64) -> Result<Option<Consult>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM consults c JOIN studies s ON s.id = c.study_id WHERE c.id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

/// The consults asked of `consultant` and not answered yet, oldest first.
pub async fn open_for(tx: &mut Tx<'_>, consultant: &str) -> Result<Vec<Consult>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM consults c JOIN studies s ON s.id = c.study_id \
         WHERE c.consultant = $1 AND c.state = 'open' ORDER BY c.requested_at, c.id"
    )))
    .bind(consultant)
    .fetch_all(&mut **tx)
    .await
}

#[derive(Debug, Clone)]
pub struct Answer<'a> {
    pub text: &'a str,
    pub hash: &'a str,
    pub by: &'a str,
    pub at: i64,
}

/// The consultant's signed answer: `false` if the consult is not theirs
/// or was answered already.
pub async fn answer(
    tx: &mut Tx<'_>,
    consult: &Consult,
    answer: &Answer<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE consults SET state = 'answered', answer = $2, answer_hash = $3, \
         answered_by = $4, answered_at = $5 WHERE id = $1 AND state = 'open'",
    )
    .bind(consult.id)
    .bind(answer.text)
    .bind(answer.hash)
    .bind(answer.by)
    .bind(answer.at)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if done != 1 {
        return Ok(false);
    }
    events::append_workflow(
        tx,
        consult.study_id,
        EventKind::ConsultAnswered,
        answer.at,
        serde_json::json!({ "consult": consult.id, "radiologist": consult.requested_by,
                            "consultant": consult.consultant }),
    )
    .await?;
    Ok(true)
}
