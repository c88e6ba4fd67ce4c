//! The worklist over HTTP: `GET /api/worklist`, the studies to read within
//! the caller's scope, most urgent first (priority, then the report
//! deadline), a page at a time. Filters: `status` (of the report: open by
//! default, unreported, preliminary, signed, all), `priority`, `site`,
//! `subspecialty`, `mine`, `mine_or_urgent`, `unassigned`, `escalated`,
//! `form_missing`, `new_images`. Each item carries what a reader decides on at a glance:
//! the deadline and the time left, for a stroke the time since onset and
//! what is left of the thrombolysis window (4 h 30), whether the form is
//! there, new images, and the report's status.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Query, State};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_http::paging::{self, Page};
use telerad_router::service::{RadiologistRef, Router as RouterService};
use telerad_store::worklist::{self, ReportFilter, WorklistCursor, WorklistQuery, WorklistRow};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Thrombolysis is given within 4 h 30 of symptom onset.
pub const THROMBOLYSIS_WINDOW_MS: i64 = 270 * 60_000;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<RouterService>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new().routes(routes!(list))
}

/// A view of the worklist, as the API and the pages ask for it.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Which reports: `open` (the default: not signed final yet),
    /// `unreported` (no report, or a draft), `preliminary`, `signed`
    /// (final, possibly with addenda) or `all`.
    pub status: Option<String>,
    /// `stat`, `urgent` or `routine`.
    pub priority: Option<String>,
    /// A site name.
    pub site: Option<String>,
    /// A subspecialty: `neuro`, `body`, `chest`, `msk`, `paediatric`,
    /// `breast`, `cardiac`, `interventional` or `general`.
    pub subspecialty: Option<String>,
    /// Only the studies assigned to the caller; for a radiologist's
    /// account only.
    #[serde(default)]
    pub mine: bool,
    /// The studies assigned to the caller and the unclaimed STAT and
    /// urgent ones of their sites (unassigned, or escalated and not yet
    /// acknowledged): a reader's landing view; for a radiologist's
    /// account only.
    #[serde(default)]
    pub mine_or_urgent: bool,
    /// Only the studies nobody is assigned.
    #[serde(default)]
    pub unassigned: bool,
    /// Only the escalated studies.
    #[serde(default)]
    pub escalated: bool,
    /// Only the studies without a request form.
    #[serde(default)]
    pub form_missing: bool,
    /// Only the studies that received images after they were assigned.
    #[serde(default)]
    pub new_images: bool,
    /// Studies per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The patient, as the study names them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Patient {
    pub name: String,
    pub id: String,
}

/// A stroke's clock: since symptom onset, and the thrombolysis window.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stroke {
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub symptom_onset: i64,
    pub since_onset_ms: i64,
    /// Onset plus 4 h 30.
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub thrombolysis_until: i64,
    /// Negative once the window has closed.
    pub thrombolysis_left_ms: i64,
}

/// A study on the worklist.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WorklistItem)]
pub struct Item {
    pub study_instance_uid: String,
    pub site: String,
    pub patient: Patient,
    /// The requested examination, else the study's description.
    pub examination: String,
    pub modalities: Vec<String>,
    pub instance_count: i64,
    /// `stat`, `urgent` or `routine`.
    pub priority: String,
    pub subspecialty: String,
    /// The assignment: assigned, acknowledged or unassigned.
    pub state: String,
    pub reader: Option<RadiologistRef>,
    pub escalation_level: i64,
    /// An assigned study must be acknowledged by then, or it escalates.
    #[serde(serialize_with = "telerad_store::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acknowledge_by: Option<i64>,
    /// The preliminary report is due then (the SLA of the priority).
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub report_due: i64,
    /// Negative once overdue.
    pub report_due_in_ms: i64,
    pub stroke: Option<Stroke>,
    /// `present` or `missing`.
    pub form: &'static str,
    /// The form's urgency: `stroke`, `trauma`, `stat`, `urgent` or
    /// `routine`; `null` without a form.
    pub urgency: Option<String>,
    /// Images arrived after the study was assigned.
    pub new_images: bool,
    /// `none`, `draft`, `preliminary`, `final` or `addendum`.
    pub report_status: String,
}

/// The report's status as `viewer` may know it: a draft is its author's
/// business, to others there is no report yet.
fn report_status(row: &WorklistRow, viewer: Option<&str>) -> String {
    match row.report_status.as_deref() {
        None => "none".into(),
        Some("draft") if row.draft_author.as_deref() != viewer || viewer.is_none() => "none".into(),
        Some(status) => status.to_string(),
    }
}

