//! `GET /api/events/failed`: study events a consumer could not handle,
//! retrying or given up (dead letters) with their last error.

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use telerad_http::ApiError;
use telerad_store::Archive;
use telerad_store::events::FailedEvent;

pub fn routes<S>() -> Router<S>
where
    Arc<Archive>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/api/events/failed", get(list))
}

async fn list(State(archive): State<Arc<Archive>>) -> Result<Json<Vec<FailedEvent>>, ApiError> {
    Ok(Json(archive.index().failed_events().await?))
}
