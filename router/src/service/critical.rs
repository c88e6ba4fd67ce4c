//! Critical results past their deadline: the router's pass over the
//! durable timers escalates each one the site has not acknowledged. The
//! result is marked escalated and an alert is raised for the coordinators;
//! the loop's view shows the reader the form's callback number. Notifying
//! the site's other clinicians (e-mail, webhooks) is still to come.

use super::{Router, RouterError};
use crate::assignment;
use telerad_store::critical;
use telerad_store::index::TIMER_LEASE_MS;
use telerad_store::timers::{self, TimerKind};

impl Router {
    /// Escalates every critical result whose deadline has passed.
    pub async fn escalate_critical_due(&self) -> Result<usize, RouterError> {
        let now = self.now();
        let node = self.archive.index().node_id();
        let due = timers::claim_due(
            self.db(),
            TimerKind::CriticalResult,
            node,
            now,
            TIMER_LEASE_MS,
            100,
        )
        .await?;
        let mut escalated = 0;
        for timer in due {
            let mut tx = self.db().begin_write().await?;
            if critical::escalate(&mut tx, timer.subject_id, now).await?
                && let Some(row) = critical::by_id(&mut tx, timer.subject_id).await?
            {
                let detail = format!(
                    "critical result (ACR category {}) not acknowledged by the site in time: {}",
                    row.category, row.finding
                );
                assignment::raise_alert(&mut tx, row.study_id, now, "critical_result", &detail)
                    .await?;
                tracing::warn!(critical_result = row.id, "{detail}");
                escalated += 1;
            }
            timers::done(&mut tx, &timer, node).await?;
            tx.commit().await?;
        }
        Ok(escalated)
    }
}
