//! Reports over HTTP. The reader who claimed a study writes its report:
//!
//! - `GET /api/report-templates`: the templates to write with;
//! - `PUT /api/studies/{uid}/report/draft`: save the working copy
//!   (autosave; private to its author);
//! - `POST /api/studies/{uid}/report/preliminary`: issue it, seen at once
//!   by the site, marked preliminary;
//! - `POST /api/studies/{uid}/report/final` `{"password", "read_hash"?}`:
//!   sign it after re-authentication (`read_hash`, the `content_hash` of
//!   the text read: refused if the text changed since); the signed text
//!   never changes;
//! - `POST /api/studies/{uid}/report/addenda` `{"text", "password"}`: a
//!   signed addendum after the final;
//! - `GET /api/studies/{uid}/report`: whoever may read the study reads its
//!   issued versions (and its author the draft);
//! - `GET /api/studies/{uid}/report/print`: the printable page ([`print`]).
//!
//! An illegal step is a 409 with the reason; every step and read is
//! audited, a change in the transaction that makes it.

pub mod desk;
pub mod lifecycle;
pub mod print;
pub mod templates;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use desk::{AddendumContent, Author, DeskError, ReportView};
use serde::Deserialize;
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_router::service::Router as RouterService;
use telerad_store::Archive;
use telerad_store::audit::{AuditRecord, Outcome};
use telerad_store::reports::VersionKind;
use templates::{Content, Template};

pub fn routes<S>() -> Router<S>
where
    Arc<RouterService>: FromRef<S>,
    Arc<Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/report-templates", get(list_templates))
        .route("/api/studies/{study_uid}/report", get(read))
        .route("/api/studies/{study_uid}/report/print", get(print_page))
        .route("/assets/print.css", get(stylesheet))
        .route("/api/studies/{study_uid}/report/draft", put(save_draft))
        .route(
            "/api/studies/{study_uid}/report/preliminary",
            post(preliminary),
        )
        .route("/api/studies/{study_uid}/report/final", post(sign))
        .route("/api/studies/{study_uid}/report/addenda", post(addendum))
}

pub(crate) fn api_error(e: DeskError) -> ApiError {
    match e {
        DeskError::NotFound(m) => ApiError::NotFound(m),
        DeskError::Conflict(m) => ApiError::Conflict(m),
        DeskError::Illegal(e) => ApiError::Conflict(e.to_string()),
        DeskError::Content(e) => ApiError::BadRequest(e.to_string()),
        DeskError::Corrupt(m) => ApiError::Internal(m),
        DeskError::Database(e) => ApiError::Database(e),
    }
}

use crate::study_uid;

/// The templates are not patient data: any signed-in account reads them.
async fn list_templates(_caller: Caller) -> Json<&'static [Template]> {
    Json(templates::all())
}

async fn read(caller: Caller, Path(raw_uid): Path<String>) -> Result<Json<ReportView>, ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    let uid = study_uid(&raw_uid)?;
    let record = caller.study_record("report.read", uid, None);
    let viewer = caller.principal().user.radiologist_id.clone();
    let db = caller.access().database();
    match desk::read(db, uid, &scope, viewer.as_deref()).await {
        Ok(view) => {
            caller.audit(&record).await?;
            Ok(Json(view))
        }
        Err(e) => Err(caller.not_done(record, Outcome::Failed, api_error(e)).await),
    }
}

/// The caller as a report's author: their radiologist, their scope for
/// writing, and the uid checked.
struct Writing {
    radiologist: String,
    scope: telerad_store::Scope,
    uid: String,
}

impl Writing {
    async fn of(caller: &Caller, raw_uid: &str) -> Result<Writing, ApiError> {
        let scope = caller.allow(Action::WriteReport).await?;
        let uid = study_uid(raw_uid)?.to_string();
        let Some(radiologist) = caller.principal().user.radiologist_id.clone() else {
            return Err(ApiError::Forbidden(
                "only a radiologist's account writes reports".into(),
            ));
        };
        Ok(Writing {
            radiologist,
            scope,
            uid,
        })
    }

    fn author<'a>(&'a self, caller: &'a Caller) -> Author<'a> {
        Author {
            radiologist: &self.radiologist,
            login: &caller.principal().user.login,
            scope: &self.scope,
        }
    }
}

/// Answers a step's outcome; a refused or failed one is audited.
async fn finish(
    caller: &Caller,
    record: AuditRecord,
    result: Result<ReportView, DeskError>,
) -> Result<Json<ReportView>, ApiError> {
    match result {
        Ok(view) => Ok(Json(view)),
        Err(e) => {
            let outcome = match e {
                DeskError::Corrupt(_) | DeskError::Database(_) => Outcome::Failed,
                _ => Outcome::Refused,
            };
            Err(caller.not_done(record, outcome, api_error(e)).await)
        }
    }
}

