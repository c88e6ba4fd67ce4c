//! When each step of a study's reading happened, read back from the rows
//! that record it (no separate timing table to fall out of step): the form
//! filed, the first image, complete, assigned, claimed, the first
//! preliminary, the final, a critical result flagged and communicated. And
//! the studies past their deadline now.

use serde::Serialize;
use sqlx::FromRow;

/// One study's steps, Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StudyTimes {
    pub site: String,
    pub priority: String,
    pub radiologist: Option<String>,
    pub form_at: Option<i64>,
    pub first_image_at: i64,
    pub completed_at: i64,
    /// When a radiologist was first given the study (the assignment row
    /// exists from classification, possibly unassigned for a while).
    pub assigned_at: Option<i64>,
    pub claimed_at: Option<i64>,
    pub preliminary_at: Option<i64>,
    pub final_at: Option<i64>,
    pub critical_flagged_at: Option<i64>,
    pub critical_communicated_at: Option<i64>,
}

/// The studies completed in `[from, to)`, at most `limit`, oldest first.
pub async fn completed_between(
    db: &crate::Database,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<StudyTimes>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.site, a.priority, a.radiologist_id AS radiologist, f.filed_at AS form_at, \
         s.first_received_at AS first_image_at, s.completed_at, \
         (SELECT MIN(h.at) FROM assignment_history h WHERE h.study_id = s.id \
          AND h.radiologist_id IS NOT NULL \
          AND h.action IN ('assigned', 'reassigned', 'escalated')) AS assigned_at, \
         a.acknowledged_at AS claimed_at, \
         (SELECT MIN(v.at) FROM report_versions v JOIN reports r ON r.id = v.report_id \
          WHERE r.study_id = s.id AND v.kind = 'preliminary') AS preliminary_at, \
         (SELECT MIN(v.at) FROM report_versions v JOIN reports r ON r.id = v.report_id \
          WHERE r.study_id = s.id AND v.kind = 'final') AS final_at, \
         (SELECT MIN(c.flagged_at) FROM critical_results c WHERE c.study_id = s.id) \
          AS critical_flagged_at, \
         (SELECT MIN(c.acknowledged_at) FROM critical_results c WHERE c.study_id = s.id) \
          AS critical_communicated_at \
         FROM assignments a JOIN studies s ON s.id = a.study_id \
         LEFT JOIN request_forms f ON f.study_id = s.id \
         WHERE s.completed_at >= $1 AND s.completed_at < $2 \
         ORDER BY s.completed_at LIMIT $3",
    )
    .bind(from)
    .bind(to)
    .bind(limit.max(1))
    .fetch_all(&db.pool)
    .await
}

/// A study past one of its deadlines, not yet reported.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Overdue {
    pub study_instance_uid: String,
    pub site: String,
    pub priority: String,
    pub radiologist: Option<String>,
    pub state: String,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acknowledge_by: Option<i64>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub preliminary_by: i64,
    pub report_status: Option<String>,
}

/// The open studies past their acknowledgement deadline (still not
/// claimed) or their report deadline (no preliminary issued yet), most
/// overdue first.
pub async fn overdue(
    db: &crate::Database,
    now: i64,
    limit: i64,
) -> Result<Vec<Overdue>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.study_instance_uid, s.site, a.priority, a.radiologist_id AS radiologist, \
         a.state, a.acknowledge_by, a.preliminary_by, r.status AS report_status \
         FROM assignments a JOIN studies s ON s.id = a.study_id \
         LEFT JOIN reports r ON r.study_id = s.id \
         WHERE a.reported_at IS NULL AND ( \
           (a.state = 'assigned' AND a.acknowledge_by < $1) \
           OR (a.preliminary_by < $1 AND (r.status IS NULL OR r.status = 'draft'))) \
         ORDER BY a.preliminary_by, s.id LIMIT $2",
    )
    .bind(now)
    .bind(limit.max(1))
    .fetch_all(&db.pool)
    .await
}

/// Counts for the Prometheus metrics: the state of everything, read at
/// scrape time from the database (the same on every node, and across
/// restarts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub instances: i64,
    pub studies_by_status: Vec<(String, i64)>,
    pub assignments_by_state: Vec<(String, i64)>,
    pub escalations: i64,
    pub forwards_by_state: Vec<(String, i64)>,
    pub deliveries_by_state: Vec<(String, i64)>,
    pub critical_by_state: Vec<(String, i64)>,
}

pub async fn counts(db: &crate::Database) -> Result<Counts, sqlx::Error> {
    let by = |sql: &'static str| sqlx::query_as::<_, (String, i64)>(sql).fetch_all(&db.pool);
    let (instances,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM instances")
        .fetch_one(&db.pool)
        .await?;
    let (escalations,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM assignment_history WHERE action = 'escalated'")
            .fetch_one(&db.pool)
            .await?;
    Ok(Counts {
        instances,
        studies_by_status: by(
            "SELECT status, COUNT(*) FROM studies GROUP BY status ORDER BY status",
        )
        .await?,
        assignments_by_state: by(
            "SELECT CASE WHEN reported_at IS NOT NULL THEN 'reported' ELSE state END AS s, \
             COUNT(*) FROM assignments GROUP BY s ORDER BY s",
        )
        .await?,
        escalations,
        forwards_by_state: by(
            "SELECT state, COUNT(*) FROM forward_jobs GROUP BY state ORDER BY state",
        )
        .await?,
        deliveries_by_state: by(
            "SELECT state, COUNT(*) FROM deliveries GROUP BY state ORDER BY state",
        )
        .await?,
        critical_by_state: by(
            "SELECT state, COUNT(*) FROM critical_results GROUP BY state ORDER BY state",
        )
        .await?,
    })
}
