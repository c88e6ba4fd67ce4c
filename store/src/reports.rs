//! Reports (migration 0014): one per study. The `reports` row says where
//! the report stands and holds its author's working copy; each issued text
//! (preliminary, final, addendum) is a `report_versions` row that nothing
//! changes or deletes afterwards.
//!
//! Which step is allowed when is the worklist's business; this module
//! makes each step a guarded write: [`issue`] succeeds only if nobody
//! issued a version since the caller read the row, so that two tabs (or
//! two nodes) cannot both sign.

use crate::StudyId;
use crate::events::{self, EventKind};
use serde::Serialize;

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// Where a report stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being written; seen by its author only.
    Draft,
    /// Issued unsigned: the site acts on it, marked preliminary.
    Preliminary,
    /// Signed; its text never changes.
    Final,
    /// Signed, with one or more addenda after the final.
    Addendum,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Preliminary => "preliminary",
            Status::Final => "final",
            Status::Addendum => "addendum",
        }
    }

    /// Whether the report is signed (final, possibly with addenda).
    pub fn is_signed(self) -> bool {
        matches!(self, Status::Final | Status::Addendum)
    }
}

impl TryFrom<String> for Status {
    type Error = String;

    fn try_from(s: String) -> Result<Status, String> {
        Ok(match s.as_str() {
            "draft" => Status::Draft,
            "preliminary" => Status::Preliminary,
            "final" => Status::Final,
            "addendum" => Status::Addendum,
            _ => return Err(format!("unknown report status {s:?}")),
        })
    }
}

/// What an issued version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VersionKind {
    Preliminary,
    Final,
    Addendum,
}

impl VersionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionKind::Preliminary => "preliminary",
            VersionKind::Final => "final",
            VersionKind::Addendum => "addendum",
        }
    }

    /// The report's status once this version is issued.
    pub fn status_after(self) -> Status {
        match self {
            VersionKind::Preliminary => Status::Preliminary,
            VersionKind::Final => Status::Final,
            VersionKind::Addendum => Status::Addendum,
        }
    }
}

impl TryFrom<String> for VersionKind {
    type Error = String;

    fn try_from(s: String) -> Result<VersionKind, String> {
        Ok(match s.as_str() {
            "preliminary" => VersionKind::Preliminary,
            "final" => VersionKind::Final,
            "addendum" => VersionKind::Addendum,
            _ => return Err(format!("unknown report version kind {s:?}")),
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReportRow {
    pub id: i64,
    pub study_id: StudyId,
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub template: String,
    pub draft: Option<String>,
    pub draft_author: Option<String>,
    pub draft_saved_at: Option<i64>,
    pub versions: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VersionRow {
    pub number: i64,
    #[sqlx(try_from = "String")]
    pub kind: VersionKind,
    /// The issued content, JSON.
    pub content: String,
    pub content_hash: String,
    pub radiologist_id: String,
    pub signed_by: String,
    pub at: i64,
}

/// A version to issue.
#[derive(Debug, Clone, Copy)]
pub struct NewVersion<'a> {
    pub kind: VersionKind,
    pub content: &'a str,
    pub content_hash: &'a str,
    pub radiologist_id: &'a str,
    pub signed_by: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Another request issued a version since this one read the report.
    #[error("the report changed meanwhile; reload it")]
    Changed,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const COLUMNS: &str = "id, study_id, status, template, draft, draft_author, draft_saved_at, \
                       versions, created_at, updated_at";

pub async fn of_study(
    tx: &mut Tx<'_>,
    study_id: StudyId,
) -> Result<Option<ReportRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reports WHERE study_id = $1"
    )))
    .bind(study_id)
    .fetch_optional(&mut **tx)
    .await
}

/// The report's status, its row locked for the transaction on PostgreSQL.
pub async fn status_for_update(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    postgres: bool,
) -> Result<Option<Status>, sqlx::Error> {
    let lock = if postgres { " FOR UPDATE" } else { "" };
    let row: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT status FROM reports WHERE study_id = $1{lock}"
    )))
    .bind(study_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|(status,)| Status::try_from(status).map_err(|e| sqlx::Error::Decode(e.into())))
        .transpose()
}

/// Every issued version, oldest first.
pub async fn versions(tx: &mut Tx<'_>, report_id: i64) -> Result<Vec<VersionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT number, kind, content, content_hash, radiologist_id, signed_by, at \
         FROM report_versions WHERE report_id = $1 ORDER BY number",
    )
    .bind(report_id)
    .fetch_all(&mut **tx)
    .await
}

/// Saves the author's working copy, creating the report on its first
/// save; `None` if the report was signed meanwhile (a signed report has no
/// working copy).
pub async fn save_draft(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    template: &str,
    draft: &str,
    author: &str,
    now: i64,
) -> Result<Option<ReportRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO reports (study_id, status, template, draft, draft_author, draft_saved_at, \
         versions, created_at, updated_at) VALUES ($1, 'draft', $2, $3, $4, $5, 0, $5, $5) \
         ON CONFLICT (study_id) DO UPDATE SET template = $2, draft = $3, draft_author = $4, \
         draft_saved_at = $5, updated_at = $5 \
         WHERE reports.status IN ('draft', 'preliminary') RETURNING {COLUMNS}"
    )))
    .bind(study_id)
    .bind(template)
    .bind(draft)
    .bind(author)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await
}

/// Issues a version: the report's status moves on, the working copy is
/// cleared, and the version is appended with the next number. Fails with
/// [`ReportError::Changed`] if `report` is no longer what is stored: a
/// version issued, or the working copy saved again, since it was read
/// (the text issued is the one the caller read).
pub async fn issue(
    tx: &mut Tx<'_>,
    report: &ReportRow,
    version: &NewVersion<'_>,
    now: i64,
) -> Result<i64, ReportError> {
    let moved = sqlx::query(
        "UPDATE reports SET status = $3, versions = versions + 1, draft = NULL, \
         draft_author = NULL, draft_saved_at = NULL, updated_at = $4 \
         WHERE id = $1 AND versions = $2 AND draft IS NOT DISTINCT FROM $5",
    )
    .bind(report.id)
    .bind(report.versions)
    .bind(version.kind.status_after().as_str())
    .bind(now)
    .bind(report.draft.as_deref())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if moved != 1 {
        return Err(ReportError::Changed);
    }
    let number = report.versions + 1;
    sqlx::query(
        "INSERT INTO report_versions (report_id, number, kind, content, content_hash, \
         radiologist_id, signed_by, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(report.id)
    .bind(number)
    .bind(version.kind.as_str())
    .bind(version.content)
    .bind(version.content_hash)
    .bind(version.radiologist_id)
    .bind(version.signed_by)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let kind = match version.kind {
        VersionKind::Preliminary => EventKind::Preliminary,
        VersionKind::Final => EventKind::Final,
        VersionKind::Addendum => EventKind::Addendum,
    };
    events::append_workflow(
        tx,
        report.study_id,
        kind,
        now,
        serde_json::json!({ "version": number, "radiologist": version.radiologist_id }),
    )
    .await?;
    Ok(number)
}
