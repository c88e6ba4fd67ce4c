//! `GET /api/events/failed`: study events a consumer could not handle,
//! retrying or given up (dead letters) with their last error.

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_store::Archive;
use telerad_store::events::FailedEvent;

pub fn routes<S>() -> Router<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/api/events/failed", get(list))
}

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
