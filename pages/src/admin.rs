//! Administration (`/admin`): who is on duty now and why, the rota's next
//! seven days as a calendar in the rota's zone (a night that changes the
//! clocks shows its 23 or 25 hours), the accounts (created through
//! `POST /api/users` by the page's script, the generated password shown
//! once), the forwards that gave up (retried through the API), and the
//! audit trail searched by user, study or patient. Each part asks the
//! policy for its own action and is audited as its API is.

use crate::html;
use crate::lang::PageLang as _;
use crate::lang::Text;
use crate::visitor::{Refusal, Visitor};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use std::sync::Arc;
use telerad_access::Action;
use telerad_http::ApiError;
use telerad_router::rota::{DutySource, Rota};
use telerad_router::service::Router as RouterService;
use telerad_store::accounts::{self, User};
use telerad_store::audit::{AuditQuery, StoredRecord};
use telerad_store::outbox::{ForwardJob, Outbox};

pub struct OnDuty {
    pub name: String,
    pub role: &'static str,
    pub subspecialty: String,
    pub until: String,
    pub why: String,
}

/// Where a duty comes from, in the page's language, with the
/// configuration keys an administrator edits.
fn why(source: &DutySource, t: &Text, router: &RouterService) -> String {
    let day = |weekday: jiff::civil::Weekday| {
        t.weekdays[usize::from(weekday.to_monday_zero_offset().unsigned_abs())]
    };
    let a = &t.admin;
    match source {
        DutySource::Weekly {
            weekday,
            times,
            key,
        } => {
            format!("{} {} {times} ({key})", a.weekly_shift, day(*weekday))
        }
        DutySource::Swapped {
            weekday,
            times,
            key,
            of,
            period,
            swap_key,
        } => format!(
            "{} {} {times} ({key}) {} {}, {} {period} ({swap_key})",
            a.weekly_shift,
            day(*weekday),
            a.shift_of,
            router.name_of(of),
            a.taken_by_swap
        ),
        DutySource::Extra { period, key } => format!("{} {period} ({key})", a.extra_duty),
    }
}

pub struct Block {
    pub from: String,
    pub to: String,
    pub who: String,
}

/// One interval of one priority's turnaround: p50 and p90, with bar
/// lengths (of 300) against the longest p90 shown.
pub struct Interval {
    pub group: String,
    pub name: &'static str,
    pub count: usize,
    pub p50: String,
    pub p90: String,
    pub p50_bar: u32,
    pub p90_bar: u32,
}

/// The turnaround of the last seven days by priority, as
/// `GET /api/turnaround` computes it.
fn intervals(times: &[telerad_store::turnaround::StudyTimes]) -> Vec<Interval> {
    use telerad_operations::turnaround::{GroupBy, group};
    let groups = group(times, GroupBy::Priority);
    let longest = groups
        .iter()
        .flat_map(|g| g.intervals.values())
        .map(|f| f.p90_secs)
        .fold(1.0_f64, f64::max);
    let bar = |secs: f64| (secs / longest * 300.0).round().clamp(1.0, 300.0) as u32;
    let span = |secs: f64| crate::clock::span((secs * 1000.0) as i64);
    groups
        .iter()
        .flat_map(|g| {
            g.intervals.iter().map(move |(name, f)| Interval {
                group: g.key.clone(),
                name,
                count: f.count,
                p50: span(f.p50_secs),
                p90: span(f.p90_secs),
                p50_bar: bar(f.p50_secs),
                p90_bar: bar(f.p90_secs),
            })
        })
        .collect()
}

pub struct Day {
    pub label: String,
    pub hours: i64,
    pub blocks: Vec<Block>,
}