async fn save_draft(
    caller: Caller,
    Path(raw_uid): Path<String>,
    json: Result<Json<Content>, JsonRejection>,
) -> Result<Json<ReportView>, ApiError> {
    let writing = Writing::of(&caller, &raw_uid).await?;
    let Json(content) = json.map_err(|e| {
        ApiError::from_json_rejection(
            &e,
            "expected {\"template\": \"id\", \"fields\": {...}, \"text\": \"...\"}",
        )
    })?;
    let record = caller.study_record("report.draft", &writing.uid, None);
    let db = caller.access().database();
    let result = desk::save_draft(
        db,
        &writing.author(&caller),
        &writing.uid,
        &content,
        &record,
    )
    .await;
    finish(&caller, record, result).await
}

async fn preliminary(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
) -> Result<Json<ReportView>, ApiError> {
    let writing = Writing::of(&caller, &raw_uid).await?;
    let record = caller.study_record("report.preliminary", &writing.uid, None);
    issue(
        &caller,
        &router,
        &writing,
        VersionKind::Preliminary,
        None,
        record,
    )
    .await
}

/// Issues the caller's working copy as `kind`, and answers.
async fn issue(
    caller: &Caller,
    router: &RouterService,
    writing: &Writing,
    kind: VersionKind,
    read_hash: Option<&str>,
    record: AuditRecord,
) -> Result<Json<ReportView>, ApiError> {
    let db = caller.access().database();
    let author = writing.author(caller);
    let result = desk::issue(db, router, &author, &writing.uid, kind, read_hash, &record).await;
    finish(caller, record, result).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Signature {
    password: String,
    /// The `content_hash` of the text the signer read; optional.
    #[serde(default)]
    read_hash: Option<String>,
}

async fn sign(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
    json: Result<Json<Signature>, JsonRejection>,
) -> Result<Json<ReportView>, ApiError> {
    let writing = Writing::of(&caller, &raw_uid).await?;
    let Json(body) =
        json.map_err(|e| ApiError::from_json_rejection(&e, "expected {\"password\": \"...\"}"))?;
    let record = caller.study_record("report.final", &writing.uid, None);
    caller
        .reauthenticate(&body.password, &record, "signing the report")
        .await?;
    issue(
        &caller,
        &router,
        &writing,
        VersionKind::Final,
        body.read_hash.as_deref(),
        record,
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedAddendum {
    text: String,
    password: String,
}

async fn addendum(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
    json: Result<Json<SignedAddendum>, JsonRejection>,
) -> Result<Json<ReportView>, ApiError> {
    let writing = Writing::of(&caller, &raw_uid).await?;
    let Json(body) = json.map_err(|e| {
        ApiError::from_json_rejection(&e, "expected {\"text\": \"...\", \"password\": \"...\"}")
    })?;
    let record = caller.study_record("report.addendum", &writing.uid, None);
    caller
        .reauthenticate(&body.password, &record, "signing the addendum")
        .await?;
    let db = caller.access().database();
    let result = desk::add_addendum(
        db,
        &router,
        &writing.author(&caller),
        &writing.uid,
        &AddendumContent {
            text: body.text,
            communications: Vec::new(),
        },
        &record,
    )
    .await;
    finish(&caller, record, result).await
}

async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
        print::STYLESHEET,
    )
}

async fn print_page(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    State(archive): State<Arc<Archive>>,
    Path(raw_uid): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use askama::Template as _;
    use axum::response::IntoResponse as _;
    let scope = caller.allow(Action::ReadStudies).await?;
    let uid = study_uid(&raw_uid)?;
    let record = caller.study_record("report.print", uid, None);
    let db = caller.access().database();
    // Drafts are never printed, not even for their author.
    let report = match desk::read(db, uid, &scope, None).await {
        Ok(report) => report,
        Err(e) => return Err(caller.not_done(record, Outcome::Failed, api_error(e)).await),
    };
    let study = archive
        .index()
        .study(uid, &scope)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no study {uid}")))?;
    let form = router
        .form(uid, &scope)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let zone = router
        .site_time_zone(&study.site)
        .cloned()
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let page = print::printable(&report, &study, form.as_ref(), &zone, caller.now())
        .ok_or_else(|| ApiError::Internal(format!("the report of {uid} cannot be read")))?;
    let html = page
        .render()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    caller.audit(&record).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response())
}
