//! The HTTP side of telerad. For now the operators' view of the study index
//! (`/healthz`, `/api/studies`); the reading worklist, request forms and
//! reports come here next. Handlers are small and return `ApiError`, which
//! maps every failure to a status and a JSON message once.

pub mod assignments;
pub mod conflicts;
pub mod error;
pub mod events;
pub mod forwards;
pub mod health;
pub mod json_errors;
pub mod paging;
pub mod state;
pub mod studies;

use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use state::AppState;

/// Request bodies are small JSON documents; anything larger is refused.
pub const MAX_BODY_BYTES: usize = 1 << 20;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(studies::routes())
        .merge(forwards::routes())
        .merge(assignments::routes())
        .merge(conflicts::routes())
        .merge(events::routes())
        .fallback(not_found)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // Outside the body limit, so that its 413 is JSON too.
        .layer(axum::middleware::from_fn(json_errors::json_errors))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such resource: {}", uri.path()))
}
