//! Critical results (migration 0016): flagged by the reader with an ACR
//! category, acknowledged by the site (or a call recorded), escalated when
//! the deadline passes first. Each change is a guarded write on the
//! result's state, so an acknowledgement and an escalation racing each
//! other end with one of them, never a mix.

use crate::StudyId;
use crate::events::{self, EventKind};
use serde::Serialize;

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// Where a critical result's loop stands: open, escalated (its deadline
/// passed unacknowledged), or acknowledged (closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Open,
    Escalated,
    Acknowledged,
}

impl TryFrom<String> for State {
    type Error = String;

    fn try_from(s: String) -> Result<State, String> {
        Ok(match s.as_str() {
            "open" => State::Open,
            "escalated" => State::Escalated,
            "acknowledged" => State::Acknowledged,
            _ => return Err(format!("unknown critical result state {s:?}")),
        })
    }
}

/// How the site was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub enum Means {
    /// A clinician acknowledged it in telerad.
    #[serde(rename = "telerad")]
    Telerad,
    #[serde(rename = "phone")]
    Phone,
    #[serde(rename = "in person")]
    InPerson,
}

impl Means {
    pub fn as_str(self) -> &'static str {
        match self {
            Means::Telerad => "telerad",
            Means::Phone => "phone",
            Means::InPerson => "in person",
        }
    }
}

impl TryFrom<String> for Means {
    type Error = String;

    fn try_from(s: String) -> Result<Means, String> {
        Ok(match s.as_str() {
            "telerad" => Means::Telerad,
            "phone" => Means::Phone,
            "in person" => Means::InPerson,
            _ => return Err(format!("unknown means {s:?}")),
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CriticalRow {
    pub id: i64,
    pub study_id: StudyId,
    pub category: i64,
    pub finding: String,
    pub flagged_by: String,
    pub flagged_at: i64,
    pub due_at: i64,
    #[sqlx(try_from = "String")]
    pub state: State,
    pub escalated_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_role: Option<String>,
    pub acknowledged_at: Option<i64>,
    pub means: Option<String>,
    pub recorded_by: Option<String>,
}

const COLUMNS: &str = "id, study_id, category, finding, flagged_by, flagged_at, due_at, state, \
    escalated_at, acknowledged_by, acknowledged_role, acknowledged_at, means, recorded_by";

/// A finding to flag.
#[derive(Debug, Clone, Copy)]
pub struct NewCritical<'a> {
    pub study_id: StudyId,
    pub category: u8,
    pub finding: &'a str,
    pub flagged_by: &'a str,
    pub due_at: i64,
}

pub async fn flag(tx: &mut Tx<'_>, new: &NewCritical<'_>, now: i64) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO critical_results (study_id, category, finding, flagged_by, flagged_at, \
         due_at, state) VALUES ($1, $2, $3, $4, $5, $6, 'open') RETURNING id",
    )
    .bind(new.study_id)
    .bind(i64::from(new.category))
    .bind(new.finding)
    .bind(new.flagged_by)
    .bind(now)
    .bind(new.due_at)
    .fetch_one(&mut **tx)
    .await?;
    events::append_workflow(
        tx,
        new.study_id,
        EventKind::CriticalResult,
        now,
        serde_json::json!({ "critical_result": id, "category": new.category,
                            "radiologist": new.flagged_by }),
    )
    .await?;
    Ok(id)
}

/// The study's critical results, oldest first.
pub async fn of_study(tx: &mut Tx<'_>, study_id: StudyId) -> Result<Vec<CriticalRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM critical_results WHERE study_id = $1 ORDER BY id"
    )))
    .bind(study_id)
    .fetch_all(&mut **tx)
    .await
}

pub async fn by_id(tx: &mut Tx<'_>, id: i64) -> Result<Option<CriticalRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM critical_results WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

/// Who received a result, and how.
#[derive(Debug, Clone, Copy)]
pub struct Receipt<'a> {
    pub by: &'a str,
    pub role: &'a str,
    pub means: Means,
    pub recorded_by: &'a str,
    pub at: i64,
}

/// Closes the loop: `false` if the result was acknowledged already.
pub async fn acknowledge(
    tx: &mut Tx<'_>,
    id: i64,
    receipt: &Receipt<'_>,
) -> Result<bool, sqlx::Error> {
    let done: Option<(StudyId,)> = sqlx::query_as(
        "UPDATE critical_results SET state = 'acknowledged', acknowledged_by = $2, \
         acknowledged_role = $3, acknowledged_at = $4, means = $5, recorded_by = $6 \
         WHERE id = $1 AND state IN ('open', 'escalated') RETURNING study_id",
    )
    .bind(id)
    .bind(receipt.by)
    .bind(receipt.role)
    .bind(receipt.at)
    .bind(receipt.means.as_str())
    .bind(receipt.recorded_by)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((study_id,)) = done else {
        return Ok(false);
    };
    events::append_workflow(
        tx,
        study_id,
        EventKind::CriticalAcknowledged,
        receipt.at,
        serde_json::json!({ "critical_result": id, "means": receipt.means.as_str() }),
    )
    .await?;
    Ok(true)
}

/// The deadline passed unacknowledged: `false` if the loop closed first.
pub async fn escalate(tx: &mut Tx<'_>, id: i64, now: i64) -> Result<bool, sqlx::Error> {
    let done: Option<(StudyId, i64, String)> = sqlx::query_as(
        "UPDATE critical_results SET state = 'escalated', escalated_at = $2 \
         WHERE id = $1 AND state = 'open' RETURNING study_id, category, flagged_by",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((study_id, category, flagged_by)) = done else {
        return Ok(false);
    };
    events::append_workflow(
        tx,
        study_id,
        EventKind::CriticalEscalated,
        now,
        serde_json::json!({ "critical_result": id, "category": category,
                            "radiologist": flagged_by }),
    )
    .await?;
    Ok(true)
}
