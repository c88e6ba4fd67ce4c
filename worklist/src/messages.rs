//! A study's message thread over HTTP, between the site and its readers:
//! `GET /api/studies/{uid}/messages` answers the thread with its read
//! receipts and marks it read by the caller; `POST` with `{"body": "..."}`
//! adds a message. Whoever may read the study takes part; another site's
//! study is not found. Each read and post commits with its audit record.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_lang::said;
use telerad_store::audit::{self, Outcome};
use telerad_store::messages::{self, Receipt};
use telerad_store::study_rows;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest message, in characters: a message is read on a phone at night.
pub const MAX_MESSAGE_CHARS: usize = 5_000;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new().routes(routes!(thread, post))
}

/// Who wrote a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct Author {
    pub login: String,
    pub name: String,
    /// The account's role: `admin`, `radiologist`, `clinician`,
    /// `technician` or `integration`.
    pub role: String,
}

/// A message of a study's thread, with who has read it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub id: i64,
    pub author: Author,
    pub body: String,
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub sent_at: i64,
    /// The read receipts, oldest first.
    pub read_by: Vec<Receipt>,
}

/// A study's message thread, oldest message first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Thread {
    pub study_instance_uid: String,
    pub messages: Vec<Message>,
}

/// A message to post.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewMessage {
    /// From 1 to 5,000 characters once trimmed.
    body: String,
}

/// The posted message's id.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PostedMessage)]
struct Posted {
    id: i64,
}

use crate::study_uid;

/// The study's message thread, marked read by the caller.
///
/// With each message's read receipts; reading the thread records the
/// caller's own receipts and is audited.
#[utoipa::path(
    get,
    path = "/api/studies/{study_uid}/messages",
    tag = "messages",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    responses((status = 200, description = "The study's thread", body = Thread))
)]
async fn thread(caller: Caller, Path(raw_uid): Path<String>) -> Result<Json<Thread>, ApiError> {
    let scope = caller.allow(Action::Message).await?;
    let uid = study_uid(&raw_uid)?;
    let record = caller.study_record("message.read", uid, None);
    let mut tx = caller.access().database().begin_write().await?;
    let Some(study) = study_rows::by_uid(&mut tx, uid, &scope).await? else {
        tx.rollback().await?;
        let error = crate::no_study(uid);
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

/// Posts a message to the study's thread.
///
/// Whoever may read the study takes part: the site and its readers.
#[utoipa::path(
    post,
    path = "/api/studies/{study_uid}/messages",
    tag = "messages",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    request_body = NewMessage,
    responses((status = 201, description = "Posted: the new message's id", body = Posted))
)]
async fn post(
    caller: Caller,
    Path(raw_uid): Path<String>,
    json: Result<Json<NewMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    let scope = caller.allow(Action::Message).await?;
    let uid = study_uid(&raw_uid)?;
    let Json(message) =
        json.map_err(|e| ApiError::from_json_rejection(&e, "expected {\"body\": \"...\"}"))?;
    let body = message.body.trim();
    if body.is_empty() || body.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::said(
            ApiError::BadRequest,
            said!(
                "body: from 1 to {MAX_MESSAGE_CHARS} characters",
                "message : de 1 à {MAX_MESSAGE_CHARS} caractères"
            ),
        ));
    }
    let record = caller.study_record("message.post", uid, None);
    let mut tx = caller.access().database().begin_write().await?;
    let Some(study) = study_rows::by_uid(&mut tx, uid, &scope).await? else {
        tx.rollback().await?;
        let error = crate::no_study(uid);
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
    Ok((StatusCode::CREATED, Json(Posted { id })))
}
