//! The site's own forms: `GET /api/forms` lists those waiting for their
//! images (the patient is on the way to the scanner, or the accession
//! number was mistyped); `GET /api/forms/{id}` shows one with its earlier
//! texts; `PUT /api/forms/{id}` corrects it (same checks as filing; until
//! the report is signed; a waiting form finds its study if the correction
//! makes it match; a higher urgency raises the study's priority);
//! `POST /api/forms/{id}/cancel` `{"reason"}` calls off a waiting one.
//! Technicians, clinicians and integrations of the form's site, and
//! administrators; another site's form is not found.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, State};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_lang::said;
use telerad_router::service::{Acting, FiledForm, Router as RouterService};
use telerad_store::audit::Outcome;
use telerad_store::forms::{Amendment, Revision, StoredForm};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::assignments::api_error;
use crate::forms::{Form, invalid, prepare, text};

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<RouterService>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(waiting))
        .routes(routes!(show, amend))
        .routes(routes!(cancel))
}

/// A form as the site sees it in its lists.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SiteForm {
    pub id: i64,
    pub site: String,
    pub study_instance_uid: Option<String>,
    pub filed_by: String,
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub filed_at: i64,
    pub amended_by: Option<String>,
    #[serde(serialize_with = "telerad_store::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub amended_at: Option<i64>,
    #[serde(serialize_with = "telerad_store::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub cancelled_at: Option<i64>,
    pub cancel_reason: Option<String>,
    pub indication: Option<crate::forms::IndicationCheck>,
    /// The form as filed (its site and study date completed).
    #[schema(value_type = Form)]
    pub form: serde_json::Value,
}

fn site_form(form: StoredForm, study_instance_uid: Option<String>) -> Result<SiteForm, ApiError> {
    let document = serde_json::from_str(&form.form)
        .map_err(|e| ApiError::Internal(format!("form {}: {e}", form.id)))?;
    let indication = crate::forms::IndicationCheck::of(&form);
    Ok(SiteForm {
        id: form.id,
        site: form.site,
        study_instance_uid,
        filed_by: form.filed_by,
        filed_at: form.filed_at,
        amended_by: form.amended_by,
        amended_at: form.amended_at,
        cancelled_at: form.cancelled_at,
        cancel_reason: form.cancel_reason,
        indication,
        form: document,
    })
}

