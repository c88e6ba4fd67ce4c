//! Request forms over HTTP: a technician or clinician of a site files the
//! form (`POST /api/forms`), before or after the images; whoever may read
//! the study reads its form (`GET /api/studies/{uid}/form`). Corrections,
//! cancellation and the forms waiting for images: `form_changes.rs`.
//!
//! Every validation error names its field. A stroke request needs the
//! symptom onset time and the NIHSS: the radiologist's thrombolysis window
//! (4 h 30 from onset) is computed from them.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_lang::{Said, said};
use telerad_router::service::{Acting, FiledForm, Router as RouterService};
use telerad_store::Scope;
use telerad_store::audit::Outcome;
use telerad_store::forms::{NewForm, StoredForm, Urgency};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<RouterService>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(file))
        .routes(routes!(show))
}

/// Pregnancy, as the French prescription checklist asks it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pregnancy {
    No,
    Yes,
    Unknown,
    NotApplicable,
}

/// The form as filed and as answered. Free text is kept as written.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Form {
    /// The site the patient is at; may be left out by an account of one site.
    #[serde(default)]
    pub site: Option<String>,
    pub patient_id: String,
    #[serde(default)]
    pub accession_number: String,
    /// `YYYYMMDD`; left out, the day of filing at the site.
    #[serde(default)]
    pub study_date: Option<String>,
    pub urgency: Urgency,
    pub clinical_question: String,
    pub requested_examination: String,
    pub requesting_physician: String,
    pub callback_number: String,
    /// RFC 3339 with an offset, e.g. `2026-11-26T02:10:00+01:00`.
    #[serde(default)]
    pub symptom_onset: Option<String>,
    /// National Institutes of Health Stroke Scale, 0 to 42.
    #[serde(default)]
    pub nihss: Option<u8>,
    #[serde(default)]
    pub anticoagulants: String,
    #[serde(default)]
    pub contrast_planned: Option<bool>,
    /// µmol/L.
    #[serde(default)]
    pub creatinine_umol_l: Option<f64>,
    /// mL/min/1.73 m².
    #[serde(default)]
    pub egfr: Option<f64>,
    #[serde(default)]
    pub contrast_allergy: Option<bool>,
    #[serde(default)]
    pub pregnancy: Option<Pregnancy>,
    /// Pacemaker, implants, metal: what matters for MR and for contrast.
    #[serde(default)]
    pub implants: String,
    #[serde(default)]
    pub history: String,
    /// Who receives the result, if not the requester.
    #[serde(default)]
    pub result_to: String,
}

pub(crate) const EXPECTED: &str = "expected a request form: patient_id, urgency, clinical_question, \
                        requested_examination, requesting_physician, callback_number…";

const SHORT: usize = 200;
const LONG: usize = 4_000;

/// A field and what is wrong with it: the field by its JSON name in
/// English, by the label the form page shows in French.
pub(crate) fn invalid(field: &str, message: Said) -> ApiError {
    let message = message.prefixed(&format!("{field}: "), &format!("{} : ", label(field)));
    ApiError::said(ApiError::BadRequest, message)
}

/// A field's label on the French form page.
fn label(field: &str) -> &str {
    match field {
        "site" => "Site",
        "patient_id" => "Identifiant patient (IPP)",
        "accession_number" => "Numéro d'examen (accession)",
        "study_date" => "Date de l'examen",
        "urgency" => "Urgence",
        "clinical_question" => "Question clinique",
        "requested_examination" => "Examen demandé",
        "requesting_physician" => "Médecin demandeur",
        "callback_number" => "Numéro de rappel",
        "symptom_onset" => "Début des symptômes",
        "nihss" => "NIHSS",
        "anticoagulants" => "Anticoagulants",
        "creatinine_umol_l" => "Créatinine (µmol/L)",
        "egfr" => "DFG",
        "implants" => "Pacemaker, implants",
        "history" => "Antécédents",
        "result_to" => "Résultat à",
        "question" => "Question",
        "text" => "Texte",
        "reason" => "Motif",
        other => other,
    }
}

