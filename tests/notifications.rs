//! Notifications end to end, with real peers: a webhook receiver (an HTTP
//! server that checks the Standard Webhooks signature with its own code),
//! Python's `aiosmtpd` as the SMTP relay, and browsers' server-sent event
//! streams read by an HTTP client.
//!
//! A stroke CT pushed with DCMTK `storescu` is assigned STAT to the
//! neuroradiologist: their pager (down, so retried, kept dead, retried by
//! an operator, across a restart) and their mailbox are told. The site's
//! clinician sees the preliminary report on their event stream (and again
//! when resuming with Last-Event-ID); another site's clinician does not.
//! The site's system receives the report and the critical result, signed,
//! after a first refusal; the emergency department's mailbox gets the
//! critical result without any patient data. The turnaround figures and
//! the Prometheus metrics then tell the night.

mod common;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use common::*;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(people_are_told_by_stream_webhook_and_email);

const PASSWORD: &str = "a password for the tests";
const SITE_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PAGER_SECRET: &str = "whsec_c2VjcmV0LWtleS1vZi10aGUtcGFnZXItZ2F0ZXdheQ==";

/// What the receiver was sent, signature checked.
#[derive(Debug, Clone)]
struct Call {
    endpoint: String,
    id: String,
    body: Value,
    answered: u16,
}

#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<Vec<Call>>>,
    /// Refusals left for the site's endpoint.
    site_refusals: Arc<AtomicUsize>,
    pager_up: Arc<AtomicBool>,
}

impl Receiver {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// Standard Webhooks verification, written from the specification:
/// base64(HMAC-SHA256(key, "id.timestamp.body")) after "v1,", and a
/// timestamp within five minutes.
fn verify(secret: &str, headers: &HeaderMap, body: &str) -> Result<String, String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or(format!("no {name} header"))
    };
    let id = header("webhook-id")?;
    let timestamp = header("webhook-timestamp")?;
    let signature = header("webhook-signature")?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .map_err(|e| e.to_string())?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    if !signature.split(' ').any(|s| s == expected) {
        return Err(format!("signature {signature} is not {expected}"));
    }
    let sent: i64 = timestamp.parse().map_err(|_| "timestamp".to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    if (now - sent).abs() > 300 {
        return Err(format!("timestamp {sent} is not within 5 minutes of {now}"));
    }
    Ok(id)
}

async fn hook(
    State(receiver): State<Receiver>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let secret = if endpoint == "site" {
        SITE_SECRET
    } else {
        PAGER_SECRET
    };
    let id = match verify(secret, &headers, &body) {
        Ok(id) => id,
        Err(e) => panic!("a bad webhook call to {endpoint}: {e}"),
    };
    let answered = match endpoint.as_str() {
        "site" => {
            let refuse = receiver
                .site_refusals
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if refuse { 503 } else { 204 }
        }
        _ if receiver.pager_up.load(Ordering::SeqCst) => 200,
        _ => 500,
    };
    let body = serde_json::from_str(&body).unwrap_or(Value::Null);
    if let Ok(mut calls) = receiver.calls.lock() {
        calls.push(Call {
            endpoint,
            id,
            body,
            answered,
        });
    }
    StatusCode::from_u16(answered).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `python3 -m aiosmtpd`, writing what it receives to a maildir.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: std::path::PathBuf,
}

impl SmtpServer {
    fn start(dir: &std::path::Path) -> SmtpServer {
        let port = free_port();
        let maildir = dir.join("maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        eventually("aiosmtpd listening", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        SmtpServer {
            child,
            port,
            maildir,
        }
    }

