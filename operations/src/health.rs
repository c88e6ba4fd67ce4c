//! `GET /healthz`: up, and the index database answers.

use axum::Json;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;
use telerad_store::Archive;

pub fn routes<S>() -> Router<S>
where
    Arc<Archive>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/healthz", get(health))
}

async fn health(State(archive): State<Arc<Archive>>) -> (StatusCode, Json<Value>) {
    match archive.index().database().ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ok" }))),
        Err(e) => {
            tracing::error!("health check: database unavailable: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "error": "database unavailable" })),
            )
        }
    }
}
