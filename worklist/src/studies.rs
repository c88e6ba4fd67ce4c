//! `GET /api/studies` and `GET /api/studies/{study_uid}`: what has arrived,
//! from which site, and whether it is complete.

use crate::error::ApiError;
use crate::paging::{self, Page};
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use telerad_store::index::{SeriesSummary, StudySummary};
use telerad_store::{Scope, StudyCursor, StudyPageQuery};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/studies", get(list))
        .route("/api/studies/{study_uid}", get(show))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    site: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Most recently active first, a page at a time.
async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page<StudySummary>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if let Some(status) = query
        .status
        .as_ref()
        .filter(|s| *s != "receiving" && *s != "complete")
    {
        return Err(ApiError::BadRequest(format!(
            "status {status:?}: expected \"receiving\" or \"complete\""
        )));
    }
    let limit = paging::limit(query.limit)?;
    let after = match query.cursor.as_deref() {
        Some(text) => Some(StudyCursor::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "cursor {text:?}: expected the next_cursor of a previous page"
            ))
        })?),
        None => None,
    };
    let page = state
        .archive
        .index()
        .study_page(
            &StudyPageQuery {
                status: query.status.clone(),
                site: query.site.clone(),
                after,
                limit,
            },
            &operator_scope(),
        )
        .await?;
    Ok(Json(Page::new(
        page.studies,
        "/api/studies",
        &[
            ("status", query.status.as_deref()),
            ("site", query.site.as_deref()),
        ],
        limit,
        page.next.map(|cursor| cursor.to_string()),
    )))
}

/// Until accounts exist, the API is the operators' view of every site.
fn operator_scope() -> Scope {
    Scope::All
}

#[derive(Debug, Serialize)]
struct StudyDetail {
    #[serde(flatten)]
    study: StudySummary,
    series: Vec<SeriesSummary>,
    /// Who reads it, by when, and why (null until the study is complete).
    assignment: Option<telerad_router::service::AssignmentView>,
}

async fn show(
    State(state): State<AppState>,
    Path(study_uid): Path<String>,
) -> Result<Json<StudyDetail>, ApiError> {
    let uid = telerad_dicom::uid::validate_uid(&study_uid)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let index = state.archive.index();
    let study = index
        .study(uid, &operator_scope())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no study {uid}")))?;
    let series = index.series_of(uid, &operator_scope()).await?;
    let assignment = state.router.assignment(uid).await?;
    Ok(Json(StudyDetail {
        study,
        series,
        assignment,
    }))
}
