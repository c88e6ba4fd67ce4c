//! Critical results over HTTP: a closed loop (ACR practice parameter on
//! communication of diagnostic imaging findings).
//!
//! - `POST /api/studies/{uid}/critical-results` `{"category": 1|2|3,
//!   "finding"}`: the reader who claimed the study flags a finding; the
//!   site must acknowledge it within the category's delay
//!   (`[critical_results]`), or the router escalates it.
//! - `POST .../critical-results/{id}/acknowledge`: a clinician of the site
//!   acknowledges it in telerad;
//! - `POST .../critical-results/{id}/communicated` `{"to", "role", "means":
//!   "phone"|"in person"}`: or the reader records the call.
//! - `GET .../critical-results`: the loop as it stands, for whoever may read
//!   the study, with the form's callback number and, once closed, the
//!   communication statement the report carries ("Communicated to NAME,
//!   ROLE, on DATE at TIME by MEANS.").

use crate::reports::desk::{self, DeskError};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_http::openapi::ErrorBody;
use telerad_lang::{Lang, said};
use telerad_router::assignment;
use telerad_router::service::Router as RouterService;
use telerad_store::audit::{self, AuditRecord, Outcome};
use telerad_store::critical::{self, CriticalRow, Means, NewCritical, Receipt, State as Loop};
use telerad_store::timers::{self, TimerKind};
use telerad_store::{Scope, StudyId, forms};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest finding, and longest name or role, in characters.
pub const MAX_FINDING_CHARS: usize = 2_000;
pub const MAX_NAME_CHARS: usize = 200;

type Tx = sqlx::Transaction<'static, sqlx::Any>;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<RouterService>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(list, flag))
        .routes(routes!(acknowledge))
        .routes(routes!(communicated))
}

/// How the loop of a critical result was closed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Acknowledgement {
    /// Who was told (the clinician who acknowledged, or the one called).
    pub by: String,
    pub role: String,
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// `telerad`, `phone` or `in person`.
    pub means: String,
    /// The login of the account that recorded it.
    pub recorded_by: String,
}

/// A critical result and where its loop stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CriticalView {
    pub id: i64,
    /// ACR category: 1, 2 or 3.
    pub category: i64,
    pub finding: String,
    pub flagged_by: String,
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub flagged_at: i64,
    /// When the site must have acknowledged it.
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub due_at: i64,
    pub state: Loop,
    /// Not acknowledged, and past its deadline.
    pub overdue: bool,
    #[serde(serialize_with = "telerad_store::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub escalated_at: Option<i64>,
    /// Whom to call: the requester's number from the form.
    pub callback_number: Option<String>,
    pub acknowledgement: Option<Acknowledgement>,
    /// What the report says of it once the loop is closed.
    pub statement: Option<String>,
}

/// "Communicated to Dr Urgences, emergency physician, on 2026-03-18 at
/// 03:25 (Europe/Paris) by phone." in the site's time and in `lang`.
pub fn statement(row: &CriticalRow, zone: &jiff::tz::TimeZone, lang: Lang) -> Option<String> {
    let at = row.acknowledged_at?;
    let local = jiff::Timestamp::from_millisecond(at)
        .ok()?
        .to_zoned(zone.clone());
    let category = row.category;
    let finding = row.finding.trim_end_matches('.');
    let to = row.acknowledged_by.as_deref().unwrap_or("?");
    let role = row.acknowledged_role.as_deref().unwrap_or("?");
    let zone_name = zone.iana_name().unwrap_or("UTC");
    let time = local.strftime("%H:%M");
    Some(match lang {
        Lang::En => {
            let means = match row.means.as_deref() {
                Some("telerad") => "acknowledgement in telerad",
                Some(other) => other,
                None => "an unrecorded means",
            };
            let day = local.strftime("%Y-%m-%d");
            format!(
                "Critical result (ACR category {category}): {finding}. Communicated to {to}, \
                 {role}, on {day} at {time} ({zone_name}) by {means}."
            )
        }
        Lang::Fr => {
            let means = match row.means.as_deref() {
                Some("telerad") => "accusé de réception dans telerad",
                Some("phone") => "téléphone",
                Some("in person") => "de vive voix",
                Some(other) => other,
                None => "un moyen non enregistré",
            };
            let role = match role {
                "emergency physician" => "médecin urgentiste",
                other => other,
            };
            let day = local.strftime("%d/%m/%Y");
            let by = if means == "de vive voix" { "" } else { "par " };
            format!(
                "Résultat critique (catégorie ACR {category}) : {finding}. Communiqué à {to}, \
                 {role}, le {day} à {time} ({zone_name}) {by}{means}."
            )
        }
    })
}

