//! Sends the storage commitment reports kept for an association of their
//! own (DICOM PS3.4 J.3.3.1.2): telerad associates with the requester's
//! configured address, asks to be the SCP of the Storage Commitment Push
//! Model (role selection, PS3.7 D.3.3.4), and sends the N-EVENT-REPORT. A
//! requester that cannot be reached is tried again with backoff until the
//! attempts are used up; a worker that dies mid-way hands its report back
//! after the lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use telerad_dicom::commitment::{
    Outcomes, STORAGE_COMMITMENT_INSTANCE, STORAGE_COMMITMENT_PUSH_MODEL,
};
use telerad_dicom::transfer_syntax::{EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
use telerad_scp::scu::Negotiation;
use telerad_scp::{ClientAssociation, Destination};
use telerad_store::commitment_reports::{CommitmentReports, Report};
use telerad_store::deliveries::Outcome;
use telerad_store::events::RetryPolicy;
use tokio::sync::watch;

/// Long past any one attempt (each is cut at [`SEND_LIMIT`]).
const LEASE_MS: i64 = 5 * 60 * 1000;
/// The longest one report may take, association to release.
const SEND_LIMIT: Duration = Duration::from_secs(60);
/// The wait for each answer of the requester.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the worker looks without being woken: another node's reports,
/// retries due.
const POLL: Duration = Duration::from_secs(5);

pub struct ReportSender {
    reports: Arc<CommitmentReports>,
    calling_ae_title: String,
    retry: RetryPolicy,
    name: String,
}

impl ReportSender {
    pub fn new(
        reports: Arc<CommitmentReports>,
        calling_ae_title: &str,
        retry: RetryPolicy,
    ) -> ReportSender {
        ReportSender {
            reports,
            calling_ae_title: calling_ae_title.trim().to_string(),
            retry,
            // Unique per process start, as the notification worker's.
            name: format!(
                "commitment-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ),
        }
    }

    /// Sends reports as they are kept, until shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.send_due(&shutdown).await {
                tracing::error!("storage commitment reports: cannot read the queue: {e}");
            }
            let wait = match self.reports.next_due().await {
                Ok(Some(at)) => {
                    let ms = at.saturating_sub(self.reports.now_ms()).max(0);
                    Duration::from_millis(u64::try_from(ms).unwrap_or(0)).min(POLL)
                }
                _ => POLL,
            };
            tokio::select! {
                _ = self.reports.wait_for_work(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Sends every due report, one at a time, until a stop is asked; how
    /// many were tried. A requester that cannot be reached is not tried
    /// again in the same round: its other reports wait for their retry.
    pub async fn send_due(&self, shutdown: &watch::Receiver<bool>) -> Result<usize, sqlx::Error> {
        let reclaimed = self
            .reports
            .reclaim_expired(self.retry.max_attempts)
            .await?;
        if reclaimed > 0 {
            tracing::warn!(
                reclaimed,
                "storage commitment reports whose sender stopped mid-way are due again"
            );
        }
        let mut tried = 0;
        let mut unreachable: HashMap<String, String> = HashMap::new();
        while !*shutdown.borrow() {
            let Some(report) = self.reports.claim_due(&self.name, LEASE_MS).await? else {
                break;
            };
            tried += 1;
            let result = match unreachable.get(&report.address) {
                Some(error) => Err(format!("not tried: {error}")),
                None => {
                    let mut stop = shutdown.clone();
                    tokio::select! {
                        sent = tokio::time::timeout(SEND_LIMIT, self.send(&report)) => match sent {
                            Ok(result) => result,
                            Err(_) => Err(format!("no end within {} s", SEND_LIMIT.as_secs())),
                        },
                        // Left claimed: after its lease it is due again,
                        // flagged, since it may have arrived.
                        _ = stop.wait_for(|stop| *stop) => return Ok(tried),
                    }
                }
            };
            if let Err(error) = &result
                && !error.starts_with("not tried")
            {
                unreachable.insert(report.address.clone(), error.clone());
            }
            match result {
                Ok(()) => {
                    if !self.reports.mark_sent(&report, &self.name).await? {
                        tracing::warn!(report = report.id, "report sent after its claim ran out");
                    }
                    tracing::info!(
                        report = report.id,
                        requester = %report.ae_title,
                        transaction = %report.transaction_uid,
                        "storage commitment report sent"
                    );
                }
                Err(error) => {
                    let outcome = self
                        .reports
                        .mark_failed(&report, &self.name, &error, &self.retry)
                        .await?;
                    match outcome {
                        Outcome::Retrying { next_attempt_at } => tracing::warn!(
                            report = report.id,
                            requester = %report.ae_title,
                            attempts = report.attempts,
                            next_attempt_at,
                            "storage commitment report not sent, will retry: {error}"
                        ),
                        Outcome::Dead => tracing::error!(
                            report = report.id,
                            requester = %report.ae_title,
                            attempts = report.attempts,
                            "storage commitment report not sent, attempts used up: {error}"
                        ),
                        Outcome::Superseded => {}
                    }
                }
            }
        }
        Ok(tried)
    }

    async fn send(&self, report: &Report) -> Result<(), String> {
        let outcomes: Outcomes = serde_json::from_str(&report.outcomes)
            .map_err(|e| format!("the kept report cannot be read: {e}"))?;
        let destination = Destination {
            ae_title: report.ae_title.clone(),
            address: report.address.clone(),
        };
        let proposals = [
            (
                STORAGE_COMMITMENT_PUSH_MODEL.to_string(),
                EXPLICIT_VR_LITTLE_ENDIAN.to_string(),
            ),
            (
                STORAGE_COMMITMENT_PUSH_MODEL.to_string(),
                IMPLICIT_VR_LITTLE_ENDIAN.to_string(),
            ),
        ];
        let mut association = ClientAssociation::connect_as(
            &self.calling_ae_title,
            &destination,
            &proposals,
            Negotiation {
                scp_roles: &[STORAGE_COMMITMENT_PUSH_MODEL],
                ..Negotiation::default()
            },
            NETWORK_TIMEOUT,
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
        match association.scp_role_accepted(STORAGE_COMMITMENT_PUSH_MODEL) {
            Some(true) => {}
            Some(false) => {
                let _ = association.release().await;
                return Err(
                    "the requester refused telerad as the SCP of storage commitment".into(),
                );
            }
            // Without an answer the default roles hold (PS3.7 D.3.3.4);
            // many requesters take the report all the same.
            None => tracing::warn!(
                requester = %report.ae_title,
                "the requester did not answer the role selection: sending the report anyway"
            ),
        }
        // Explicit VR first: both were proposed, and some requesters take
        // the first they like.
        let Some(transfer_syntax) = [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN]
            .into_iter()
            .find(|ts| {
                association
                    .accepted_contexts()
                    .iter()
                    .any(|(_, a, t)| a == STORAGE_COMMITMENT_PUSH_MODEL && t == ts)
            })
        else {
            let _ = association.release().await;
            return Err("the requester accepted no storage commitment context".into());
        };
        let (event_type, data) = outcomes
            .report(transfer_syntax)
            .map_err(|e| format!("the report cannot be encoded: {e}"))?;
        let status = association
            .event_report(
                STORAGE_COMMITMENT_PUSH_MODEL,
                STORAGE_COMMITMENT_INSTANCE,
                event_type,
                transfer_syntax,
                &data,
            )
            .await
            .map_err(|e| e.to_string())?;
        // The requester has answered: a release that goes wrong now changes
        // nothing of what it was told.
        if let Err(e) = association.release().await {
            tracing::debug!("storage commitment report: release: {e}");
        }
        if status != 0 {
            return Err(format!("the requester answered status 0x{status:04X}"));
        }
        Ok(())
    }
}
