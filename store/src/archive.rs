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
use crate::index::{IdentityConflict, IndexError, NewInstance, StudyIndex};
use crate::layout::{Layout, create_dir_durable, sync_dir};
use crate::metadata_writer::MetadataWriter;
use crate::writeback::Writeback;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use telerad_dicom::inspect::{InspectError, InstanceAttributes, inspect};
use telerad_dicom::part10::{InstanceHeader, header_bytes};
use telerad_dicom::uid::validate_uid;
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
    /// The SOP classes stored ([`telerad_config::DicomConfig::storage_sop_classes`]).
    storage_sop_classes: std::collections::HashSet<String>,
    /// Signalled when study events are recorded, here or (PostgreSQL) by
    /// another process, so that their consumer (the router) need not wait
    /// for its next poll.
    study_events: Arc<tokio::sync::Notify>,
    /// Wakes the completion sweep before its next round, when a
    /// completion was brought forward to now.
    completion_due: tokio::sync::Notify,
    _event_listener: Option<crate::events::AbortOnDrop>,
    /// Builds the WADO-RS metadata of complete studies.
    _metadata: MetadataWriter,
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
    /// The study the sender said the instance belongs to (STOW-RS to
    /// `/studies/{study}`), checked against the data set.
    expected_study: Option<String>,
}

