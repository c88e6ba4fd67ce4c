//! `GET /api/events/failed`: study events a consumer could not handle,
//! retrying or given up (dead letters) with their last error.

use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use telerad_http::ApiError;
use telerad_store::events::FailedEvent;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/events/failed", get(list))
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<FailedEvent>>, ApiError> {
    Ok(Json(state.archive.index().failed_events().await?))
}