/// The statements of the study's closed loops, for its report.
pub(crate) async fn statements(
    tx: &mut Tx,
    study_id: StudyId,
    zone: &jiff::tz::TimeZone,
    lang: Lang,
) -> Result<Vec<String>, sqlx::Error> {
    Ok(critical::of_study(tx, study_id)
        .await?
        .iter()
        .filter_map(|row| statement(row, zone, lang))
        .collect())
}

fn zone_of(router: &RouterService, site: &str) -> jiff::tz::TimeZone {
    router
        .site_time_zone(site)
        .cloned()
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

use crate::study_uid;

async fn views(
    tx: &mut Tx,
    router: &RouterService,
    study: &telerad_store::study_rows::StudyRef,
    (now, lang): (i64, Lang),
) -> Result<Vec<CriticalView>, sqlx::Error> {
    let zone = zone_of(router, &study.site);
    let callback = forms::of_study(tx, study.id).await?.and_then(|f| {
        serde_json::from_str::<serde_json::Value>(&f.form)
            .ok()
            .and_then(|form| form["callback_number"].as_str().map(str::to_string))
    });
    Ok(critical::of_study(tx, study.id)
        .await?
        .into_iter()
        .map(|row| CriticalView {
            statement: statement(&row, &zone, lang),
            overdue: row.state != Loop::Acknowledged && now > row.due_at,
            acknowledgement: row.acknowledged_at.map(|at| Acknowledgement {
                by: row.acknowledged_by.clone().unwrap_or_default(),
                role: row.acknowledged_role.clone().unwrap_or_default(),
                at,
                means: row.means.clone().unwrap_or_default(),
                recorded_by: row.recorded_by.clone().unwrap_or_default(),
            }),
            callback_number: callback.clone(),
            id: row.id,
            category: row.category,
            finding: row.finding,
            flagged_by: row.flagged_by,
            flagged_at: row.flagged_at,
            due_at: row.due_at,
            state: row.state,
            escalated_at: row.escalated_at,
        })
        .collect())
}

/// Opens the write transaction of a change to the study's loop.
async fn begin(
    caller: &Caller,
    uid: &str,
    scope: &Scope,
) -> Result<(Tx, telerad_store::study_rows::StudyRef), DeskError> {
    let mut tx = caller.access().database().begin_write().await?;
    let study = desk::study_in(&mut tx, uid, scope).await?;
    Ok((tx, study))
}

/// Commits a change with its audit record, and answers the loop.
async fn commit(
    mut tx: Tx,
    router: &RouterService,
    study: &telerad_store::study_rows::StudyRef,
    record: &AuditRecord,
    lang: Option<Lang>,
) -> Result<Vec<CriticalView>, DeskError> {
    audit::append(&mut tx, record).await?;
    let lang = lang.unwrap_or(Lang::En);
    let views = views(&mut tx, router, study, (record.at, lang)).await?;
    tx.commit().await?;
    Ok(views)
}

/// The answer of a change; one not made is audited.
async fn answer(
    caller: &Caller,
    record: AuditRecord,
    result: Result<Vec<CriticalView>, DeskError>,
) -> Result<Vec<CriticalView>, ApiError> {
    match result {
        Ok(views) => Ok(views),
        Err(e) => {
            let outcome = match e {
                DeskError::Corrupt(_) | DeskError::Database(_) => Outcome::Failed,
                _ => Outcome::Refused,
            };
            Err(caller
                .not_done(record, outcome, crate::reports::api_error(e))
                .await)
        }
    }
}

/// The study's critical results: the loop as it stands.
///
/// For whoever may read the study, with the form's callback number and,
/// once closed, the communication statement the report carries.
#[utoipa::path(
    get,
    path = "/api/studies/{study_uid}/critical-results",
    tag = "critical results",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    responses((status = 200, description = "The study's critical results, oldest first", body = Vec<CriticalView>))
)]
async fn list(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
) -> Result<Json<Vec<CriticalView>>, ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    let uid = study_uid(&raw_uid)?;
    let record = caller.study_record("critical.read", uid, None);
    let mut tx = caller.access().database().begin().await?;
    let study = match desk::study_in(&mut tx, uid, &scope).await {
        Ok(study) => study,
        Err(e) => {
            return Err(caller
                .not_done(record, Outcome::Failed, crate::reports::api_error(e))
                .await);
        }
    };
    let at = (caller.now(), caller.lang.unwrap_or(Lang::En));
    let views = views(&mut tx, &router, &study, at).await?;
    tx.rollback().await?;
    caller.audit(&record).await?;
    Ok(Json(views))
}

