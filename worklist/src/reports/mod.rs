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
//! - `GET /api/studies/{uid}/report/print`: the printable page ([`print`]),
//!   and `.../report/pdf` the same as a PDF file ([`pdf`]).
//!
//! An illegal step is a 409 with the reason; every step and read is
//! audited, a change in the transaction that makes it.

pub mod desk;
pub mod lifecycle;
pub mod pdf;
pub mod print;
pub mod print_words;
pub mod templates;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path, Query, State};
use axum::routing::get;
use desk::{AddendumContent, Author, DeskError, ReportView};
use serde::Deserialize;
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_http::openapi::ErrorBody;
use telerad_lang::{Lang, said};
use telerad_router::service::Router as RouterService;
use telerad_store::Archive;
use telerad_store::audit::{AuditRecord, Outcome};
use telerad_store::reports::VersionKind;
use templates::{Content, Template};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<RouterService>: FromRef<S>,
    Arc<Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(list_templates))
        .routes(routes!(read))
        .routes(routes!(print_page))
        .routes(routes!(pdf_file))
        // The print page's stylesheet: a static asset served without
        // authentication, not part of the API, so kept out of the
        // description.
        .route("/assets/print.css", get(stylesheet))
        .routes(routes!(save_draft))
        .routes(routes!(preliminary))
        .routes(routes!(sign))
        .routes(routes!(addendum))
}

pub(crate) fn api_error(e: DeskError) -> ApiError {
    match e {
        DeskError::NotFound(m) => ApiError::said(ApiError::NotFound, m),
        DeskError::Conflict(m) => ApiError::said(ApiError::Conflict, m),
        DeskError::Illegal(e) => ApiError::said(ApiError::Conflict, e.said()),
        DeskError::Content(e) => ApiError::said(ApiError::BadRequest, e.0),
        DeskError::Corrupt(m) => ApiError::Internal(m),
        DeskError::Database(e) => ApiError::Database(e),
    }
}

use crate::study_uid;

/// The report templates, in the order they are offered.
///
/// The templates are not patient data: any signed-in account reads them.
#[utoipa::path(
    get,
    path = "/api/report-templates",
    tag = "reports",
    responses((status = 200, description = "Every template", body = Vec<Template>))
)]
async fn list_templates(_caller: Caller) -> Json<&'static [Template]> {
    Json(templates::all())
}

/// A study's report: its issued versions, and the draft to its author.
///
/// Whoever may read the study reads its issued versions; the working copy
/// is its author's alone (to anyone else a study with only a draft has no
/// report yet: 404).
#[utoipa::path(
    get,
    path = "/api/studies/{study_uid}/report",
    tag = "reports",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    responses((status = 200, description = "The report", body = ReportView))
)]
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
            return Err(ApiError::said(
                ApiError::Forbidden,
                said!(
                    "only a radiologist's account writes reports",
                    "seul le compte d'un radiologue rédige des comptes rendus"
                ),
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
            lang: caller.lang.unwrap_or(Lang::En),
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

/// Saves the working copy of a report (autosave).
///
/// Only the radiologist who claimed and acknowledged the study writes its
/// report; any number of times before the final. The content is checked
/// against its template (400 naming the field); empty fields are allowed
/// until issued. `communications` sent here is ignored: telerad writes it
/// when the report is issued.
#[utoipa::path(
    put,
    path = "/api/studies/{study_uid}/report/draft",
    tag = "reports",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    request_body = Content,
    responses(
        (status = 200, description = "The report with the draft saved; `empty_fields_to_check` lists the `warn` fields left empty", body = ReportView),
        (status = 409, description = "The caller is not the study's reader, or the report is signed already (write an addendum)", body = ErrorBody),
    )
)]
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

/// Issues the working copy as a preliminary report.
///
/// The site sees it at once, marked preliminary. Its `required` fields
/// must be filled, as for the final.
#[utoipa::path(
    post,
    path = "/api/studies/{study_uid}/report/preliminary",
    tag = "reports",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    responses(
        (status = 200, description = "The report with the preliminary issued", body = ReportView),
        (status = 409, description = "The caller is not the study's reader, there is no draft to issue, the report is signed already, or required fields are empty", body = ErrorBody),
    )
)]
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

/// Signing: the signer's password again, and optionally the hash of the
/// text they read.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Signature {
    /// The caller's password (re-authentication; a wrong one is a 403).
    password: String,
    /// The `content_hash` of the text the signer read; optional.
    #[serde(default)]
    read_hash: Option<String>,
}