fn item(row: WorklistRow, router: &RouterService, viewer: Option<&str>, now: i64) -> Item {
    let report_status = report_status(&row, viewer);
    let stroke = row
        .symptom_onset_at
        .filter(|_| row.urgency.as_deref() == Some("stroke"))
        .map(|onset| Stroke {
            symptom_onset: onset,
            since_onset_ms: now - onset,
            thrombolysis_until: onset + THROMBOLYSIS_WINDOW_MS,
            thrombolysis_left_ms: onset + THROMBOLYSIS_WINDOW_MS - now,
        });
    Item {
        reader: row.radiologist_id.map(|id| RadiologistRef {
            name: router.reader_name(&id).unwrap_or_default().to_string(),
            id,
        }),
        examination: row
            .requested_examination
            .filter(|e| !e.is_empty())
            .unwrap_or(row.study_description),
        modalities: row
            .modalities
            .split('\\')
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
        patient: Patient {
            name: row.patient_name,
            id: row.patient_id,
        },
        study_instance_uid: row.study_instance_uid,
        site: row.site,
        instance_count: row.instance_count,
        priority: row.priority,
        subspecialty: row.subspecialty,
        state: row.state,
        escalation_level: row.escalation_level,
        acknowledge_by: row.acknowledge_by,
        report_due: row.preliminary_by,
        report_due_in_ms: row.preliminary_by - now,
        stroke,
        form: if row.form_id.is_some() {
            "present"
        } else {
            "missing"
        },
        urgency: row.urgency,
        new_images: row.new_images,
        report_status,
    }
}

/// The worklist: the studies to read, most urgent first.
///
/// Within the caller's scope, by priority then report deadline, a page at
/// a time; each item carries the deadline and the time left, a stroke's
/// clock, the request form, new images and the report's status.
#[utoipa::path(
    get,
    path = "/api/worklist",
    tag = "worklist",
    params(Filters),
    responses((status = 200, description = "One page of the worklist", body = Page<Item>))
)]
async fn list(
    caller: Caller,
    State(router): State<Arc<RouterService>>,
    query: Result<Query<Filters>, QueryRejection>,
) -> Result<Json<Page<Item>>, ApiError> {
    // Authorised before the query is read: a refused caller learns
    // nothing from a 400.
    caller.allow(Action::ReadStudies).await?;
    let Query(filters) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (items, limit, next) = read(&caller, &router, &filters).await?;
    let yes = |b: bool| b.then_some("true");
    Ok(Json(Page::new(
        items,
        "/api/worklist",
        &[
            ("status", filters.status.as_deref()),
            ("priority", filters.priority.as_deref()),
            ("site", filters.site.as_deref()),
            ("subspecialty", filters.subspecialty.as_deref()),
            ("mine", yes(filters.mine)),
            ("mine_or_urgent", yes(filters.mine_or_urgent)),
            ("unassigned", yes(filters.unassigned)),
            ("escalated", yes(filters.escalated)),
            ("form_missing", yes(filters.form_missing)),
            ("new_images", yes(filters.new_images)),
        ],
        limit,
        next,
    )))
}

/// One page of the worklist for `caller`, audited: its items, the page
/// size and the cursor of the next page.
pub async fn read(
    caller: &Caller,
    router: &RouterService,
    filters: &Filters,
) -> Result<(Vec<Item>, i64, Option<String>), ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    let reports = match filters.status.as_deref() {
        None => ReportFilter::Open,
        Some(text) => ReportFilter::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "status {text:?}: expected one of {}",
                ReportFilter::NAMES
            ))
        })?,
    };
    if let Some(p) = filters
        .priority
        .as_deref()
        .filter(|p| !["stat", "urgent", "routine"].contains(p))
    {
        return Err(ApiError::BadRequest(format!(
            "priority {p:?}: expected stat, urgent or routine"
        )));
    }
    let own = |asked: bool, name: &str| match (asked, &caller.principal().user.radiologist_id) {
        (false, _) => Ok(None),
        (true, Some(id)) => Ok(Some(id.clone())),
        (true, None) => Err(ApiError::BadRequest(format!(
            "{name}: only a radiologist's account has studies of its own"
        ))),
    };
    let reader = own(filters.mine, "mine")?;
    let reader_or_urgent = own(filters.mine_or_urgent, "mine_or_urgent")?;
    let limit = paging::limit(filters.limit)?;
    let after = match filters.cursor.as_deref() {
        Some(text) => Some(WorklistCursor::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "cursor {text:?}: expected the next_cursor of a previous page"
            ))
        })?),
        None => None,
    };
    let query = WorklistQuery {
        reports,
        priority: filters.priority.clone(),
        site: filters.site.clone(),
        subspecialty: filters.subspecialty.clone(),
        reader,
        reader_or_urgent,
        unassigned: filters.unassigned,
        escalated: filters.escalated,
        form_missing: filters.form_missing,
        new_images: filters.new_images,
        after,
        limit,
    };
    let page = worklist::page(caller.access().database(), &query, &scope).await?;
    let mut record = caller.record("worklist.read", "worklist".into());
    record.detail = serde_json::json!({
        "studies": page.rows.iter().map(|r| r.study_instance_uid.as_str()).collect::<Vec<_>>(),
    })
    .to_string();
    caller.audit(&record).await?;
    let now = caller.now();
    let viewer = caller.principal().user.radiologist_id.as_deref();
    let items = page
        .rows
        .into_iter()
        .map(|row| item(row, router, viewer, now))
        .collect();
    Ok((items, limit, page.next.map(|c| c.to_string())))
}
