//! Who is told of a workflow event outside the browser, by which channel,
//! and what they are sent. A pure function of the configuration, the event
//! and the study's facts, so that the whole table is tested without a
//! network.
//!
//! | event                  | site webhook | site e-mail | radiologist webhook + e-mail |
//! |------------------------|--------------|-------------|------------------------------|
//! | assigned (STAT)        |              |             | the assigned reader          |
//! | escalated              |              |             | the reader it went to        |
//! | preliminary/final/addendum | yes      |             |                              |
//! | critical result        | yes          | yes         |                              |
//! | critical escalated     | yes          | yes         | the radiologist who flagged it |
//! | critical acknowledged  | yes          |             |                              |
//! | consult requested      |              |             | the consultant               |
//! | consult answered       |              |             | the radiologist who asked    |
//!
//! E-mail is not a safe carrier of health data: e-mails say what happened,
//! to which site's study (accession number) and link to telerad, nothing
//! about the patient. Webhook calls go over TLS to the site's own systems or
//! to a reader's pager; the site's carry the study's identifiers, the
//! pager's do not carry the patient ID.

use std::collections::HashMap;

use serde_json::{Value, json};
use telerad_config::{Config, Webhook};
use telerad_store::deliveries::{Channel, StudyFacts};
use telerad_store::events::{Event, EventKind};

/// A delivery to plan for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub channel: Channel,
    pub recipient: String,
    pub target: String,
    pub payload: String,
}

/// The addresses of the configuration, by recipient.
#[derive(Debug, Clone)]
pub struct Addresses {
    sites: HashMap<String, Contact>,
    radiologists: HashMap<String, Contact>,
    email: bool,
    public_url: String,
}

#[derive(Debug, Clone, Default)]
struct Contact {
    email: Option<String>,
    webhook: Option<Webhook>,
}

impl Addresses {
    pub fn from_config(config: &Config) -> Addresses {
        Addresses {
            sites: config
                .sites
                .iter()
                .map(|s| {
                    let contact = Contact {
                        email: s.email.clone(),
                        webhook: s.webhook.clone(),
                    };
                    (s.name.clone(), contact)
                })
                .collect(),
            radiologists: config
                .radiologists
                .iter()
                .map(|r| {
                    let contact = Contact {
                        email: r.email.clone(),
                        webhook: r.webhook.clone(),
                    };
                    (r.id.clone(), contact)
                })
                .collect(),
            email: config.notifications.smtp.is_some(),
            public_url: config
                .notifications
                .public_url
                .trim_end_matches('/')
                .to_string(),
        }
    }

    /// The webhook of a recipient (`site:NAME`, `radiologist:ID`), to sign
    /// with at sending time.
    pub fn webhook(&self, recipient: &str) -> Option<&Webhook> {
        self.contact(recipient)?.webhook.as_ref()
    }

    /// The e-mail address of a recipient, as configured now.
    pub fn email_of(&self, recipient: &str) -> Option<&str> {
        self.contact(recipient)?.email.as_deref()
    }

    fn contact(&self, recipient: &str) -> Option<&Contact> {
        match recipient.split_once(':')? {
            ("site", name) => self.sites.get(name),
            ("radiologist", id) => self.radiologists.get(id),
            _ => None,
        }
    }

