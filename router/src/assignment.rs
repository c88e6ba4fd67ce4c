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
use telerad_store::timers::{self, TimerKind};

pub type Tx<'a> = Transaction<'a, Any>;

#[derive(Debug, Clone, FromRow)]
pub struct AssignmentRow {
    pub id: i64,
    pub study_id: i64,
    pub state: String,
    pub radiologist_id: Option<String>,
    pub subspecialty: String,
    pub priority: String,
    pub rule: String,
    pub assigned_at: i64,
    pub acknowledge_by: Option<i64>,
    pub preliminary_by: i64,
    pub acknowledged_at: Option<i64>,
    pub escalation_level: i64,
    pub new_images: i64,
    pub assigned_instance_count: i64,
    /// The newest instance row (any version) accounted for.
    pub last_instance_id: i64,
    pub explanation: String,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, study_id, state, radiologist_id, subspecialty, priority, rule, \
    assigned_at, acknowledge_by, preliminary_by, acknowledged_at, escalation_level, \
    new_images, assigned_instance_count, last_instance_id, explanation, updated_at";

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct HistoryEntry {
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    pub at: i64,
    pub action: String,
    pub radiologist_id: Option<String>,
    pub detail: String,
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
                    entry.action.as_str(),
                    "assigned" | "escalated" | "reassigned"
                )
        })
        .map(|entry| entry.at)
}

/// A new assignment row.
#[derive(Debug, Clone)]
pub struct NewAssignment<'a> {
    pub study_id: i64,
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
    study_id: i64,
) -> Result<Option<AssignmentRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM assignments WHERE study_id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(study_id)
        .fetch_optional(&mut **tx)
        .await
}

pub async fn by_id(tx: &mut Tx<'_>, id: i64) -> Result<Option<AssignmentRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM assignments WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

/// Inserts the study's assignment, with its acknowledgement timer, unless it
/// already has one (another process won): `Ok(false)` then.
pub async fn insert(tx: &mut Tx<'_>, new: &NewAssignment<'_>) -> Result<bool, sqlx::Error> {
    let state = if new.radiologist_id.is_some() {
        "assigned"
    } else {
        "unassigned"
    };
    let inserted: Option<(i64,)> = sqlx::query_as(
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
        timers::schedule(tx, TimerKind::Acknowledgement, id, due).await?;
    }
    Ok(true)
}

pub async fn record(
    tx: &mut Tx<'_>,
    study_id: i64,
    at: i64,
    action: &str,
    radiologist_id: Option<&str>,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO assignment_history (study_id, at, action, radiologist_id, detail) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(study_id)
    .bind(at)
    .bind(action)
    .bind(radiologist_id)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn raise_alert(
    tx: &mut Tx<'_>,
    study_id: i64,
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

pub async fn resolve_alerts(tx: &mut Tx<'_>, study_id: i64, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE alerts SET resolved_at = $2 WHERE study_id = $1 AND resolved_at IS NULL")
        .bind(study_id)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn history(
    pool: &sqlx::AnyPool,
    study_id: i64,
) -> Result<Vec<HistoryEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT at, action, radiologist_id, detail FROM assignment_history \
         WHERE study_id = $1 ORDER BY id",
    )
    .bind(study_id)
    .fetch_all(pool)
    .await
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("an open assignment has a corrupt priority: {0}")]
    Priority(#[from] telerad_config::UnknownPriority),
}

/// Open studies (assigned or acknowledged) per radiologist.
pub async fn loads(tx: &mut Tx<'_>) -> Result<HashMap<String, Load>, LoadError> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT radiologist_id, priority, COUNT(*) FROM assignments \
         WHERE state IN ('assigned', 'acknowledged') AND radiologist_id IS NOT NULL \
         GROUP BY radiologist_id, priority",
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

/// A study waiting for a reader.
#[derive(Debug, Clone, FromRow)]
pub struct Unassigned {
    pub id: i64,
    pub level: i64,
    pub site: String,
    pub acknowledge_by: Option<i64>,
}

/// Unassigned studies with an id above `after`, in id order (a page).
pub async fn unassigned(
    pool: &sqlx::AnyPool,
    after: i64,
    limit: i64,
) -> Result<Vec<Unassigned>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.escalation_level AS level, s.site, a.acknowledge_by FROM assignments a \
         JOIN studies s ON s.id = a.study_id \
         WHERE a.state = 'unassigned' AND a.id > $1 ORDER BY a.id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Claims an assignment for a change: succeeds for exactly one caller while
/// the row is still in the expected state and escalation level.
pub async fn claim(
    tx: &mut Tx<'_>,
    id: i64,
    state: &str,
    level: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE assignments SET updated_at = $4 WHERE id = $1 AND state = $2 AND escalation_level = $3",
    )
    .bind(id)
    .bind(state)
    .bind(level)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

/// The radiologists already given this assignment's study.
pub async fn tried(tx: &mut Tx<'_>, id: i64) -> Result<HashSet<String>, sqlx::Error> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT radiologist_id FROM assignment_tried WHERE assignment_id = $1")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows.into_iter().map(|(r,)| r).collect())
}

async fn mark_tried(tx: &mut Tx<'_>, id: i64, radiologist: &str) -> Result<(), sqlx::Error> {
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
    id: i64,
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
    timers::schedule(tx, TimerKind::Acknowledgement, id, acknowledge_by).await
}

/// Gives the study to `radiologist` (or to nobody), one escalation level up.
pub async fn hand_over(
    tx: &mut Tx<'_>,
    id: i64,
    radiologist: Option<&str>,
    acknowledge_by: Option<i64>,
    explanation: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let state = if radiologist.is_some() {
        "assigned"
    } else {
        "unassigned"
    };
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
        Some(due) => timers::schedule(tx, TimerKind::Acknowledgement, id, due).await,
        None => timers::cancel(tx, TimerKind::Acknowledgement, id).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at: i64, action: &str, radiologist: Option<&str>) -> HistoryEntry {
        HistoryEntry {
            at,
            action: action.to_owned(),
            radiologist_id: radiologist.map(str::to_owned),
            detail: String::new(),
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
}
