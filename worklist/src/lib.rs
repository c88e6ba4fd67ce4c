//! The HTTP side of telerad. For now the operators' view of the study index
//! (`/healthz`, `/api/studies`); the reading worklist, request forms and
//! reports come here next. Handlers are small and return `telerad_http`'s
//! `ApiError`, which maps every failure to a status and a JSON message once.

pub mod assignments;
pub mod conflicts;
pub mod events;
pub mod forwards;
pub mod health;
pub mod studies;

use axum::Router;
use axum::extract::FromRef;
use std::sync::Arc;
use telerad_router::service::Router as RouterService;
use telerad_store::Archive;
use telerad_store::outbox::Outbox;

/// Every route, each taking from the application's state `S` only the
/// parts it uses; the binary gives the state and the common layers
/// (`telerad_http::with_common_layers`).
pub fn routes<S>() -> Router<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<Outbox>: FromRef<S>,
    Arc<RouterService>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .merge(health::routes())
        .merge(studies::routes())
        .merge(forwards::routes())
        .merge(assignments::routes())
        .merge(conflicts::routes())
        .merge(events::routes())
}
