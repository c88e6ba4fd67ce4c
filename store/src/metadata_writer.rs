//! The WADO-RS metadata of stored instances (`instance_metadata`), built
//! and written behind the acknowledgements rather than on their path.
//!
//! Built on the storing thread and written in the instance's own
//! transaction, it cost about 0.5 ms of CPU per instance and a sixth of the
//! receiving throughput (BENCHMARKS.md, "WADO-RS metadata at storage"):
//! the JSON is read once per series by a viewer, the instance is
//! acknowledged once per scanner push, and it is the scanner that waits.
//! So a committed instance is queued here; one task builds the queued ones
//! on a blocking thread (the file is still in the page cache) and writes
//! them in one transaction per batch.
//!
//! Nothing here is needed for an acknowledged instance to be safe: a job
//! lost (a full queue, a crash, a shutdown) only means that the instance's
//! metadata is built at its first request instead, and kept then.

use crate::StudyIndex;
use crate::events::AbortOnDrop;
use std::path::PathBuf;
use tokio::sync::mpsc;

/// Jobs waiting at most: past that, new instances are left to their first
/// request (bounded memory whatever a scanner sends).
const QUEUE: usize = 4096;
/// Instances written per transaction.
const BATCH: usize = 64;

/// An instance committed to the index, whose metadata is still to build.
#[derive(Debug)]
pub(crate) struct MetadataJob {
    pub sop_instance_uid: String,
    pub version: i64,
    pub path: PathBuf,
    pub pixel_data: bool,
}

#[derive(Debug)]
pub(crate) struct MetadataWriter {
    jobs: mpsc::Sender<MetadataJob>,
    _task: AbortOnDrop,
}

impl MetadataWriter {
    pub fn spawn(index: StudyIndex) -> MetadataWriter {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(index, queue));
        MetadataWriter {
            jobs,
            _task: AbortOnDrop::new(task),
        }
    }

    /// Queues `job`; a full queue drops it (see the module's note).
    pub fn queue(&self, job: MetadataJob) {
        if let Err(mpsc::error::TrySendError::Full(job)) = self.jobs.try_send(job) {
            tracing::debug!(sop_instance_uid = %job.sop_instance_uid, "metadata queue full: built at its first request");
        }
    }
}

async fn run(index: StudyIndex, mut queue: mpsc::Receiver<MetadataJob>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let built = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .filter_map(|job| {
                    match telerad_dicom::metadata::instance_metadata(&job.path, job.pixel_data) {
                        Ok(json) => Some((job.sop_instance_uid, job.version, json)),
                        Err(e) => {
                            tracing::warn!(sop_instance_uid = %job.sop_instance_uid, "no WADO-RS metadata built: {e}");
                            None
                        }
                    }
                })
                .collect::<Vec<_>>()
        })
        .await;
        match built {
            Ok(built) => {
                if let Err(e) = index.keep_metadata_of_versions(&built).await {
                    tracing::warn!("WADO-RS metadata not written (built at first request): {e}");
                }
            }
            Err(e) => tracing::warn!("the metadata task failed: {e}"),
        }
    }
}
