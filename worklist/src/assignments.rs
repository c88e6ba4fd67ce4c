//! Router operations over HTTP: a radiologist acknowledges the study they
//! were given (`POST /api/studies/{uid}/acknowledge`, no body), claims one
//! from the pool of their sites or their own (`.../claim`: a claim is the
//! acknowledgement), or gives back one they claimed (`.../release`,
//! optional body `{"reason": "..."}`); an administrator gives a study to
//! someone (`POST /api/studies/{uid}/assign`, body `{"radiologist": "id"}`).
//! Each change is committed with its audit record; a refused or failed one
//! is audited too.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_router::service::{Acting, AssignmentView, Router as RouterService, RouterError};
use telerad_store::audit::Outcome;

pub fn routes<S>() -> Router<S>
where
    Arc<RouterService>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/studies/{study_uid}/acknowledge", post(acknowledge))
        .route("/api/studies/{study_uid}/assign", post(assign))
        .route("/api/studies/{study_uid}/claim", post(claim))
        .route("/api/studies/{study_uid}/release", post(release))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RadiologistBody {
    radiologist: String,
}

use crate::study_uid;

/// A function, not `From`: neither type is this crate's, and
/// `telerad-http` does not know the router (`telerad-operations` maps them
/// the same way for a study's detail).
pub(crate) fn api_error(e: RouterError) -> ApiError {
    match e {
        RouterError::NotFound(m) => ApiError::NotFound(m),
        RouterError::Conflict(m) => ApiError::Conflict(m),
        RouterError::BadRequest(m) => ApiError::BadRequest(m),
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

/// The radiologist acknowledges as themselves: the account's radiologist.
async fn acknowledge(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
) -> Result<Json<AssignmentView>, ApiError> {
    let scope = caller.allow(Action::AcknowledgeStudy).await?;
    let uid = study_uid(&raw_uid)?;
    let Some(radiologist) = caller.principal().user.radiologist_id.clone() else {
        return Err(ApiError::Forbidden(
            "only a radiologist's account acknowledges a study".into(),
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

/// The caller's radiologist, for the actions only a reader takes.
fn own_radiologist(caller: &Caller, what: &str) -> Result<String, ApiError> {
    caller
        .principal()
        .user
        .radiologist_id
        .clone()
        .ok_or_else(|| ApiError::Forbidden(format!("only a radiologist's account {what}")))
}

async fn claim(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
) -> Result<Json<AssignmentView>, ApiError> {
    let scope = caller.allow(Action::AcknowledgeStudy).await?;
    let uid = study_uid(&raw_uid)?;
    let radiologist = own_radiologist(&caller, "claims a study")?;
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    #[serde(default)]
    reason: String,
}

/// Longest reason kept with a release, in characters.
const MAX_REASON_CHARS: usize = 500;

async fn release(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<AssignmentView>, ApiError> {
    let scope = caller.allow(Action::AcknowledgeStudy).await?;
    let uid = study_uid(&raw_uid)?;
    let radiologist = own_radiologist(&caller, "releases a study")?;
    let body: ReleaseBody = if body.iter().all(u8::is_ascii_whitespace) {
        ReleaseBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!("expected {{\"reason\": \"...\"}} or no body: {e}"))
        })?
    };
    if body.reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::BadRequest(format!(
            "reason: at most {MAX_REASON_CHARS} characters"
        )));
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
