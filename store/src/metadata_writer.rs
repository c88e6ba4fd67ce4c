//! The WADO-RS metadata of stored instances (`instance_metadata`), built
//! when their study completes rather than on the path of each
//! acknowledgement.
//!
//! Built on the storing thread and written in each instance's transaction,
//! it cost a sixth of the receiving throughput; written by a task behind
//! each acknowledgement, an extra synced commit per instance, more
//! (BENCHMARKS.md, "WADO-RS metadata"). A scanner waits for every
//! acknowledgement; a viewer reads the metadata once per series, after the
//! study is complete. So this is a consumer of the study event log, like
//! the router: on each `complete` event it builds the metadata of the
//! study's instances that have none (a late image's study completes
//! again), on a blocking thread, and writes them in one transaction per
//! [`CHUNK`], the last with the cursor's move. The log makes it durable: a
//! crash redoes the study, and only what is still missing is built.
//!
//! An instance whose metadata cannot be built here (or was stored before
//! this existed) has it built at its first request, and kept then.

use crate::StudyIndex;
use crate::events::{AbortOnDrop, Consumer, EventKind, RetryPolicy};
use crate::ids::{EventId, StudyId};
use crate::layout::Layout;
use std::time::Duration;

/// The consumer's name in `event_consumers`.
pub const CONSUMER: &str = "metadata";
/// Instances built and written per transaction.
const CHUNK: i64 = 256;
/// How long an idle writer waits before looking at the log again, when
/// nothing rang.
const IDLE: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) struct MetadataWriter {
    _task: AbortOnDrop,
}

impl MetadataWriter {
    /// Registers the consumer (at the end of the log: the studies of an
    /// older database get their metadata at first request) and starts it.
    pub async fn start(index: StudyIndex, layout: Layout) -> Result<Self, sqlx::Error> {
        let consumer = Consumer::new(CONSUMER, RetryPolicy::default());
        consumer.register_at_end(index.database()).await?;
        let task = tokio::spawn(run(index, layout, consumer));
        Ok(MetadataWriter {
            _task: AbortOnDrop::new(task),
        })
    }
}

async fn run(index: StudyIndex, layout: Layout, consumer: Consumer) {
    let mut bell = index.database().events_bell();
    loop {
        match step(&index, &layout, &consumer).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!("WADO-RS metadata writer: {e}"),
        }
        tokio::select! {
            _ = bell.changed() => {}
            _ = tokio::time::sleep(IDLE) => {}
        }
    }
}

/// Handles the event after the cursor; `false` when there is none.
async fn step(
    index: &StudyIndex,
    layout: &Layout,
    consumer: &Consumer,
) -> Result<bool, sqlx::Error> {
    let db = index.database();
    // A look without the cursor's lock (on SQLite, the one write lock the
    // receivers need): the lock is taken only to move it, and a cursor
    // another process moved meanwhile is left alone.
    let (cursor, next) = {
        let mut tx = db.begin().await?;
        let (cursor,): (EventId,) =
            sqlx::query_as("SELECT last_event_id FROM event_consumers WHERE name = $1")
                .bind(consumer.name())
                .fetch_one(&mut *tx)
                .await?;
        let next = consumer.next_after(&mut tx, cursor).await?;
        tx.rollback().await?;
        (cursor, next)
    };
    let Some((event_id, event)) = next else {
        return Ok(false);
    };
    let study = match event {
        Ok(event) if event.kind == EventKind::Complete => Some(event.study_id),
        _ => None,
    };
    if let Some(study) = study {
        loop {
            let missing = index.instances_without_metadata(study, CHUNK).await?;
            if missing.is_empty() {
                break;
            }
            let full = i64::try_from(missing.len()).unwrap_or(i64::MAX) >= CHUNK;
            let layout = layout.clone();
            let built = tokio::task::spawn_blocking(move || build(&layout, missing))
                .await
                .map_err(|e| sqlx::Error::Protocol(format!("the metadata task failed: {e}")))?;
            // A chunk that built nothing would be selected again: what is
            // left is for the first requests.
            let stuck = built.iter().all(|(_, json)| json.is_none());
            // The last chunk moves the cursor with it.
            let last = !full || stuck;
            let advance = last.then_some((cursor, event_id));
            index.keep_built_metadata(&built, consumer, advance).await?;
            if last {
                return Ok(true);
            }
        }
    }
    index
        .keep_built_metadata(&[], consumer, Some((cursor, event_id)))
        .await?;
    Ok(true)
}

/// An instance of a complete study with no metadata yet.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Missing {
    pub instance_id: i64,
    pub sop_instance_uid: String,
    pub path: String,
}

/// The metadata of each, or none for one that cannot be built (its first
/// request tries again and says why).
fn build(layout: &Layout, missing: Vec<Missing>) -> Vec<(i64, Option<String>)> {
    missing
        .into_iter()
        .map(|m| {
            let path = layout.absolute(&m.path);
            match telerad_dicom::metadata::instance_metadata(&path) {
                Ok(json) => (m.instance_id, Some(json)),
                Err(e) => {
                    tracing::warn!(sop_instance_uid = %m.sop_instance_uid, "no WADO-RS metadata built: {e}");
                    (m.instance_id, None)
                }
            }
        })
        .collect()
}

impl StudyIndex {
    /// Up to `limit` instances of `study` without a metadata row.
    async fn instances_without_metadata(
        &self,
        study: StudyId,
        limit: i64,
    ) -> Result<Vec<Missing>, sqlx::Error> {
        sqlx::query_as(
            "SELECT i.id AS instance_id, i.sop_instance_uid, i.path FROM instances i \
             WHERE i.study_id = $1 AND NOT EXISTS \
             (SELECT 1 FROM instance_metadata m WHERE m.instance_id = i.id) \
             ORDER BY i.id LIMIT $2",
        )
        .bind(study)
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }

    /// Writes what was built in one transaction and, with `advance`
    /// (the cursor read, the event handled), moves the consumer's cursor
    /// if no other process moved it meanwhile.
    async fn keep_built_metadata(
        &self,
        built: &[(i64, Option<String>)],
        consumer: &Consumer,
        advance: Option<(EventId, EventId)>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.database().begin_write().await?;
        for (instance_id, json) in built {
            // An instance that could not be built gets no row: it is
            // built at its first request.
            let Some(json) = json else { continue };
            sqlx::query(
                "INSERT INTO instance_metadata (instance_id, json) VALUES ($1, $2) \
                 ON CONFLICT (instance_id) DO NOTHING",
            )
            .bind(instance_id)
            .bind(json)
            .execute(&mut *tx)
            .await?;
        }
        if let Some((read, handled)) = advance {
            let now = consumer
                .lock_cursor(&mut tx)
                .await
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
            if now == read {
                consumer.advance(&mut tx, handled).await?;
            }
        }
        tx.commit().await
    }
}