    /// The deliveries `event` calls for.
    pub fn plan(&self, event: &Event, facts: &StudyFacts) -> Vec<Planned> {
        let mut out = Vec::new();
        let detail_radiologist = event
            .detail
            .get("radiologist")
            .and_then(Value::as_str)
            .map(str::to_string);
        let (site_webhook, site_email, reader) = match event.kind {
            EventKind::Assigned => {
                let stat = facts.priority.as_deref() == Some("stat");
                (false, false, detail_radiologist.filter(|_| stat))
            }
            EventKind::Escalated => (false, false, detail_radiologist),
            EventKind::Preliminary | EventKind::Final | EventKind::Addendum => (true, false, None),
            EventKind::CriticalResult => (true, true, None),
            EventKind::CriticalEscalated => (true, true, detail_radiologist),
            EventKind::CriticalAcknowledged => (true, false, None),
            // A colleague asked for a second opinion, or gave it: the one
            // it is for ("radiologist" in the detail).
            EventKind::ConsultRequested | EventKind::ConsultAnswered => {
                (false, false, detail_radiologist)
            }
            EventKind::Complete | EventKind::Receiving | EventKind::Message | EventKind::Form => {
                (false, false, None)
            }
        };
        let site = format!("site:{}", facts.site);
        if site_webhook && let Some(webhook) = self.webhook(&site) {
            out.push(Planned {
                channel: Channel::Webhook,
                recipient: site.clone(),
                target: webhook.url.clone(),
                payload: self.site_body(event, facts).to_string(),
            });
        }
        if site_email
            && self.email
            && let Some(address) = self.contact(&site).and_then(|c| c.email.clone())
        {
            out.push(Planned {
                channel: Channel::Email,
                recipient: site,
                target: address,
                payload: self.email(event, facts, false).to_string(),
            });
        }
        if let Some(id) = reader {
            let recipient = format!("radiologist:{id}");
            if let Some(webhook) = self.webhook(&recipient) {
                out.push(Planned {
                    channel: Channel::Webhook,
                    recipient: recipient.clone(),
                    target: webhook.url.clone(),
                    payload: self.reader_body(event, facts).to_string(),
                });
            }
            if self.email
                && let Some(address) = self.contact(&recipient).and_then(|c| c.email.clone())
            {
                out.push(Planned {
                    channel: Channel::Email,
                    recipient,
                    target: address,
                    payload: self.email(event, facts, true).to_string(),
                });
            }
        }
        out
    }

    fn link(&self, facts: &StudyFacts) -> String {
        format!(
            "{}/api/studies/{}",
            self.public_url, facts.study_instance_uid
        )
    }

    /// The Standard Webhooks body for the site's systems.
    fn site_body(&self, event: &Event, facts: &StudyFacts) -> Value {
        let mut data = json!({
            "study_instance_uid": facts.study_instance_uid,
            "accession_number": facts.accession_number,
            "patient_id": facts.patient_id,
            "site": facts.site,
            "url": self.link(facts),
        });
        merge_detail(&mut data, &event.detail);
        envelope(event, data)
    }

    /// The body for a reader's pager: what and how urgent, no patient.
    fn reader_body(&self, event: &Event, facts: &StudyFacts) -> Value {
        let mut data = json!({
            "study_instance_uid": facts.study_instance_uid,
            "site": facts.site,
            "priority": facts.priority,
            "url": self.link(facts),
            "text": headline(event, facts),
        });
        merge_detail(&mut data, &event.detail);
        envelope(event, data)
    }

    fn email(&self, event: &Event, facts: &StudyFacts, to_reader: bool) -> Value {
        let subject = format!("telerad: {}", headline(event, facts));
        let mut text = format!("{}.\n\n", headline(event, facts));
        if !facts.accession_number.is_empty() {
            text.push_str(&format!("Accession number: {}\n", facts.accession_number));
        }
        text.push_str(&format!("Study: {}\n", facts.study_instance_uid));
        if to_reader {
            text.push_str("\nOpen your worklist in telerad to read it.\n");
        } else {
            text.push_str("\nAcknowledge it in telerad (emergency physician account).\n");
        }
        text.push_str(&format!("{}\n", self.link(facts)));
        json!({ "subject": subject, "text": text })
    }
}

/// The Standard Webhooks envelope: `type`, `timestamp` (when it happened)
/// and `data`.
fn envelope(event: &Event, data: Value) -> Value {
    let timestamp = jiff::Timestamp::from_millisecond(event.at)
        .map(|t| t.to_string())
        .unwrap_or_default();
    json!({ "type": event_type(event.kind), "timestamp": timestamp, "data": data })
}

