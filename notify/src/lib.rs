//! Notifications: workflow events of the study log reach people outside
//! the browser. The [`planner`] turns each event into durable deliveries
//! (who, by which channel, what) in the transaction that moves its cursor;
//! the [`worker`] sends them, by signed webhook ([`webhook`],
//! [`signature`]) or e-mail ([`email`]), retried and logged. The browser's
//! own stream (server-sent events) reads the same log, in the worklist
//! crate.

pub mod email;
pub mod plan;
pub mod planner;
pub mod signature;
pub mod webhook;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use telerad_config::Config;
use telerad_store::events::RetryPolicy;
use telerad_store::{Clock, Database};
use tokio::sync::watch;

use crate::plan::Addresses;
use crate::planner::Planner;
use crate::webhook::WebhookClient;
use crate::worker::Worker;

/// The longest sleep between two looks at the log and the deliveries;
/// appends in this process (and, through `LISTEN`, in others) wake it
/// sooner.
const POLL: Duration = Duration::from_secs(5);

pub struct Notifier {
    planner: Planner,
    worker: Arc<Worker>,
    db: Database,
    clock: Arc<dyn Clock>,
}

impl Notifier {
    pub fn new(
        config: &Config,
        db: Database,
        clock: Arc<dyn Clock>,
    ) -> Result<Notifier, email::EmailError> {
        let addresses = Addresses::from_config(config);
        let n = &config.notifications;
        let timeout = Duration::from_secs(n.timeout_secs);
        let domain = n
            .public_url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':']).next())
            .filter(|host| !host.is_empty())
            .unwrap_or("telerad.invalid");
        let mailer = n
            .smtp
            .as_ref()
            .map(|smtp| email::Mailer::new(smtp, timeout, domain))
            .transpose()?;
        let retry = RetryPolicy {
            max_attempts: i64::from(n.max_attempts),
            first_delay: Duration::from_secs(n.first_retry_secs),
            max_delay: Duration::from_secs(n.max_retry_secs),
        };
        let worker = Worker::new(
            db.clone(),
            addresses.clone(),
            WebhookClient::new(timeout),
            mailer,
            retry,
            clock.clone(),
        );
        Ok(Notifier {
            planner: Planner::new(db.clone(), addresses),
            worker: Arc::new(worker),
            db,
            clock,
        })
    }

    /// Plans and sends until shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut bell = self.db.events_bell();
        while let Err(e) = self.planner.register().await {
            tracing::error!("cannot register the notifier's cursor: {e}; retrying");
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => return,
            }
        }
        loop {
            loop {
                match self.planner.plan_next(self.clock.now_ms()).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::error!("cannot plan notifications: {e}");
                        break;
                    }
                }
            }
            if let Err(e) = self.worker.send_due().await {
                tracing::error!("cannot send notifications: {e}");
            }
            let idle = self.worker.idle_for(POLL).await;
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = bell.changed() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
