//! Assignments in the database: the row of each study, its history, and the
//! loads that candidate selection compares.
//!
//! Every change is a guarded `UPDATE … WHERE state = … AND …` or an insert
//! under a unique key, so that several telerad processes sharing one
//! PostgreSQL database never assign a study twice nor fire one escalation
//! twice.

use crate::candidates::{Load, weight};
use crate::rules::Priority;
use serde::Serialize;
use sqlx::{Any, FromRow, Transaction};
use std::collections::{HashMap, HashSet};
use telerad_lang::Said;
use telerad_store::events::{self, EventKind};
use telerad_store::timers::{self, TimerKind};
use telerad_store::{AssignmentId, StudyId};

pub type Tx<'a> = Transaction<'a, Any>;

/// A stored word that is not one of its column's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {column}")]
pub struct CorruptValue {
    pub column: &'static str,
    pub value: String,
}

/// Where an assignment stands (`assignments.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentState {
    /// Given to a radiologist who has not acknowledged it yet.
    Assigned,
    /// The radiologist took it: escalation stops.
    Acknowledged,
    /// Nobody could be given it.
    Unassigned,
}

impl AssignmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentState::Assigned => "assigned",
            AssignmentState::Acknowledged => "acknowledged",
            AssignmentState::Unassigned => "unassigned",
        }
    }

    /// The state of a row given to `radiologist`, or to nobody.
    pub fn given_to(radiologist: Option<&str>) -> AssignmentState {
        match radiologist {
            Some(_) => AssignmentState::Assigned,
            None => AssignmentState::Unassigned,
        }
    }
}

impl TryFrom<String> for AssignmentState {
    type Error = CorruptValue;

    fn try_from(value: String) -> Result<AssignmentState, CorruptValue> {
        [
            AssignmentState::Assigned,
            AssignmentState::Acknowledged,
            AssignmentState::Unassigned,
        ]
        .into_iter()
        .find(|state| state.as_str() == value)
        .ok_or(CorruptValue {
            column: "assignment state",
            value,
        })
    }
}

/// What an entry of `assignment_history` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HistoryAction {
    Assigned,
    Unassigned,
    Escalated,
    Reassigned,
    Acknowledged,
    NewImages,
    /// A request form raised the priority.
    Reprioritised,
}

impl HistoryAction {
    const ALL: [HistoryAction; 7] = [
        HistoryAction::Assigned,
        HistoryAction::Unassigned,
        HistoryAction::Escalated,
        HistoryAction::Reassigned,
        HistoryAction::Acknowledged,
        HistoryAction::NewImages,
        HistoryAction::Reprioritised,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HistoryAction::Assigned => "assigned",
            HistoryAction::Unassigned => "unassigned",
            HistoryAction::Escalated => "escalated",
            HistoryAction::Reassigned => "reassigned",
            HistoryAction::Acknowledged => "acknowledged",
            HistoryAction::NewImages => "new_images",
            HistoryAction::Reprioritised => "reprioritised",
        }
    }
}

impl TryFrom<String> for HistoryAction {
    type Error = CorruptValue;

    fn try_from(value: String) -> Result<HistoryAction, CorruptValue> {
        HistoryAction::ALL
            .into_iter()
            .find(|action| action.as_str() == value)
            .ok_or(CorruptValue {
                column: "history action",
                value,
            })
    }
}

/// The routing decision stored with an assignment, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct Explanation(pub serde_json::Value);

impl TryFrom<String> for Explanation {
    type Error = serde_json::Error;

