//! `GET /api/turnaround`: how long each step of the reading took, p50 and
//! p90 per priority, site or radiologist, over a period (the studies
//! completed in it); and the studies past their deadline now. For the
//! people who run the service: operators only.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Query};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_store::turnaround::{self, Overdue, StudyTimes};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Studies read per request: a year of a busy service.
const MAX_STUDIES: i64 = 200_000;
const DEFAULT_DAYS: i64 = 7;
const DAY_MS: i64 = 86_400_000;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new().routes(routes!(figures))
}

/// What the figures are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Priority,
    Site,
    Radiologist,
}

/// How one interval is measured on a study, if both its steps happened.
type Measure = fn(&StudyTimes) -> Option<i64>;

/// The intervals measured, each between two steps of [`StudyTimes`].
pub const INTERVALS: [(&str, Measure); 8] = [
    ("complete_to_assigned", |t| {
        since(Some(t.completed_at), t.assigned_at)
    }),
    ("assigned_to_claimed", |t| {
        since(t.assigned_at, t.claimed_at)
    }),
    ("complete_to_preliminary", |t| {
        since(Some(t.completed_at), t.preliminary_at)
    }),
    ("first_image_to_preliminary", |t| {
        since(Some(t.first_image_at), t.preliminary_at)
    }),
    ("complete_to_final", |t| {
        since(Some(t.completed_at), t.final_at)
    }),
    ("first_image_to_final", |t| {
        since(Some(t.first_image_at), t.final_at)
    }),
    // The request filed before the images came: from the later of the two.
    ("form_to_preliminary", |t| {
        since(t.form_at.map(|f| f.max(t.first_image_at)), t.preliminary_at)
    }),
    ("critical_to_communicated", |t| {
        since(t.critical_flagged_at, t.critical_communicated_at)
    }),
];

fn since(from: Option<i64>, to: Option<i64>) -> Option<i64> {
    let (from, to) = (from?, to?);
    (to >= from).then(|| to - from)
}

/// p50 and p90 of one interval, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Figure {
    pub count: usize,
    pub p50_secs: f64,
    pub p90_secs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Group {
    pub key: String,
    pub studies: usize,
    pub intervals: BTreeMap<&'static str, Figure>,
}

/// Nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The figures of `times`, grouped, groups in key order.
pub fn group(times: &[StudyTimes], by: GroupBy) -> Vec<Group> {
    let mut groups: BTreeMap<String, Vec<&StudyTimes>> = BTreeMap::new();
    for t in times {
        let key = match by {
            GroupBy::Priority => t.priority.clone(),
            GroupBy::Site => t.site.clone(),
            GroupBy::Radiologist => t.radiologist.clone().unwrap_or_else(|| "(nobody)".into()),
        };
        groups.entry(key).or_default().push(t);
    }
    groups
        .into_iter()
        .map(|(key, members)| {
            let intervals = INTERVALS
                .iter()
                .filter_map(|(name, measure)| {
                    let mut values: Vec<i64> = members.iter().filter_map(|t| measure(t)).collect();
                    if values.is_empty() {
                        return None;
                    }
                    values.sort_unstable();
                    let secs = |ms: i64| ms as f64 / 1000.0;
                    Some((
                        *name,
                        Figure {
                            count: values.len(),
                            p50_secs: secs(percentile(&values, 50.0)),
                            p90_secs: secs(percentile(&values, 90.0)),
                        },
                    ))
                })
                .collect();
            Group {
                key,
                studies: members.len(),
                intervals,
            }
        })
        .collect()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FiguresQuery {
    /// Start of the period (RFC 3339); default a week before `to`.
    from: Option<String>,
    /// End of the period (RFC 3339); default now.
    to: Option<String>,
    /// Grouping; default `priority`.
    by: Option<GroupBy>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Figures {
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    from: i64,
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    to: i64,
    by: GroupBy,
    studies: usize,
    /// More studies completed in the period than one answer reads.
    truncated: bool,
    groups: Vec<Group>,
    overdue: Vec<Overdue>,
}

fn instant(text: &str, key: &str) -> Result<i64, ApiError> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "{key} {text:?}: expected an RFC 3339 time such as 2026-11-01T00:00:00Z ({e})"
            ))
        })
}

