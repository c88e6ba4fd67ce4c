//! `GET /api/conflicts`: instances refused because they reused a UID of
//! another site's study, for an operator to sort out with the sites.

use axum::Json;
use axum::extract::{FromRef, State};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_store::Archive;
use telerad_store::index::IdentityConflict;
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

/// The newest ones; older conflicts stay in the database.
const SHOWN: i64 = 500;

/// Instances refused for reusing a UID of another site's study, newest
/// first.
#[utoipa::path(
    get,
    path = "/api/conflicts",
    tag = "operations",
    responses((status = 200, description = "The newest 500 conflicts", body = Vec<IdentityConflict>))
)]
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
