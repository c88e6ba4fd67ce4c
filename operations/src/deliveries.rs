//! `GET /api/deliveries` and `POST /api/deliveries/{id}/retry`: the
//! delivery log of notifications (webhook calls, e-mails), newest first,
//! with each one's attempts, last answer and error; and the way to send a
//! dead one again once its receiver is back.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query};
use serde::Deserialize;
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_http::paging::{self, Page};
use telerad_lang::said;
use telerad_store::audit::{self, Outcome};
use telerad_store::deliveries::{self, Delivery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(retry))
}

const STATES: [&str; 4] = ["pending", "sending", "sent", "dead"];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `pending`, `sending`, `sent` or `dead`.
    state: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The delivery log of notifications (webhooks, e-mails), newest first.
#[utoipa::path(
    get,
    path = "/api/deliveries",
    tag = "operations",
    params(ListQuery),
    responses((status = 200, description = "One page of deliveries", body = Page<Delivery>))
)]
async fn list(
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page<Delivery>>, ApiError> {
    caller.allow(Action::Operate).await?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = paging::limit(query.limit)?;
    if let Some(state) = &query.state
        && !STATES.contains(&state.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "state {state:?}: expected one of {}",
            STATES.join(", ")
        )));
    }
    let before = query
        .cursor
        .as_deref()
        .map(|text| paging::row_id(text, "the next_cursor of a previous page"))
        .transpose()?;
    let db = caller.access().database();
    let mut items = deliveries::list(db, query.state.as_deref(), before, limit + 1).await?;
    let next = if i64::try_from(items.len()).unwrap_or(i64::MAX) > limit {
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        items.last().map(|d| d.id.to_string())
    } else {
        None
    };
    caller
        .audit(&caller.record("delivery.list", "deliveries".into()))
        .await?;
    Ok(Json(Page::new(
        items,
        "/api/deliveries",
        &[("state", query.state.as_deref())],
        limit,
        next,
    )))
}

/// Sends a dead delivery again.
#[utoipa::path(
    post,
    path = "/api/deliveries/{id}/retry",
    tag = "operations",
    params(("id" = i64, Path, description = "A delivery id", minimum = 1)),
    responses(
        (status = 200, description = "The delivery, pending again", body = Delivery),
        (status = 409, description = "The delivery is not dead", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn retry(caller: Caller, Path(raw): Path<String>) -> Result<Json<Delivery>, ApiError> {
    caller.allow(Action::Operate).await?;
    let id = paging::row_id(&raw, "a delivery id")?;
    let record = caller.record("delivery.retry", format!("delivery {id}"));
    let db = caller.access().database();
    let mut tx = db.begin_write().await?;
    let retried = deliveries::retry(&mut tx, id, record.at).await?;
    if !retried {
        tx.rollback().await?;
        let error = match deliveries::by_id(db, id).await? {
            None => ApiError::said(
                ApiError::NotFound,
                said!("no delivery {id}", "aucune notification {id}"),
            ),
            Some(d) => {
                let state = d.state;
                ApiError::said(
                    ApiError::Conflict,
                    said!(
                        "delivery {id} is {state}: only a dead delivery is retried by hand",
                        "la notification {id} est à l'état « {state} » : seule une notification abandonnée (dead) se relance à la main"
                    ),
                )
            }
        };
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    }
    audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    db.ring_events();
    let delivery = deliveries::by_id(db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no delivery {id}")))?;
    Ok(Json(delivery))
}
