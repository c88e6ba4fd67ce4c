//! The audit trail (migration 0011): who read or changed what, when, from
//! where, and with what outcome, as the Code de la santé publique asks of
//! every access to patient data.
//!
//! Records are appended in the transaction of the action they trace, so
//! that an action without its record cannot be committed. Each holds the
//! hash of the one before it (BLAKE3 over its fields, each prefixed by its
//! length so that no two records encode alike), and `audit_head` the last
//! one's: a record changed, removed or inserted afterwards, even the last,
//! breaks the chain where it happened, which [`verify`] reports.

use crate::{Backend, Database};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    /// Not allowed: wrong password, no right, another site's data.
    Refused,
    /// Allowed, but it could not be done (bad input, a conflict).
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

impl TryFrom<String> for Outcome {
    type Error = String;

    fn try_from(s: String) -> Result<Outcome, String> {
        match s.as_str() {
            "success" => Ok(Outcome::Success),
            "refused" => Ok(Outcome::Refused),
            "failed" => Ok(Outcome::Failed),
            _ => Err(format!("unknown audit outcome {s:?}")),
        }
    }
}

/// One record, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: i64,
    /// A login, `dicom:AE_TITLE` for a DICOM peer, or `telerad` itself.
    pub actor: String,
    pub role: String,
    /// The actor's sites, comma-separated (empty for all or none).
    pub sites: String,
    /// What was done: `study.read`, `login`, `user.create`…
    pub action: String,
    /// What it was done to: `study/1.2.3`, `user/alice`, `studies`…
    pub object: String,
    pub study_uid: Option<String>,
    pub patient_id: Option<String>,
    pub outcome: Outcome,
    /// The peer's address.
    pub source: String,
    /// More, as a JSON object (filters, the reason of a refusal).
    pub detail: String,
}

/// A record as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StoredRecord {
    pub seq: i64,
    /// Unix time in milliseconds.
    pub at: i64,
    pub actor: String,
    pub role: String,
    pub sites: String,
    pub action: String,
    pub object: String,
    pub study_uid: Option<String>,
    pub patient_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub outcome: Outcome,
    pub source: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

const COLUMNS: &str = "seq, at, actor, role, sites, action, object, study_uid, patient_id, \
                       outcome, source, detail, prev_hash, hash";

fn chain_hash(seq: i64, record: &AuditRecord, prev_hash: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    let mut field = |value: &str| {
        hasher.update(&(value.len() as u64).to_le_bytes());
        hasher.update(value.as_bytes());
    };
    field(prev_hash);
    field(&seq.to_string());
    field(&record.at.to_string());
    field(&record.actor);
    field(&record.role);
    field(&record.sites);
    field(&record.action);
    field(&record.object);
    field(record.study_uid.as_deref().unwrap_or("\u{0}none"));
    field(record.patient_id.as_deref().unwrap_or("\u{0}none"));
    field(record.outcome.as_str());
    field(&record.source);
    field(&record.detail);
    hasher.finalize().to_hex().to_string()
}

/// Appends `record` in the caller's transaction; returns its sequence
/// number. The head row is updated first, which takes its lock on both
/// backends: appends are serialised, and a transaction that rolls back
/// leaves no gap. On an error the caller must roll the transaction back
/// (drop it), never commit it: on SQLite the rows of a failed statement
/// that came before the failing one stay (`INSERT OR FAIL`).
pub async fn append(tx: &mut Tx<'_>, record: &AuditRecord) -> Result<i64, sqlx::Error> {
    append_all(tx, vec![record.clone()]).await
}

