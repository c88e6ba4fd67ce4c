//! `GET /api/conflicts`: instances refused because they reused a UID of
//! another site's study, for an operator to sort out with the sites.

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_store::Archive;
use telerad_store::index::IdentityConflict;

pub fn routes<S>() -> Router<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/api/conflicts", get(list))
}

/// The newest ones; older conflicts stay in the database.
const SHOWN: i64 = 500;

async fn list(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
) -> Result<Json<Vec<IdentityConflict>>, ApiError> {
    caller.allow(Action::Operate).await?;
    let conflicts = archive.index().conflicts(SHOWN).await?;
    caller
        .audit(&caller.record("conflict.list", "conflicts".into()))
        .await?;
    Ok(Json(conflicts))
}
