//! `GET /healthz`: up, and the index database answers.

use axum::Json;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use telerad_store::Archive;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Archive>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new().routes(routes!(health))
}

/// Whether telerad is up and its database answers; open to all (load
/// balancers and monitors call it without an account).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Up", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    )
)]
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

/// The shape of the answers built with `json!` above.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct Health {
    /// `ok` or `unavailable`.
    status: String,
    /// Only when unavailable.
    error: Option<String>,
}