/// Appends `records` in order, in the caller's transaction; returns the
/// first one's sequence number (the head is read and written once). On
/// an error the transaction must be rolled back, as for [`append`]. A
/// record that names a study but not its patient gets the study's patient
/// ID, so that a search by patient finds every action on their studies.
pub async fn append_all(
    tx: &mut Tx<'_>,
    mut records: Vec<AuditRecord>,
) -> Result<i64, sqlx::Error> {
    // `Postgres::NAME`; the callers' transactions do not carry a Backend.
    let backend = if tx.backend_name().eq_ignore_ascii_case("postgresql") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    fill_patients(tx, &mut records).await?;
    let count = i64::try_from(records.len()).unwrap_or(i64::MAX);
    let (last, prev_hash): (i64, String) =
        sqlx::query_as("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
            .bind(count)
            .fetch_one(&mut **tx)
            .await?;
    let first = last - count + 1;
    let chained = Chained::new(records, first, prev_hash);
    for chunk in chained.chunks() {
        chunk.query(backend).execute(&mut **tx).await?;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(chained.last_hash())
        .execute(&mut **tx)
        .await?;
    Ok(first)
}

/// Records with their sequence numbers and hashes, chained onto a head.
struct Chained {
    first: i64,
    head_hash: String,
    /// Each record with the hash before it and its own.
    rows: Vec<(AuditRecord, String, String)>,
}

impl Chained {
    fn new(records: Vec<AuditRecord>, first: i64, mut prev_hash: String) -> Chained {
        let head_hash = prev_hash.clone();
        let rows = (first..)
            .zip(records)
            .map(|(seq, record)| {
                let hash = chain_hash(seq, &record, &prev_hash);
                let prev = std::mem::replace(&mut prev_hash, hash.clone());
                (record, prev, hash)
            })
            .collect();
        Chained {
            first,
            head_hash,
            rows,
        }
    }

    fn last_hash(&self) -> &str {
        self.rows
            .last()
            .map_or(self.head_hash.as_str(), |(_, _, hash)| hash.as_str())
    }

    /// Several records per statement: one round trip to the database for
    /// many, not one each (14 values a record, far under SQLite's 32,766
    /// and PostgreSQL's 65,535 parameters). Each statement holds a power
    /// of two of records, so that the few statements there are stay in
    /// the connection's cache of prepared statements whatever the batch's
    /// size, instead of a new one for each remainder.
    fn chunks(&self) -> impl Iterator<Item = ChainedChunk<'_>> {
        let mut rest = self.rows.as_slice();
        let mut first = self.first;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let size = INSERT_CHUNK.min(1 << rest.len().ilog2());
            let (rows, after) = rest.split_at(size);
            let chunk = ChainedChunk { first, rows };
            rest = after;
            first += size as i64;
            Some(chunk)
        })
    }
}

#[derive(Clone, Copy)]
struct ChainedChunk<'a> {
    first: i64,
    rows: &'a [(AuditRecord, String, String)],
}

const VALUES_PER_RECORD: usize = 14;

impl<'a> ChainedChunk<'a> {
    /// `INSERT` of these rows, made once for each size and backend (a
    /// 64-record statement is 896 parameters long). SQLite gets anonymous
    /// `?` parameters: sqlx binds a numbered one by asking SQLite its
    /// name, which SQLite finds by a walk along the statement's
    /// parameters, so numbered parameters cost the square of their count
    /// (a 64-record statement spent 30 µs a record there). And `OR FAIL`:
    /// with the default `ABORT`, SQLite keeps a statement journal of every
    /// page a many-row statement changes, so as to undo that statement
    /// alone; a failed append ends its whole transaction anyway, and the
    /// journal was a fifth of the chain's cost once reads spread over many
    /// studies (`store/benches/audit_chain.rs`).
    fn sql(&self, backend: Backend) -> &'static str {
        static SQL: [[OnceLock<String>; CHUNK_SIZES]; 2] =
            [const { [const { OnceLock::new() }; CHUNK_SIZES] }; 2];
        let size = self.rows.len();
        // Another size would get a statement with fewer values than bound,
        // and SQLite drops the rest without a word.
        assert!(
            size.is_power_of_two() && size <= INSERT_CHUNK,
            "{size} records in one statement"
        );
        let by_backend = match backend {
            Backend::Sqlite => &SQL[0],
            Backend::Postgres => &SQL[1],
        };
        by_backend[size.ilog2() as usize].get_or_init(|| insert_sql(backend, size))
    }

    fn query(self, backend: Backend) -> sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments> {
        self.bind(sqlx::query(sqlx::AssertSqlSafe(self.sql(backend))))
    }

    fn bind(
        self,
        mut query: sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments> {
        for (seq, (record, prev, hash)) in (self.first..).zip(self.rows) {
            query = query
                .bind(seq)
                .bind(record.at)
                .bind(record.actor.as_str())
                .bind(record.role.as_str())
                .bind(record.sites.as_str())
                .bind(record.action.as_str())
                .bind(record.object.as_str())
                .bind(record.study_uid.as_deref())
                .bind(record.patient_id.as_deref())
                .bind(record.outcome.as_str())
                .bind(record.source.as_str())
                .bind(record.detail.as_str())
                .bind(prev.as_str())
                .bind(hash.as_str());
        }
        query
    }
}

/// The `INSERT` of `size` records (see [`ChainedChunk::sql`]).
fn insert_sql(backend: Backend, size: usize) -> String {
    let rows: Vec<String> = (0..size)
        .map(|i| {
            let values: Vec<String> = (1..=VALUES_PER_RECORD)
                .map(|k| match backend {
                    Backend::Sqlite => "?".to_string(),
                    Backend::Postgres => format!("${}", i * VALUES_PER_RECORD + k),
                })
                .collect();
            format!("({})", values.join(", "))
        })
        .collect();
    let verb = match backend {
        Backend::Sqlite => "INSERT OR FAIL",
        Backend::Postgres => "INSERT",
    };
    format!(
        "{verb} INTO audit_log ({COLUMNS}) VALUES {}",
        rows.join(", ")
    )
}

