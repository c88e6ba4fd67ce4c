//! `GET /metrics`: Prometheus text exposition (format 0.0.4), read from the
//! database at scrape time, so that every node tells the same and nothing
//! is lost at a restart: instances received, studies by state, assignments
//! by state, escalations, the forward queue and its failures, notification
//! deliveries, critical results, and over the last 24 hours the assignment
//! latency and the report turnaround.
//!
//! Operators only (a scraper uses an administrator's API token). No
//! patient data is in it, so a scrape is not written to the audit trail:
//! a scraper every 15 s would bury the accesses that matter.

use std::fmt::Write;

use axum::extract::FromRef;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_store::turnaround::{self, Counts, StudyTimes};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const DAY_MS: i64 = 86_400_000;
/// Studies of the last day read for the summaries.
const MAX_STUDIES: i64 = 50_000;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "The metrics", content_type = "text/plain", body = String))
)]
async fn metrics(caller: Caller) -> Result<impl IntoResponse, ApiError> {
    caller.allow(Action::Operate).await?;
    let db = caller.access().database();
    let now = caller.record("metrics.read", "metrics".into()).at;
    let counts = turnaround::counts(db).await?;
    let day = turnaround::completed_between(db, now - DAY_MS, now, MAX_STUDIES).await?;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        render(&counts, &day),
    ))
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn labelled(out: &mut String, name: &str, label: &str, rows: &[(String, i64)]) {
    for (value, count) in rows {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {count}", escape(value));
    }
}

/// Label values escaped as the exposition format asks.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A summary of `values` (milliseconds) in seconds: quantiles, sum, count.
fn summary(out: &mut String, name: &str, labels: &str, mut values: Vec<i64>) {
    values.sort_unstable();
    let sep = if labels.is_empty() { "" } else { "," };
    for q in [0.5, 0.9, 0.99] {
        if values.is_empty() {
            break;
        }
        let _ = writeln!(
            out,
            "{name}{{{labels}{sep}quantile=\"{q}\"}} {}",
            crate::turnaround::percentile(&values, q * 100.0) as f64 / 1000.0
        );
    }
    let sum: i64 = values.iter().sum();
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", sum as f64 / 1000.0);
    let _ = writeln!(out, "{name}_count{braces} {}", values.len());
}

pub fn render(counts: &Counts, day: &[StudyTimes]) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "telerad_instances_received_total",
        "counter",
        "Instances stored and indexed.",
    );
    let _ = writeln!(out, "telerad_instances_received_total {}", counts.instances);
    family(&mut out, "telerad_studies", "gauge", "Studies by state.");
    labelled(
        &mut out,
        "telerad_studies",
        "status",
        &counts.studies_by_status,
    );
    family(
        &mut out,
        "telerad_assignments",
        "gauge",
        "Assignments by state (reported: the final report is signed).",
    );
    labelled(
        &mut out,
        "telerad_assignments",
        "state",
        &counts.assignments_by_state,
    );
    family(
        &mut out,
        "telerad_escalations_total",
        "counter",
        "Studies escalated because nobody acknowledged them in time.",
    );
    let _ = writeln!(out, "telerad_escalations_total {}", counts.escalations);
    family(
        &mut out,
        "telerad_forward_jobs",
        "gauge",
        "Instances to forward to workstations, by state (pending and sending: the queue; dead: failed).",
    );
    labelled(
        &mut out,
        "telerad_forward_jobs",
        "state",
        &counts.forwards_by_state,
    );
    family(
        &mut out,
        "telerad_notification_deliveries",
        "gauge",
        "Webhook calls and e-mails, by state.",
    );
    labelled(
        &mut out,
        "telerad_notification_deliveries",
        "state",
        &counts.deliveries_by_state,
    );
    family(
        &mut out,
        "telerad_critical_results",
        "gauge",
        "Critical results by state.",
    );
    labelled(
        &mut out,
        "telerad_critical_results",
        "state",
        &counts.critical_by_state,
    );

    family(
        &mut out,
        "telerad_assignment_latency_seconds",
        "summary",
        "From complete to assigned, studies completed in the last 24 hours.",
    );
    let latency = day
        .iter()
        .filter_map(|t| t.assigned_at.map(|at| at - t.completed_at))
        .filter(|ms| *ms >= 0)
        .collect();
    summary(&mut out, "telerad_assignment_latency_seconds", "", latency);
    family(
        &mut out,
        "telerad_report_turnaround_seconds",
        "summary",
        "From complete to the signed final report, by priority, studies completed in the last 24 hours.",
    );
    let mut priorities: Vec<&str> = day.iter().map(|t| t.priority.as_str()).collect();
    priorities.sort_unstable();
    priorities.dedup();
    for priority in priorities {
        let values = day
            .iter()
            .filter(|t| t.priority == priority)
            .filter_map(|t| t.final_at.map(|f| f - t.completed_at))
            .filter(|ms| *ms >= 0)
            .collect();
        summary(
            &mut out,
            "telerad_report_turnaround_seconds",
            &format!("priority=\"{}\"", escape(priority)),
            values,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_is_prometheus_text() {
        let counts = Counts {
            instances: 12,
            studies_by_status: vec![("complete".into(), 3), ("receiving".into(), 1)],
            assignments_by_state: vec![("assigned".into(), 2), ("reported".into(), 1)],
            escalations: 1,
            forwards_by_state: vec![("dead".into(), 1)],
            deliveries_by_state: vec![],
            critical_by_state: vec![("open".into(), 1)],
        };
        let day = vec![StudyTimes {
            site: "a".into(),
            priority: "stat".into(),
            radiologist: None,
            form_at: None,
            first_image_at: 0,
            completed_at: 1_000,
            assigned_at: Some(1_250),
            claimed_at: None,
            preliminary_at: None,
            final_at: Some(601_000),
            critical_flagged_at: None,
            critical_communicated_at: None,
        }];
        let text = render(&counts, &day);
        for line in [
            "telerad_instances_received_total 12",
            "telerad_studies{status=\"complete\"} 3",
            "telerad_assignments{state=\"reported\"} 1",
            "telerad_escalations_total 1",
            "telerad_forward_jobs{state=\"dead\"} 1",
            "telerad_assignment_latency_seconds{quantile=\"0.5\"} 0.25",
            "telerad_assignment_latency_seconds_count 1",
            "telerad_report_turnaround_seconds{priority=\"stat\",quantile=\"0.9\"} 600",
            "telerad_report_turnaround_seconds_count{priority=\"stat\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        // Every sample line is NAME[{labels}] VALUE, every family typed.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = l.rsplit_once(' ').expect("name value");
            assert!(value.parse::<f64>().is_ok(), "{l}");
            let bare = name.split('{').next().unwrap_or_default();
            let family = bare.trim_end_matches("_sum").trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {family} "))
                    || text.contains(&format!("# TYPE {bare} ")),
                "{l}"
            );
        }
    }
}
