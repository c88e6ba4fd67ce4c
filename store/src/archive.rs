//! The durable path of one instance, from the first byte received to the
//! moment success may be answered.
//!
//! 1. [`Archive::begin`] opens a temporary file in `incoming/` and writes the
//!    Part 10 header; the data set is appended as it arrives, hashed on the
//!    way, and its write-back to disk is started chunk by chunk.
//! 2. [`Archive::commit`] checks the data set to its end, renames the file
//!    into `studies/…` and syncs the file and the directory (in parallel).
//!    The index rows are written in one transaction meanwhile, and committed
//!    only once both syncs have returned. Only when it returns `Ok` has the
//!    instance been stored.
//!
//! Anything that fails before the rename leaves nothing behind (the temporary
//! file is deleted on drop; one left by a crash is removed at start-up). A
//! failure to sync or to index after the rename removes the renamed file
//! again.

use crate::clock::Clock;
use crate::error::StoreError;
use crate::index::{NewInstance, StudyIndex};
use crate::inspect::{InspectError, InstanceAttributes, inspect};
use crate::layout::{Layout, create_dir_durable, sync_dir};
use crate::part10::{InstanceHeader, header_bytes};
use crate::uid::validate_uid;
use crate::writeback::Writeback;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tempfile::NamedTempFile;
use tokio::sync::oneshot;

/// Serialises the commits of one SOP Instance UID (a re-send racing its
/// original), striped so that the table stays small.
const SOP_LOCK_STRIPES: usize = 64;

#[derive(Debug)]
pub struct Archive {
    layout: Layout,
    index: StudyIndex,
    quiet_periods: HashMap<String, Duration>,
    clock: Arc<dyn Clock>,
    sop_locks: Vec<tokio::sync::Mutex<()>>,
    /// `[dicom] max_instance_bytes`: the largest data set accepted, as
    /// received and once inflated.
    max_instance_bytes: u64,
    /// Signalled when study events are recorded, so that their consumer (the
    /// router) need not wait for its next poll.
    study_events: tokio::sync::Notify,
}

/// An instance being received; dropping it discards what was written.
#[derive(Debug)]
pub struct PendingInstance {
    file: NamedTempFile,
    header: InstanceHeader,
    dataset_offset: u64,
    dataset_len: u64,
    hasher: blake3::Hasher,
    write_error: Option<std::io::Error>,
    writeback: Writeback,
}

impl PendingInstance {
    /// Appends data set bytes. A write error is kept and reported by
    /// [`Archive::commit`]: the association must still read the rest of the
    /// instance before it can answer.
    pub fn write(&mut self, data: &[u8]) {
        if self.write_error.is_some() {
            return;
        }
        match self.file.write_all(data) {
            Ok(()) => {
                self.hasher.update(data);
                self.dataset_len += data.len() as u64;
                self.writeback
                    .written(self.file.as_file(), self.dataset_offset + self.dataset_len);
            }
            Err(e) => self.write_error = Some(e),
        }
    }

    pub fn header(&self) -> &InstanceHeader {
        &self.header
    }

    /// Data set bytes received so far.
    pub fn dataset_len(&self) -> u64 {
        self.dataset_len
    }
}

/// What [`Archive::commit`] did with an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Stored and indexed; `version` > 1 when the SOP Instance UID was
    /// already known with different content.
    New { version: i64, path: String },
    /// The same content was already stored: nothing written.
    Duplicate { version: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot prepare the storage folder {path}: {source}")]
    Storage {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] crate::db::DbError),
    #[error("cannot record the configured sites in the database: {0}")]
    Sites(#[source] sqlx::Error),
}

