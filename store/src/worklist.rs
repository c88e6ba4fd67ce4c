//! The reading worklist: the studies the router classified, with their
//! assignment, request form and report, most urgent first (priority, then
//! the report deadline), a page at a time.
//!
//! Pages are keyed on `(priority rank, deadline, study id)`, so a page
//! costs the same however deep it is. Filters left out match everything,
//! so that one statement serves every combination and its plan is reused.
//! The statement starts from the assignments (`CROSS JOIN` is SQLite's way
//! of fixing the join order; PostgreSQL plans it as any join): the open
//! ones are few and indexed, where a site's studies are all it ever had.

use crate::flag::Flag;
use crate::scope::Scope;
use sqlx::FromRow;

/// Which reports a view lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReportFilter {
    /// Still to be signed: no report, a draft or a preliminary.
    #[default]
    Open,
    /// Nothing issued yet (no report, or a draft).
    Unreported,
    Preliminary,
    /// Final, possibly with addenda.
    Signed,
    All,
}

impl ReportFilter {
    pub const NAMES: &'static str = "open, unreported, preliminary, signed, all";

    pub fn parse(text: &str) -> Option<ReportFilter> {
        Some(match text {
            "open" => ReportFilter::Open,
            "unreported" => ReportFilter::Unreported,
            "preliminary" => ReportFilter::Preliminary,
            "signed" => ReportFilter::Signed,
            "all" => ReportFilter::All,
            _ => return None,
        })
    }

    /// A study's final report sets `assignments.reported_at` in the
    /// transaction that signs it: "still to sign" is that column unset,
    /// which the partial index `assignments_open` serves.
    fn condition(self) -> &'static str {
        match self {
            ReportFilter::Open => "a.reported_at IS NULL",
            ReportFilter::Unreported => {
                "a.reported_at IS NULL AND (r.status IS NULL OR r.status = 'draft')"
            }
            ReportFilter::Preliminary => "a.reported_at IS NULL AND r.status = 'preliminary'",
            ReportFilter::Signed => "a.reported_at IS NOT NULL",
            ReportFilter::All => "1 = 1",
        }
    }
}

/// Where a page starts: after this (rank, deadline, study id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorklistCursor {
    pub rank: i64,
    pub deadline: i64,
    pub id: i64,
}

impl WorklistCursor {
    /// The text form used in URLs: `RANK.DEADLINE.ID`.
    pub fn parse(text: &str) -> Option<WorklistCursor> {
        let mut parts = text.split('.');
        let cursor = WorklistCursor {
            rank: parts.next()?.parse().ok().filter(|r| (0..=2).contains(r))?,
            deadline: parts.next()?.parse().ok()?,
            id: parts.next()?.parse().ok().filter(|id| *id > 0)?,
        };
        parts.next().is_none().then_some(cursor)
    }
}

impl std::fmt::Display for WorklistCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.rank, self.deadline, self.id)
    }
}

/// A view of the worklist; `None` and `false` filter nothing.
#[derive(Debug, Clone, Default)]
pub struct WorklistQuery {
    pub reports: ReportFilter,
    pub priority: Option<String>,
    pub site: Option<String>,
    pub subspecialty: Option<String>,
    /// Only this radiologist's studies ("mine").
    pub reader: Option<String>,
    /// This radiologist's studies and the unclaimed STAT and urgent ones
    /// (unassigned, or escalated and not acknowledged): a reader's
    /// landing view.
    pub reader_or_urgent: Option<String>,
    pub unassigned: bool,
    /// Only studies escalated at least once and not yet acknowledged.
    pub escalated: bool,
    pub form_missing: bool,
    pub new_images: bool,
    pub after: Option<WorklistCursor>,
    pub limit: i64,
}

/// One line of the worklist.
#[derive(Debug, Clone, FromRow)]
pub struct WorklistRow {
    pub id: i64,
    pub study_instance_uid: String,
    pub site: String,
    pub patient_name: String,
    pub patient_id: String,
    pub study_description: String,
    pub modalities: String,
    pub instance_count: i64,
    pub completed_at: Option<i64>,
    pub state: String,
    pub radiologist_id: Option<String>,
    pub priority: String,
    pub subspecialty: String,
    pub acknowledge_by: Option<i64>,
    pub preliminary_by: i64,
    pub acknowledged_at: Option<i64>,
    pub escalation_level: i64,
    #[sqlx(try_from = "Flag")]
    pub new_images: bool,
    pub form_id: Option<i64>,
    pub urgency: Option<String>,
    pub requested_examination: Option<String>,
    pub symptom_onset_at: Option<i64>,
    pub report_status: Option<String>,
    /// Whose working copy the report holds, if any.
    pub draft_author: Option<String>,
    pub rank: i64,
}

#[derive(Debug, Clone)]
pub struct WorklistPage {
    pub rows: Vec<WorklistRow>,
    pub next: Option<WorklistCursor>,
}

/// The priority's rank, as the index `assignments_open` (migration 0017)
/// holds it: the same expression, or the index is not used for the order.
const RANK: &str = "CASE a.priority WHEN 'stat' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END";

/// A statement's parameter value.
enum Arg {
    Text(String),
    Number(i64),
}