    fn try_from(text: String) -> Result<Explanation, serde_json::Error> {
        serde_json::from_str(&text).map(Explanation)
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct AssignmentRow {
    pub id: AssignmentId,
    pub study_id: StudyId,
    #[sqlx(try_from = "String")]
    pub state: AssignmentState,
    pub radiologist_id: Option<String>,
    pub subspecialty: String,
    #[sqlx(try_from = "String")]
    pub priority: Priority,
    pub rule: String,
    pub assigned_at: i64,
    pub acknowledge_by: Option<i64>,
    pub preliminary_by: i64,
    pub acknowledged_at: Option<i64>,
    pub escalation_level: i64,
    #[sqlx(try_from = "telerad_store::flag::Flag")]
    pub new_images: bool,
    pub assigned_instance_count: i64,
    /// The newest instance row (any version) accounted for.
    pub last_instance_id: i64,
    #[sqlx(try_from = "String")]
    pub explanation: Explanation,
    pub updated_at: i64,
    /// When the final report was signed: the study left its reader's load.
    pub reported_at: Option<i64>,
}

const COLUMNS: &str = "id, study_id, state, radiologist_id, subspecialty, priority, rule, \
    assigned_at, acknowledge_by, preliminary_by, acknowledged_at, escalation_level, \
    new_images, assigned_instance_count, last_instance_id, explanation, updated_at, reported_at";

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct HistoryEntry {
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    #[sqlx(try_from = "String")]
    pub action: HistoryAction,
    pub radiologist_id: Option<String>,
    pub detail: String,
    /// The detail in French, where telerad wrote it (for the pages; the
    /// API's clients read the English).
    #[serde(skip)]
    pub detail_fr: Option<String>,
}

/// When `radiologist` was given the study: the last step of `history` that
/// gave it to them (assigned, escalated or reassigned); `None` when nobody
/// has it. The row's own `assigned_at` is when the assignment was created,
/// whoever has it now.
pub fn given_at(radiologist: Option<&str>, history: &[HistoryEntry]) -> Option<i64> {
    let radiologist = radiologist?;
    history
        .iter()
        .rev()
        .find(|entry| {
            entry.radiologist_id.as_deref() == Some(radiologist)
                && matches!(
                    entry.action,
                    HistoryAction::Assigned | HistoryAction::Escalated | HistoryAction::Reassigned
                )
        })
        .map(|entry| entry.at)
}

/// A new assignment row.
#[derive(Debug, Clone)]
pub struct NewAssignment<'a> {
    pub study_id: StudyId,
    pub radiologist_id: Option<&'a str>,
    pub subspecialty: &'a str,
    pub priority: Priority,
    pub rule: &'a str,
    pub now: i64,
    pub acknowledge_by: Option<i64>,
    pub preliminary_by: i64,
    pub instance_count: i64,
    pub explanation: &'a str,
}

pub async fn by_study(
    tx: &mut Tx<'_>,
    study_id: StudyId,
) -> Result<Option<AssignmentRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM assignments WHERE study_id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(study_id)
        .fetch_optional(&mut **tx)
        .await
}

pub async fn by_id(
    tx: &mut Tx<'_>,
    id: AssignmentId,
) -> Result<Option<AssignmentRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM assignments WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

/// Inserts the study's assignment, with its acknowledgement timer, unless it
/// already has one (another process won): `Ok(false)` then.
pub async fn insert(tx: &mut Tx<'_>, new: &NewAssignment<'_>) -> Result<bool, sqlx::Error> {
    let state = AssignmentState::given_to(new.radiologist_id).as_str();
    let inserted: Option<(AssignmentId,)> = sqlx::query_as(
        "INSERT INTO assignments (study_id, state, radiologist_id, subspecialty, priority, rule, \
         assigned_at, acknowledge_by, preliminary_by, assigned_instance_count, explanation, \
         updated_at, last_instance_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $7, \
         (SELECT COALESCE(MAX(id), 0) FROM instances WHERE study_id = $1)) \
         ON CONFLICT (study_id) DO NOTHING RETURNING id",
    )
    .bind(new.study_id)
    .bind(state)
    .bind(new.radiologist_id)
    .bind(new.subspecialty)
    .bind(new.priority.as_str())
    .bind(new.rule)
    .bind(new.now)
    .bind(new.acknowledge_by)
    .bind(new.preliminary_by)
    .bind(new.instance_count)
    .bind(new.explanation)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((id,)) = inserted else {
        return Ok(false);
    };
    if let Some(radiologist) = new.radiologist_id {
        mark_tried(tx, id, radiologist).await?;
    }
    if let Some(due) = new.acknowledge_by {
        timers::schedule(tx, TimerKind::Acknowledgement, id.0, due).await?;
    }
    Ok(true)
}

pub async fn record(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    at: i64,
    action: HistoryAction,
    radiologist_id: Option<&str>,
    detail: &Said,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO assignment_history (study_id, at, action, radiologist_id, detail, detail_fr) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(study_id)
    .bind(at)
    .bind(action.as_str())
    .bind(radiologist_id)
    .bind(detail.en())
    .bind(detail.fr())
    .execute(&mut **tx)
    .await?;
    // People are told of who reads the study now; acknowledgements, new
    // images and priority changes are on the study's own page.
    let kind = match action {
        HistoryAction::Assigned | HistoryAction::Reassigned => Some(EventKind::Assigned),
        HistoryAction::Escalated | HistoryAction::Unassigned => Some(EventKind::Escalated),
        HistoryAction::Acknowledged | HistoryAction::NewImages | HistoryAction::Reprioritised => {
            None
        }
    };
    if let Some(kind) = kind {
        events::append_workflow(
            tx,
            study_id,
            kind,
            at,
            serde_json::json!({ "radiologist": radiologist_id, "action": action.as_str() }),
        )
        .await?;
    }
    Ok(())
}

