//! The study list one page at a time, newest activity first, so that an
//! API never cuts a long list silently: each page says where the next one
//! starts.
//!
//! Pages are keyed on `(last_received_at, id)` rather than an offset, so a
//! page costs the same however deep it is. A study that receives an image
//! while someone pages moves to the top: it is then seen on an earlier page
//! (or twice), never lost from one the reader has yet to fetch.

use sqlx::FromRow;

use crate::index::{StudyIndex, StudySummary};
use crate::scope::Scope;

/// Where a page starts: after the study with this activity time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StudyCursor {
    pub last_received_at: i64,
    pub id: i64,
}

impl StudyCursor {
    /// The text form used in URLs: `LAST_RECEIVED_AT.ID`.
    pub fn parse(text: &str) -> Option<StudyCursor> {
        let (at, id) = text.split_once('.')?;
        Some(StudyCursor {
            last_received_at: at.parse().ok()?,
            id: id.parse().ok().filter(|id| *id > 0)?,
        })
    }
}

impl std::fmt::Display for StudyCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.last_received_at, self.id)
    }
}

/// Which studies, and how many per page.
#[derive(Debug, Clone, Default)]
pub struct StudyPageQuery {
    pub status: Option<String>,
    pub site: Option<String>,
    pub after: Option<StudyCursor>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct StudyPage {
    pub studies: Vec<StudySummary>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<StudyCursor>,
}

#[derive(FromRow)]
struct PageRow {
    id: i64,
    #[sqlx(flatten)]
    study: StudySummary,
}

// The columns of `StudySummary`, as `index.rs` reads them.
const COLUMNS: &str = "id, study_instance_uid, site, status, patient_name, patient_id, \
    patient_birth_date, patient_sex, accession_number, study_date, study_time, \
    study_description, referring_physician_name, modalities, body_parts, instance_count, \
    first_received_at, last_received_at, completed_at";

impl StudyIndex {
    /// One page of the studies within `scope`, most recently active first.
    pub async fn study_page(
        &self,
        query: &StudyPageQuery,
        scope: &Scope,
    ) -> Result<StudyPage, sqlx::Error> {
        let limit = query.limit.max(1);
        // Unused filters compare with '' and an absent cursor with the
        // largest key, so that one statement serves every combination.
        let after = query.after.unwrap_or(StudyCursor {
            last_received_at: i64::MAX,
            id: i64::MAX,
        });
        let sql = format!(
            "SELECT {COLUMNS} FROM studies \
             WHERE ($1 = '' OR status = $1) AND ($2 = '' OR site = $2) \
             AND (last_received_at < $3 OR (last_received_at = $3 AND id < $4)) AND {} \
             ORDER BY last_received_at DESC, id DESC LIMIT $5",
            scope.condition("studies", 6)
        );
        // One more than asked: whether it exists says if there is a next page.
        let mut select = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(query.status.clone().unwrap_or_default())
            .bind(query.site.clone().unwrap_or_default())
            .bind(after.last_received_at)
            .bind(after.id)
            .bind(limit.saturating_add(1));
        for site in scope.values() {
            select = select.bind(site);
        }
        let mut rows: Vec<PageRow> = select.fetch_all(self.pool()).await?;
        let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = rows.last().filter(|_| more).map(|row| StudyCursor {
            last_received_at: row.study.last_received_at,
            id: row.id,
        });
        Ok(StudyPage {
            studies: rows.into_iter().map(|row| row.study).collect(),
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_reads_back_what_it_writes() {
        let cursor = StudyCursor {
            last_received_at: 1_764_115_200_123,
            id: 42,
        };
        assert_eq!(StudyCursor::parse(&cursor.to_string()), Some(cursor));
    }

    #[test]
    fn bad_cursors_are_refused() {
        for text in ["", "12", "a.b", "12.", ".3", "12.0", "12.-1", "12.3.4"] {
            assert_eq!(StudyCursor::parse(text), None, "{text:?}");
        }
    }
}