/// The conditions of a worklist statement, and its parameters in order.
#[derive(Default)]
struct Filters {
    conditions: Vec<String>,
    args: Vec<Arg>,
}

impl Filters {
    fn push(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    /// A new parameter: its placeholder.
    fn text(&mut self, value: &str) -> String {
        self.args.push(Arg::Text(value.to_string()));
        format!("${}", self.args.len())
    }

    fn number(&mut self, value: i64) -> String {
        self.args.push(Arg::Number(value));
        format!("${}", self.args.len())
    }
}

/// One page of the worklist within `scope`.
pub async fn page(
    db: &crate::Database,
    query: &WorklistQuery,
    scope: &Scope,
) -> Result<WorklistPage, sqlx::Error> {
    let limit = query.limit.max(1);
    let after = query.after.unwrap_or(WorklistCursor {
        rank: -1,
        deadline: i64::MIN,
        id: 0,
    });
    // Only the filters in use are written into the statement: a clause
    // such as `($1 = '' OR s.site = $1)` makes PostgreSQL's generic plan
    // (used after five executions of a prepared statement) expect about
    // one row and sort every open assignment, instead of walking
    // `assignments_open` in order and stopping at the page's end (3.3 ms
    // against 0.65 ms for a site's view of 2,000 open studies).
    let mut filters = Filters::default();
    if let Some(priority) = &query.priority {
        let p = filters.text(priority);
        filters.push(format!("a.priority = {p}"));
    }
    if let Some(site) = &query.site {
        let p = filters.text(site);
        filters.push(format!("s.site = {p}"));
    }
    if let Some(subspecialty) = &query.subspecialty {
        let p = filters.text(subspecialty);
        filters.push(format!("a.subspecialty = {p}"));
    }
    if let Some(reader) = &query.reader {
        let p = filters.text(reader);
        filters.push(format!("a.radiologist_id = {p}"));
    }
    if let Some(reader) = &query.reader_or_urgent {
        let p = filters.text(reader);
        filters.push(format!(
            "(a.radiologist_id = {p} OR (a.priority IN ('stat', 'urgent') \
             AND (a.state = 'unassigned' OR (a.escalation_level > 0 AND a.state <> 'acknowledged'))))"
        ));
    }
    if query.unassigned {
        filters.push("a.state = 'unassigned'".into());
    }
    if query.escalated {
        filters.push("a.escalation_level > 0 AND a.state <> 'acknowledged'".into());
    }
    if query.form_missing {
        filters.push("f.id IS NULL".into());
    }
    if query.new_images {
        filters.push("a.new_images = TRUE".into());
    }
    let (rank, deadline, id) = (
        filters.number(after.rank),
        filters.number(after.deadline),
        filters.number(after.id),
    );
    filters.push(format!(
        "({RANK}, a.preliminary_by, a.study_id) > ({rank}, {deadline}, {id})"
    ));
    let limit_param = filters.number(limit.saturating_add(1));
    let first_scope_param = filters.args.len() + 1;
    let sql = format!(
        "SELECT s.id, s.study_instance_uid, s.site, s.patient_name, s.patient_id, \
         s.study_description, s.modalities, s.instance_count, s.completed_at, a.state, \
         a.radiologist_id, a.priority, a.subspecialty, a.acknowledge_by, a.preliminary_by, \
         a.acknowledged_at, a.escalation_level, a.new_images, f.id AS form_id, f.urgency, \
         f.requested_examination, f.symptom_onset_at, r.status AS report_status, \
         r.draft_author, {RANK} AS rank \
         FROM assignments a CROSS JOIN studies s \
         LEFT JOIN request_forms f ON f.study_id = s.id \
         LEFT JOIN reports r ON r.study_id = s.id \
         WHERE s.id = a.study_id AND {reports} AND {conditions} AND {scope} \
         ORDER BY {RANK}, a.preliminary_by, a.study_id LIMIT {limit_param}",
        reports = query.reports.condition(),
        conditions = filters.conditions.join(" AND "),
        scope = scope.condition_with_assignment("s", "a", first_scope_param),
    );
    let mut select = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for arg in filters.args {
        select = match arg {
            Arg::Text(text) => select.bind(text),
            Arg::Number(number) => select.bind(number),
        };
    }
    for value in scope.values() {
        select = select.bind(value);
    }
    let mut tx = db.begin().await?;
    let mut rows: Vec<WorklistRow> = select.fetch_all(&mut *tx).await?;
    tx.rollback().await?;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = rows.last().filter(|_| more).map(|row| WorklistCursor {
        rank: row.rank,
        deadline: row.preliminary_by,
        id: row.id,
    });
    Ok(WorklistPage { rows, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_reads_back_what_it_writes() {
        let cursor = WorklistCursor {
            rank: 1,
            deadline: 1_764_115_200_123,
            id: 42,
        };
        assert_eq!(WorklistCursor::parse(&cursor.to_string()), Some(cursor));
        for text in ["", "1.2", "3.1.1", "a.1.1", "0.1.0", "0.1.2.3", "0..1"] {
            assert_eq!(WorklistCursor::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn every_filter_name_parses() {
        for name in ReportFilter::NAMES.split(", ") {
            assert!(ReportFilter::parse(name).is_some(), "{name}");
        }
        assert_eq!(ReportFilter::parse("final"), None);
    }
}