impl Archive {
    /// Opens the storage folder and the index named by the configuration.
    pub async fn open(
        config: &telerad_config::Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Archive, OpenError> {
        let root = &config.storage.data_dir;
        let layout = Layout::open(root).map_err(|source| OpenError::Storage {
            path: root.display().to_string(),
            source,
        })?;
        let db = crate::db::Database::connect(&config.database_url()).await?;
        let index = StudyIndex::new(db);
        let mut quiet_periods = HashMap::new();
        for site in &config.sites {
            let quiet = site.quiet_period(&config.studies);
            index
                .sync_site(
                    &site.name,
                    &site.time_zone_name,
                    i64::try_from(quiet.as_secs()).unwrap_or(i64::MAX),
                )
                .await
                .map_err(OpenError::Sites)?;
            quiet_periods.insert(site.name.clone(), quiet);
        }
        Ok(Archive {
            layout,
            index,
            quiet_periods,
            clock,
            sop_locks: (0..SOP_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            study_events: tokio::sync::Notify::new(),
            max_instance_bytes: config.dicom.max_instance_bytes,
        })
    }

    pub fn index(&self) -> &StudyIndex {
        &self.index
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn max_instance_bytes(&self) -> u64 {
        self.max_instance_bytes
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Notified (one permit, kept if nobody waits) when this process records
    /// study events. Events recorded by another process are found by polling.
    pub fn study_events(&self) -> &tokio::sync::Notify {
        &self.study_events
    }

    /// Starts receiving an instance announced by a C-STORE command.
    pub fn begin(&self, header: InstanceHeader) -> Result<PendingInstance, StoreError> {
        let bytes =
            header_bytes(&header).map_err(|e| StoreError::cannot_understand(e.to_string()))?;
        let mut file = tempfile::Builder::new()
            .prefix("rx-")
            .suffix(".part")
            .tempfile_in(self.layout.incoming_dir())
            .map_err(|e| StoreError::out_of_resources(format!("cannot create a file: {e}")))?;
        file.write_all(&bytes)
            .map_err(|e| StoreError::out_of_resources(format!("cannot write: {e}")))?;
        Ok(PendingInstance {
            file,
            header,
            dataset_offset: bytes.len() as u64,
            dataset_len: 0,
            hasher: blake3::Hasher::new(),
            write_error: None,
            writeback: Writeback::default(),
        })
    }

    /// Makes the instance durable and indexed; see the module documentation.
    pub async fn commit(&self, pending: PendingInstance, site: &str) -> Result<Stored, StoreError> {
        if let Some(e) = &pending.write_error {
            return Err(StoreError::out_of_resources(format!(
                "cannot write the instance to disk: {e}"
            )));
        }
        if pending.dataset_len == 0 {
            return Err(StoreError::cannot_understand("the data set is empty"));
        }
        let checksum = pending.hasher.finalize().to_hex().to_string();
        // The data set must carry the command's SOP Instance UID (checked in
        // `place_durably`), so locking the command's serialises re-sends.
        let sop = pending.header.sop_instance_uid.clone();
        let _guard = self.sop_locks[stripe(&sop)].lock().await;
        // One hop to a blocking thread for all the file work: each hop costs
        // a thread wake-up, on the path of every acknowledgement. The index
        // is queried while the thread checks the data set, and the thread
        // says what it found before its fsyncs, so that the index rows are
        // written while it waits for them.
        let layout = self.layout.clone();
        let (versions_tx, versions_rx) = oneshot::channel();
        let (checked_tx, checked_rx) = oneshot::channel();
        let max_inflated = self.max_instance_bytes;
        let durable = tokio::task::spawn_blocking(move || {
            place_durably(
                &layout,
                pending,
                max_inflated,
                checksum,
                versions_rx,
                checked_tx,
            )
        });
        match self.index.versions_of(&sop).await {
            Ok(versions) => {
                let _ = versions_tx.send(versions);
            }
            // Dropping `versions_tx` stops the thread before it places
            // anything.
            Err(e) => {
                drop(versions_tx);
                let _ = durable.await;
                return Err(db_failure(e));
            }
        }
        let placed = match checked_rx.await {
            Ok(Checked::Placing(placed)) => *placed,
            Ok(Checked::Duplicate { version }) => {
                joined(durable).await?;
                tracing::info!(sop_instance_uid = %sop, version, "identical instance re-sent: already stored");
                return Ok(Stored::Duplicate { version });
            }
            // The check failed: the thread's result says why.
            Err(_) => {
                joined(durable).await?;
                return Err(StoreError::out_of_resources(
                    "the storage task ended without a result",
                ));
            }
        };
        let Placed {
            header,
            attributes,
            checksum,
            version,
            relative,
            size_bytes,
        } = placed;
        let absolute = self.layout.absolute(&relative);
        let now = self.clock.now_ms();
        let quiet = self
            .quiet_periods
            .get(site)
            .copied()
            .unwrap_or(Duration::from_secs(20));
        let new = NewInstance {
            site: site.to_string(),
            version,
            transfer_syntax_uid: header.transfer_syntax_uid,
            path: relative.clone(),
            size_bytes,
            checksum,
            calling_ae_title: header.calling_ae_title.trim().to_string(),
            received_at: now,
            complete_after: now + i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX / 2),
            attributes,
        };
        let (staged, durable) = tokio::join!(self.index.try_stage_instance(&new), joined(durable));
        if let Err(e) = durable {
            if let Some(Ok(staged)) = staged {
                let _ = staged.rollback().await;
            }
            return Err(e);
        }
        // The rows are committed only now that the file and its name are
        // durable: an index row never points to a file a crash could lose.
        let indexed = match staged {
            Some(Ok(staged)) => staged.commit().await,
            Some(Err(e)) => Err(e),
            None => self.index.record_instance(&new).await,
        };
        if let Err(e) = indexed {
            // Not indexed means not stored: take the file back out of the tree.
            let _ = tokio::task::spawn_blocking(move || unplace(&absolute)).await;
            return Err(db_failure(e));
        }
        if version > 1 {
            tracing::warn!(sop_instance_uid = %sop, version, "instance re-sent with different content: kept as a new version");
        }
        Ok(Stored::New {
            version,
            path: relative,
        })
    }
}

/// Waits for the blocking part of [`Archive::commit`].
async fn joined(task: tokio::task::JoinHandle<Result<(), StoreError>>) -> Result<(), StoreError> {
    task.await
        .map_err(|e| StoreError::out_of_resources(format!("storage task failed: {e}")))?
}

/// What the blocking part of [`Archive::commit`] says once the data set is
/// checked, before any fsync.
enum Checked {
    /// Being placed at its path in the tree; the thread's result says
    /// whether it became durable there.
    Placing(Box<Placed>),
    /// Same data set, same transfer syntax as a stored version.
    Duplicate { version: i64 },
}

/// An instance on its way to its place in the tree, not yet indexed.
struct Placed {
    header: InstanceHeader,
    attributes: InstanceAttributes,
    checksum: String,
    version: i64,
    relative: String,
    size_bytes: i64,
}

/// Checks the data set to its end, then places the file in the tree, durable
/// with its name. The check comes first so that the write-back started
/// while receiving has time to progress before `fsync`, and so that a
/// refused instance costs no `fsync`. What the check found is sent on
/// `checked` before the fsyncs; the result says whether they succeeded.
fn place_durably(
    layout: &Layout,
    pending: PendingInstance,
    max_inflated: u64,
    checksum: String,
    versions: oneshot::Receiver<Vec<crate::index::StoredVersion>>,
    checked: oneshot::Sender<Checked>,
) -> Result<(), StoreError> {
    let attributes = inspect(
        pending.file.path(),
        pending.dataset_offset,
        &pending.header.transfer_syntax_uid,
        max_inflated,
    )
    .map_err(|e| match e {
        InspectError::InflatesPastLimit { .. } => StoreError::out_of_resources(e.to_string()),
        e => StoreError::cannot_understand(e.to_string()),
    })?;
    check_against_command(&attributes, &pending.header)?;
    let versions = versions
        .blocking_recv()
        .map_err(|_| StoreError::out_of_resources("the index could not be read"))?;
    if let Some(same) = versions.iter().find(|v| {
        v.checksum == checksum && v.transfer_syntax_uid == pending.header.transfer_syntax_uid
    }) {
        let _ = checked.send(Checked::Duplicate {
            version: same.version,
        });
        return Ok(());
    }
    let version = versions.last().map_or(1, |v| v.version + 1);
    let relative = Layout::relative_instance_path(
        &attributes.study_instance_uid,
        &attributes.series_instance_uid,
        &attributes.sop_instance_uid,
        version,
    );
    let size_bytes =
        i64::try_from(pending.dataset_offset + pending.dataset_len).unwrap_or(i64::MAX);
    let target = layout.absolute(&relative);
    let placing = Checked::Placing(Box::new(Placed {
        header: pending.header,
        attributes,
        checksum,
        version,
        relative,
        size_bytes,
    }));
    if checked.send(placing).is_err() {
        // Nobody waits for this instance any more (the association was
        // stopped): it will not be acknowledged, so it is not placed.
        return Ok(());
    }
    place(pending.file, &target)
        .map_err(|e| StoreError::out_of_resources(format!("cannot place the instance: {e}")))
}

fn check_against_command(
    attributes: &InstanceAttributes,
    header: &InstanceHeader,
) -> Result<(), StoreError> {
    for (name, value) in [
        ("SOP Instance UID (0008,0018)", &attributes.sop_instance_uid),
        ("SOP Class UID (0008,0016)", &attributes.sop_class_uid),
        (
            "Study Instance UID (0020,000D)",
            &attributes.study_instance_uid,
        ),
        (
            "Series Instance UID (0020,000E)",
            &attributes.series_instance_uid,
        ),
    ] {
        if value.is_empty() {
            return Err(StoreError::does_not_match(format!(
                "the data set has no {name}"
            )));
        }
        validate_uid(value).map_err(|e| StoreError::cannot_understand(format!("{name}: {e}")))?;
    }
    if attributes.sop_instance_uid != header.sop_instance_uid {
        return Err(StoreError::does_not_match(format!(
            "the data set's SOP Instance UID {} differs from the command's {}",
            attributes.sop_instance_uid, header.sop_instance_uid
        )));
    }
    if attributes.sop_class_uid != header.sop_class_uid {
        return Err(StoreError::does_not_match(format!(
            "the data set's SOP Class UID {} differs from the command's {}",
            attributes.sop_class_uid, header.sop_class_uid
        )));
    }
    Ok(())
}

/// Renames the file into the tree, then makes its content and its name
/// durable with the two fsyncs in parallel rather than one after the other:
/// on one association they are on the path of every acknowledgement. Nothing
/// is indexed or acknowledged before both have returned; a file a crash
/// leaves in the tree unsynced was never indexed, and a re-send replaces it.
fn place(file: NamedTempFile, target: &Path) -> std::io::Result<()> {
    let dir = target
        .parent()
        .ok_or_else(|| std::io::Error::other("instance path has no folder"))?;
    create_dir_durable(dir)?;
    // A file already at `target` was placed by an earlier attempt that was
    // never indexed (crash between rename and commit): replacing it is safe.
    let file = file.persist(target).map_err(|e| e.error)?;
    // A thread of its own for the directory: ~30 µs to start, against two
    // fsyncs of ~0.2 ms each; a shared pool would make concurrent
    // associations queue for it.
    let (content, name) = std::thread::scope(|scope| {
        let name = scope.spawn(|| sync_dir(dir));
        let content = file.sync_all();
        let name = name
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the directory sync panicked")));
        (content, name)
    });
    if let Err(e) = content.and(name) {
        // Not durable, so never to be indexed: out of the tree again.
        let _ = std::fs::remove_file(target);
        return Err(e);
    }
    Ok(())
}

fn unplace(target: &Path) -> std::io::Result<()> {
    std::fs::remove_file(target)?;
    if let Some(dir) = target.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn db_failure(e: sqlx::Error) -> StoreError {
    StoreError::out_of_resources(format!("cannot index the instance: {e}"))
}

fn stripe(sop: &str) -> usize {
    sop.bytes().fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    }) % SOP_LOCK_STRIPES
}
