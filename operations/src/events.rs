//! `GET /api/events/failed`: study events a consumer could not handle,
//! retrying or given up (dead letters) with their last error.

use axum::Json;
use axum::extract::{FromRef, State};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_store::Archive;
use telerad_store::events::FailedEvent;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new().routes(routes!(list))
}

/// Events a consumer failed to handle: retrying, or given up.
#[utoipa::path(
    get,
    path = "/api/events/failed",
    tag = "operations",
    responses((status = 200, description = "Failed events", body = Vec<FailedEvent>))
)]
async fn list(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
) -> Result<Json<Vec<FailedEvent>>, ApiError> {
    caller.allow(Action::Operate).await?;
    let events = archive.index().failed_events().await?;
    caller
        .audit(&caller.record("event.list_failed", "events".into()))
        .await?;
    Ok(Json(events))
}
