//! The quiet-period sweep: a study is complete once its site's quiet period
//! has passed without a new instance, or once a Modality Performed
//! Procedure Step set COMPLETED has all the instances it names. The due time lives in the database, so
//! a restart neither forgets a pending study nor completes it early.

use crate::archive::Archive;
use crate::index::StudyEvent;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the sweep looks; bounds how late a completion can be.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// Claims of stored versions are kept this long (see
/// [`crate::index::StudyIndex::release_settled_claims`]), and looked at
/// every this many sweeps.
const CLAIMS_KEPT_MS: i64 = 10 * 60 * 1000;
const SWEEPS_PER_CLAIM_CLEANUP: u32 = 240;

pub async fn run_completion(archive: Arc<Archive>, mut shutdown: watch::Receiver<bool>) {
    let mut sweeps = 0u32;
    loop {
        sweeps = sweeps.wrapping_add(1);
        if sweeps.is_multiple_of(SWEEPS_PER_CLAIM_CLEANUP) {
            let before = archive.clock().now_ms() - CLAIMS_KEPT_MS;
            if let Err(e) = archive.index().release_settled_claims(before).await {
                tracing::warn!("cannot remove settled version claims: {e}");
            }
        }
        let now = archive.clock().now_ms();
        match archive.index().complete_quiet_studies(now).await {
            Ok(events) => announce(&archive, &events, "quiet period over"),
            Err(e) => tracing::error!("quiet-period sweep failed: {e}"),
        }
        // Steps a modality set COMPLETED before all their images came.
        match archive.index().settle_performed_steps(now).await {
            Ok(events) => announce(
                &archive,
                &events,
                "its performed procedure step has all its images",
            ),
            Err(e) => tracing::error!("performed procedure step sweep failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            _ = archive.completion_due().notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Wakes the event log's consumers for the studies just completed, and
/// logs each with why it is complete.
pub fn announce(archive: &Archive, completed: &[StudyEvent], why: &str) {
    if !completed.is_empty() {
        archive.study_events().notify_one();
    }
    for event in completed {
        tracing::info!(
            study_instance_uid = %event.study_instance_uid,
            instances = event.instance_count,
            "study complete: {why}"
        );
    }
}