impl PendingInstance {
    /// Refuse the instance at commit if its data set is of another study.
    pub fn expect_study(&mut self, study_instance_uid: &str) {
        self.expected_study = Some(study_instance_uid.to_string());
    }

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
    #[error("cannot record the configured sites and radiologists in the database: {0}")]
    Sites(#[source] sqlx::Error),
    #[error("cannot start the WADO-RS metadata writer: {0}")]
    Metadata(#[source] sqlx::Error),
}

impl Archive {
    /// Opens the storage folder and the index named by the configuration.
    pub async fn open(
        config: &telerad_config::Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Archive, OpenError> {
        let root = &config.storage.data_dir;
        let layout =
            Layout::open(root, &config.storage.node_id()).map_err(|source| OpenError::Storage {
                path: root.display().to_string(),
                source,
            })?;
        let db = crate::db::Database::connect(&config.database_url()).await?;
        let index = StudyIndex::new(db).with_node(layout.node_id());
        index
            .sync_configuration(config)
            .await
            .map_err(OpenError::Sites)?;
        let quiet_periods: HashMap<String, std::time::Duration> = config
            .sites
            .iter()
            .map(|site| (site.name.clone(), site.quiet_period(&config.studies)))
            .collect();
        // This node's receptions in progress were removed with `incoming/`.
        let released = index
            .release_claims_of(layout.node_id())
            .await
            .map_err(OpenError::Sites)?;
        if released > 0 {
            tracing::info!(
                released,
                "version claims of receptions interrupted by a stop removed"
            );
        }
        let study_events = Arc::new(tokio::sync::Notify::new());
        let _event_listener = crate::events::wake_on_append(index.database(), study_events.clone());
        let _metadata = MetadataWriter::start(index.clone(), layout.clone())
            .await
            .map_err(OpenError::Metadata)?;
        Ok(Archive {
            layout,
            index,
            quiet_periods,
            clock,
            sop_locks: (0..SOP_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            study_events,
            completion_due: tokio::sync::Notify::new(),
            _event_listener,
            _metadata,
            max_instance_bytes: config.dicom.max_instance_bytes,
            storage_sop_classes: config.dicom.storage_sop_classes().into_iter().collect(),
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

    /// Whether instances of `sop_class_uid` are stored here.
    pub fn stores_sop_class(&self, sop_class_uid: &str) -> bool {
        self.storage_sop_classes.contains(sop_class_uid)
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Notified (one permit, kept if nobody waits) when study events are
    /// recorded: by this process, or by another one sharing the PostgreSQL
    /// database.
    pub fn study_events(&self) -> &tokio::sync::Notify {
        &self.study_events
    }

    /// Notified when a study's completion falls due before the sweep's
    /// next round (one permit, kept if the sweep is busy).
    pub fn completion_due(&self) -> &tokio::sync::Notify {
        &self.completion_due
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
            expected_study: None,
        })
    }

    /// Makes the instance durable and indexed; see the module documentation.
    pub async fn commit(&self, pending: PendingInstance, site: &str) -> Result<Stored, StoreError> {
        let sop = pending.header.sop_instance_uid.clone();
        let mut claimed = None;
        let stored = self.commit_claiming(pending, site, &mut claimed).await;
        if let (Err(_), Some(version)) = (&stored, claimed)
            && let Err(e) = self.index.release_claim(&sop, version).await
        {
            tracing::warn!(sop_instance_uid = %sop, version, "cannot release a version claim: {e}");
        }
        stored
    }

    async fn commit_claiming(
        &self,
        pending: PendingInstance,
        site: &str,
        claimed: &mut Option<i64>,
    ) -> Result<Stored, StoreError> {
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
        let owner_site = site.to_string();
        let owner = Owner {
            site: site.to_string(),
            at: self.clock.now_ms(),
        };
        let transfer_syntax_uid = pending.header.transfer_syntax_uid.clone();
        let our_checksum = checksum.clone();
        let max_inflated = self.max_instance_bytes;
        let durable = tokio::task::spawn_blocking(move || {
            place_durably(
                &layout,
                pending,
                max_inflated,
                checksum,
                &owner,
                versions_rx,
                checked_tx,
            )
        });
        let claim = async {
            let versions = self.index.versions_of(&sop).await?;
            // Other nodes may be placing this SOP instance too: on
            // PostgreSQL the version is claimed before the file takes its
            // name, unless the thread will find nothing to place (the same
            // content, or another site's instance).
            let placing = self.index.database().backend == crate::db::Backend::Postgres
                && !versions.iter().any(|v| {
                    v.site != owner_site
                        || (v.checksum == our_checksum
                            && v.transfer_syntax_uid == transfer_syntax_uid)
                });
            let version = match placing {
                true => {
                    let next = versions.last().map_or(1, |v| v.version + 1);
                    let node = self.layout.node_id();
                    let now = self.clock.now_ms();
                    Some(self.index.claim_version(&sop, next, node, now).await?)
                }
                false => None,
            };
            Ok::<_, sqlx::Error>((versions, version))
        };
        match claim.await {
            Ok((versions, version)) => {
                *claimed = version;
                let _ = versions_tx.send((versions, version));
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
            Ok(Checked::Conflict(conflict)) => {
                joined(durable).await?;
                return Err(self.refuse(&conflict).await);
            }
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
            Some(Ok(staged)) => staged.commit().await.map_err(IndexError::from),
            Some(Err(e)) => Err(e),
            None => self.index.record_instance(&new).await,
        };
        if let Err(e) = indexed {
            // Not indexed means not stored: take the file back out of the tree.
            let _ = tokio::task::spawn_blocking(move || unplace(&absolute)).await;
            return Err(match e {
                IndexError::Database(e) => db_failure(e),
                IndexError::Conflict(conflict) => self.refuse(&conflict).await,
            });
        }
        if version > 1 {
            tracing::info!(sop_instance_uid = %sop, version, "same SOP Instance UID with different content: stored as version {version}");
        }
        Ok(Stored::New {
            version,
            path: relative,
        })
    }
}

impl Archive {
    /// Records an identity conflict for operators and says why the instance
    /// is refused.
    async fn refuse(&self, conflict: &IdentityConflict) -> StoreError {
        tracing::warn!(
            site = %conflict.site,
            owner_site = %conflict.owner_site,
            study_instance_uid = %conflict.study_instance_uid,
            sop_instance_uid = %conflict.sop_instance_uid,
            "instance refused: {}", conflict.detail
        );
        if let Err(e) = self.index.record_conflict(conflict).await {
            tracing::error!("cannot record the identity conflict: {e}");
        }
        StoreError::refused(conflict.detail.clone())
    }
}

/// The site an instance is received for, and when.
struct Owner {
    site: String,
    at: i64,
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
    /// The SOP Instance UID is stored for another site: refused, nothing
    /// placed.
    Conflict(Box<IdentityConflict>),
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
    owner: &Owner,
    versions: oneshot::Receiver<(Vec<crate::index::StoredVersion>, Option<i64>)>,
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
    if let Some(expected) = &pending.expected_study
        && attributes.study_instance_uid != *expected
    {
        return Err(StoreError::does_not_match(format!(
            "the data set's Study Instance UID {} is not the study {expected} it was sent to",
            attributes.study_instance_uid
        )));
    }
    let (versions, claimed) = versions
        .blocking_recv()
        .map_err(|_| StoreError::out_of_resources("the index could not be read"))?;
    if let Some(other) = versions.iter().find(|v| v.site != owner.site) {
        let _ = checked.send(Checked::Conflict(Box::new(IdentityConflict {
            at: owner.at,
            site: owner.site.clone(),
            calling_ae_title: pending.header.calling_ae_title.trim().to_string(),
            study_instance_uid: attributes.study_instance_uid.clone(),
            series_instance_uid: attributes.series_instance_uid.clone(),
            sop_instance_uid: attributes.sop_instance_uid.clone(),
            owner_site: other.site.clone(),
            detail: format!(
                "SOP Instance UID {} is stored for site {}, not for {}",
                attributes.sop_instance_uid, other.site, owner.site
            ),
        })));
        return Ok(());
    }
    if let Some(same) = versions.iter().find(|v| {
        v.checksum == checksum && v.transfer_syntax_uid == pending.header.transfer_syntax_uid
    }) {
        let _ = checked.send(Checked::Duplicate {
            version: same.version,
        });
        return Ok(());
    }
    let version = claimed.unwrap_or_else(|| versions.last().map_or(1, |v| v.version + 1));
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
