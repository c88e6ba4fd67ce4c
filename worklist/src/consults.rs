//! Second opinions over HTTP:
//! - `POST /api/studies/{uid}/consults` `{"subspecialty", "question"}`: the
//!   reader who claimed the study asks; the rota chooses the colleague
//!   (`router/service/consults.rs`), who is told (event stream, pager,
//!   e-mail) and may then read the study;
//! - `GET /api/studies/{uid}/consults`: the study's consults and answers,
//!   for whoever may read the study (the site's clinicians too);
//! - `GET /api/consults`: those asked of the caller, still open;
//! - `POST /api/consults/{id}/answer` `{"text", "password"}`: the
//!   consultant's answer, signed with the password again and hashed like a
//!   report; once.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_router::service::{Acting, Router as RouterService};
use telerad_store::audit::{self, Outcome};
use telerad_store::consults::{self, Answer, Consult};
use telerad_store::study_rows;

use crate::assignments::api_error;
use crate::forms::text;
use crate::reports::desk::content_hash;
use crate::study_uid;

pub fn routes<S>() -> Router<S>
where
    Arc<RouterService>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            "/api/studies/{study_uid}/consults",
            get(of_study).post(request),
        )
        .route("/api/consults", get(mine))
        .route("/api/consults/{id}/answer", post(answer))
}

fn radiologist_of(caller: &Caller, what: &str) -> Result<String, ApiError> {
    caller
        .principal()
        .user
        .radiologist_id
        .clone()
        .ok_or_else(|| ApiError::Forbidden(format!("only a radiologist's account {what}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    subspecialty: String,
    question: String,
}

async fn request(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
    json: Result<Json<Request>, JsonRejection>,
) -> Result<(StatusCode, Json<Consult>), ApiError> {
    let scope = caller.allow(Action::WriteReport).await?;
    let radiologist = radiologist_of(&caller, "asks a second opinion")?;
    let uid = study_uid(&raw_uid)?;
    let Json(body) = json.map_err(|e| {
        ApiError::from_json_rejection(
            &e,
            "expected {\"subspecialty\": \"...\", \"question\": \"...\"}",
        )
    })?;
    let record = caller.study_record("consult.request", uid, None);
    if let Err(error) = text("question", &body.question, 4_000, true) {
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    }
    let asked = router
        .request_consult(
            uid,
            &radiologist,
            body.subspecialty.trim(),
            body.question.trim(),
            &Acting {
                scope: &scope,
                audit: &record,
            },
        )
        .await;
    match asked {
        Ok(consult) => Ok((StatusCode::CREATED, Json(consult))),
        Err(e) => Err(caller.not_done(record, Outcome::Failed, api_error(e)).await),
    }
}

#[derive(Debug, Serialize)]
struct Consults {
    items: Vec<Consult>,
}

async fn of_study(caller: Caller, Path(raw_uid): Path<String>) -> Result<Json<Consults>, ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    let uid = study_uid(&raw_uid)?;
    let record = caller.study_record("consult.read", uid, None);
    let db = caller.access().database();
    let mut tx = db.begin_write().await?;
    let Some(study) = study_rows::by_uid(&mut tx, uid, &scope).await? else {
        tx.rollback().await?;
        let error = ApiError::NotFound(format!("no study {uid}"));
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    };
    let items = consults::of_study(&mut tx, study.id).await?;
    audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(Json(Consults { items }))
}

async fn mine(caller: Caller) -> Result<Json<Consults>, ApiError> {
    caller.allow(Action::WriteReport).await?;
    let radiologist = radiologist_of(&caller, "is asked for second opinions")?;
    let db = caller.access().database();
    let mut tx = db.begin_write().await?;
    let items = consults::open_for(&mut tx, &radiologist).await?;
    let mut record = caller.record("consult.list", "consults".into());
    record.detail = serde_json::json!({
        "studies": items.iter().map(|c| c.study_instance_uid.as_str()).collect::<Vec<_>>(),
    })
    .to_string();
    audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(Json(Consults { items }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answering {
    text: String,
    password: String,
}

async fn answer(
    caller: Caller,
    Path(raw_id): Path<String>,
    json: Result<Json<Answering>, JsonRejection>,
) -> Result<Json<Consult>, ApiError> {
    caller.allow(Action::WriteReport).await?;
    let radiologist = radiologist_of(&caller, "answers second opinions")?;
    let id = telerad_http::paging::row_id(&raw_id, "a consult id")?;
    let Json(body) = json.map_err(|e| {
        ApiError::from_json_rejection(&e, "expected {\"text\": \"...\", \"password\": \"...\"}")
    })?;
    let mut record = caller.record("consult.answer", format!("consult/{id}"));
    if let Err(error) = text("text", &body.text, 20_000, true) {
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    }
    caller
        .reauthenticate(&body.password, &record, "signing the answer")
        .await?;
    let db = caller.access().database();
    let mut tx = db.begin_write().await?;
    // Another radiologist's consult is not found, as another site's study.
    let consult = match consults::by_id(&mut tx, id).await? {
        Some(c) if c.consultant == radiologist => c,
        _ => {
            tx.rollback().await?;
            let error = ApiError::NotFound(format!("no consult {id} asked of you"));
            return Err(caller.not_done(record, Outcome::Failed, error).await);
        }
    };
    record.study_uid = Some(consult.study_instance_uid.clone());
    let text = body.text.trim();
    let hash = content_hash(text);
    let login = caller.principal().user.login.clone();
    let answered = consults::answer(
        &mut tx,
        &consult,
        &Answer {
            text,
            hash: &hash,
            by: &login,
            at: record.at,
        },
    )
    .await?;
    if !answered {
        tx.rollback().await?;
        let error = ApiError::Conflict(format!("consult {id} is answered already"));
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    }
    audit::append(&mut tx, &record).await?;
    let consult = consults::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("consult {id} vanished")))?;
    tx.commit().await?;
    Ok(Json(consult))
}
