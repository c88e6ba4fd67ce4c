//! The emergency department's board (`/board`): the site's studies of the
//! last 24 hours, newest first, with how far each has gone (receiving,
//! received, waiting for a radiologist, assigned, being read, preliminary,
//! final), the reader, the time since arrival, and the critical results the
//! site has to acknowledge (acknowledged from the board, through the API).
//! A report issued within the last hour is highlighted.
//!
//! The board reads under the caller's scope, so a clinician never sees
//! another site, and each read is audited with the studies it showed.

use crate::clock::span;
use crate::html;
use crate::lang::PageLang as _;
use crate::lang::Text;
use crate::visitor::{Refusal, Visitor};
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use telerad_access::Action;
use telerad_http::ApiError;
use telerad_router::service::Router as RouterService;
use telerad_store::board::{self, BoardRow, WaitingCritical};

const WINDOW_MS: i64 = 24 * 3600 * 1000;
const NEW_REPORT_MS: i64 = 3600 * 1000;
const MAX_ROWS: i64 = 500;

pub struct Row {
    pub uid: String,
    pub site: String,
    pub patient_name: String,
    pub patient_id: String,
    pub examination: String,
    pub modalities: String,
    pub instance_count: i64,
    pub state: &'static str,
    pub state_class: &'static str,
    pub priority: String,
    pub priority_label: &'static str,
    pub reader: String,
    pub arrived_at: i64,
    pub since_text: String,
    pub report_new: bool,
    pub critical_waiting: i64,
    pub report_readable: bool,
}

pub struct Critical {
    pub id: i64,
    pub uid: String,
    pub patient_name: String,
    pub site: String,
    pub category: i64,
    pub finding: String,
    pub flagged_by: String,
    pub due_at: i64,
    pub due_text: String,
    pub overdue: bool,
    pub escalated: bool,
}

/// Where the study stands, as the emergency physician asks it.
fn state(row: &BoardRow, t: &Text) -> (&'static str, &'static str) {
    match (
        row.report_status.as_deref(),
        row.assignment_state.as_deref(),
    ) {
        (Some("final" | "addendum"), _) => (t.state_final, "final"),
        (Some("preliminary"), _) => (t.state_preliminary, "preliminary"),
        (_, Some("acknowledged")) => (t.state_reading, "reading"),
        (_, Some("assigned")) => (t.state_assigned, "assigned"),
        (_, Some(_)) => (t.state_waiting, "waiting"),
        (_, None) if row.status == "receiving" => (t.state_receiving, "receiving"),
        (_, None) => (t.state_received, "received"),
    }
}

fn row(row: BoardRow, t: &Text, router: &RouterService, now: i64) -> Row {
    let (state, state_class) = state(&row, t);
    let issued = matches!(
        row.report_status.as_deref(),
        Some("preliminary" | "final" | "addendum")
    );
    let priority = row.priority.clone().unwrap_or_default();
    Row {
        state,
        state_class,
        priority_label: if priority.is_empty() {
            ""
        } else {
            t.priority(&priority)
        },
        priority,
        reader: row
            .radiologist_id
            .as_deref()
            .map(|id| router.reader_name(id).unwrap_or(id).to_string())
            .unwrap_or_default(),
        arrived_at: row.first_received_at,
        since_text: span(now - row.first_received_at),
        report_new: issued
            && row
                .report_issued_at
                .is_some_and(|at| now - at < NEW_REPORT_MS),
        report_readable: issued,
        critical_waiting: row.critical_waiting,
        examination: row
            .requested_examination
            .filter(|e| !e.is_empty())
            .unwrap_or(row.study_description),
        modalities: row.modalities.replace('\\', " "),
        instance_count: row.instance_count,
        patient_name: row.patient_name.replace('^', " ").trim().to_string(),
        patient_id: row.patient_id,
        site: row.site,
        uid: row.study_instance_uid,
    }
}

fn critical(c: WaitingCritical, router: &RouterService, now: i64) -> Critical {
    Critical {
        flagged_by: router
            .reader_name(&c.flagged_by)
            .unwrap_or(&c.flagged_by)
            .to_string(),
        due_text: span(c.due_at - now),
        overdue: c.due_at < now,
        escalated: c.state == "escalated",
        id: c.id,
        uid: c.study_instance_uid,
        patient_name: c.patient_name.replace('^', " ").trim().to_string(),
        site: c.site,
        category: c.category,
        finding: c.finding,
        due_at: c.due_at,
    }
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage<'a> {
    now: i64,
    lang: &'static str,
    t: &'static Text,
    csrf: &'a str,
    user_name: &'a str,
    role: &'a str,
    rows: Vec<Row>,
    criticals: Vec<Critical>,
}

#[derive(Template)]
#[template(path = "board_rows.html")]
struct BoardRows {
    t: &'static Text,
    rows: Vec<Row>,
    criticals: Vec<Critical>,
}

async fn read(
    visitor: &Visitor,
    router: &RouterService,
) -> Result<(Vec<Row>, Vec<Critical>), ApiError> {
    let caller = &visitor.caller;
    let scope = caller.allow(Action::ReadStudies).await?;
    let db = caller.access().database();
    let now = caller.now();
    let rows = board::recent(db, &scope, now - WINDOW_MS, MAX_ROWS).await?;
    let criticals = board::waiting_critical(db, &scope).await?;
    let mut record = caller.record("board.read", "board".into());
    record.detail = serde_json::json!({
        "studies": rows.iter().map(|r| r.study_instance_uid.as_str()).collect::<Vec<_>>(),
        "critical_results": criticals.iter().map(|c| c.id).collect::<Vec<_>>(),
    })
    .to_string();
    caller.audit(&record).await?;
    let t = visitor.lang.text();
    Ok((
        rows.into_iter().map(|r| row(r, t, router, now)).collect(),
        criticals
            .into_iter()
            .map(|c| critical(c, router, now))
            .collect(),
    ))
}

pub async fn page(visitor: Visitor, State(router): State<Arc<RouterService>>) -> Response {
    let (rows, criticals) = match read(&visitor, &router).await {
        Ok(read) => read,
        Err(e) => return Refusal::Failed(e, visitor.lang).into_response(),
    };
    let user = &visitor.caller.principal().user;
    html(&BoardPage {
        now: visitor.caller.now(),
        lang: visitor.lang.code(),
        t: visitor.lang.text(),
        csrf: &visitor.csrf,
        user_name: &user.name,
        role: user.role.as_str(),
        rows,
        criticals,
    })
}

pub async fn rows(visitor: Visitor, State(router): State<Arc<RouterService>>) -> Response {
    match read(&visitor, &router).await {
        Ok((rows, criticals)) => html(&BoardRows {
            t: visitor.lang.text(),
            rows,
            criticals,
        }),
        Err(e) => Refusal::Failed(e, visitor.lang).into_response(),
    }
}