/// Turnaround p50/p90 of each step over the studies completed in a
/// period, grouped, and the studies past a deadline now.
#[utoipa::path(
    get,
    path = "/api/turnaround",
    tag = "operations",
    params(FiguresQuery),
    responses((status = 200, description = "The figures", body = Figures))
)]
async fn figures(
    caller: Caller,
    query: Result<Query<FiguresQuery>, QueryRejection>,
) -> Result<Json<Figures>, ApiError> {
    caller.allow(Action::Operate).await?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let record = caller.record("turnaround.read", "turnaround".into());
    let now = record.at;
    let to = query
        .to
        .as_deref()
        .map(|t| instant(t, "to"))
        .transpose()?
        .unwrap_or(now);
    let from = query
        .from
        .as_deref()
        .map(|t| instant(t, "from"))
        .transpose()?
        .unwrap_or(to - DEFAULT_DAYS * DAY_MS);
    if from >= to {
        return Err(ApiError::BadRequest("from must be before to".into()));
    }
    let by = query.by.unwrap_or(GroupBy::Priority);
    let db = caller.access().database();
    let mut times = turnaround::completed_between(db, from, to, MAX_STUDIES + 1).await?;
    let truncated = i64::try_from(times.len()).unwrap_or(i64::MAX) > MAX_STUDIES;
    times.truncate(usize::try_from(MAX_STUDIES).unwrap_or(usize::MAX));
    let overdue = turnaround::overdue(db, now, 1_000).await?;
    caller.audit(&record).await?;
    Ok(Json(Figures {
        from,
        to,
        by,
        studies: times.len(),
        truncated,
        groups: group(&times, by),
        overdue,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study(priority: &str, site: &str, complete_to_final_s: i64) -> StudyTimes {
        StudyTimes {
            site: site.into(),
            priority: priority.into(),
            radiologist: Some("dr-a".into()),
            form_at: Some(500),
            first_image_at: 1_000,
            completed_at: 2_000,
            assigned_at: Some(2_500),
            claimed_at: None,
            preliminary_at: Some(3_000),
            final_at: Some(2_000 + complete_to_final_s * 1000),
            critical_flagged_at: None,
            critical_communicated_at: None,
        }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&values, 50.0), 5);
        assert_eq!(percentile(&values, 90.0), 9);
        assert_eq!(percentile(&values, 100.0), 10);
        assert_eq!(percentile(&[7], 90.0), 7);
    }

    #[test]
    fn groups_measure_what_happened_only() {
        let mut times: Vec<StudyTimes> = (1..=10).map(|s| study("stat", "a", s * 60)).collect();
        times.push(study("routine", "b", 3_600));
        let groups = group(&times, GroupBy::Priority);
        assert_eq!(
            groups
                .iter()
                .map(|g| (g.key.as_str(), g.studies))
                .collect::<Vec<_>>(),
            [("routine", 1), ("stat", 10)]
        );
        let stat = &groups[1].intervals;
        assert_eq!(
            stat["complete_to_final"],
            Figure {
                count: 10,
                p50_secs: 300.0,
                p90_secs: 540.0
            }
        );
        assert_eq!(stat["complete_to_assigned"].p50_secs, 0.5);
        // The form came before the images: counted from the first image.
        assert_eq!(stat["form_to_preliminary"].p50_secs, 2.0);
        // Nobody claimed, no critical result: no figure rather than zero.
        assert!(!stat.contains_key("assigned_to_claimed"));
        assert!(!stat.contains_key("critical_to_communicated"));
        let by_site = group(&times, GroupBy::Site);
        assert_eq!(by_site[1].key, "b");
        assert_eq!(by_site[1].intervals["complete_to_final"].p50_secs, 3_600.0);
    }
}
