//! E-mail through the configured SMTP relay (lettre), with STARTTLS or TLS
//! required unless the relay is on this machine.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use telerad_config::{Smtp, SmtpSecurity};

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("bad address: {0}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Message(String),
    #[error("the SMTP relay: {0}")]
    Smtp(String),
    #[error("the delivery's payload is not a stored e-mail: {0}")]
    Payload(String),
}

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: String,
    /// The domain of Message-IDs.
    domain: String,
}

impl Mailer {
    pub fn new(smtp: &Smtp, timeout: Duration, domain: &str) -> Result<Mailer, EmailError> {
        let builder = match smtp.security {
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            }
            SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &smtp.host,
            )),
        }
        .map_err(|e| EmailError::Smtp(e.to_string()))?;
        let mut builder = builder.port(smtp.port).timeout(Some(timeout));
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from: smtp.from.clone(),
            domain: domain.to_string(),
        })
    }

    /// Sends the stored payload (`{"subject", "text"}`) to `to`. The
    /// Message-ID is the delivery's: a resent one is recognisably the same.
    pub async fn send(&self, delivery_id: i64, to: &str, payload: &str) -> Result<(), EmailError> {
        let stored: serde_json::Value =
            serde_json::from_str(payload).map_err(|e| EmailError::Payload(e.to_string()))?;
        let subject = stored["subject"].as_str().unwrap_or("telerad");
        let text = stored["text"].as_str().unwrap_or_default().to_string();
        let message = Message::builder()
            .from(
                self.from
                    .parse()
                    .map_err(|e| EmailError::Address(format!("{}: {e}", self.from)))?,
            )
            .to(to
                .parse()
                .map_err(|e| EmailError::Address(format!("{to}: {e}")))?)
            .subject(subject)
            .message_id(Some(format!(
                "<telerad.delivery.{delivery_id}@{}>",
                self.domain
            )))
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| EmailError::Message(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| EmailError::Smtp(e.to_string()))?;
        Ok(())
    }
}
