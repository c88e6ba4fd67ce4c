//! Messages (migration 0015): a thread per study between the site and its
//! readers, with read receipts. Nothing here is edited or deleted.

use crate::events::{self, EventKind};
use crate::{StudyId, UserId};
use serde::Serialize;

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub author_login: String,
    pub author_name: String,
    pub author_role: String,
    pub body: String,
    pub sent_at: i64,
}

/// Who read a message, and when.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Receipt {
    #[serde(skip)]
    pub message_id: i64,
    pub login: String,
    pub name: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub read_at: i64,
}

pub async fn post(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    author: UserId,
    body: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO messages (study_id, author_id, body, sent_at) VALUES ($1, $2, $3, $4) \
         RETURNING id",
    )
    .bind(study_id)
    .bind(author)
    .bind(body)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    // The author has read what they wrote.
    sqlx::query("INSERT INTO message_reads (message_id, user_id, read_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(author)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    events::append_workflow(
        tx,
        study_id,
        EventKind::Message,
        now,
        serde_json::json!({ "message": id, "author": author.0 }),
    )
    .await?;
    Ok(id)
}

/// The study's thread, oldest first, with every receipt.
pub async fn thread(
    tx: &mut Tx<'_>,
    study_id: StudyId,
) -> Result<(Vec<MessageRow>, Vec<Receipt>), sqlx::Error> {
    let messages = sqlx::query_as(
        "SELECT m.id, u.login AS author_login, u.name AS author_name, u.role AS author_role, \
         m.body, m.sent_at FROM messages m JOIN users u ON u.id = m.author_id \
         WHERE m.study_id = $1 ORDER BY m.id",
    )
    .bind(study_id)
    .fetch_all(&mut **tx)
    .await?;
    let receipts = sqlx::query_as(
        "SELECT r.message_id, u.login, u.name, r.read_at FROM message_reads r \
         JOIN messages m ON m.id = r.message_id JOIN users u ON u.id = r.user_id \
         WHERE m.study_id = $1 ORDER BY r.message_id, r.read_at, u.login",
    )
    .bind(study_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok((messages, receipts))
}

/// Marks every message of the study as read by `reader`; returns how many
/// were new to them.
pub async fn mark_read(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    reader: UserId,
    now: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "INSERT INTO message_reads (message_id, user_id, read_at) \
         SELECT m.id, $2, $3 FROM messages m WHERE m.study_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM message_reads r WHERE r.message_id = m.id AND r.user_id = $2) \
         ON CONFLICT (message_id, user_id) DO NOTHING",
    )
    .bind(study_id)
    .bind(reader)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}