fn form_id(raw: &str) -> Result<i64, ApiError> {
    telerad_http::paging::row_id(raw, "a form id")
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct WaitingQuery {
    /// Forms to list, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Waiting {
    items: Vec<SiteForm>,
}

/// The forms waiting for their images.
///
/// Those of the caller's sites, newest first.
#[utoipa::path(
    get,
    path = "/api/forms",
    tag = "forms",
    params(WaitingQuery),
    responses((status = 200, description = "The waiting forms (at most `limit`; no next page)", body = Waiting))
)]
async fn waiting(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    query: Result<Query<WaitingQuery>, QueryRejection>,
) -> Result<Json<Waiting>, ApiError> {
    let scope = caller.allow(Action::FileForm).await?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = telerad_http::paging::limit(query.limit)?;
    let forms = router
        .waiting_forms(&scope, limit)
        .await
        .map_err(api_error)?;
    let mut record = caller.record("form.list_waiting", "forms".into());
    record.detail = serde_json::json!({
        "forms": forms.iter().map(|f| f.id).collect::<Vec<_>>(),
        "patients": forms.iter().map(|f| f.patient_id.as_str()).collect::<Vec<_>>(),
    })
    .to_string();
    let items = forms
        .into_iter()
        .map(|f| site_form(f, None))
        .collect::<Result<_, _>>()?;
    caller.audit(&record).await?;
    Ok(Json(Waiting { items }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct WithRevisions {
    #[serde(flatten)]
    form: SiteForm,
    /// The earlier texts, oldest first.
    revisions: Vec<ShownRevision>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ShownRevision {
    #[serde(flatten)]
    revision: Revision,
    /// The text this revision replaced; `null` if it cannot be read.
    #[schema(value_type = Option<Form>)]
    form: serde_json::Value,
}

/// One of the site's forms, with its earlier texts.
#[utoipa::path(
    get,
    path = "/api/forms/{id}",
    tag = "forms",
    params(("id" = i64, Path, description = "The form's id", minimum = 1)),
    responses((status = 200, description = "The form and its revisions", body = WithRevisions))
)]
async fn show(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw): Path<String>,
) -> Result<Json<WithRevisions>, ApiError> {
    let scope = caller.allow(Action::FileForm).await?;
    let id = form_id(&raw)?;
    let mut record = caller.record("form.read", format!("form/{id}"));
    let (form, uid, revisions) = match router.form_by_id(id, &scope).await {
        Ok(found) => found,
        Err(e) => return Err(caller.not_done(record, Outcome::Failed, api_error(e)).await),
    };
    record.patient_id = Some(form.patient_id.clone());
    let revisions = revisions
        .into_iter()
        .map(|revision| {
            let form = serde_json::from_str(&revision.form).unwrap_or(serde_json::Value::Null);
            ShownRevision { revision, form }
        })
        .collect();
    record.study_uid = uid.clone();
    let form = site_form(form, uid)?;
    caller.audit(&record).await?;
    Ok(Json(WithRevisions { form, revisions }))
}

/// Corrects a form.
///
/// The same checks as filing, until the report is signed. A waiting form finds its study if the correction makes it
/// match; a higher urgency raises the study's priority.
#[utoipa::path(
    put,
    path = "/api/forms/{id}",
    tag = "forms",
    params(("id" = i64, Path, description = "The form's id", minimum = 1)),
    request_body(content = Form, description = "The whole corrected form; its site cannot change"),
    responses(
        (status = 200, description = "Amended: its study if matched, and the priority it raised", body = FiledForm),
        (status = 409, description = "The form was cancelled, the report is signed, the matching study already has a form, or the assignment changed meanwhile", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn amend(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw): Path<String>,
    json: Result<Json<Form>, JsonRejection>,
) -> Result<Json<FiledForm>, ApiError> {
    let scope = caller.allow(Action::FileForm).await?;
    let id = form_id(&raw)?;
    let Json(mut form) =
        json.map_err(|e| ApiError::from_json_rejection(&e, crate::forms::EXPECTED))?;
    let record = caller.record("form.amend", format!("form/{id}"));
    // The stored site, read within the caller's scope: a form does not
    // move to another site.
    let site = match router.form_by_id(id, &scope).await {
        Ok((stored, _, _)) => stored.site,
        Err(e) => return Err(caller.not_done(record, Outcome::Failed, api_error(e)).await),
    };
    if form.site.as_ref().is_some_and(|s| *s != site) {
        let error = invalid(
            "site",
            said!(
                "a form stays with its site: file a new one",
                "une demande reste attachée à son site : déposez-en une nouvelle"
            ),
        );
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    }
    let Some(zone) = router.site_time_zone(&site).cloned() else {
        let error = ApiError::Internal(format!("site {site} is not configured any more"));
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    };
    let (checked, document) = match prepare(&mut form, site, zone, caller.now()) {
        Ok(prepared) => prepared,
        Err(error) => return Err(caller.not_done(record, Outcome::Failed, error).await),
    };
    let login = caller.principal().user.login.clone();
    let mut record = record;
    record.patient_id = Some(form.patient_id.clone());
    record.detail = serde_json::json!({ "urgency": form.urgency }).to_string();
    let amended = router
        .amend_form(
            id,
            &Amendment {
                patient_id: form.patient_id.trim(),
                accession_number: form.accession_number.trim(),
                study_date: &checked.study_date,
                urgency: form.urgency,
                requested_examination: &form.requested_examination,
                symptom_onset_at: checked.symptom_onset_at,
                form: &document,
                by: &login,
                at: caller.now(),
            },
            &Acting {
                scope: &scope,
                audit: &record,
            },
        )
        .await;
    match amended {
        Ok(amended) => Ok(Json(amended)),
        Err(e) => Err(caller.not_done(record, Outcome::Failed, api_error(e)).await),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Cancel {
    /// Why it is called off, at most 500 characters.
    reason: String,
}

/// Calls off a form still waiting for its images.
#[utoipa::path(
    post,
    path = "/api/forms/{id}/cancel",
    tag = "forms",
    params(("id" = i64, Path, description = "The form's id", minimum = 1)),
    request_body = Cancel,
    responses(
        (status = 200, description = "The cancelled form", body = SiteForm),
        (status = 409, description = "The form was cancelled already, or has its study (amend it instead)", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn cancel(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw): Path<String>,
    json: Result<Json<Cancel>, JsonRejection>,
) -> Result<Json<SiteForm>, ApiError> {
    let scope = caller.allow(Action::FileForm).await?;
    let id = form_id(&raw)?;
    let Json(body) = json.map_err(|e| {
        ApiError::from_json_rejection(&e, "expected {\"reason\": \"why it is called off\"}")
    })?;
    let mut record = caller.record("form.cancel", format!("form/{id}"));
    if let Err(error) = text("reason", &body.reason, 500, true) {
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    }
    record.detail = serde_json::json!({ "reason": body.reason.trim() }).to_string();
    let login = caller.principal().user.login.clone();
    let cancelled = router
        .cancel_form(
            id,
            &login,
            body.reason.trim(),
            &Acting {
                scope: &scope,
                audit: &record,
            },
        )
        .await;
    match cancelled {
        Ok(form) => Ok(Json(site_form(form, None)?)),
        Err(e) => Err(caller.not_done(record, Outcome::Failed, api_error(e)).await),
    }
}