fn merge_detail(data: &mut Value, detail: &Value) {
    if let (Some(data), Some(detail)) = (data.as_object_mut(), detail.as_object()) {
        for (key, value) in detail {
            data.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
}

/// The event's name for webhook receivers.
pub fn event_type(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Complete => "study.complete",
        EventKind::Receiving => "study.receiving",
        EventKind::Assigned => "study.assigned",
        EventKind::Escalated => "study.escalated",
        EventKind::Preliminary => "report.preliminary",
        EventKind::Final => "report.final",
        EventKind::Addendum => "report.addendum",
        EventKind::CriticalResult => "critical_result.flagged",
        EventKind::CriticalEscalated => "critical_result.escalated",
        EventKind::CriticalAcknowledged => "critical_result.acknowledged",
        EventKind::Message => "message.posted",
        EventKind::Form => "form.added",
        EventKind::ConsultRequested => "consult.requested",
        EventKind::ConsultAnswered => "consult.answered",
    }
}

/// One line a person understands at 3 a.m.
fn headline(event: &Event, facts: &StudyFacts) -> String {
    let priority = facts.priority.as_deref().unwrap_or("new").to_uppercase();
    let site = &facts.site;
    match event.kind {
        EventKind::Assigned => format!("{priority} study from {site} assigned to you"),
        EventKind::Escalated => {
            format!("{priority} study from {site} escalated to you: nobody acknowledged it")
        }
        EventKind::Preliminary => format!("preliminary report for a study of {site}"),
        EventKind::Final => format!("final report signed for a study of {site}"),
        EventKind::Addendum => format!("addendum to the report of a study of {site}"),
        EventKind::CriticalResult => {
            let category = event.detail.get("category").and_then(Value::as_i64);
            format!(
                "critical result (ACR category {}) for a study of {site}",
                category.map_or("?".to_string(), |c| c.to_string())
            )
        }
        EventKind::CriticalEscalated => {
            format!("critical result for a study of {site} NOT acknowledged in time")
        }
        EventKind::CriticalAcknowledged => {
            format!("critical result for a study of {site} acknowledged")
        }
        EventKind::ConsultRequested => {
            format!("a colleague asks your opinion on a {priority} study from {site}")
        }
        EventKind::ConsultAnswered => {
            format!("your colleague answered on a study from {site}")
        }
        EventKind::Complete | EventKind::Receiving | EventKind::Message | EventKind::Form => {
            format!("news on a study of {site}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telerad_store::EventId;
    use telerad_store::StudyId;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn config(smtp: bool) -> Config {
        let smtp = if smtp {
            "[notifications.smtp]\nhost = \"127.0.0.1\"\nport = 2525\nsecurity = \"none\"\n\
             from = \"telerad@example.org\"\n"
        } else {
            ""
        };
        let text = format!(
            "[[sites]]\nname = \"ch-a\"\nae_titles = [\"CT_A\"]\ntime_zone = \"Europe/Paris\"\n\
             email = \"urgences@ch-a.example.org\"\n\
             webhook = {{ url = \"https://ch-a.example.org/hook\", secret = \"{SECRET}\" }}\n\
             [[sites]]\nname = \"ch-b\"\nae_titles = [\"CT_B\"]\ntime_zone = \"Europe/Paris\"\n\
             [[radiologists]]\nid = \"dr-neuro\"\nname = \"Dr Neuro\"\n\
             subspecialties = [\"neuro\"]\nsites = [\"ch-a\", \"ch-b\"]\nmax_open_studies = 5\n\
             email = \"neuro@example.org\"\n\
             webhook = {{ url = \"https://pager.example.org/n\", secret = \"{SECRET}\" }}\n\
             [[radiologists]]\nid = \"dr-body\"\nname = \"Dr Body\"\n\
             subspecialties = [\"body\"]\nsites = [\"ch-a\"]\nmax_open_studies = 5\n\
             [rota]\ntime_zone = \"Europe/Paris\"\n{smtp}"
        );
        match Config::from_toml_str(&text) {
            Ok(config) => config,
            Err(e) => panic!("test configuration: {e}"),
        }
    }

    fn event(kind: EventKind, detail: Value) -> Event {
        Event {
            id: EventId(7),
            study_id: StudyId(1),
            kind,
            at: 1_764_000_000_000,
            instance_count: 0,
            detail,
        }
    }

    fn facts(site: &str, priority: &str) -> StudyFacts {
        StudyFacts {
            study_instance_uid: "1.2.3".into(),
            site: site.into(),
            accession_number: "ACC1".into(),
            patient_id: "PID1".into(),
            priority: Some(priority.into()),
        }
    }

    fn who(planned: &[Planned]) -> Vec<(Channel, &str)> {
        planned
            .iter()
            .map(|p| (p.channel, p.recipient.as_str()))
            .collect()
    }

    #[test]
    fn the_table_of_who_is_told() {
        let addresses = Addresses::from_config(&config(true));
        let neuro = json!({ "radiologist": "dr-neuro" });
        let a = facts("ch-a", "stat");
        type Told<'a> = Vec<(Channel, &'a str)>;
        let cases: Vec<(Event, StudyFacts, Told)> = vec![
            (
                event(EventKind::Assigned, neuro.clone()),
                a.clone(),
                vec![
                    (Channel::Webhook, "radiologist:dr-neuro"),
                    (Channel::Email, "radiologist:dr-neuro"),
                ],
            ),
            // A routine assignment waits for the worklist: nobody is woken.
            (
                event(EventKind::Assigned, neuro.clone()),
                facts("ch-a", "routine"),
                vec![],
            ),
            (
                event(EventKind::Escalated, neuro.clone()),
                facts("ch-a", "routine"),
                vec![
                    (Channel::Webhook, "radiologist:dr-neuro"),
                    (Channel::Email, "radiologist:dr-neuro"),
                ],
            ),
            // Escalated to the pool: the alerts list has it.
            (
                event(EventKind::Escalated, json!({ "radiologist": null })),
                a.clone(),
                vec![],
            ),
            (
                event(EventKind::Final, json!({ "version": 2 })),
                a.clone(),
                vec![(Channel::Webhook, "site:ch-a")],
            ),
            (
                event(EventKind::CriticalResult, json!({ "category": 1 })),
                a.clone(),
                vec![
                    (Channel::Webhook, "site:ch-a"),
                    (Channel::Email, "site:ch-a"),
                ],
            ),
            (
                event(EventKind::CriticalEscalated, neuro.clone()),
                a.clone(),
                vec![
                    (Channel::Webhook, "site:ch-a"),
                    (Channel::Email, "site:ch-a"),
                    (Channel::Webhook, "radiologist:dr-neuro"),
                    (Channel::Email, "radiologist:dr-neuro"),
                ],
            ),
            (event(EventKind::Message, json!({})), a.clone(), vec![]),
            // A site without addresses, a reader without any: nothing.
            (
                event(EventKind::Final, json!({})),
                facts("ch-b", "stat"),
                vec![],
            ),
            (
                event(EventKind::Assigned, json!({ "radiologist": "dr-body" })),
                a.clone(),
                vec![],
            ),
        ];
        for (event, facts, expected) in cases {
            let planned = addresses.plan(&event, &facts);
            assert_eq!(who(&planned), expected, "{:?} {:?}", event.kind, facts);
        }
    }

    #[test]
    fn no_smtp_relay_no_email() {
        let addresses = Addresses::from_config(&config(false));
        let planned = addresses.plan(
            &event(EventKind::CriticalResult, json!({ "category": 1 })),
            &facts("ch-a", "stat"),
        );
        assert_eq!(who(&planned), [(Channel::Webhook, "site:ch-a")]);
    }

    #[test]
    fn pagers_and_emails_carry_no_patient_id() {
        let addresses = Addresses::from_config(&config(true));
        let planned = addresses.plan(
            &event(
                EventKind::CriticalEscalated,
                json!({ "radiologist": "dr-neuro" }),
            ),
            &facts("ch-a", "stat"),
        );
        for p in &planned {
            let to_site_systems = p.channel == Channel::Webhook && p.recipient == "site:ch-a";
            assert_eq!(p.payload.contains("PID1"), to_site_systems, "{p:?}");
        }
        let site = &planned[0];
        let body: Value = serde_json::from_str(&site.payload).expect("JSON body");
        assert_eq!(body["type"], "critical_result.escalated");
        assert_eq!(body["data"]["accession_number"], "ACC1");
        assert_eq!(body["timestamp"], "2025-11-24T16:00:00Z");
    }
}