    /// The messages received so far, as text.
    fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One server-sent event.
#[derive(Debug, Clone)]
struct Sse {
    id: i64,
    kind: String,
    data: Value,
}

/// Reads `GET /api/events/stream` as `token` on a thread; the events come
/// out of the channel.
fn follow(server: &TestServer, token: &str, last_event_id: Option<i64>) -> mpsc::Receiver<Sse> {
    let url = format!("http://127.0.0.1:{}/api/events/stream", server.http_port);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent
        .get(&url)
        .header("authorization", &format!("Bearer {token}"))
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", &id.to_string());
    }
    let response = request.call().expect("the event stream answers");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let reader = std::io::BufReader::new(response.into_body().into_reader());
        let (mut id, mut kind, mut data) = (None, String::new(), String::new());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if line.is_empty() {
                if let Some(id) = id.take()
                    && tx
                        .send(Sse {
                            id,
                            kind: std::mem::take(&mut kind),
                            data: serde_json::from_str(&data).unwrap_or(Value::Null),
                        })
                        .is_err()
                {
                    return;
                }
                data.clear();
            } else if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("event:") {
                kind = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
    });
    rx
}

/// The next event of `kind` on the stream, the others skipped.
fn next_of(stream: &mpsc::Receiver<Sse>, kind: &str) -> Sse {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match stream.recv_timeout(left) {
            Ok(event) if event.kind == kind => return event,
            Ok(_) => continue,
            Err(e) => panic!("no {kind} event on the stream: {e}"),
        }
    }
}

fn config(hooks: u16, smtp: u16) -> String {
    format!(
        r#"
[[radiologists]]
id = "dr-neuro"
name = "Dr Neuro"
subspecialties = ["neuro"]
sites = ["site-a", "site-b"]
max_open_studies = 5
email = "neuro@example.org"
webhook = {{ url = "http://127.0.0.1:{hooks}/hooks/pager", secret = "{PAGER_SECRET}" }}

[rota]
time_zone = "Europe/Paris"

[[rota.shifts]]
radiologist = "dr-neuro"
role = "primary"
subspecialty = "neuro"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "00:00"

[[rules]]
name = "stroke-request"
stroke = true
subspecialty = "neuro"
priority = "stat"

[notifications]
public_url = "https://telerad.example.org"
max_attempts = 3
first_retry_secs = 1
max_retry_secs = 2

[notifications.smtp]
host = "127.0.0.1"
port = {smtp}
security = "none"
from = "telerad <telerad@example.org>"
"#
    )
}

/// Site A's emergency department address and system endpoint.
fn site_a_addresses(hooks: u16) -> String {
    format!(
        "email = \"urgences@site-a.example.org\"\n\
         webhook = {{ url = \"http://127.0.0.1:{hooks}/hooks/site\", secret = \"{SITE_SECRET}\" }}\n"
    )
}

fn stroke_form(patient: &str, accession: &str, date: &str) -> Value {
    json!({
        "patient_id": patient,
        "accession_number": accession,
        "study_date": date,
        "urgency": "stroke",
        "clinical_question": "Aphasia since 01:40: occlusion?",
        "requested_examination": "CT head, CT angiography",
        "requesting_physician": "Dr Urgences",
        "callback_number": "+33 2 48 00 00 00",
        "symptom_onset": jiff::Timestamp::now().to_string(),
        "nihss": 12,
    })
}

