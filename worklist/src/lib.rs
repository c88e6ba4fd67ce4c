//! The HTTP side of telerad. For now the operators' view of the study index
//! (`/healthz`, `/api/studies`); the reading worklist, request forms and
//! reports come here next. Handlers are small and return `telerad_http`'s
//! `ApiError`, which maps every failure to a status and a JSON message once.

pub mod assignments;
pub mod conflicts;
pub mod events;
pub mod forwards;
pub mod health;
pub mod state;
pub mod studies;

use axum::Router;

pub use state::AppState;

pub fn router(state: AppState) -> Router {
    telerad_http::with_common_layers(
        Router::new()
            .merge(health::routes())
            .merge(studies::routes())
            .merge(forwards::routes())
            .merge(assignments::routes())
            .merge(conflicts::routes())
            .merge(events::routes())
            .with_state(state),
    )
}