pub async fn raise_alert(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    at: i64,
    kind: &str,
    message: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO alerts (study_id, at, kind, message) VALUES ($1, $2, $3, $4)")
        .bind(study_id)
        .bind(at)
        .bind(kind)
        .bind(message)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Resolves the study's assignment alerts (it has a reader now); alerts
/// of critical results stay until the site acknowledges them.
pub async fn resolve_alerts(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE alerts SET resolved_at = $2 WHERE study_id = $1 AND resolved_at IS NULL \
         AND kind <> 'critical_result'",
    )
    .bind(study_id)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Resolves the study's critical-result alerts once none of its results
/// is still escalated.
pub async fn resolve_critical_alerts(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE alerts SET resolved_at = $2 WHERE study_id = $1 AND resolved_at IS NULL \
         AND kind = 'critical_result' AND NOT EXISTS (SELECT 1 FROM critical_results c \
         WHERE c.study_id = $1 AND c.state = 'escalated')",
    )
    .bind(study_id)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn history(tx: &mut Tx<'_>, study_id: StudyId) -> Result<Vec<HistoryEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT at, action, radiologist_id, detail, detail_fr FROM assignment_history \
         WHERE study_id = $1 ORDER BY id",
    )
    .bind(study_id)
    .fetch_all(&mut **tx)
    .await
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("an open assignment has a corrupt priority: {0}")]
    Priority(#[from] telerad_config::UnknownPriority),
}

/// Open studies (assigned or acknowledged, final report not yet signed)
/// per radiologist.
pub async fn loads(tx: &mut Tx<'_>) -> Result<HashMap<String, Load>, LoadError> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT radiologist_id, priority, COUNT(*) FROM assignments \
         WHERE state IN ('assigned', 'acknowledged') AND radiologist_id IS NOT NULL \
         AND reported_at IS NULL GROUP BY radiologist_id, priority",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut loads: HashMap<String, Load> = HashMap::new();
    for (radiologist, priority, count) in rows {
        let priority: Priority = priority.parse()?;
        let load = loads.entry(radiologist).or_default();
        load.open += count;
        load.weighted += count * weight(priority);
        if priority == Priority::Stat {
            load.stat_open += count;
        }
    }
    Ok(loads)
}

/// Whether `radiologist` holds the study (claimed, acknowledged): a
/// guarded write, so that on PostgreSQL the row stays locked until the
/// caller's transaction ends and nobody changes its reader meanwhile.
pub async fn hold_for_reader(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    radiologist: &str,
) -> Result<bool, sqlx::Error> {
    let held = sqlx::query(
        "UPDATE assignments SET updated_at = updated_at \
         WHERE study_id = $1 AND state = 'acknowledged' AND radiologist_id = $2",
    )
    .bind(study_id)
    .bind(radiologist)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(held == 1)
}