pub(crate) fn text(field: &str, value: &str, max: usize, required: bool) -> Result<(), ApiError> {
    if required && value.trim().is_empty() {
        return Err(invalid(field, said!("required", "obligatoire")));
    }
    if value.chars().count() > max {
        return Err(invalid(
            field,
            said!("at most {max} characters", "au plus {max} caractères"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid(
            field,
            said!(
                "control characters are not allowed",
                "les caractères de contrôle ne sont pas admis"
            ),
        ));
    }
    Ok(())
}

/// What validation derives from a form.
pub(crate) struct Checked {
    pub(crate) site: String,
    pub(crate) study_date: String,
    pub(crate) symptom_onset_at: Option<i64>,
}

/// The site the form is for, and its time zone. Another site's is
/// refused as if the site did not exist.
fn site_of(
    form: &Form,
    scope: &Scope,
    site_zone: &dyn Fn(&str) -> Option<jiff::tz::TimeZone>,
) -> Result<(String, jiff::tz::TimeZone), ApiError> {
    let site = match (&form.site, scope) {
        (Some(site), _) => site.clone(),
        (None, Scope::Sites(sites)) if sites.len() == 1 => sites[0].clone(),
        (None, _) => {
            return Err(invalid(
                "site",
                said!(
                    "required (the account is not bound to one site)",
                    "obligatoire (le compte n'est pas lié à un seul site)"
                ),
            ));
        }
    };
    match site_zone(&site).filter(|_| scope.covers_site(&site)) {
        Some(zone) => Ok((site, zone)),
        None => Err(invalid(
            "site",
            said!("no site {site:?}", "aucun site {site:?}"),
        )),
    }
}

/// Every field but the site.
fn check(
    form: &Form,
    site: String,
    zone: jiff::tz::TimeZone,
    now_ms: i64,
) -> Result<Checked, ApiError> {
    text("patient_id", &form.patient_id, 64, true)?;
    text("accession_number", &form.accession_number, 16, false)?;
    text("clinical_question", &form.clinical_question, LONG, true)?;
    text(
        "requested_examination",
        &form.requested_examination,
        SHORT,
        true,
    )?;
    text(
        "requesting_physician",
        &form.requesting_physician,
        SHORT,
        true,
    )?;
    text("callback_number", &form.callback_number, 40, true)?;
    text("anticoagulants", &form.anticoagulants, SHORT, false)?;
    text("implants", &form.implants, SHORT, false)?;
    text("history", &form.history, LONG, false)?;
    text("result_to", &form.result_to, SHORT, false)?;
    let study_date = match &form.study_date {
        Some(date) => {
            let valid = date.len() == 8
                && date.bytes().all(|b| b.is_ascii_digit())
                && jiff::civil::Date::strptime("%Y%m%d", date).is_ok();
            if !valid {
                return Err(invalid(
                    "study_date",
                    said!("a date as YYYYMMDD", "une date AAAAMMJJ"),
                ));
            }
            date.clone()
        }
        None => jiff::Timestamp::from_millisecond(now_ms)
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .to_zoned(zone)
            .strftime("%Y%m%d")
            .to_string(),
    };
    let symptom_onset_at = match &form.symptom_onset {
        Some(onset) => {
            let at: jiff::Timestamp = onset.parse().map_err(|_| {
                invalid(
                    "symptom_onset",
                    said!(
                        "a time with its offset, e.g. 2026-11-26T02:10:00+01:00",
                        "une heure avec son décalage, par exemple 2026-11-26T02:10:00+01:00"
                    ),
                )
            })?;
            let ms = at.as_millisecond();
            if ms > now_ms + 5 * 60_000 {
                return Err(invalid(
                    "symptom_onset",
                    said!("in the future", "dans le futur"),
                ));
            }
            Some(ms)
        }
        None => None,
    };
    if let Some(nihss) = form.nihss
        && nihss > 42
    {
        return Err(invalid("nihss", said!("0 to 42", "de 0 à 42")));
    }
    if form.urgency == Urgency::Stroke {
        if symptom_onset_at.is_none() {
            return Err(invalid(
                "symptom_onset",
                said!(
                    "required for a stroke request (the thrombolysis window runs from it)",
                    "obligatoire pour une demande AVC (la fenêtre de thrombolyse en part)"
                ),
            ));
        }
        if form.nihss.is_none() {
            return Err(invalid(
                "nihss",
                said!(
                    "required for a stroke request",
                    "obligatoire pour une demande AVC"
                ),
            ));
        }
    }
    for (field, value, max) in [
        ("creatinine_umol_l", form.creatinine_umol_l, 3_000.0),
        ("egfr", form.egfr, 200.0),
    ] {
        if let Some(v) = value
            && !(v.is_finite() && (0.0..=max).contains(&v))
        {
            return Err(invalid(field, said!("0 to {max}", "de 0 à {max}")));
        }
    }
    Ok(Checked {
        site,
        study_date,
        symptom_onset_at,
    })
}

/// Checks `form` for `site` and completes it (the site, the study date):
/// what validation derives, and the document to store.
pub(crate) fn prepare(
    form: &mut Form,
    site: String,
    zone: jiff::tz::TimeZone,
    now_ms: i64,
) -> Result<(Checked, String), ApiError> {
    let checked = check(form, site, zone, now_ms)?;
    form.site = Some(checked.site.clone());
    form.study_date = Some(checked.study_date.clone());
    let document = serde_json::to_string(form).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((checked, document))
}

/// Files a request form.
///
/// Technicians, clinicians and integrations of the site, and
/// administrators. The form is matched to its study if the images are
/// there, else it waits for them.
#[utoipa::path(
    post,
    path = "/api/forms",
    tag = "forms",
    request_body = Form,
    responses(
        (status = 201, description = "Filed: its id, its study if matched, and the priority it raised", body = FiledForm),
        (status = 409, description = "The study already has a form, or its assignment changed while the form was filed", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn file(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    json: Result<Json<Form>, JsonRejection>,
) -> Result<(StatusCode, Json<FiledForm>), ApiError> {
    let scope = caller.allow(Action::FileForm).await?;
    let Json(mut form) = json.map_err(|e| ApiError::from_json_rejection(&e, EXPECTED))?;
    let record = caller.record("form.file", "form".into());
    let site = site_of(&form, &scope, &|site| router.site_time_zone(site).cloned());
    let (site, zone) = match site {
        Ok(site) => site,
        Err(error) => return Err(caller.not_done(record, Outcome::Refused, error).await),
    };
    let (checked, document) = match prepare(&mut form, site, zone, caller.now()) {
        Ok(prepared) => prepared,
        Err(error) => return Err(caller.not_done(record, Outcome::Failed, error).await),
    };
    let login = caller.principal().user.login.clone();
    let mut record = record;
    record.patient_id = Some(form.patient_id.clone());
    record.detail =
        serde_json::json!({ "urgency": form.urgency, "site": checked.site }).to_string();
    let filed = router
        .file_form(
            &NewForm {
                site: &checked.site,
                patient_id: form.patient_id.trim(),
                accession_number: form.accession_number.trim(),
                study_date: &checked.study_date,
                urgency: form.urgency,
                requested_examination: &form.requested_examination,
                symptom_onset_at: checked.symptom_onset_at,
                form: &document,
                filed_by: &login,
                filed_at: caller.now(),
            },
            &Acting {
                scope: &scope,
                audit: &record,
            },
        )
        .await;
    match filed {
        Ok(filed) => Ok((StatusCode::CREATED, Json(filed))),
        Err(e) => Err(caller
            .not_done(record, Outcome::Failed, crate::assignments::api_error(e))
            .await),
    }
}

/// A form as answered: the stored columns and the form as filed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ShownForm {
    id: i64,
    study_instance_uid: String,
    filed_by: String,
    /// Unix time in milliseconds.
    filed_at: i64,
    /// The thrombolysis window's end (onset + 4 h 30), for a stroke; Unix
    /// time in milliseconds.
    thrombolysis_until: Option<i64>,
    /// The reader's check of the indication, once made.
    indication: Option<IndicationCheck>,
    /// The form as filed (its site and study date completed).
    #[schema(value_type = Form)]
    form: serde_json::Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IndicationCheck {
    pub decision: telerad_store::forms::Indication,
    pub by: Option<String>,
    #[serde(serialize_with = "telerad_store::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<i64>,
    pub note: Option<String>,
}

impl IndicationCheck {
    pub fn of(form: &StoredForm) -> Option<IndicationCheck> {
        form.indication.map(|decision| IndicationCheck {
            decision,
            by: form.indication_by.clone(),
            at: form.indication_at,
            note: form.indication_note.clone(),
        })
    }
}

/// The thrombolysis window after symptom onset (intravenous thrombolysis
/// within 4 h 30: ESO and AHA/ASA guidelines).
pub const THROMBOLYSIS_WINDOW_MS: i64 = (4 * 60 + 30) * 60_000;

/// The request form of a study the caller may read.
#[utoipa::path(
    get,
    path = "/api/studies/{study_uid}/form",
    tag = "forms",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    responses((status = 200, description = "The study's request form", body = ShownForm))
)]
async fn show(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
) -> Result<Json<ShownForm>, ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    let uid = telerad_dicom::uid::validate_uid(&raw_uid)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut record = caller.study_record("form.read", uid, None);
    let shown = match router.form(uid, &scope).await {
        Ok(Some(form)) => {
            // Known here: the record needs no lookup of it.
            record.patient_id = Some(form.patient_id.clone());
            shown(uid, form)
        }
        Ok(None) => Err(ApiError::said(
            ApiError::NotFound,
            said!(
                "study {uid} has no request form (form missing)",
                "l'examen {uid} n'a pas de demande d'examen (sans demande)"
            ),
        )),
        Err(e) => Err(crate::assignments::api_error(e)),
    };
    match shown {
        Ok(shown) => {
            caller.audit(&record).await?;
            Ok(Json(shown))
        }
        Err(error) => Err(caller.not_done(record, Outcome::Failed, error).await),
    }
}

fn shown(uid: &str, form: StoredForm) -> Result<ShownForm, ApiError> {
    let document: serde_json::Value = serde_json::from_str(&form.form)
        .map_err(|e| ApiError::Internal(format!("form {}: {e}", form.id)))?;
    let indication = IndicationCheck::of(&form);
    Ok(ShownForm {
        id: form.id,
        study_instance_uid: uid.to_string(),
        filed_by: form.filed_by,
        filed_at: form.filed_at,
        thrombolysis_until: (form.urgency == Urgency::Stroke)
            .then_some(form.symptom_onset_at)
            .flatten()
            .map(|at| at + THROMBOLYSIS_WINDOW_MS),
        indication,
        form: document,
    })
}
