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

/// Long enough for any call (the timeout is at most two minutes); a worker
/// that died hands its deliveries back after it.
const LEASE_MS: i64 = 5 * 60 * 1000;

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
            name: format!("notify-{}", std::process::id()),
        }
    }

    /// Sends every due delivery, a few at a time; returns how many were
    /// tried.
    pub async fn send_due(self: &Arc<Self>) -> Result<usize, sqlx::Error> {
        let now = self.clock.now_ms();
        let reclaimed = deliveries::reclaim_expired(&self.db, now).await?;
        if reclaimed > 0 {
            tracing::warn!(
                reclaimed,
                "deliveries whose sender stopped mid-way are due again (flagged possible duplicates)"
            );
        }
        let mut tried = 0;
        let mut calls = JoinSet::new();
        loop {
            while calls.len() < IN_FLIGHT {
                let Some(delivery) =
                    deliveries::claim_due(&self.db, &self.name, self.clock.now_ms(), LEASE_MS)
                        .await?
                else {
                    break;
                };
                tried += 1;
                let worker = self.clone();
                calls.spawn(async move { worker.deliver(delivery).await });
            }
            match calls.join_next().await {
                Some(Ok(Err(e))) => return Err(e),
                Some(Ok(Ok(()))) => {}
                Some(Err(e)) => tracing::error!("a delivery task failed: {e}"),
                None => return Ok(tried),
            }
        }
    }

    async fn deliver(&self, delivery: Delivery) -> Result<(), sqlx::Error> {
        let result = match delivery.channel {
            Channel::Webhook => self.call(&delivery).await,
            Channel::Email => self.mail(&delivery).await,
        };
        let now = self.clock.now_ms();
        match result {
            Ok(status) => {
                if !deliveries::mark_sent(&self.db, delivery.id, &self.name, status, now).await? {
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
                &delivery.target,
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
            .send(delivery.id, &delivery.target, &delivery.payload)
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
