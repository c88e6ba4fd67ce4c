//! Reads the study event log with its own cursor (consumer "notifier") and
//! plans the deliveries each workflow event calls for, in the transaction
//! that moves the cursor: an event is planned exactly once, whatever
//! crashes, and several processes sharing PostgreSQL take turns.

use telerad_store::Database;
use telerad_store::deliveries::{self, NewDelivery};
use telerad_store::events::{Consumer, Event, EventError, Failure, RetryPolicy, Tx};

use crate::plan::Addresses;

/// The notifier's cursor in `event_consumers`.
pub const CONSUMER: &str = "notifier";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Event(#[from] EventError),
}

pub struct Planner {
    db: Database,
    addresses: Addresses,
    consumer: Consumer,
}

impl Planner {
    pub fn new(db: Database, addresses: Addresses) -> Planner {
        Planner {
            db,
            addresses,
            consumer: Consumer::new(CONSUMER, RetryPolicy::default()),
        }
    }

    /// Creates the cursor at the end of the log if it does not exist: a
    /// database that had events before notifications existed does not send
    /// a night's worth of old news.
    pub async fn register(&self) -> Result<(), sqlx::Error> {
        self.consumer.register_at_end(&self.db).await
    }

    /// Plans the next event, or else a failed one whose retry is due;
    /// `Ok(false)` when there is neither.
    pub async fn plan_next(&self, now: i64) -> Result<bool, PlanError> {
        let mut tx = self.db.begin().await?;
        let cursor = self.consumer.lock_cursor(&mut tx).await?;
        let Some((event_id, event)) = self.consumer.next_after(&mut tx, cursor).await? else {
            tx.rollback().await?;
            return self.retry_due(now).await;
        };
        match self.plan_event(&mut tx, event, now).await {
            Ok(()) => {
                self.consumer.advance(&mut tx, event_id).await?;
                tx.commit().await?;
            }
            Err(PlanError::Database(e)) => return Err(e.into()),
            Err(e) => {
                tx.rollback().await?;
                self.set_aside(event_id, Some(cursor), &e, now).await?;
            }
        }
        Ok(true)
    }

    async fn retry_due(&self, now: i64) -> Result<bool, PlanError> {
        let mut tx = self.db.begin().await?;
        self.consumer.lock_cursor(&mut tx).await?;
        let Some((event_id, event)) = self.consumer.due_retry(&mut tx, now).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        match self.plan_event(&mut tx, event, now).await {
            Ok(()) => {
                self.consumer.clear_failure(&mut tx, event_id).await?;
                tx.commit().await?;
            }
            Err(PlanError::Database(e)) => return Err(e.into()),
            Err(e) => {
                tx.rollback().await?;
                self.set_aside(event_id, None, &e, now).await?;
            }
        }
        Ok(true)
    }

    async fn plan_event(
        &self,
        tx: &mut Tx<'_>,
        event: Result<Event, EventError>,
        now: i64,
    ) -> Result<(), PlanError> {
        let event = event?;
        if !event.kind.is_workflow() {
            return Ok(());
        }
        let Some(facts) = deliveries::study_facts(tx, event.study_id).await? else {
            return Ok(());
        };
        for planned in self.addresses.plan(&event, &facts) {
            let new = NewDelivery {
                event_id: event.id,
                channel: planned.channel,
                recipient: planned.recipient,
                target: planned.target,
                payload: planned.payload,
            };
            deliveries::plan(tx, &new, now).await?;
        }
        Ok(())
    }

    async fn set_aside(
        &self,
        event_id: telerad_store::EventId,
        at_cursor: Option<telerad_store::EventId>,
        error: &PlanError,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let outcome = self
            .consumer
            .record_failure(&self.db, event_id, at_cursor, &error.to_string(), now)
            .await?;
        if !matches!(outcome, Failure::Superseded) {
            tracing::error!(
                event_id = event_id.0,
                "cannot plan the notifications of an event ({outcome:?}): {error}"
            );
        }
        Ok(())
    }
}
