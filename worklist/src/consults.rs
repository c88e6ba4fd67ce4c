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

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_http::openapi::ErrorBody;
use telerad_lang::said;
use telerad_router::service::{Acting, Router as RouterService};
use telerad_store::audit::{self, Outcome};
use telerad_store::consults::{self, Answer, Consult};
use telerad_store::study_rows;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::assignments::api_error;
use crate::forms::text;
use crate::reports::desk::content_hash;
use crate::study_uid;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<RouterService>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(of_study, request))
        .routes(routes!(mine))
        .routes(routes!(answer))
}

/// A second opinion to ask.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ConsultRequest)]
#[serde(deny_unknown_fields)]
struct Request {
    /// The colleague's subspecialty: `neuro`, `body`, `chest`, `msk`,
    /// `paediatric`, `breast`, `cardiac`, `interventional` or `general`.
    subspecialty: String,
    /// Up to 4,000 characters, not blank; no control characters but new
    /// lines and tabs.
    question: String,
}

/// Asks a colleague's second opinion on a study.
///
/// By the radiologist who claimed the study; the rota chooses the
/// colleague on duty in the subspecialty, who is told and may then read
/// the study.
#[utoipa::path(
    post,
    path = "/api/studies/{study_uid}/consults",
    tag = "consults",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    request_body = Request,
    responses(
        (status = 201, description = "Asked: the consult", body = Consult),
        (status = 409, description = "The caller has not claimed the study, or nobody on duty reads the subspecialty for the study's site", body = ErrorBody),
    )
)]
async fn request(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
    json: Result<Json<Request>, JsonRejection>,
) -> Result<(StatusCode, Json<Consult>), ApiError> {
    let scope = caller.allow(Action::WriteReport).await?;
    let radiologist =
        crate::radiologist_of(&caller, "asks a second opinion", "demande un second avis")?;
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

/// A list of consults.
#[derive(Debug, Serialize, ToSchema)]
struct Consults {
    items: Vec<Consult>,
}

/// The study's consults and their answers.
///
/// For whoever may read the study, the site's clinicians too.
#[utoipa::path(
    get,
    path = "/api/studies/{study_uid}/consults",
    tag = "consults",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    responses((status = 200, description = "The study's consults", body = Consults))
)]
async fn of_study(caller: Caller, Path(raw_uid): Path<String>) -> Result<Json<Consults>, ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    let uid = study_uid(&raw_uid)?;
    let record = caller.study_record("consult.read", uid, None);
    let db = caller.access().database();
    let mut tx = db.begin_write().await?;
    let Some(study) = study_rows::by_uid(&mut tx, uid, &scope).await? else {
        tx.rollback().await?;
        let error = crate::no_study(uid);
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    };
    let items = consults::of_study(&mut tx, study.id).await?;
    audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(Json(Consults { items }))
}

/// The consults asked of the caller, still open.
///
/// For a radiologist's account.
#[utoipa::path(
    get,
    path = "/api/consults",
    tag = "consults",
    responses((status = 200, description = "The open consults asked of the caller", body = Consults))
)]
async fn mine(caller: Caller) -> Result<Json<Consults>, ApiError> {
    caller.allow(Action::WriteReport).await?;
    let radiologist = crate::radiologist_of(
        &caller,
        "is asked for second opinions",
        "reçoit des demandes de second avis",
    )?;
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

/// A consult's answer, signed with the password.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ConsultAnswer)]
#[serde(deny_unknown_fields)]
struct Answering {
    /// Up to 20,000 characters, not blank; no control characters but new
    /// lines and tabs.
    text: String,
    /// The caller's password, again: the answer is signed.
    #[schema(format = Password)]
    password: String,
}

/// Answers a consult asked of the caller, once.
///
/// Signed with the password again and hashed like a report; a wrong
/// password is refused (403).
#[utoipa::path(
    post,
    path = "/api/consults/{id}/answer",
    tag = "consults",
    params(("id" = i64, Path, description = "The consult's id", minimum = 1)),
    request_body = Answering,
    responses(
        (status = 200, description = "Answered: the consult", body = Consult),
        (status = 409, description = "The consult is answered already", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords: try again after Retry-After seconds", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
async fn answer(
    caller: Caller,
    Path(raw_id): Path<String>,
    json: Result<Json<Answering>, JsonRejection>,
) -> Result<Json<Consult>, ApiError> {
    caller.allow(Action::WriteReport).await?;
    let radiologist = crate::radiologist_of(
        &caller,
        "answers second opinions",
        "répond aux seconds avis",
    )?;
    let id = telerad_http::paging::row_id(&raw_id, "a consult id")?;
    let Json(body) = json.map_err(|e| {
        ApiError::from_json_rejection(&e, "expected {\"text\": \"...\", \"password\": \"...\"}")
    })?;
    let mut record = caller.record("consult.answer", format!("consult/{id}"));
    if let Err(error) = text("text", &body.text, 20_000, true) {
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    }
    caller
        .reauthenticate(
            &body.password,
            &record,
            ("signing the answer", "la signature de la réponse"),
        )
        .await?;
    let db = caller.access().database();
    let mut tx = db.begin_write().await?;
    // Another radiologist's consult is not found, as another site's study.
    let consult = match consults::by_id(&mut tx, id).await? {
        Some(c) if c.consultant == radiologist => c,
        _ => {
            tx.rollback().await?;
            let error = ApiError::said(
                ApiError::NotFound,
                said!(
                    "no consult {id} asked of you",
                    "aucune demande d'avis {id} qui vous soit adressée"
                ),
            );
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
        let error = ApiError::said(
            ApiError::Conflict,
            said!(
                "consult {id} is answered already",
                "la demande d'avis {id} a déjà sa réponse"
            ),
        );
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    }
    audit::append(&mut tx, &record).await?;
    let consult = consults::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("consult {id} vanished")))?;
    tx.commit().await?;
    Ok(Json(consult))
}
