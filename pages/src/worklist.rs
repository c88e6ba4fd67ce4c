//! The radiologist's worklist (`/worklist`): the worklist API's view under
//! the same filters, most urgent first, each row with its priority colour,
//! the report deadline and for a stroke the thrombolysis window ticking,
//! the form, new images and the report. A radiologist lands on their own
//! studies and the unclaimed STAT and urgent ones of their sites
//! (`mine_or_urgent`); the filters widen it to their whole scope. The rows
//! alone (`/worklist/rows`) are what the page's script fetches again when
//! the event stream says something changed.

use crate::clock::span;
use crate::lang::PageLang as _;
use crate::lang::Text;
use crate::visitor::Visitor;
use crate::{html, url};
use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use telerad_router::service::Router as RouterService;
use telerad_worklist::queue::{self, Filters, Item};

/// A worklist row as the page shows it.
pub struct Row {
    pub uid: String,
    pub site: String,
    pub patient_name: String,
    pub patient_id: String,
    pub examination: String,
    pub modalities: String,
    pub instance_count: i64,
    pub priority: String,
    pub priority_label: &'static str,
    pub reader: String,
    pub due_at: i64,
    pub due_text: String,
    pub overdue: bool,
    pub stroke: Option<StrokeClock>,
    pub form_present: bool,
    pub new_images: bool,
    pub report_label: &'static str,
    pub claimable: bool,
}

pub struct StrokeClock {
    pub until: i64,
    pub left_text: String,
    pub closed: bool,
    pub onset: i64,
    pub since_text: String,
}

fn row(item: Item, t: &Text, now: i64, radiologist: Option<&str>) -> Row {
    let stroke = item.stroke.as_ref().map(|s| StrokeClock {
        until: s.thrombolysis_until,
        left_text: span(s.thrombolysis_left_ms),
        closed: s.thrombolysis_left_ms <= 0,
        onset: s.symptom_onset,
        since_text: span(s.since_onset_ms),
    });
    let due_in = item.report_due - now;
    // The claim's own rules (licence, someone else's claim) are the API's.
    let claimable = radiologist.is_some() && item.state != "acknowledged";
    Row {
        priority_label: t.priority(&item.priority),
        report_label: t.report_status(&item.report_status),
        reader: item.reader.map(|r| r.name).unwrap_or_default(),
        modalities: item.modalities.join(" "),
        due_text: span(due_in),
        overdue: due_in < 0,
        due_at: item.report_due,
        stroke,
        form_present: item.form == "present",
        new_images: item.new_images,
        uid: item.study_instance_uid,
        site: item.site,
        patient_name: item.patient.name.replace('^', " ").trim().to_string(),
        patient_id: item.patient.id,
        examination: item.examination,
        instance_count: item.instance_count,
        priority: item.priority,
        claimable,
    }
}

#[derive(Template)]
#[template(path = "worklist.html")]
struct WorklistPage<'a> {
    now: i64,
    lang: &'static str,
    t: &'static Text,
    csrf: &'a str,
    user_name: &'a str,
    role: &'a str,
    filters: &'a Filters,
    rows: Vec<Row>,
    rows_url: String,
    next_url: Option<String>,
}

impl WorklistPage<'_> {
    /// Whether a select shows `value` as chosen.
    fn chosen(&self, field: &Option<String>, value: &str) -> bool {
        field.as_deref() == Some(value)
    }
}

#[derive(Template)]
#[template(path = "worklist_rows.html")]
struct WorklistRows<'a> {
    t: &'static Text,
    rows: Vec<Row>,
    next_url: Option<&'a str>,
}

/// The query string of `filters` (the cursor left out unless asked).
fn query_of(filters: &Filters, cursor: Option<&str>) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        ("status", &filters.status),
        ("priority", &filters.priority),
        ("site", &filters.site),
        ("subspecialty", &filters.subspecialty),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            pairs.push((name, value.to_string()));
        }
    }
    for (name, on) in [
        ("mine", filters.mine),
        ("mine_or_urgent", filters.mine_or_urgent),
        ("unassigned", filters.unassigned),
        ("escalated", filters.escalated),
        ("form_missing", filters.form_missing),
        ("new_images", filters.new_images),
    ] {
        if on {
            pairs.push((name, "true".into()));
        }
    }
    if let Some(cursor) = cursor {
        pairs.push(("cursor", cursor.to_string()));
    }
    // An empty query is the landing view: a view chosen in the form
    // must not turn into it when the rows are fetched again.
    if pairs.is_empty() {
        pairs.push(("status", "open".into()));
    }
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", url::encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The filters as the page's form sends them: an empty select is no
/// filter.
fn cleaned(mut filters: Filters) -> Filters {
    for value in [
        &mut filters.status,
        &mut filters.priority,
        &mut filters.site,
        &mut filters.subspecialty,
        &mut filters.cursor,
    ] {
        if value.as_deref() == Some("") {
            *value = None;
        }
    }
    filters
}

async fn read(
    visitor: &Visitor,
    router: &RouterService,
    query: Result<Query<Filters>, QueryRejection>,
    landing: bool,
) -> Result<(Filters, Vec<Row>, Option<String>), Response> {
    let t = visitor.lang.text();
    let Query(filters) = query.map_err(|e| {
        crate::plain_page(visitor.lang, StatusCode::BAD_REQUEST, &e.body_text()).into_response()
    })?;
    let mut filters = cleaned(filters);
    let radiologist = visitor.caller.principal().user.radiologist_id.as_deref();
    if landing && radiologist.is_some() {
        filters.mine_or_urgent = true;
    }
    let (items, _, next) = queue::read(&visitor.caller, router, &filters)
        .await
        .map_err(|e| crate::visitor::Refusal::Failed(e, visitor.lang).into_response())?;
    let now = visitor.caller.now();
    let rows = items
        .into_iter()
        .map(|item| row(item, t, now, radiologist))
        .collect();
    let next_url = next.map(|cursor| format!("/worklist?{}", query_of(&filters, Some(&cursor))));
    Ok((filters, rows, next_url))
}

pub async fn page(
    visitor: Visitor,
    State(router): State<Arc<RouterService>>,
    RawQuery(raw): RawQuery,
    query: Result<Query<Filters>, QueryRejection>,
) -> Response {
    let landing = raw.is_none_or(|q| q.is_empty());
    let (filters, rows, next_url) = match read(&visitor, &router, query, landing).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let user = &visitor.caller.principal().user;
    html(&WorklistPage {
        now: visitor.caller.now(),
        lang: visitor.lang.code(),
        t: visitor.lang.text(),
        csrf: &visitor.csrf,
        user_name: &user.name,
        role: user.role.as_str(),
        rows_url: format!(
            "/worklist/rows?{}",
            query_of(&filters, filters.cursor.as_deref())
        ),
        filters: &filters,
        rows,
        next_url,
    })
}

pub async fn rows(
    visitor: Visitor,
    State(router): State<Arc<RouterService>>,
    RawQuery(raw): RawQuery,
    query: Result<Query<Filters>, QueryRejection>,
) -> Response {
    let landing = raw.is_none_or(|q| q.is_empty());
    match read(&visitor, &router, query, landing).await {
        Ok((_, rows, next_url)) => html(&WorklistRows {
            t: visitor.lang.text(),
            rows,
            next_url: next_url.as_deref(),
        }),
        Err(response) => response,
    }
}