/// A critical finding to flag.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Flag {
    /// ACR category: 1, 2 or 3; it sets the delay to acknowledge it.
    category: u8,
    /// From 1 to 2,000 characters.
    finding: String,
}

/// Flags a critical result on a study.
///
/// By the radiologist who claimed the study; the site must acknowledge it
/// within its category's delay, or the router escalates it.
#[utoipa::path(
    post,
    path = "/api/studies/{study_uid}/critical-results",
    tag = "critical results",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    request_body = Flag,
    responses(
        (status = 201, description = "Flagged: the study's critical results", body = Vec<CriticalView>),
        (status = 409, description = "The caller is not the study's reader", body = ErrorBody),
    )
)]
async fn flag(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path(raw_uid): Path<String>,
    json: Result<Json<Flag>, JsonRejection>,
) -> Result<(StatusCode, Json<Vec<CriticalView>>), ApiError> {
    let scope = caller.allow(Action::WriteReport).await?;
    let uid = study_uid(&raw_uid)?;
    let Some(radiologist) = caller.principal().user.radiologist_id.clone() else {
        return Err(ApiError::said(
            ApiError::Forbidden,
            said!(
                "only a radiologist's account flags critical results",
                "seul le compte d'un radiologue signale des résultats critiques"
            ),
        ));
    };
    let Json(body) = json.map_err(|e| {
        ApiError::from_json_rejection(&e, "expected {\"category\": 1, \"finding\": \"...\"}")
    })?;
    let delay = router.critical_delay(body.category).ok_or_else(|| {
        let category = &body.category;
        ApiError::said(
            ApiError::BadRequest,
            said!(
                "category: {category} is not an ACR category (1, 2 or 3)",
                "catégorie : {category} n'est pas une catégorie ACR (1, 2 ou 3)"
            ),
        )
    })?;
    let finding = body.finding.trim();
    if finding.is_empty() || finding.chars().count() > MAX_FINDING_CHARS {
        return Err(ApiError::said(
            ApiError::BadRequest,
            said!(
                "finding: from 1 to {MAX_FINDING_CHARS} characters",
                "constat : de 1 à {MAX_FINDING_CHARS} caractères"
            ),
        ));
    }
    let mut record = caller.study_record("critical.flag", uid, None);
    record.detail = serde_json::json!({ "category": body.category }).to_string();
    let now = record.at;
    let due_at = now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 4);
    let result = async {
        let (mut tx, study) = begin(&caller, uid, &scope).await?;
        desk::require_reader(&mut tx, study.id, &radiologist).await?;
        let id = critical::flag(
            &mut tx,
            &NewCritical {
                study_id: study.id,
                category: body.category,
                finding,
                flagged_by: &radiologist,
                due_at,
            },
            now,
        )
        .await?;
        timers::schedule(&mut tx, TimerKind::CriticalResult, id, due_at).await?;
        commit(tx, &router, &study, &record, caller.lang).await
    }
    .await;
    let views = answer(&caller, record, result).await?;
    Ok((StatusCode::CREATED, Json(views)))
}

/// Closes the loop of result `id` of the study.
async fn close(
    tx: &mut Tx,
    study_id: StudyId,
    id: i64,
    receipt: &Receipt<'_>,
) -> Result<(), DeskError> {
    let row = critical::by_id(tx, id)
        .await?
        .filter(|row| row.study_id == study_id)
        .ok_or_else(|| {
            DeskError::NotFound(said!(
                "no critical result {id} on this study",
                "aucun résultat critique {id} sur cet examen"
            ))
        })?;
    if !critical::acknowledge(tx, row.id, receipt).await? {
        return Err(DeskError::Conflict(said!(
            "critical result {id} was acknowledged already",
            "la réception du résultat critique {id} a déjà été accusée"
        )));
    }
    timers::cancel(tx, TimerKind::CriticalResult, row.id).await?;
    assignment::resolve_critical_alerts(tx, study_id, receipt.at).await?;
    Ok(())
}

