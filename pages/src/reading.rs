//! The reading room (`/studies/{uid}`): one study, its images and all that
//! is decided about it. The server renders the study, its series (with
//! their thumbnails), its assignment and the assignment's history, after
//! the same scope check and audit record as `GET /api/studies/{uid}` (a
//! study of another site is a 404 page); the page's own script
//! (`assets/reading.js`) then reads the request form, the report, the
//! critical results and the messages through the API, and shows the
//! images: each slice rendered by the DICOMweb API once, held decoded in
//! the browser, so that scrolling costs no request.

use crate::clock::span;
use crate::html;
use crate::lang::PageLang as _;
use crate::lang::Text;
use crate::visitor::{Refusal, Visitor};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use telerad_access::Action;
use telerad_http::ApiError;
use telerad_router::service::Router as RouterService;
use telerad_store::Archive;
use telerad_store::accounts::Role;
use telerad_store::audit::Outcome;

pub struct Series {
    pub uid: String,
    pub modality: String,
    pub number: String,
    pub description: String,
    pub instance_count: i64,
}

pub struct Step {
    pub at: i64,
    pub action: &'static str,
    pub who: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "reading.html")]
struct ReadingPage<'a> {
    now: i64,
    lang: &'static str,
    t: &'static Text,
    csrf: &'a str,
    user_name: &'a str,
    role: &'a str,
    uid: &'a str,
    patient_name: String,
    patient_id: &'a str,
    patient_sex: &'a str,
    patient_birth_date: String,
    site: &'a str,
    description: &'a str,
    modalities: String,
    instance_count: i64,
    study_date: String,
    priority: &'a str,
    priority_label: &'static str,
    state: &'a str,
    reader: String,
    report_due: Option<i64>,
    report_due_text: String,
    mine: bool,
    may_claim: bool,
    writes_reports: bool,
    /// Whom the study may be given to (id, name), for those who assign;
    /// empty for everyone else.
    assignable: Vec<(String, String)>,
    series: Vec<Series>,
    history: Vec<Step>,
    /// What the script shows, in the page's language.
    labels: String,
}

/// What the script shows, with the report templates' words in the page's
/// language (English is the templates' own).
fn labels(lang: crate::lang::Lang) -> String {
    let mut labels = serde_json::to_value(lang.text().reading).unwrap_or_default();
    if lang == crate::lang::Lang::Fr {
        labels["templates"] = serde_json::to_value(telerad_worklist::reports::templates::french())
            .unwrap_or_default();
    }
    labels.to_string()
}

pub async fn page(
    visitor: Visitor,
    State(archive): State<Arc<Archive>>,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
) -> Response {
    match render(&visitor, &archive, &router, &raw_uid).await {
        Ok(response) => response,
        Err(e) => Refusal::Failed(e, visitor.lang).into_response(),
    }
}

async fn render(
    visitor: &Visitor,
    archive: &Archive,
    router: &RouterService,
    raw_uid: &str,
) -> Result<Response, ApiError> {
    let caller = &visitor.caller;
    let t = visitor.lang.text();
    let scope = caller.allow(Action::ReadStudies).await?;
    let uid = telerad_dicom::uid::validate_uid(raw_uid)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let index = archive.index();
    let Some(study) = index.study(uid, &scope).await? else {
        let mut record = caller.study_record("study.read", uid, None);
        record.outcome = Outcome::Failed;
        record.detail = r#"{"reason":"not found within the caller's scope"}"#.into();
        caller.audit(&record).await?;
        return Ok((
            StatusCode::NOT_FOUND,
            crate::plain_page(visitor.lang, StatusCode::NOT_FOUND, t.reading.no_such_study),
        )
            .into_response());
    };
    let record = caller.study_record("study.read", uid, Some(&study.patient_id));
    caller.audit(&record).await?;
    let series = index.series_of(uid, &scope).await?;
    let assignment = router
        .assignment(uid)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let user = &caller.principal().user;
    let radiologist = user.radiologist_id.as_deref();
    // The policy decides who assigns; asked without `allow`, so that not
    // offering the form is not audited as a refusal.
    let assigns = telerad_access::policy::decide(caller.principal(), Action::AssignStudy).is_ok();
    // Once the final report is signed, the API refuses with its reason.
    let assignable = if assigns {
        router
            .readers_licensed_for(&study.site)
            .into_iter()
            .map(|(id, name)| (id.to_string(), name.to_string()))
            .collect()
    } else {
        Vec::new()
    };
    let name_of = |id: &str| router.reader_name(id).unwrap_or(id).to_string();
    let now = caller.now();
    let (priority, state, reader, report_due, mine) = match &assignment {
        Some(a) => (
            a.priority.as_str(),
            a.state.as_str(),
            a.radiologist
                .as_ref()
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            Some(a.preliminary_by),
            radiologist.is_some() && a.radiologist.as_ref().map(|r| r.id.as_str()) == radiologist,
        ),
        None => ("", "", String::new(), None, false),
    };
    let history = assignment
        .as_ref()
        .map(|a| {
            a.history
                .iter()
                .map(|h| Step {
                    at: h.at,
                    action: t
                        .reading
                        .history_actions
                        .iter()
                        .find(|(id, _)| *id == h.action.as_str())
                        .map_or(h.action.as_str(), |(_, shown)| shown),
                    who: h.radiologist_id.as_deref().map(name_of).unwrap_or_default(),
                    detail: match (visitor.lang, &h.detail_fr) {
                        (crate::lang::Lang::Fr, Some(french)) => french.clone(),
                        _ => h.detail.clone(),
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(html(&ReadingPage {
        now,
        lang: visitor.lang.code(),
        t,
        csrf: &visitor.csrf,
        user_name: &user.name,
        role: user.role.as_str(),
        uid: &study.study_instance_uid,
        patient_name: study.patient_name.replace('^', " ").trim().to_string(),
        patient_id: &study.patient_id,
        patient_sex: &study.patient_sex,
        patient_birth_date: crate::lang::dicom_date(visitor.lang, &study.patient_birth_date),
        site: &study.site,
        description: &study.study_description,
        modalities: study.modalities.replace('\\', " "),
        instance_count: study.instance_count,
        study_date: crate::lang::dicom_date(visitor.lang, &study.study_date),
        priority,
        priority_label: if priority.is_empty() {
            ""
        } else {
            t.priority(priority)
        },
        state,
        reader,
        report_due_text: report_due.map(|due| span(due - now)).unwrap_or_default(),
        report_due,
        mine,
        may_claim: radiologist.is_some() && state != "acknowledged" && !state.is_empty(),
        writes_reports: user.role == Role::Radiologist,
        assignable,
        series: series
            .into_iter()
            .map(|s| Series {
                uid: s.series_instance_uid,
                modality: s.modality,
                number: s.series_number.map(|n| n.to_string()).unwrap_or_default(),
                description: s.series_description,
                instance_count: s.instance_count,
            })
            .collect(),
        history,
        labels: labels(visitor.lang),
    }))
}