/// Signs the final report.
///
/// Signs the caller's working copy, else the preliminary as issued, after
/// re-authentication with the password (a wrong one: 403). With
/// `read_hash` (the `content_hash` of the text read) a text changed since
/// is not signed (409). The signed text never changes afterwards, and the
/// study leaves its reader's open load.
#[utoipa::path(
    post,
    path = "/api/studies/{study_uid}/report/final",
    tag = "reports",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    request_body = Signature,
    responses(
        (status = 200, description = "The report, signed", body = ReportView),
        (status = 409, description = "The caller is not the study's reader, there is nothing to sign, the report is signed already, required fields are empty, or the text changed since `read_hash`", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords: try again after Retry-After seconds", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
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
        .reauthenticate(
            &body.password,
            &record,
            ("signing the report", "la signature du compte rendu"),
        )
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

/// A signed addendum: its text, and the signer's password again.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SignedAddendum {
    /// Not blank; at most 50,000 characters.
    text: String,
    /// The caller's password (re-authentication; a wrong one is a 403).
    password: String,
}

/// Appends a signed addendum to the final report.
///
/// After re-authentication with the password (a wrong one: 403); the
/// study's critical-result statements as they stand are added to it.
#[utoipa::path(
    post,
    path = "/api/studies/{study_uid}/report/addenda",
    tag = "reports",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    request_body = SignedAddendum,
    responses(
        (status = 200, description = "The report with the addendum", body = ReportView),
        (status = 409, description = "The caller is not the study's reader, or the report is not signed yet", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords: try again after Retry-After seconds", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
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
        .reauthenticate(
            &body.password,
            &record,
            ("signing the addendum", "la signature de l'addendum"),
        )
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

/// The print page's stylesheet (`text/css`), out of the API description.
async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
        print::STYLESHEET,
    )
}

/// The printable report, an HTML page.
///
/// A4, to print or save as PDF from the browser: the site, the patient,
/// the request, the issued findings (the final, else the newest
/// preliminary), the critical-result statements, the signer and the hash
/// of what was signed, then every addendum. Drafts are never printed.
#[utoipa::path(
    get,
    path = "/api/studies/{study_uid}/report/print",
    tag = "reports",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64), PrintQuery),
    responses((status = 200, description = "The printable page", content_type = "text/html", body = String))
)]
async fn print_page(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    State(archive): State<Arc<Archive>>,
    Path(raw_uid): Path<String>,
    Query(asked): Query<PrintQuery>,
) -> Result<axum::response::Response, ApiError> {
    use askama::Template as _;
    use axum::response::IntoResponse as _;
    let lang = asked.lang(caller.lang)?;
    let (page, record) =
        printable(&caller, (&router, &archive), &raw_uid, "report.print", lang).await?;
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

/// The printable report as a PDF (A4).
///
/// The same content as the printable page, for a records system or a fax
/// gateway that takes files. Drafts are never printed.
#[utoipa::path(
    get,
    path = "/api/studies/{study_uid}/report/pdf",
    tag = "reports",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64), PrintQuery),
    responses((status = 200, description = "The report", content_type = "application/pdf", body = String))
)]
async fn pdf_file(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    State(archive): State<Arc<Archive>>,
    Path(raw_uid): Path<String>,
    Query(asked): Query<PrintQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let lang = asked.lang(caller.lang)?;
    let (page, record) =
        printable(&caller, (&router, &archive), &raw_uid, "report.pdf", lang).await?;
    let bytes = pdf::render(&page);
    caller.audit(&record).await?;
    let disposition = format!(
        "inline; filename=\"report-{}.pdf\"",
        page.study_instance_uid
    );
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/pdf".to_owned(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// The printed report's language: `?lang=fr|en`, else the one the request's
/// `Accept-Language` prefers, else English.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PrintQuery {
    /// `fr` or `en`.
    lang: Option<String>,
}

impl PrintQuery {
    fn lang(&self, preferred: Option<Lang>) -> Result<Lang, ApiError> {
        match self.lang.as_deref() {
            Some("fr") => Ok(Lang::Fr),
            Some("en") => Ok(Lang::En),
            Some(other) => Err(ApiError::BadRequest(format!(
                "lang {other:?}: expected fr or en"
            ))),
            None => Ok(preferred.unwrap_or(Lang::En)),
        }
    }
}

/// What a printed report shows, and the audit record of printing it (to
/// append once the answer is made); a refusal is audited here.
async fn printable(
    caller: &Caller,
    (router, archive): (&RouterService, &Archive),
    raw_uid: &str,
    action: &str,
    lang: Lang,
) -> Result<(print::Printable, telerad_store::audit::AuditRecord), ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    let uid = study_uid(raw_uid)?;
    let record = caller.study_record(action, uid, None);
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
        .ok_or_else(|| crate::no_study(uid))?;
    let form = router
        .form(uid, &scope)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let zone = router
        .site_time_zone(&study.site)
        .cloned()
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let page = print::printable(&report, &study, form.as_ref(), (&zone, caller.now()), lang)
        .ok_or_else(|| ApiError::Internal(format!("the report of {uid} cannot be read")))?;
    Ok((page, record))
}