/// Sets the patient ID of records that name a study without it, from the
/// index (whatever site the study is of: the trail is the
/// administrators'). One lookup per study, however many records name it.
async fn fill_patients(
    connection: &mut sqlx::AnyConnection,
    records: &mut [AuditRecord],
) -> Result<(), sqlx::Error> {
    let mut known: std::collections::HashMap<String, Option<String>> =
        std::collections::HashMap::new();
    for record in records.iter_mut() {
        let Some(study) = record
            .study_uid
            .as_ref()
            .filter(|_| record.patient_id.is_none())
        else {
            continue;
        };
        if !known.contains_key(study) {
            let patient: Option<(String,)> =
                sqlx::query_as("SELECT patient_id FROM studies WHERE study_instance_uid = $1")
                    .bind(study.as_str())
                    .fetch_optional(&mut *connection)
                    .await?;
            known.insert(study.clone(), patient.map(|(p,)| p));
        }
        record.patient_id = known.get(study).cloned().flatten();
    }
    Ok(())
}

/// Appends `record` in a transaction of its own (reads, security events).
pub async fn append_now(db: &Database, record: &AuditRecord) -> Result<i64, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let seq = append(&mut tx, record).await?;
    tx.commit().await?;
    Ok(seq)
}

/// Records per INSERT statement at most.
const INSERT_CHUNK: usize = 64;
/// Statement sizes: the powers of two up to [`INSERT_CHUNK`].
const CHUNK_SIZES: usize = INSERT_CHUNK.ilog2() as usize + 1;

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Records checked.
    pub records: u64,
    /// The first place where the chain does not hold, if any.
    pub broken: Option<BrokenLink>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The sequence number where it breaks.
    pub seq: i64,
    pub reason: String,
}

/// Walks the chain from its anchor to its head.
pub async fn verify(db: &Database) -> Result<Verification, sqlx::Error> {
    // One snapshot for the head and every page: a server appending or
    // pruning meanwhile is not a broken chain.
    let mut tx = db.pool.begin().await?;
    if db.backend == crate::Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await?;
    }
    let (head_seq, head_hash, anchor_seq, anchor_hash): (i64, String, i64, String) =
        sqlx::query_as("SELECT seq, hash, anchor_seq, anchor_hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
    let mut expected_seq = anchor_seq + 1;
    let mut prev_hash = anchor_hash;
    let mut records = 0;
    let page = 1_000;
    loop {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2");
        let rows: Vec<StoredRecord> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(expected_seq)
            .bind(page)
            .fetch_all(&mut *tx)
            .await?;
        let last_page = (rows.len() as i64) < page;
        for row in rows {
            let broken = |reason: String| {
                Ok(Verification {
                    records,
                    broken: Some(BrokenLink {
                        seq: expected_seq,
                        reason,
                    }),
                })
            };
            if row.seq != expected_seq {
                return broken(format!(
                    "record {expected_seq} is missing (the next one is {})",
                    row.seq
                ));
            }
            if row.prev_hash != prev_hash {
                return broken(format!(
                    "record {} does not follow the one before it (its previous hash differs)",
                    row.seq
                ));
            }
            let record = AuditRecord {
                at: row.at,
                actor: row.actor,
                role: row.role,
                sites: row.sites,
                action: row.action,
                object: row.object,
                study_uid: row.study_uid,
                patient_id: row.patient_id,
                outcome: row.outcome,
                source: row.source,
                detail: row.detail,
            };
            if chain_hash(row.seq, &record, &prev_hash) != row.hash {
                return broken(format!(
                    "record {} was changed after it was written (its hash differs)",
                    row.seq
                ));
            }
            prev_hash = row.hash;
            expected_seq += 1;
            records += 1;
        }
        if last_page {
            break;
        }
    }
    let last_seq = expected_seq - 1;
    if last_seq != head_seq {
        return Ok(Verification {
            records,
            broken: Some(BrokenLink {
                seq: last_seq + 1,
                reason: format!(
                    "the trail ends at record {last_seq} but {head_seq} were written: \
                     records {}..={head_seq} are missing",
                    last_seq + 1
                ),
            }),
        });
    }
    if prev_hash != head_hash {
        return Ok(Verification {
            records,
            broken: Some(BrokenLink {
                seq: last_seq,
                reason: format!("record {last_seq} is not the one that was written last"),
            }),
        });
    }
    Ok(Verification {
        records,
        broken: None,
    })
}

