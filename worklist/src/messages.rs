//! A study's message thread over HTTP, between the site and its readers:
//! `GET /api/studies/{uid}/messages` answers the thread with its read
//! receipts and marks it read by the caller; `POST` with `{"body": "..."}`
//! adds a message. Whoever may read the study takes part; another site's
//! study is not found. Each read and post commits with its audit record.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_store::audit::{self, Outcome};
use telerad_store::messages::{self, Receipt};
use telerad_store::study_rows;

/// Longest message, in characters: a message is read on a phone at night.
pub const MAX_MESSAGE_CHARS: usize = 5_000;

pub fn routes<S>() -> Router<S>
where
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/api/studies/{study_uid}/messages", get(thread).post(post))
}

#[derive(Debug, Serialize)]
pub struct Author {
    pub login: String,
    pub name: String,
    pub role: String,
}

#[derive(Debug, Serialize)]
pub struct Message {
    pub id: i64,
    pub author: Author,
    pub body: String,
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    pub sent_at: i64,
    pub read_by: Vec<Receipt>,
}

#[derive(Debug, Serialize)]
pub struct Thread {
    pub study_instance_uid: String,
    pub messages: Vec<Message>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMessage {
    body: String,
}

use crate::study_uid;

async fn thread(caller: Caller, Path(raw_uid): Path<String>) -> Result<Json<Thread>, ApiError> {
    let scope = caller.allow(Action::Message).await?;
    let uid = study_uid(&raw_uid)?;
    let record = caller.study_record("message.read", uid, None);
    let mut tx = caller.access().database().begin_write().await?;
    let Some(study) = study_rows::by_uid(&mut tx, uid, &scope).await? else {
        tx.rollback().await?;
        let error = ApiError::NotFound(format!("no study {uid}"));
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    };
    let reader = caller.principal().user.id;
    messages::mark_read(&mut tx, study.id, reader, record.at).await?;
    let (rows, receipts) = messages::thread(&mut tx, study.id).await?;
    audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    let mut receipts = receipts.into_iter().peekable();
    let messages = rows
        .into_iter()
        .map(|row| {
            let mut read_by = Vec::new();
            while let Some(receipt) = receipts.next_if(|r| r.message_id == row.id) {
                read_by.push(receipt);
            }
            Message {
                id: row.id,
                author: Author {
                    login: row.author_login,
                    name: row.author_name,
                    role: row.author_role,
                },
                body: row.body,
                sent_at: row.sent_at,
                read_by,
            }
        })
        .collect();
    Ok(Json(Thread {
        study_instance_uid: uid.to_string(),
        messages,
    }))
}

async fn post(
    caller: Caller,
    Path(raw_uid): Path<String>,
    json: Result<Json<NewMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let scope = caller.allow(Action::Message).await?;
    let uid = study_uid(&raw_uid)?;
    let Json(message) =
        json.map_err(|e| ApiError::from_json_rejection(&e, "expected {\"body\": \"...\"}"))?;
    let body = message.body.trim();
    if body.is_empty() || body.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::BadRequest(format!(
            "body: from 1 to {MAX_MESSAGE_CHARS} characters"
        )));
    }
    let record = caller.study_record("message.post", uid, None);
    let mut tx = caller.access().database().begin_write().await?;
    let Some(study) = study_rows::by_uid(&mut tx, uid, &scope).await? else {
        tx.rollback().await?;
        let error = ApiError::NotFound(format!("no study {uid}"));
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    };
    let id = messages::post(
        &mut tx,
        study.id,
        caller.principal().user.id,
        body,
        record.at,
    )
    .await?;
    audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}
