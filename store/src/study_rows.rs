//! Reads of the study tables inside the caller's transaction, for the
//! crates that act on studies (the router): their rows, their events and
//! their audit records then commit together, and the SQL on these tables
//! stays in the crate that owns them.

use crate::ids::StudyId;
use crate::scope::Scope;
use sqlx::{Any, FromRow, Transaction};

pub type Tx<'a> = Transaction<'a, Any>;

/// What routing rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingFacts {
    pub study_instance_uid: String,
    pub site: String,
    pub modalities: Vec<String>,
    pub body_parts: Vec<String>,
    pub study_description: String,
    pub series_descriptions: Vec<String>,
}

/// A study's row id, site and instance count.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StudyRef {
    pub id: StudyId,
    pub site: String,
    pub instance_count: i64,
}

fn values(set: &str) -> Vec<String> {
    set.split('\\')
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

pub async fn routing_facts(
    tx: &mut Tx<'_>,
    study_id: StudyId,
) -> Result<RoutingFacts, sqlx::Error> {
    let (study_instance_uid, site, modalities, body_parts, study_description): (
        String,
        String,
        String,
        String,
        String,
    ) = sqlx::query_as(
        "SELECT study_instance_uid, site, modalities, body_parts, study_description \
         FROM studies WHERE id = $1",
    )
    .bind(study_id)
    .fetch_one(&mut **tx)
    .await?;
    let series: Vec<(String,)> =
        sqlx::query_as("SELECT series_description FROM series WHERE study_id = $1 ORDER BY id")
            .bind(study_id)
            .fetch_all(&mut **tx)
            .await?;
    Ok(RoutingFacts {
        study_instance_uid,
        site,
        modalities: values(&modalities),
        body_parts: values(&body_parts),
        study_description,
        series_descriptions: series.into_iter().map(|(d,)| d).collect(),
    })
}

/// The study with this UID, if it is within `scope`.
pub async fn by_uid(
    tx: &mut Tx<'_>,
    study_instance_uid: &str,
    scope: &Scope,
) -> Result<Option<StudyRef>, sqlx::Error> {
    let sql = format!(
        "SELECT id, site, instance_count FROM studies WHERE study_instance_uid = $1 AND {}",
        scope.condition("studies", 2)
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(study_instance_uid);
    for site in scope.values() {
        query = query.bind(site);
    }
    query.fetch_optional(&mut **tx).await
}

pub async fn uid_of(tx: &mut Tx<'_>, study_id: StudyId) -> Result<String, sqlx::Error> {
    let (uid,): (String,) = sqlx::query_as("SELECT study_instance_uid FROM studies WHERE id = $1")
        .bind(study_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(uid)
}

/// The newest instance row of the study (0 if none), and how many rows
/// (new instances or new versions) came after `after_id`.
pub async fn instances_after(
    tx: &mut Tx<'_>,
    study_id: StudyId,
    after_id: i64,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT COALESCE(MAX(id), $2), COUNT(*) FROM instances WHERE study_id = $1 AND id > $2",
    )
    .bind(study_id)
    .bind(after_id)
    .fetch_one(&mut **tx)
    .await
}
