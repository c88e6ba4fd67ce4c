//! Router operations over HTTP: a radiologist acknowledges a study, or a
//! coordinator gives it to someone (`POST /api/studies/{uid}/acknowledge`,
//! `POST /api/studies/{uid}/assign`, body `{"radiologist": "id"}`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use telerad_http::ApiError;
use telerad_router::service::{AssignmentView, Router as RouterService, RouterError};

pub fn routes<S>() -> Router<S>
where
    Arc<RouterService>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/studies/{study_uid}/acknowledge", post(acknowledge))
        .route("/api/studies/{study_uid}/assign", post(assign))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RadiologistBody {
    radiologist: String,
}

fn body(json: Result<Json<RadiologistBody>, JsonRejection>) -> Result<RadiologistBody, ApiError> {
    json.map(|Json(b)| b)
        .map_err(|e| ApiError::from_json_rejection(&e, "expected {\"radiologist\": \"id\"}"))
}

fn study_uid(raw: &str) -> Result<&str, ApiError> {
    telerad_dicom::uid::validate_uid(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// A function, not `From`: neither type is this crate's, and
/// `telerad-http` does not know the router (`telerad-operations` maps them
/// the same way for a study's detail).
fn api_error(e: RouterError) -> ApiError {
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

async fn acknowledge(
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
    json: Result<Json<RadiologistBody>, JsonRejection>,
) -> Result<Json<AssignmentView>, ApiError> {
    let uid = study_uid(&raw_uid)?;
    let body = body(json)?;
    Ok(Json(
        router
            .acknowledge(uid, &body.radiologist)
            .await
            .map_err(api_error)?,
    ))
}

async fn assign(
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
    json: Result<Json<RadiologistBody>, JsonRejection>,
) -> Result<Json<AssignmentView>, ApiError> {
    let uid = study_uid(&raw_uid)?;
    let body = body(json)?;
    Ok(Json(
        router
            .assign_manually(uid, &body.radiologist)
            .await
            .map_err(api_error)?,
    ))
}
