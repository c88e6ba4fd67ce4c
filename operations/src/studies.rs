//! `GET /api/studies` and `GET /api/studies/{study_uid}`: what has arrived,
//! from which site, and whether it is complete.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query, State};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_http::paging::{self, Page};
use telerad_router::service::{Router as RouterService, RouterError};
use telerad_store::index::{SeriesSummary, StudySummary};
use telerad_store::{Archive, StudyCursor, StudyPageQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The list reads the index; a study's detail adds its assignment, which
/// the router service shows with the radiologist's name.
pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<RouterService>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `receiving` or `complete`.
    status: Option<String>,
    /// A site name.
    site: Option<String>,
    /// Studies per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The studies the caller may see, most recently active first, a page at
/// a time.
#[utoipa::path(
    get,
    path = "/api/studies",
    tag = "studies",
    params(ListQuery),
    responses((status = 200, description = "One page of studies", body = Page<StudySummary>))
)]
async fn list(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page<StudySummary>>, ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
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
    let page = archive
        .index()
        .study_page(
            &StudyPageQuery {
                status: query.status.clone(),
                site: query.site.clone(),
                after,
                limit,
            },
            &scope,
        )
        .await?;
    let mut record = caller.record("study.list", "studies".into());
    record.detail = serde_json::json!({
        "status": query.status, "site": query.site, "returned": page.studies.len(),
    })
    .to_string();
    caller.audit(&record).await?;
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct StudyDetail {
    #[serde(flatten)]
    study: StudySummary,
    series: Vec<SeriesSummary>,
    /// Who reads it, by when, and why (null until the study is complete).
    assignment: Option<telerad_router::service::AssignmentView>,
    /// What the modality said it performed (DICOM MPPS): in progress,
    /// completed (with the instances still missing) or discontinued.
    performed_procedure_steps: Vec<telerad_store::performed_steps::StepView>,
}

/// One study with its series, assignment and performed procedure steps. A study outside the
/// caller's scope is not found, whether it exists or not; the attempt is
/// audited.
#[utoipa::path(
    get,
    path = "/api/studies/{study_uid}",
    tag = "studies",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    responses((status = 200, description = "The study", body = StudyDetail))
)]
async fn show(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    State(router): State<Arc<RouterService>>,
    Path(study_uid): Path<String>,
) -> Result<Json<StudyDetail>, ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    let uid = telerad_dicom::uid::validate_uid(&study_uid)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let index = archive.index();
    let Some(study) = index.study(uid, &scope).await? else {
        let mut record = caller.study_record("study.read", uid, None);
        record.outcome = telerad_store::audit::Outcome::Failed;
        record.detail = r#"{"reason":"not found within the caller's scope"}"#.into();
        caller.audit(&record).await?;
        return Err(ApiError::NotFound(format!("no study {uid}")));
    };
    // The audit record commits while the rest is read; the answer waits
    // for both.
    let record = caller.study_record("study.read", uid, Some(&study.patient_id));
    let (audited, series, assignment, steps) = tokio::join!(
        caller.audit(&record),
        index.series_of(uid, &scope),
        router.assignment(uid),
        index.performed_steps_of(&study)
    );
    audited?;
    let series = series?;
    let assignment = assignment.map_err(router_error)?;
    Ok(Json(StudyDetail {
        study,
        series,
        assignment,
        performed_procedure_steps: steps?,
    }))
}

/// The worklist maps the router's errors the same way; a function here
/// rather than a shared `From`, as `telerad-http` does not know the router.
pub(crate) fn router_error(e: RouterError) -> ApiError {
    match e {
        RouterError::NotFound(m) => ApiError::said(ApiError::NotFound, m),
        RouterError::Conflict(m) => ApiError::said(ApiError::Conflict, m),
        RouterError::BadRequest(m) => ApiError::said(ApiError::BadRequest, m),
        RouterError::Database(e) => ApiError::Database(e),
        RouterError::Config(m) | RouterError::Corrupt(m) => ApiError::Internal(m),
        RouterError::Events(e) => ApiError::Internal(e.to_string()),
        RouterError::Load(e) => ApiError::Internal(e.to_string()),
    }
}