/// The study's final report is signed: it leaves its reader's open load.
pub async fn mark_reported(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE assignments SET reported_at = $2, updated_at = $2 \
         WHERE study_id = $1 AND reported_at IS NULL",
    )
    .bind(study_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An alert nobody has resolved: a study the router could not give.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct OpenAlert {
    pub id: i64,
    pub study_instance_uid: String,
    pub site: String,
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub kind: String,
    pub message: String,
}

/// The newest unresolved alerts, at most `limit`.
pub async fn open_alerts(tx: &mut Tx<'_>, limit: i64) -> Result<Vec<OpenAlert>, sqlx::Error> {
    sqlx::query_as(
        "SELECT al.id, s.study_instance_uid, s.site, al.at, al.kind, al.message FROM alerts al \
         JOIN studies s ON s.id = al.study_id WHERE al.resolved_at IS NULL \
         ORDER BY al.id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// A study waiting for a reader.
#[derive(Debug, Clone, FromRow)]
pub struct Unassigned {
    pub id: AssignmentId,
    pub level: i64,
    pub site: String,
    pub acknowledge_by: Option<i64>,
}

/// Unassigned studies with an id above `after`, in id order (a page).
pub async fn unassigned(
    tx: &mut Tx<'_>,
    after: AssignmentId,
    limit: i64,
) -> Result<Vec<Unassigned>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.escalation_level AS level, s.site, a.acknowledge_by FROM assignments a \
         JOIN studies s ON s.id = a.study_id \
         WHERE a.state = 'unassigned' AND a.id > $1 ORDER BY a.id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// Claims an assignment for a change: succeeds for exactly one caller while
/// the row is still in the expected state and escalation level.
pub async fn claim(
    tx: &mut Tx<'_>,
    id: AssignmentId,
    state: AssignmentState,
    level: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE assignments SET updated_at = $4 WHERE id = $1 AND state = $2 AND escalation_level = $3",
    )
    .bind(id)
    .bind(state.as_str())
    .bind(level)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

/// The radiologists already given this assignment's study.
pub async fn tried(tx: &mut Tx<'_>, id: AssignmentId) -> Result<HashSet<String>, sqlx::Error> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT radiologist_id FROM assignment_tried WHERE assignment_id = $1")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows.into_iter().map(|(r,)| r).collect())
}

/// Records that `radiologist` was given this study, so that escalation
/// moves on past them.
pub async fn mark_tried(
    tx: &mut Tx<'_>,
    id: AssignmentId,
    radiologist: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO assignment_tried (assignment_id, radiologist_id) VALUES ($1, $2) \
         ON CONFLICT (assignment_id, radiologist_id) DO NOTHING",
    )
    .bind(id)
    .bind(radiologist)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A person gives the study to `radiologist`: like [`hand_over`], but the
/// escalation level stays where it was, since no deadline was missed.
pub async fn reassign(
    tx: &mut Tx<'_>,
    id: AssignmentId,
    radiologist: &str,
    acknowledge_by: i64,
    explanation: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE assignments SET state = 'assigned', radiologist_id = $2, acknowledge_by = $3, \
         explanation = $4, acknowledged_at = NULL, updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(radiologist)
    .bind(acknowledge_by)
    .bind(explanation)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    mark_tried(tx, id, radiologist).await?;
    timers::schedule(tx, TimerKind::Acknowledgement, id.0, acknowledge_by).await
}

/// Gives the study to `radiologist` (or to nobody), one escalation level up.
pub async fn hand_over(
    tx: &mut Tx<'_>,
    id: AssignmentId,
    radiologist: Option<&str>,
    acknowledge_by: Option<i64>,
    explanation: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let state = AssignmentState::given_to(radiologist).as_str();
    sqlx::query(
        "UPDATE assignments SET state = $2, radiologist_id = $3, acknowledge_by = $4, \
         explanation = $5, escalation_level = escalation_level + 1, acknowledged_at = NULL, \
         updated_at = $6 WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(radiologist)
    .bind(acknowledge_by)
    .bind(explanation)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if let Some(radiologist) = radiologist {
        mark_tried(tx, id, radiologist).await?;
    }
    match acknowledge_by {
        Some(due) => timers::schedule(tx, TimerKind::Acknowledgement, id.0, due).await,
        None => timers::cancel(tx, TimerKind::Acknowledgement, id.0).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at: i64, action: &str, radiologist: Option<&str>) -> HistoryEntry {
        HistoryEntry {
            at,
            action: HistoryAction::try_from(action.to_owned()).expect("a history action"),
            radiologist_id: radiologist.map(str::to_owned),
            detail: String::new(),
            detail_fr: None,
        }
    }

    #[test]
    fn given_at_is_when_the_current_reader_got_the_study() {
        let history = [
            step(10, "unassigned", None),
            step(20, "assigned", Some("dr-a")),
            step(30, "escalated", Some("dr-b")),
            step(40, "acknowledged", Some("dr-b")),
            step(50, "reassigned", Some("dr-a")),
            step(60, "acknowledged", Some("dr-a")),
        ];
        assert_eq!(given_at(Some("dr-a"), &history), Some(50));
        assert_eq!(given_at(Some("dr-b"), &history[..4]), Some(30));
        // Nobody has it: no time, whatever the history holds.
        assert_eq!(given_at(None, &history), None);
        assert_eq!(given_at(None, &history[..1]), None);
    }

    #[test]
    fn stored_words_read_back_and_others_are_errors() {
        for action in HistoryAction::ALL {
            assert_eq!(
                HistoryAction::try_from(action.as_str().to_owned()),
                Ok(action)
            );
        }
        for state in ["assigned", "acknowledged", "unassigned"] {
            let read = AssignmentState::try_from(state.to_owned()).expect("a state");
            assert_eq!(read.as_str(), state);
        }
        assert_eq!(
            AssignmentState::try_from("ASSIGNED".to_owned()),
            Err(CorruptValue {
                column: "assignment state",
                value: "ASSIGNED".to_owned()
            })
        );
        assert!(Explanation::try_from("{\"why\": \"x\"".to_owned()).is_err());
    }
}
