//! One signed webhook call (Standard Webhooks), over a blocking HTTP client
//! on tokio's blocking pool: a call is short, bounded by the timeout, and
//! ureq (already telerad's HTTP client in tests) speaks rustls.

use std::time::Duration;

use crate::signature;

/// What the endpoint answered, or why it could not be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx status: delivered.
    Accepted(u16),
    /// Any other status.
    Refused(u16, String),
    /// No answer (refused connection, timeout, TLS failure).
    Unreachable(String),
}

#[derive(Clone)]
pub struct WebhookClient {
    agent: ureq::Agent,
}

impl WebhookClient {
    pub fn new(timeout: Duration) -> WebhookClient {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // Statuses are answers to record, not transport errors.
            .http_status_as_error(false)
            // A redirect could take a signed body elsewhere.
            .max_redirects(0)
            .build()
            .into();
        WebhookClient { agent }
    }

    /// POSTs `body` to `url` as message `id`, signed with `key` at
    /// `timestamp` (Unix seconds).
    pub async fn call(
        &self,
        url: &str,
        key: &[u8],
        id: &str,
        timestamp: i64,
        body: String,
    ) -> Answer {
        let headers = signature::sign(key, id, timestamp, body.as_bytes());
        let agent = self.agent.clone();
        let url = url.to_string();
        let call = tokio::task::spawn_blocking(move || {
            let response = agent
                .post(&url)
                .header("content-type", "application/json")
                .header("webhook-id", &headers.id)
                .header("webhook-timestamp", headers.timestamp.to_string())
                .header("webhook-signature", &headers.signature)
                .send(body);
            match response {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    if (200..300).contains(&status) {
                        Answer::Accepted(status)
                    } else {
                        // A few hundred bytes of the answer tell an
                        // operator why; the rest is not read.
                        let text = response
                            .body_mut()
                            .with_config()
                            .limit(512)
                            .read_to_string()
                            .unwrap_or_default();
                        Answer::Refused(status, text)
                    }
                }
                Err(e) => Answer::Unreachable(e.to_string()),
            }
        });
        match call.await {
            Ok(answer) => answer,
            Err(e) => Answer::Unreachable(format!("the call's task failed: {e}")),
        }
    }
}