/// Acknowledges a critical result in telerad, closing its loop.
///
/// By a clinician of the site.
#[utoipa::path(
    post,
    path = "/api/studies/{study_uid}/critical-results/{id}/acknowledge",
    tag = "critical results",
    params(
        ("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("id" = i64, Path, description = "A critical result id", minimum = 1),
    ),
    responses(
        (status = 200, description = "Acknowledged: the study's critical results", body = Vec<CriticalView>),
        (status = 409, description = "The result was acknowledged already", body = ErrorBody),
    )
)]
async fn acknowledge(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path((raw_uid, id)): Path<(String, i64)>,
) -> Result<Json<Vec<CriticalView>>, ApiError> {
    let scope = caller.allow(Action::AcknowledgeCritical).await?;
    let uid = study_uid(&raw_uid)?;
    let record = caller.study_record("critical.acknowledge", uid, None);
    let user = &caller.principal().user;
    let receipt = Receipt {
        by: &user.name,
        role: "emergency physician",
        means: Means::Telerad,
        recorded_by: &user.login,
        at: record.at,
    };
    let result = async {
        let (mut tx, study) = begin(&caller, uid, &scope).await?;
        close(&mut tx, study.id, id, &receipt).await?;
        commit(tx, &router, &study, &record, caller.lang).await
    }
    .await;
    let views = answer(&caller, record, result).await?;
    Ok(Json(views))
}

/// A call that told the site of a critical result.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Call {
    /// Whom the reader told: 1 to 200 characters.
    to: String,
    /// Their role: 1 to 200 characters.
    role: String,
    /// `phone` or `in person` (`telerad` is refused: the site acknowledges
    /// in telerad itself).
    means: Means,
}

/// Records the reader's call to the site about a critical result, closing its loop.
#[utoipa::path(
    post,
    path = "/api/studies/{study_uid}/critical-results/{id}/communicated",
    tag = "critical results",
    params(
        ("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("id" = i64, Path, description = "A critical result id", minimum = 1),
    ),
    request_body = Call,
    responses(
        (status = 200, description = "Recorded: the study's critical results", body = Vec<CriticalView>),
        (status = 409, description = "The caller is not the study's reader, or the result was acknowledged already", body = ErrorBody),
    )
)]
async fn communicated(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    Path((raw_uid, id)): Path<(String, i64)>,
    json: Result<Json<Call>, JsonRejection>,
) -> Result<Json<Vec<CriticalView>>, ApiError> {
    let scope = caller.allow(Action::WriteReport).await?;
    let uid = study_uid(&raw_uid)?;
    let Some(radiologist) = caller.principal().user.radiologist_id.clone() else {
        return Err(ApiError::said(
            ApiError::Forbidden,
            said!(
                "only a radiologist's account records a call",
                "seul le compte d'un radiologue enregistre un appel"
            ),
        ));
    };
    let Json(call) = json.map_err(|e| {
        ApiError::from_json_rejection(
            &e,
            "expected {\"to\": \"name\", \"role\": \"...\", \"means\": \"phone\" or \"in person\"}",
        )
    })?;
    for (field, value) in [("to", &call.to), ("role", &call.role)] {
        let length = value.trim().chars().count();
        if length == 0 || length > MAX_NAME_CHARS {
            return Err(ApiError::said(
                ApiError::BadRequest,
                said!(
                    "{field}: from 1 to {MAX_NAME_CHARS} characters",
                    "{field} : de 1 à {MAX_NAME_CHARS} caractères"
                ),
            ));
        }
    }
    if call.means == Means::Telerad {
        return Err(ApiError::said(
            ApiError::BadRequest,
            said!(
                "means: a call is \"phone\" or \"in person\"; the site acknowledges in telerad itself",
                "moyen : un appel est « phone » (téléphone) ou « in person » (de vive voix) ; le site accuse réception dans telerad même"
            ),
        ));
    }
    let record = caller.study_record("critical.communicated", uid, None);
    let receipt = Receipt {
        by: call.to.trim(),
        role: call.role.trim(),
        means: call.means,
        recorded_by: &caller.principal().user.login,
        at: record.at,
    };
    let result = async {
        let (mut tx, study) = begin(&caller, uid, &scope).await?;
        desk::require_reader(&mut tx, study.id, &radiologist).await?;
        close(&mut tx, study.id, id, &receipt).await?;
        commit(tx, &router, &study, &record, caller.lang).await
    }
    .await;
    let views = answer(&caller, record, result).await?;
    Ok(Json(views))
}