/// The rota's day of `date`, in 30-minute steps, merged into blocks of
/// the same people on duty.
fn day(
    rota: &Rota,
    zone: &TimeZone,
    router: &RouterService,
    date: jiff::civil::Date,
    t: &Text,
) -> Option<Day> {
    let start = date.to_zoned(zone.clone()).ok()?.timestamp();
    let end = date
        .tomorrow()
        .ok()?
        .to_zoned(zone.clone())
        .ok()?
        .timestamp();
    let step = SignedDuration::from_mins(30);
    let local = |at: Timestamp| at.to_zoned(zone.clone()).strftime("%H:%M").to_string();
    let mut blocks: Vec<(Timestamp, Timestamp, String)> = Vec::new();
    let mut at = start;
    while at < end {
        let mut who: Vec<String> = rota
            .on_duty(at)
            .into_iter()
            .map(|d| {
                format!(
                    "{} ({} {})",
                    router.name_of(&d.radiologist_id),
                    t.admin.role(d.role.as_str()),
                    t.subspecialty(&d.subspecialty)
                )
            })
            .collect();
        who.sort();
        who.dedup();
        let who = who.join(", ");
        let next = at.checked_add(step).ok()?.min(end);
        match blocks.last_mut() {
            Some(last) if last.2 == who => last.1 = next,
            _ => blocks.push((at, next, who)),
        }
        at = next;
    }
    let weekday = t.weekdays[usize::from(date.weekday().to_monday_zero_offset().unsigned_abs())];
    Some(Day {
        label: format!("{weekday} {}", date.strftime("%d/%m")),
        hours: (end.as_second() - start.as_second()) / 3600,
        blocks: blocks
            .into_iter()
            .filter(|(_, _, who)| !who.is_empty())
            .map(|(from, to, who)| Block {
                from: local(from),
                to: local(to),
                who,
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage<'a> {
    now: i64,
    lang: &'static str,
    t: &'static Text,
    csrf: &'a str,
    user_name: &'a str,
    role: &'a str,
    zone: String,
    time_zone: TimeZone,
    on_duty: Vec<OnDuty>,
    week: Vec<Day>,
    users: Vec<User>,
    dead: Vec<ForwardJob>,
    dead_deliveries: Vec<telerad_store::deliveries::Delivery>,
    audit: Vec<StoredRecord>,
    search: AuditSearch,
    turnaround: Vec<Interval>,
    health: Vec<(String, i64)>,
    sites: &'a [crate::SiteSummary],
}

impl AdminPage<'_> {
    fn when(&self, ms: &i64) -> String {
        Timestamp::from_millisecond(*ms)
            .map(|at| {
                at.to_zoned(self.time_zone.clone())
                    .strftime(self.t.admin.time_format)
                    .to_string()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditSearch {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub study: String,
    #[serde(default)]
    pub patient: String,
}

fn some(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

pub async fn page(
    visitor: Visitor,
    State(router): State<Arc<RouterService>>,
    State(outbox): State<Arc<Outbox>>,
    State(settings): State<Arc<crate::Settings>>,
    search: Result<Query<AuditSearch>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let search = search.map(|Query(s)| s).unwrap_or_default();
    match render(&visitor, &router, &outbox, &settings.sites, search).await {
        Ok(response) => response,
        Err(e) => Refusal::Failed(e, visitor.lang).into_response(),
    }
}

async fn render<'a>(
    visitor: &'a Visitor,
    router: &RouterService,
    outbox: &Outbox,
    sites: &'a [crate::SiteSummary],
    search: AuditSearch,
) -> Result<Response, ApiError> {
    let caller = &visitor.caller;
    let t = visitor.lang.text();
    caller.allow(Action::ManageUsers).await?;
    let db = caller.access().database();
    let users = accounts::list_users(db).await?;
    caller
        .audit(&caller.record("user.list", "users".into()))
        .await?;
    caller.allow(Action::Operate).await?;
    let dead = outbox
        .page(Some("dead"), None, 100)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .jobs;
    caller
        .audit(&caller.record("forward.list", "forwards".into()))
        .await?;
    let dead_deliveries = telerad_store::deliveries::list(db, Some("dead"), None, 100).await?;
    caller
        .audit(&caller.record("delivery.list", "deliveries".into()))
        .await?;
    caller.allow(Action::ReadAudit).await?;
    let query = AuditQuery {
        actor: some(&search.user),
        study_uid: some(&search.study),
        patient_id: some(&search.patient),
        from: None,
        to: None,
        before: None,
        limit: 50,
    };
    let (records, _) = caller.audit_trail(&query).await?;
    let mut record = caller.record("audit.read", "audit".into());
    record.detail = serde_json::json!({
        "user": query.actor, "study": query.study_uid, "patient": query.patient_id, "format": "page",
    })
    .to_string();
    caller.audit(&record).await?;

    let now = caller.now();
    let record = caller.record("turnaround.read", "turnaround".into());
    let times =
        telerad_store::turnaround::completed_between(db, now - 7 * 24 * 3600 * 1000, now, 10_000)
            .await?;
    caller.audit(&record).await?;
    let turnaround = intervals(&times);
    let counts = telerad_store::turnaround::counts(db).await?;
    let a = t.admin;
    let mut health = vec![(a.counter("instances").to_string(), counts.instances)];
    for (what, rows) in [
        ("studies", &counts.studies_by_status),
        ("assignments", &counts.assignments_by_state),
        ("forwards", &counts.forwards_by_state),
        ("deliveries", &counts.deliveries_by_state),
        ("critical results", &counts.critical_by_state),
    ] {
        health.extend(
            rows.iter()
                .map(|(state, n)| (format!("{} : {}", a.counter(what), a.state(state)), *n)),
        );
    }
    health.push((a.counter("escalations").to_string(), counts.escalations));
    let (rota, zone) = router.rota();
    let now_at = Timestamp::from_millisecond(now).map_err(|e| ApiError::Internal(e.to_string()))?;
    let local = |at: Timestamp| {
        at.to_zoned(zone.clone())
            .strftime("%d/%m %H:%M")
            .to_string()
    };
    let on_duty = rota
        .on_duty(now_at)
        .into_iter()
        .map(|d| OnDuty {
            name: router.name_of(&d.radiologist_id).to_string(),
            role: t.admin.role(d.role.as_str()),
            subspecialty: t.subspecialty(&d.subspecialty).to_string(),
            until: local(d.ends),
            why: why(&d.source, t, router),
        })
        .collect();
    let today = now_at.to_zoned(zone.clone()).date();
    let week = (0..7)
        .filter_map(|n| today.checked_add(jiff::Span::new().days(n)).ok())
        .filter_map(|date| day(rota, zone, router, date, t))
        .collect();
    let user = &caller.principal().user;
    Ok(html(&AdminPage {
        now,
        lang: visitor.lang.code(),
        t,
        csrf: &visitor.csrf,
        user_name: &user.name,
        role: user.role.as_str(),
        zone: zone.iana_name().unwrap_or("UTC").to_string(),
        time_zone: zone.clone(),
        on_duty,
        week,
        users,
        dead,
        dead_deliveries,
        audit: records,
        search,
        turnaround,
        health,
        sites,
    }))
}
