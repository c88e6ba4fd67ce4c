//! `GET /api/alerts`: what the router could not do by itself and a
//! coordinator must see: studies nobody on duty could take and studies a
//! reader released (resolved when the study is given), critical results
//! the site did not acknowledge in time (resolved when it does).

use axum::Json;
use axum::extract::{FromRef, State};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_router::assignment::OpenAlert;
use telerad_router::service::Router as RouterService;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<RouterService>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new().routes(routes!(list))
}

/// The newest ones; older alerts stay in the database.
const SHOWN: i64 = 500;

/// Unresolved alerts: studies nobody could take or a reader released,
/// critical results not acknowledged in time.
#[utoipa::path(
    get,
    path = "/api/alerts",
    tag = "operations",
    responses((status = 200, description = "The newest 500 open alerts", body = Vec<OpenAlert>))
)]
async fn list(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
) -> Result<Json<Vec<OpenAlert>>, ApiError> {
    caller.allow(Action::Operate).await?;
    let alerts = router
        .open_alerts(SHOWN)
        .await
        .map_err(crate::studies::router_error)?;
    caller
        .audit(&caller.record("alert.list", "alerts".into()))
        .await?;
    Ok(Json(alerts))
}
