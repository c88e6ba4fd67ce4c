//! `[notifications]`: how people are reached outside the browser (e-mail
//! through an SMTP relay, webhooks to paging or SMS gateways and to the
//! hospitals' systems), and how often a failed delivery is retried.
//! Addresses are the sites' and radiologists' own (`email`, `webhook`).

use std::ops::RangeInclusive;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::Config;
use crate::problem::Problem;

/// How a connection to the SMTP relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain, upgraded by STARTTLS, which must succeed (port 587).
    Starttls,
    /// No encryption: only for a relay on this machine.
    None,
}

/// The SMTP relay e-mails go through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// The sender, e.g. "telerad <telerad@example.org>".
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redacted"
    )]
    pub password: Option<String>,
}

/// An endpoint that receives signed JSON (Standard Webhooks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    /// The shared secret, "whsec_" and base64 of 24 to 64 random bytes.
    #[serde(serialize_with = "redacted_str")]
    pub secret: String,
}

impl Webhook {
    /// The signing key: the secret's bytes after "whsec_".
    pub fn key(&self) -> Option<Vec<u8>> {
        let encoded = self.secret.strip_prefix("whsec_")?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
    }
}

fn redacted<S: serde::Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str("********"),
        None => s.serialize_none(),
    }
}

fn redacted_str<S: serde::Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("********")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Without a relay, no e-mail is planned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<Smtp>,
    /// telerad's address as people reach it, for the links in e-mails.
    pub public_url: String,
    /// Attempts of one delivery before it is kept as dead (an operator can
    /// retry it).
    pub max_attempts: u32,
    /// The wait after the first failure, doubling up to `max_retry_secs`.
    pub first_retry_secs: u64,
    pub max_retry_secs: u64,
    /// How long one webhook call may take.
    pub timeout_secs: u64,
}

impl Default for NotificationsConfig {
    /// Ten attempts from 5 s doubling to an hour: about four hours of a
    /// receiver being down before a delivery needs an operator.
    fn default() -> NotificationsConfig {
        NotificationsConfig {
            smtp: None,
            public_url: "https://localhost:8443".to_string(),
            max_attempts: 10,
            first_retry_secs: 5,
            max_retry_secs: 3_600,
            timeout_secs: 10,
        }
    }
}

const ATTEMPTS: RangeInclusive<u32> = 1..=100;
const RETRY_SECS: RangeInclusive<u64> = 1..=86_400;
const TIMEOUT_SECS: RangeInclusive<u64> = 1..=120;
const KEY_BYTES: RangeInclusive<usize> = 24..=64;

/// The problems of a webhook at `path`.
pub(crate) fn webhook_problems(path: &str, webhook: &Webhook) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(problem) = url_problem(&webhook.url) {
        problems.push(Problem::new(format!("{path}.url"), problem));
    }
    if !webhook
        .key()
        .is_some_and(|key| KEY_BYTES.contains(&key.len()))
    {
        problems.push(Problem::new(
            format!("{path}.secret"),
            "expected \"whsec_\" followed by the base64 of 24 to 64 random bytes \
             (e.g. `echo whsec_$(openssl rand -base64 32)`)",
        ));
    }
    problems
}

