//! Sends the planned deliveries: claims a due one for a lease, calls the
//! webhook or the relay, records the answer; failures are retried with
//! backoff until the attempts are used up, then kept as dead for an
//! operator's retry.

use std::sync::Arc;
use std::time::Duration;

use telerad_store::deliveries::{self, Channel, Delivery, Outcome};
use telerad_store::events::RetryPolicy;
use telerad_store::{Clock, Database};
use tokio::task::JoinSet;

use crate::email::Mailer;
use crate::plan::Addresses;
use crate::webhook::{Answer, WebhookClient};

/// Calls in flight at once: a receiver that hangs until the timeout holds
/// up one of them, not the others.
const IN_FLIGHT: usize = 4;

/// Long enough for any call (each is cut at [`SEND_LIMIT`]); a worker that
/// died hands its deliveries back after it.
const LEASE_MS: i64 = 5 * 60 * 1000;

/// The longest one send may take, calls and SMTP exchanges alike.
const SEND_LIMIT: Duration = Duration::from_secs(150);

pub struct Worker {
    db: Database,
    addresses: Addresses,
    webhooks: WebhookClient,
    mailer: Option<Mailer>,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    name: String,
}

impl Worker {
    pub fn new(
        db: Database,
        addresses: Addresses,
        webhooks: WebhookClient,
        mailer: Option<Mailer>,
        retry: RetryPolicy,
        clock: Arc<dyn Clock>,
    ) -> Worker {
        Worker {
            db,
            addresses,
            webhooks,
            mailer,
            retry,
            clock,
            // Unique per process start even where every container's pid
            // is 1: a stale claim of an earlier run is never taken for ours.
            name: format!(
                "notify-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ),
        }
    }

    /// Sends every due delivery, a few at a time; returns how many were
    /// tried.
    pub async fn send_due(self: &Arc<Self>) -> Result<usize, sqlx::Error> {
        let now = self.clock.now_ms();
        let reclaimed = deliveries::reclaim_expired(&self.db, now, self.retry.max_attempts).await?;
        if reclaimed > 0 {
            tracing::warn!(
                reclaimed,
                "deliveries whose sender stopped mid-way are due again (flagged possible duplicates)"
            );
        }
        let mut tried = 0;
        let mut calls = JoinSet::new();
        let mut claiming = Ok(());
        loop {
            while claiming.is_ok() && calls.len() < IN_FLIGHT {
                match deliveries::claim_due(&self.db, &self.name, self.clock.now_ms(), LEASE_MS)
                    .await
                {
                    Ok(Some(delivery)) => {
                        tried += 1;
                        let worker = self.clone();
                        calls.spawn(async move { worker.deliver(delivery).await });
                    }
                    Ok(None) => break,
                    Err(e) => claiming = Err(e),
                }
            }
            // Every call in flight is waited for, whatever failed: dropping
            // them would leave delivered calls unrecorded, sent again after
            // the lease.
            match calls.join_next().await {
                Some(Ok(Err(e))) => tracing::error!("cannot record a delivery's outcome: {e}"),
                Some(Ok(Ok(()))) => {}
                Some(Err(e)) => tracing::error!("a delivery task failed: {e}"),
                None => return claiming.map(|()| tried),
            }
            if claiming.is_err() && calls.is_empty() {
                return claiming.map(|()| tried);
            }
        }
    }

    async fn deliver(&self, delivery: Delivery) -> Result<(), sqlx::Error> {
        // Well within the lease, whatever the transport's own timeouts
        // (lettre's apply per SMTP command): a slow send is a failure to
        // retry, never one another node takes over while it goes on.
        let send = async {
            match delivery.channel {
                Channel::Webhook => self.call(&delivery).await,
                Channel::Email => self.mail(&delivery).await,
            }
        };
        let result = match tokio::time::timeout(SEND_LIMIT, send).await {
            Ok(result) => result,
            Err(_) => Err((None, format!("no answer within {} s", SEND_LIMIT.as_secs()))),
        };
        let now = self.clock.now_ms();
        match result {
            Ok(status) => {
                if !deliveries::mark_sent(&self.db, &delivery, &self.name, status, now).await? {
                    tracing::warn!(delivery = delivery.id, "delivered after its claim ran out");
                }
                tracing::info!(
                    delivery = delivery.id,
                    recipient = %delivery.recipient,
                    kind = %delivery.kind,
                    "notification delivered"
                );
            }
            Err((status, error)) => {
                let outcome = deliveries::mark_failed(
                    &self.db,
                    &delivery,
                    &self.name,
                    &error,
                    status,
                    &self.retry,
                    now,
                )
                .await?;
                match outcome {
                    Outcome::Retrying { next_attempt_at } => tracing::warn!(
                        delivery = delivery.id,
                        recipient = %delivery.recipient,
                        attempts = delivery.attempts,
                        next_attempt_at,
                        "notification not delivered, will retry: {error}"
                    ),
                    Outcome::Dead => tracing::error!(
                        delivery = delivery.id,
                        recipient = %delivery.recipient,
                        attempts = delivery.attempts,
                        "notification not delivered, attempts used up (retry it from \
                         /api/deliveries): {error}"
                    ),
                    Outcome::Superseded => {}
                }
            }
        }
        // The endpoint is not told twice because this task ends here: the
        // webhook-id and Message-ID stay the same across retries.
        Ok(())
    }

    async fn call(&self, delivery: &Delivery) -> Result<Option<u16>, (Option<u16>, String)> {
        let Some(webhook) = self.addresses.webhook(&delivery.recipient) else {
            return Err((
                None,
                format!(
                    "{} has no webhook in the configuration any more",
                    delivery.recipient
                ),
            ));
        };
        let Some(key) = webhook.key() else {
            return Err((None, "the webhook's secret cannot be read".to_string()));
        };
        let id = format!("msg_telerad_{}", delivery.id);
        let timestamp = self.clock.now_ms().div_euclid(1000);
        match self
            .webhooks
            .call(
                // Today's address: a site that moved its endpoint (the old
                // one compromised, say) gets its retries at the new one.
                &webhook.url,
                &key,
                &id,
                timestamp,
                delivery.payload.clone(),
            )
            .await
        {
            Answer::Accepted(status) => Ok(Some(status)),
            Answer::Refused(status, text) => {
                Err((Some(status), format!("HTTP {status}: {}", text.trim())))
            }
            Answer::Unreachable(error) => Err((None, error)),
        }
    }

    async fn mail(&self, delivery: &Delivery) -> Result<Option<u16>, (Option<u16>, String)> {
        let Some(mailer) = &self.mailer else {
            return Err((
                None,
                "no SMTP relay in the configuration any more".to_string(),
            ));
        };
        mailer
            .send(
                delivery.id,
                self.addresses
                    .email_of(&delivery.recipient)
                    .unwrap_or(&delivery.target),
                &delivery.payload,
            )
            .await
            .map(|()| None)
            .map_err(|e| (None, e.to_string()))
    }

    /// How long the worker may sleep: until the next retry is due, at most
    /// `max`.
    pub async fn idle_for(&self, max: Duration) -> Duration {
        match deliveries::next_due(&self.db).await {
            Ok(Some(due)) => {
                let wait = due.saturating_sub(self.clock.now_ms()).max(0);
                Duration::from_millis(u64::try_from(wait).unwrap_or(0)).min(max)
            }
            _ => max,
        }
    }
}
