//! The emergency department's board: a site's studies of the last hours,
//! however far each has gone (receiving, waiting for a reader, being read,
//! reported), newest first, with the critical results the site has not
//! acknowledged yet.

use crate::scope::Scope;
use sqlx::FromRow;

/// One study on the board.
#[derive(Debug, Clone, FromRow)]
pub struct BoardRow {
    pub study_instance_uid: String,
    pub site: String,
    pub patient_name: String,
    pub patient_id: String,
    pub study_description: String,
    pub modalities: String,
    pub instance_count: i64,
    pub first_received_at: i64,
    /// `receiving` or `complete`.
    pub status: String,
    /// The assignment's state, once the router classified the study.
    pub assignment_state: Option<String>,
    pub radiologist_id: Option<String>,
    pub priority: Option<String>,
    pub report_status: Option<String>,
    /// When the last version was issued (a draft's saves do not count).
    pub report_issued_at: Option<i64>,
    pub requested_examination: Option<String>,
    /// Critical results not acknowledged yet.
    pub critical_waiting: i64,
}

/// A critical result the site has still to acknowledge.
#[derive(Debug, Clone, FromRow)]
pub struct WaitingCritical {
    pub id: i64,
    pub study_instance_uid: String,
    pub site: String,
    pub patient_name: String,
    pub category: i64,
    pub finding: String,
    pub flagged_by: String,
    pub flagged_at: i64,
    pub due_at: i64,
    /// `open` or `escalated`.
    pub state: String,
}

/// The studies of `scope` that received images since `since`, newest
/// first, at most `limit`.
pub async fn recent(
    db: &crate::Database,
    scope: &Scope,
    since: i64,
    limit: i64,
) -> Result<Vec<BoardRow>, sqlx::Error> {
    let sql = format!(
        "SELECT s.study_instance_uid, s.site, s.patient_name, s.patient_id, \
         s.study_description, s.modalities, s.instance_count, s.first_received_at, s.status, \
         a.state AS assignment_state, a.radiologist_id, a.priority, \
         r.status AS report_status, \
         (SELECT MAX(v.at) FROM report_versions v WHERE v.report_id = r.id) AS report_issued_at, \
         f.requested_examination, \
         (SELECT COUNT(*) FROM critical_results c \
          WHERE c.study_id = s.id AND c.state <> 'acknowledged') AS critical_waiting \
         FROM studies s \
         LEFT JOIN assignments a ON a.study_id = s.id \
         LEFT JOIN reports r ON r.study_id = s.id \
         LEFT JOIN request_forms f ON f.study_id = s.id \
         WHERE s.last_received_at >= $1 AND {scope} \
         ORDER BY s.first_received_at DESC, s.id DESC LIMIT $2",
        scope = scope.condition("s", 3),
    );
    let mut select = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(since)
        .bind(limit.max(1));
    for value in scope.values() {
        select = select.bind(value);
    }
    let mut tx = db.begin().await?;
    let rows = select.fetch_all(&mut *tx).await?;
    tx.rollback().await?;
    Ok(rows)
}

/// The critical results of `scope` not acknowledged yet, the most
/// pressing first.
pub async fn waiting_critical(
    db: &crate::Database,
    scope: &Scope,
) -> Result<Vec<WaitingCritical>, sqlx::Error> {
    let sql = format!(
        "SELECT c.id, s.study_instance_uid, s.site, s.patient_name, c.category, c.finding, \
         c.flagged_by, c.flagged_at, c.due_at, c.state \
         FROM critical_results c JOIN studies s ON s.id = c.study_id \
         WHERE c.state <> 'acknowledged' AND {scope} \
         ORDER BY c.due_at, c.id LIMIT 200",
        scope = scope.condition("s", 1),
    );
    let mut select = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for value in scope.values() {
        select = select.bind(value);
    }
    let mut tx = db.begin().await?;
    let rows = select.fetch_all(&mut *tx).await?;
    tx.rollback().await?;
    Ok(rows)
}
