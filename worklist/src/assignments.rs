//! Router operations over HTTP: a radiologist acknowledges the study they
//! were given (`POST /api/studies/{uid}/acknowledge`, no body), claims one
//! from the pool of their sites or their own (`.../claim`: a claim is the
//! acknowledgement), or gives back one they claimed (`.../release`,
//! optional body `{"reason": "..."}`); an administrator gives a study to
//! someone (`POST /api/studies/{uid}/assign`, body `{"radiologist": "id"}`).
//! Each change is committed with its audit record; a refused or failed one
//! is audited too.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path, State};
use serde::Deserialize;
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_lang::said;
use telerad_router::service::{Acting, AssignmentView, Router as RouterService, RouterError};
use telerad_store::audit::Outcome;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<RouterService>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(acknowledge))
        .routes(routes!(assign))
        .routes(routes!(claim))
        .routes(routes!(release))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RadiologistBody {
    /// The `[[radiologists]]` id of the configuration.
    radiologist: String,
}

use crate::study_uid;

/// A function, not `From`: neither type is this crate's, and
/// `telerad-http` does not know the router (`telerad-operations` maps them
/// the same way for a study's detail).
pub(crate) fn api_error(e: RouterError) -> ApiError {
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

/// Audits a change the router did not make, and answers its error.
async fn failed(
    caller: &Caller,
    action: &str,
    uid: &str,
    error: RouterError,
) -> Result<Json<AssignmentView>, ApiError> {
    let record = caller.study_record(action, uid, None);
    Err(caller
        .not_done(record, Outcome::Failed, api_error(error))
        .await)
}

/// Acknowledges the study the router gave the caller: escalation stops.
///
/// The radiologist acknowledges as themselves: the account's radiologist.
#[utoipa::path(
    post,
    path = "/api/studies/{study_uid}/acknowledge",
    tag = "worklist",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    responses(
        (status = 200, description = "The study's assignment, acknowledged", body = AssignmentView),
        (status = 409, description = "The study is not assigned to the caller (not yet, to someone else, already acknowledged), or the assignment changed meanwhile", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn acknowledge(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
) -> Result<Json<AssignmentView>, ApiError> {
    let scope = caller.allow(Action::AcknowledgeStudy).await?;
    let uid = study_uid(&raw_uid)?;
    let Some(radiologist) = caller.principal().user.radiologist_id.clone() else {
        return Err(ApiError::said(
            ApiError::Forbidden,
            said!(
                "only a radiologist's account acknowledges a study",
                "seul le compte d'un radiologue prend un examen"
            ),
        ));
    };
    let record = caller.study_record("study.acknowledge", uid, None);
    let acting = Acting {
        scope: &scope,
        audit: &record,
    };
    match router.acknowledge(uid, &radiologist, &acting).await {
        Ok(view) => Ok(Json(view)),
        Err(e) => failed(&caller, "study.acknowledge", uid, e).await,
    }
}

/// Gives the study to a radiologist.
///
/// On duty or not (administrators); the licence for the study's site
/// still applies.
#[utoipa::path(
    post,
    path = "/api/studies/{study_uid}/assign",
    tag = "worklist",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    request_body = RadiologistBody,
    responses(
        (status = 200, description = "The study's assignment", body = AssignmentView),
        (status = 409, description = "The radiologist is not licensed for the study's site, or the final report is signed", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn assign(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
    json: Result<Json<RadiologistBody>, JsonRejection>,
) -> Result<Json<AssignmentView>, ApiError> {
    let scope = caller.allow(Action::AssignStudy).await?;
    let uid = study_uid(&raw_uid)?;
    let Json(body) =
        json.map_err(|e| ApiError::from_json_rejection(&e, "expected {\"radiologist\": \"id\"}"))?;
    let mut record = caller.study_record("study.assign", uid, None);
    record.detail = serde_json::json!({ "radiologist": body.radiologist }).to_string();
    let acting = Acting {
        scope: &scope,
        audit: &record,
    };
    match router
        .assign_manually(uid, &body.radiologist, &acting)
        .await
    {
        Ok(view) => Ok(Json(view)),
        Err(e) => failed(&caller, "study.assign", uid, e).await,
    }
}

/// Claims a study: the claim is the acknowledgement.
///
/// The study the router gave the caller, or one from the pool of their
/// licensed sites (unassigned, or escalated and not yet acknowledged).
#[utoipa::path(
    post,
    path = "/api/studies/{study_uid}/claim",
    tag = "worklist",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    responses(
        (status = 200, description = "The study's assignment, acknowledged by the caller", body = AssignmentView),
        (status = 409, description = "Not classified yet, claimed by or assigned to someone else, not licensed for the site, or changed meanwhile", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn claim(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
) -> Result<Json<AssignmentView>, ApiError> {
    let scope = caller.allow(Action::AcknowledgeStudy).await?;
    let uid = study_uid(&raw_uid)?;
    let radiologist = crate::radiologist_of(&caller, "claims a study", "prend un examen")?;
    let record = caller.study_record("study.claim", uid, None);
    let acting = Acting {
        scope: &scope,
        audit: &record,
    };
    match router.claim(uid, &radiologist, &acting).await {
        Ok(view) => Ok(Json(view)),
        Err(e) => failed(&caller, "study.claim", uid, e).await,
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    /// Why the study is given back, at most 500 characters.
    #[serde(default)]
    reason: String,
}

/// Longest reason kept with a release, in characters.
const MAX_REASON_CHARS: usize = 500;

/// Gives back a study the caller claimed.
///
/// It is unassigned, with an alert, and the router offers it to someone
/// else.
#[utoipa::path(
    post,
    path = "/api/studies/{study_uid}/release",
    tag = "worklist",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    request_body(
        content = ReleaseBody,
        description = "Optional: an empty body gives no reason",
        content_type = "application/json",
    ),
    responses(
        (status = 200, description = "The study's assignment, unassigned", body = AssignmentView),
        (status = 409, description = "The caller has not claimed the study, its report is signed, or the assignment changed meanwhile", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn release(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<AssignmentView>, ApiError> {
    let scope = caller.allow(Action::AcknowledgeStudy).await?;
    let uid = study_uid(&raw_uid)?;
    let radiologist = crate::radiologist_of(&caller, "releases a study", "rend un examen")?;
    let body: ReleaseBody = if body.iter().all(u8::is_ascii_whitespace) {
        ReleaseBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!("expected {{\"reason\": \"...\"}} or no body: {e}"))
        })?
    };
    if body.reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::said(
            ApiError::BadRequest,
            said!(
                "reason: at most {MAX_REASON_CHARS} characters",
                "motif : au plus {MAX_REASON_CHARS} caractères"
            ),
        ));
    }
    let mut record = caller.study_record("study.release", uid, None);
    record.detail = serde_json::json!({ "reason": body.reason }).to_string();
    let acting = Acting {
        scope: &scope,
        audit: &record,
    };
    match router
        .release(uid, &radiologist, body.reason.trim(), &acting)
        .await
    {
        Ok(view) => Ok(Json(view)),
        Err(e) => failed(&caller, "study.release", uid, e).await,
    }
}