/// The first e-mail to `address` the relay received.
fn mail_to(smtp: &SmtpServer, server: &TestServer, address: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = smtp
            .messages()
            .into_iter()
            .find(|m| m.contains(&format!("To: {address}")));
        if let Some(message) = found {
            return message;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no e-mail to {address} after 30 s:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn call(
    server: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let body = body.map(Value::to_string);
    server
        .request(method, path, Some(token), body.as_deref())
        .expect("an answer")
}

fn people_are_told_by_stream_webhook_and_email(backend: &Backend) {
    let rt = runtime();
    let receiver = Receiver::default();
    receiver.site_refusals.store(1, Ordering::SeqCst);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a port for the webhook receiver");
    let hooks = listener.local_addr().expect("its address").port();
    let app = axum::Router::new()
        .route("/hooks/{endpoint}", axum::routing::post(hook))
        .with_state(receiver.clone());
    rt.spawn(async move { axum::serve(listener, app).await });
    let smtp_dir = tempfile::tempdir().expect("a temp dir");
    let smtp = SmtpServer::start(smtp_dir.path());

    let mut server = TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 1,
            extra_config: config(hooks, smtp.port),
            site_a_extra: site_a_addresses(hooks),
            ..ServerOptions::default()
        },
    );
    let tech_a = server.user_token("tech-a", &["--role", "technician", "--site", "site-a"]);
    let clin_a = server.user_token("clin-a", &["--role", "clinician", "--site", "site-a"]);
    let clin_b = server.user_token("clin-b", &["--role", "clinician", "--site", "site-b"]);
    let rad = server.user_token(
        "rad",
        &["--role", "radiologist", "--radiologist", "dr-neuro"],
    );
    let admin = server.admin_token();
    let stream_a = follow(&server, &clin_a, None);
    let stream_b = follow(&server, &clin_b, None);

    // A stroke at site A, assigned STAT: the reader's pager and mailbox.
    let today = jiff::Zoned::now().strftime("%Y%m%d").to_string();
    let (status, body) = call(
        &server,
        &tech_a,
        "POST",
        "/api/forms",
        Some(&stroke_form("P-1", "ACC-1", &today)),
    );
    assert_eq!(status, 201, "{body}");
    let mut study = SyntheticStudy::ct(2);
    study.patient_id = "P-1".into();
    study.accession_number = "ACC-1".into();
    study.study_date = today.clone();
    storescu_push(&server, &study, "SITE_A");
    let uid = study.study_instance_uid.clone();
    let form = next_of(&stream_a, "form");
    assert_eq!(form.data["study_instance_uid"], uid.as_str(), "{form:?}");
    let assigned = next_of(&stream_a, "assigned");
    assert_eq!(assigned.data["detail"]["radiologist"], "dr-neuro");
    assert!(
        assigned.data.get("patient_id").is_none() && !assigned.data.to_string().contains("P-1"),
        "events carry no patient data: {assigned:?}"
    );

    let reader_mail = mail_to(&smtp, &server, "neuro@example.org");
    assert!(
        reader_mail.contains("STAT study from site-a assigned to you"),
        "{reader_mail}"
    );
    assert!(
        reader_mail.contains("Message-ID: <telerad.delivery."),
        "{reader_mail}"
    );
    assert!(
        !reader_mail.contains("P-1"),
        "no patient ID by e-mail: {reader_mail}"
    );

    // The pager is down: three attempts, then dead, across a restart.
    let pager_delivery = eventually("the pager's delivery dead", Duration::from_secs(60), || {
        let (_, page) = call(&server, &admin, "GET", "/api/deliveries?state=dead", None);
        page["items"]
            .as_array()?
            .iter()
            .find(|d| d["recipient"] == "radiologist:dr-neuro" && d["channel"] == "webhook")
            .cloned()
    });
    assert_eq!(pager_delivery["attempts"], 3, "{pager_delivery}");
    assert_eq!(pager_delivery["kind"], "assigned", "{pager_delivery}");
    assert!(
        pager_delivery["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP 500"),
        "{pager_delivery}"
    );
    let pager_calls = receiver
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == "pager")
        .collect::<Vec<_>>();
    assert_eq!(pager_calls.len(), 3, "{pager_calls:?}");
    assert!(
        pager_calls.iter().all(|c| c.id == pager_calls[0].id),
        "one webhook-id across retries: {pager_calls:?}"
    );
    assert_eq!(pager_calls[0].body["type"], "study.assigned");
    assert!(
        !pager_calls[0].body.to_string().contains("P-1"),
        "{:?}",
        pager_calls[0]
    );

    server.terminate();
    server.restart();
    receiver.pager_up.store(true, Ordering::SeqCst);
    let id = pager_delivery["id"].as_i64().expect("a delivery id");
    let (status, body) = call(
        &server,
        &clin_a,
        "POST",
        &format!("/api/deliveries/{id}/retry"),
        None,
    );
    assert_eq!(status, 403, "operators only: {body}");
    let (status, body) = call(
        &server,
        &admin,
        "POST",
        &format!("/api/deliveries/{id}/retry"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    eventually("the pager told", Duration::from_secs(30), || {
        let (_, d) = call(&server, &admin, "GET", "/api/deliveries?state=sent", None);
        d["items"]
            .as_array()?
            .iter()
            .find(|d| d["id"] == id)
            .cloned()
    });
    let (status, body) = call(
        &server,
        &admin,
        "POST",
        &format!("/api/deliveries/{id}/retry"),
        None,
    );
    assert_eq!(status, 409, "a sent delivery is not retried: {body}");
    let accepted: Vec<Call> = receiver
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == "pager" && c.answered == 200)
        .collect();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0].id, pager_calls[0].id);

    // The event streams of before the restart ended; new ones resume.
    let stream_a = follow(&server, &clin_a, Some(assigned.id));
    let stream_b = {
        drop(stream_b);
        follow(&server, &clin_b, Some(assigned.id))
    };

    // The preliminary report: on site A's stream, to site A's system
    // (after one refusal), and not on site B's stream.
    let (status, body) = call(
        &server,
        &rad,
        "POST",
        &format!("/api/studies/{uid}/acknowledge"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let report = format!("/api/studies/{uid}/report");
    let content = json!({
        "template": "ct-head-stroke",
        "fields": {
            "acquisitions": "non-contrast CT + CT angiography",
            "haemorrhage": "absent",
            "early_ischaemia": "present",
            "aspects": 8,
            "conclusion": "Left M1 occlusion, ASPECTS 8."
        },
    });
    let (status, body) = call(
        &server,
        &rad,
        "PUT",
        &format!("{report}/draft"),
        Some(&content),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &server,
        &rad,
        "POST",
        &format!("{report}/preliminary"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let preliminary = next_of(&stream_a, "preliminary");
    assert_eq!(preliminary.data["study_instance_uid"], uid.as_str());
    assert_eq!(preliminary.data["site"], "site-a");
    let replay = follow(&server, &clin_a, Some(preliminary.id - 1));
    assert_eq!(next_of(&replay, "preliminary").id, preliminary.id);

    let site_call = |kind: &str| {
        let kind = kind.to_string();
        eventually(
            &format!("{kind} at the site"),
            Duration::from_secs(30),
            || {
                receiver.calls().into_iter().find(|c| {
                    c.endpoint == "site" && c.body["type"] == kind.as_str() && c.answered == 204
                })
            },
        )
    };
    let prelim_call = site_call("report.preliminary");
    assert_eq!(prelim_call.body["data"]["accession_number"], "ACC-1");
    assert_eq!(prelim_call.body["data"]["patient_id"], "P-1");
    assert_eq!(prelim_call.body["data"]["study_instance_uid"], uid.as_str());
    let tries = receiver
        .calls()
        .iter()
        .filter(|c| c.id == prelim_call.id)
        .map(|c| c.answered)
        .collect::<Vec<_>>();
    assert_eq!(
        tries,
        [503, 204],
        "retried after the refusal, once accepted"
    );

    // A category 1 critical result: the site's system and its mailbox.
    let (status, body) = call(
        &server,
        &rad,
        "POST",
        &format!("/api/studies/{uid}/critical-results"),
        Some(&json!({"category": 1, "finding": "Left M1 occlusion"})),
    );
    assert_eq!(status, 201, "{body}");
    let critical = next_of(&stream_a, "critical_result");
    let flagged = site_call("critical_result.flagged");
    assert_eq!(flagged.body["data"]["category"], 1);
    let ed_mail = mail_to(&smtp, &server, "urgences@site-a.example.org");
    assert!(
        ed_mail.contains("critical result (ACR category 1)"),
        "{ed_mail}"
    );
    assert!(
        !ed_mail.contains("P-1") && !ed_mail.contains("M1 occlusion"),
        "{ed_mail}"
    );
    let critical_id = critical.data["detail"]["critical_result"]
        .as_i64()
        .expect("the critical result's id");
    let (status, body) = call(
        &server,
        &clin_a,
        "POST",
        &format!("/api/studies/{uid}/critical-results/{critical_id}/acknowledge"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    next_of(&stream_a, "critical_acknowledged");
    site_call("critical_result.acknowledged");

    let (status, body) = call(
        &server,
        &rad,
        "POST",
        &format!("{report}/final"),
        Some(&json!({"password": PASSWORD})),
    );
    assert_eq!(status, 200, "{body}");
    next_of(&stream_a, "final");
    site_call("report.final");

    // Site B's clinician: a study of their own site, a message on it. Their
    // stream delivers it, and nothing of site A came before it.
    let mut other = SyntheticStudy::ct(1);
    other.patient_id = "P-B".into();
    storescu_push(&server, &other, "SITE_B");
    let other_uid = other.study_instance_uid.clone();
    eventually("site B's study", Duration::from_secs(30), || {
        let (status, _) = call(
            &server,
            &clin_b,
            "GET",
            &format!("/api/studies/{other_uid}"),
            None,
        );
        (status == 200).then_some(())
    });
    let (status, body) = call(
        &server,
        &clin_b,
        "POST",
        &format!("/api/studies/{other_uid}/messages"),
        Some(&json!({"body": "Images sent, thank you"})),
    );
    assert_eq!(status, 201, "{body}");
    let seen_by_b: Vec<Sse> = {
        let mut seen = Vec::new();
        loop {
            let event = stream_b
                .recv_timeout(Duration::from_secs(30))
                .expect("site B's message on its stream");
            let done = event.kind == "message";
            seen.push(event);
            if done {
                break;
            }
        }
        seen
    };
    assert!(
        seen_by_b.iter().all(|e| e.data["site"] == "site-b"),
        "site B saw another site's events: {seen_by_b:?}"
    );
    // Messages and forms are for the browser only: nothing left telerad
    // for them.
    let (_, log) = call(&server, &admin, "GET", "/api/deliveries?limit=100", None);
    let kinds: Vec<&str> = log["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|d| d["kind"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        !kinds.contains(&"message") && !kinds.contains(&"form"),
        "{kinds:?}"
    );
    let (status, body) = call(&server, &clin_a, "GET", "/api/deliveries", None);
    assert_eq!(status, 403, "{body}");
    // The night in figures: the study read, its critical result
    // communicated, for operators only.
    let (status, figures) = call(&server, &admin, "GET", "/api/turnaround?by=site", None);
    assert_eq!(status, 200, "{figures}");
    let site_a = figures["groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["key"] == "site-a"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(site_a["studies"], 1, "{figures}");
    for interval in [
        "complete_to_assigned",
        "assigned_to_claimed",
        "complete_to_preliminary",
        "complete_to_final",
        "critical_to_communicated",
    ] {
        assert_eq!(
            site_a["intervals"][interval]["count"], 1,
            "{interval}: {figures}"
        );
    }
    assert!(figures["overdue"].is_array(), "{figures}");
    assert_eq!(
        call(&server, &clin_a, "GET", "/api/turnaround", None).0,
        403
    );
    let metrics = server
        .request("GET", "/metrics", Some(&admin), None)
        .expect("metrics");
    assert_eq!(metrics.0, 200);
    let text = metrics.1.as_str().unwrap_or_default().to_string();
    for line in [
        "telerad_assignments{state=\"reported\"} 1",
        "telerad_critical_results{state=\"acknowledged\"} 1",
        "telerad_notification_deliveries{state=\"sent\"} ",
        "telerad_report_turnaround_seconds_count{priority=\"stat\"} 1",
    ] {
        assert!(text.contains(line), "{line} not in:\n{text}");
    }
    assert_eq!(
        server
            .request("GET", "/metrics", Some(&clin_a), None)
            .map(|r| r.0),
        Ok(403)
    );

    let verified = server.cli(&["audit", "verify"], None);
    assert!(verified.contains("intact"), "{verified}");
}
