//! The workflow events a person may be told of: the study event log read
//! through their scope, for the server-sent event stream. The study's
//! current assignment decides what a radiologist sees, as everywhere else.

use crate::events::EventKind;
use crate::ids::EventId;
use crate::scope::Scope;
use serde::Serialize;
use sqlx::FromRow;

/// A workflow event, without patient data: the page that receives it asks
/// the (audited) API for the rest.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Notice {
    /// The event's place in the log: the SSE `id`, and `Last-Event-ID`.
    pub id: EventId,
    /// Also the SSE `event` name.
    pub kind: EventKind,
    pub study_instance_uid: String,
    pub site: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// The event's details as the log holds them (a JSON object written
    /// with the event), `null` if none.
    #[schema(value_type = Option<Object>)]
    pub detail: serde_json::Value,
}

#[derive(FromRow)]
struct NoticeRow {
    id: EventId,
    kind: String,
    study_instance_uid: String,
    site: String,
    at: i64,
    detail: Option<String>,
}

/// The id of the newest event: where a stream that asks for nothing older
/// starts.
pub async fn latest(db: &crate::Database) -> Result<EventId, sqlx::Error> {
    let (id,): (Option<EventId>,) = sqlx::query_as("SELECT MAX(id) FROM study_events")
        .fetch_one(&db.pool)
        .await?;
    Ok(id.unwrap_or(EventId(0)))
}

/// The workflow events after `after` that `scope` may see, oldest first, at
/// most `limit`; and the id of the last event read, seen or not, so that
/// the next call starts past the ones this scope may not see.
pub async fn after(
    db: &crate::Database,
    scope: &Scope,
    after: EventId,
    limit: i64,
) -> Result<(Vec<Notice>, EventId), sqlx::Error> {
    // Read a window of the log first, whatever its kinds, so that a stream
    // skips over events it may not see in bounded steps.
    let (last,): (Option<EventId>,) = sqlx::query_as(
        "SELECT MAX(id) FROM (SELECT id FROM study_events WHERE id > $1 ORDER BY id LIMIT $2) w",
    )
    .bind(after)
    .bind(limit.max(1))
    .fetch_one(&db.pool)
    .await?;
    let Some(last) = last else {
        return Ok((Vec::new(), after));
    };
    let sql = format!(
        "SELECT e.id, e.kind, s.study_instance_uid, s.site, e.at, e.detail \
         FROM study_events e JOIN studies s ON s.id = e.study_id \
         LEFT JOIN assignments a ON a.study_id = s.id \
         WHERE e.id > $1 AND e.id <= $2 AND e.kind NOT IN ('complete', 'receiving') \
         AND {scope} ORDER BY e.id",
        scope = scope.condition_with_assignment("s", "a", 3),
    );
    let mut select = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(last);
    for value in scope.values() {
        select = select.bind(value);
    }
    let rows: Vec<NoticeRow> = select.fetch_all(&db.pool).await?;
    let notices = rows
        .into_iter()
        .filter_map(|row| {
            // A row this build cannot read is skipped, not fatal to the
            // stream: the study's page still shows what happened.
            let kind = row.kind.parse().ok()?;
            let detail = row
                .detail
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or(serde_json::Value::Null);
            Some(Notice {
                id: row.id,
                kind,
                study_instance_uid: row.study_instance_uid,
                site: row.site,
                at: row.at,
                detail,
            })
        })
        .collect();
    Ok((notices, last))
}
