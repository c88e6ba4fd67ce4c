//! `GET /api/conflicts`: instances refused because they reused a UID of
//! another site's study, for an operator to sort out with the sites.

use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use telerad_http::ApiError;
use telerad_store::index::IdentityConflict;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/conflicts", get(list))
}

/// The newest ones; older conflicts stay in the database.
const SHOWN: i64 = 500;

async fn list(State(state): State<AppState>) -> Result<Json<Vec<IdentityConflict>>, ApiError> {
    Ok(Json(state.archive.index().conflicts(SHOWN).await?))
}
