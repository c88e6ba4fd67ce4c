//! `GET /api/deliveries` and `POST /api/deliveries/{id}/retry`: the
//! delivery log of notifications (webhook calls, e-mails), newest first,
//! with each one's attempts, last answer and error; and the way to send a
//! dead one again once its receiver is back.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_http::paging::{self, Page};
use telerad_store::audit::{self, Outcome};
use telerad_store::deliveries::{self, Delivery};

pub fn routes<S>() -> Router<S>
where
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/deliveries", get(list))
        .route("/api/deliveries/{id}/retry", post(retry))
}

const STATES: [&str; 4] = ["pending", "sending", "sent", "dead"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

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
            None => ApiError::NotFound(format!("no delivery {id}")),
            Some(d) => ApiError::Conflict(format!(
                "delivery {id} is {}: only a dead delivery is retried by hand",
                d.state
            )),
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