/// Which records [`page`] returns; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub study_uid: Option<String>,
    pub patient_id: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Records before this sequence number (the next page's cursor).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Newest first; the second value is the next page's cursor.
pub async fn page(
    db: &Database,
    query: &AuditQuery,
) -> Result<(Vec<StoredRecord>, Option<i64>), sqlx::Error> {
    let limit = query.limit.max(1);
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log WHERE ($1 = '' OR actor = $1) \
         AND ($2 = '' OR study_uid = $2) AND ($3 = '' OR patient_id = $3) \
         AND at >= $4 AND at < $5 AND seq < $6 ORDER BY seq DESC LIMIT $7"
    );
    let mut rows: Vec<StoredRecord> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(query.actor.clone().unwrap_or_default())
        .bind(query.study_uid.clone().unwrap_or_default())
        .bind(query.patient_id.clone().unwrap_or_default())
        .bind(query.from.unwrap_or(i64::MIN))
        .bind(query.to.unwrap_or(i64::MAX))
        .bind(query.before.unwrap_or(i64::MAX))
        .bind(limit.saturating_add(1))
        .fetch_all(&db.pool)
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = rows.last().filter(|_| more).map(|row| row.seq);
    Ok((rows, next))
}

/// Removes the records older than `before` (retention), moving the
/// chain's anchor to the last one removed so that [`verify`] still holds.
pub async fn prune(db: &Database, before: i64) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    // The cut is at a sequence number, so that the remaining chain is
    // contiguous: the last record older than `before`, and all before it.
    // Records are appended in about their time order (a read's record
    // joins the chain up to 200 ms after it, or, after a crash or while
    // the database was away, when the spool is moved again, oldest files
    // first), which a retention counted in months does not notice.
    let last: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, hash FROM audit_log WHERE seq = \
         (SELECT MAX(seq) FROM audit_log WHERE at < $1)",
    )
    .bind(before)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((seq, hash)) = last else {
        return Ok(0);
    };
    let removed = sqlx::query("DELETE FROM audit_log WHERE seq <= $1")
        .bind(seq)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("UPDATE audit_head SET anchor_seq = $1, anchor_hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(actor: &str) -> AuditRecord {
        AuditRecord {
            at: 1,
            actor: actor.into(),
            role: "admin".into(),
            sites: String::new(),
            action: "login".into(),
            object: "session".into(),
            study_uid: None,
            patient_id: None,
            outcome: Outcome::Success,
            source: "127.0.0.1".into(),
            detail: "{}".into(),
        }
    }

    #[test]
    fn each_statement_has_the_parameters_of_its_records() {
        let records: Vec<AuditRecord> = (0..127).map(|i| record(&format!("u{i}"))).collect();
        let chained = Chained::new(records, 1, GENESIS.into());
        for chunk in chained.chunks() {
            let values = chunk.rows.len() * VALUES_PER_RECORD;
            let sqlite = chunk.sql(Backend::Sqlite);
            assert!(
                sqlite.starts_with("INSERT OR FAIL INTO audit_log"),
                "{sqlite}"
            );
            assert_eq!(sqlite.matches('?').count(), values);
            let postgres = chunk.sql(Backend::Postgres);
            assert!(postgres.starts_with("INSERT INTO audit_log"), "{postgres}");
            assert!(postgres.ends_with(&format!("${values})")), "{postgres}");
            assert!(!postgres.contains(&format!("${}", values + 1)));
        }
    }

    #[test]
    fn statements_hold_powers_of_two_of_records_in_order() {
        let records = (0..203).map(|i| record(&format!("u{i}"))).collect();
        let chained = Chained::new(records, 10, GENESIS.into());
        let chunks: Vec<(i64, usize, String)> = chained
            .chunks()
            .map(|c| (c.first, c.rows.len(), c.rows[0].0.actor.clone()))
            .collect();
        assert_eq!(
            chunks,
            vec![
                (10, 64, "u0".into()),
                (74, 64, "u64".into()),
                (138, 64, "u128".into()),
                (202, 8, "u192".into()),
                (210, 2, "u200".into()),
                (212, 1, "u202".into()),
            ]
        );
    }

    #[test]
    fn every_field_and_the_link_change_the_hash() {
        let base = chain_hash(1, &record("alice"), GENESIS);
        assert_ne!(base, chain_hash(2, &record("alice"), GENESIS));
        assert_ne!(base, chain_hash(1, &record("alicf"), GENESIS));
        assert_ne!(base, chain_hash(1, &record("alice"), &"1".repeat(64)));
        let mut with_study = record("alice");
        with_study.study_uid = Some(String::new());
        assert_ne!(base, chain_hash(1, &with_study, GENESIS));
        // Moving a byte from one field to the next is a different record.
        let mut a = record("ab");
        a.role = "c".into();
        let mut b = record("a");
        b.role = "bc".into();
        assert_ne!(chain_hash(1, &a, GENESIS), chain_hash(1, &b, GENESIS));
    }
}