/// Health data crosses only encrypted links: plain HTTP is allowed to this
/// machine alone (a local gateway, the tests).
fn url_problem(url: &str) -> Option<String> {
    let (plain, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (true, rest)
    } else {
        return Some(format!("{url:?} is not an http(s) URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // "http://localhost:1@pager.example.org/" goes to pager.example.org:
    // credentials have no place in a webhook URL anyway (the secret signs).
    if authority.contains('@') {
        return Some(format!("{url:?}: no user or password in the URL"));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(h, _)| h).unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Some(format!("{url:?} has no host"));
    }
    if plain && !matches!(host, "127.0.0.1" | "localhost" | "::1") {
        return Some(format!(
            "{url:?}: webhooks go over https:// (plain http:// only to this machine)"
        ));
    }
    None
}

/// The problems of `[notifications]`.
pub(crate) fn problems(config: &Config) -> Vec<Problem> {
    let n = &config.notifications;
    let mut problems = Vec::new();
    if !ATTEMPTS.contains(&n.max_attempts) {
        problems.push(Problem::new(
            "notifications.max_attempts",
            format!("{} is out of range: expected 1 to 100", n.max_attempts),
        ));
    }
    for (key, value) in [
        ("first_retry_secs", n.first_retry_secs),
        ("max_retry_secs", n.max_retry_secs),
    ] {
        if !RETRY_SECS.contains(&value) {
            problems.push(Problem::new(
                format!("notifications.{key}"),
                format!("{value} is out of range: expected 1 to 86400 seconds"),
            ));
        }
    }
    if n.first_retry_secs > n.max_retry_secs {
        problems.push(Problem::new(
            "notifications.first_retry_secs",
            "must not be longer than max_retry_secs",
        ));
    }
    if !TIMEOUT_SECS.contains(&n.timeout_secs) {
        problems.push(Problem::new(
            "notifications.timeout_secs",
            format!(
                "{} is out of range: expected 1 to 120 seconds",
                n.timeout_secs
            ),
        ));
    }
    if !(n.public_url.starts_with("https://") || n.public_url.starts_with("http://")) {
        problems.push(Problem::new(
            "notifications.public_url",
            format!("{:?} is not an http(s) URL", n.public_url),
        ));
    }
    if let Some(smtp) = &n.smtp {
        if smtp.host.trim().is_empty() {
            problems.push(Problem::new("notifications.smtp.host", "is empty"));
        }
        if smtp.port == 0 {
            problems.push(Problem::new("notifications.smtp.port", "0 is not a port"));
        }
        if smtp.security == SmtpSecurity::None
            && !matches!(smtp.host.as_str(), "127.0.0.1" | "localhost" | "::1")
        {
            problems.push(Problem::new(
                "notifications.smtp.security",
                "\"none\" is allowed only for a relay on this machine: use \"starttls\" or \"tls\"",
            ));
        }
        if !crate::radiologist::looks_like_email(
            smtp.from
                .rsplit_once('<')
                .map_or(smtp.from.as_str(), |(_, a)| a.trim_end_matches('>')),
        ) {
            problems.push(Problem::new(
                "notifications.smtp.from",
                format!("{:?} is not an e-mail address", smtp.from),
            ));
        }
        if smtp.username.is_some() != smtp.password.is_some() {
            problems.push(Problem::new(
                "notifications.smtp.password",
                "username and password go together",
            ));
        }
    }
    for (i, site) in config.sites.iter().enumerate() {
        if let Some(webhook) = &site.webhook {
            problems.extend(webhook_problems(&format!("sites[{i}].webhook"), webhook));
        }
        if let Some(email) = &site.email
            && !crate::radiologist::looks_like_email(email)
        {
            problems.push(Problem::new(
                format!("sites[{i}].email"),
                format!("{email:?} is not an email address: expected name@domain"),
            ));
        }
    }
    for (i, radiologist) in config.radiologists.iter().enumerate() {
        if let Some(webhook) = &radiologist.webhook {
            problems.extend(webhook_problems(
                &format!("radiologists[{i}].webhook"),
                webhook,
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(url: &str, secret: &str) -> Webhook {
        Webhook {
            url: url.into(),
            secret: secret.into(),
        }
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn webhooks_go_over_https_except_to_this_machine() {
        assert!(
            webhook_problems("w", &webhook("https://pager.example.org/hook", SECRET)).is_empty()
        );
        assert!(webhook_problems("w", &webhook("http://127.0.0.1:9000/hook", SECRET)).is_empty());
        assert!(webhook_problems("w", &webhook("http://[::1]/hook", SECRET)).is_empty());
        assert!(webhook_problems("w", &webhook("https://[2001:db8::1]:8443/", SECRET)).is_empty());
        for sneaky in [
            "http://localhost:1@pager.example.org/",
            "https://user:pw@pager.example.org/",
            "http://[::1/",
        ] {
            let problems = webhook_problems("w", &webhook(sneaky, SECRET));
            assert_eq!(problems.len(), 1, "{sneaky}");
            assert_eq!(problems[0].path, "w.url");
        }
        let plain = webhook_problems("w", &webhook("http://pager.example.org/hook", SECRET));
        assert_eq!(plain.len(), 1);
        assert_eq!(plain[0].path, "w.url");
        assert_eq!(
            webhook_problems("w", &webhook("ftp://x", SECRET))[0].path,
            "w.url"
        );
        assert_eq!(
            webhook_problems("w", &webhook("https:///nohost", SECRET))[0].path,
            "w.url"
        );
    }

    #[test]
    fn secrets_are_whsec_and_long_enough() {
        let url = "https://example.org/";
        assert!(webhook_problems("w", &webhook(url, SECRET)).is_empty());
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_c2hvcnQ=",
            "whsec_not base64!",
        ] {
            let problems = webhook_problems("w", &webhook(url, bad));
            assert_eq!(problems.len(), 1, "{bad}");
            assert_eq!(problems[0].path, "w.secret");
        }
    }
}
