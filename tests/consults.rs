//! Second opinions end to end: the neuroradiologist reading a CT pushed by
//! DCMTK `storescu` asks a body radiologist's opinion; the rota gives it to
//! the one on duty and licensed for the site (not to a colleague off duty
//! or licensed elsewhere), who can then read the study, and answers once,
//! signed with their password. The site's clinicians read the answer,
//! another site's do not; bad requests are refused with their reason.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(a_colleague_gives_a_signed_second_opinion);

const PASSWORD: &str = "a password for the tests";

const CONFIG: &str = r#"
[[radiologists]]
id = "dr-neuro"
name = "Dr Neuro"
subspecialties = ["neuro"]
sites = ["site-a"]
max_open_studies = 5

[[radiologists]]
id = "dr-body"
name = "Dr Body"
subspecialties = ["body"]
sites = ["site-a"]
max_open_studies = 5

[[radiologists]]
id = "dr-elsewhere"
name = "Dr Elsewhere"
subspecialties = ["body"]
sites = ["site-b"]
max_open_studies = 5

[[radiologists]]
id = "dr-off"
name = "Dr Off"
subspecialties = ["body"]
sites = ["site-a"]
max_open_studies = 5

[rota]
time_zone = "Europe/Paris"

[[rota.shifts]]
radiologist = "dr-neuro"
role = "primary"
subspecialty = "neuro"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "00:00"

[[rota.shifts]]
radiologist = "dr-elsewhere"
role = "primary"
subspecialty = "body"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "00:00"

[[rota.shifts]]
radiologist = "dr-body"
role = "backup"
subspecialty = "body"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "00:00"

[[rules]]
name = "everything-to-neuro"
subspecialty = "neuro"
priority = "urgent"
"#;

fn a_colleague_gives_a_signed_second_opinion(backend: &Backend) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 1,
            extra_config: CONFIG.into(),
            ..ServerOptions::default()
        },
    );
    let neuro = server.user_token(
        "neuro",
        &["--role", "radiologist", "--radiologist", "dr-neuro"],
    );
    let body_rad = server.user_token(
        "body",
        &["--role", "radiologist", "--radiologist", "dr-body"],
    );
    let clin_a = server.user_token("clin-a", &["--role", "clinician", "--site", "site-a"]);
    let clin_b = server.user_token("clin-b", &["--role", "clinician", "--site", "site-b"]);
    let call = |token: &str, method: &str, path: &str, body: Option<&Value>| -> (u16, Value) {
        let body = body.map(Value::to_string);
        server
            .request(method, path, Some(token), body.as_deref())
            .expect("an answer")
    };

    let study = SyntheticStudy::ct(2);
    storescu_push(&server, &study, "SITE_A");
    let uid = study.study_instance_uid.as_str();
    eventually("the assignment", Duration::from_secs(30), || {
        let (_, body) = server.get(&format!("/api/studies/{uid}"));
        (body["assignment"]["radiologist"]["id"] == "dr-neuro").then_some(())
    });
    let consults = format!("/api/studies/{uid}/consults");
    let ask =
        json!({"subspecialty": "body", "question": "Incidental adrenal nodule: characterise?"});

    // Not before the study is claimed; the colleague cannot see it yet.
    let (status, answer) = call(&neuro, "POST", &consults, Some(&ask));
    assert_eq!(status, 409, "{answer}");
    assert_eq!(
        call(&body_rad, "GET", &format!("/api/studies/{uid}"), None).0,
        404
    );
    let (status, answer) = call(
        &neuro,
        "POST",
        &format!("/api/studies/{uid}/acknowledge"),
        None,
    );
    assert_eq!(status, 200, "{answer}");

    for (body, want, says) in [
        (
            json!({"subspecialty": "dermatology", "question": "?"}),
            400,
            "subspecialty",
        ),
        (
            json!({"subspecialty": "body", "question": " "}),
            400,
            "question",
        ),
        (
            json!({"subspecialty": "chest", "question": "Nodule?"}),
            409,
            "nobody on duty",
        ),
        (json!({"subspecialty": "body"}), 400, "question"),
    ] {
        let (status, answer) = call(&neuro, "POST", &consults, Some(&body));
        assert_eq!(status, want, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains(says),
            "{answer}"
        );
    }
    assert_eq!(call(&clin_a, "POST", &consults, Some(&ask)).0, 403);

    // The rota's choice: on duty for body and licensed for site-a.
    let (status, consult) = call(&neuro, "POST", &consults, Some(&ask));
    assert_eq!(status, 201, "{consult}");
    assert_eq!(consult["consultant"], "dr-body", "{consult}");
    assert_eq!(consult["state"], "open");
    let id = consult["id"].as_i64().expect("an id");
    let (status, mine) = call(&body_rad, "GET", "/api/consults", None);
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["items"][0]["study_instance_uid"], uid, "{mine}");
    let (status, seen) = call(&body_rad, "GET", &format!("/api/studies/{uid}"), None);
    assert_eq!(status, 200, "the consultant reads the study: {seen}");

    // Answered once, by the consultant, with their password.
    let answer_path = format!("/api/consults/{id}/answer");
    let text = "Lipid-rich adenoma (-5 HU): no follow-up needed.";
    let (status, answer) = call(
        &body_rad,
        "POST",
        &answer_path,
        Some(&json!({"text": text, "password": "wrong"})),
    );
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = call(
        &neuro,
        "POST",
        &answer_path,
        Some(&json!({"text": text, "password": PASSWORD})),
    );
    assert_eq!(status, 404, "not asked of dr-neuro: {answer}");
    let (status, answered) = call(
        &body_rad,
        "POST",
        &answer_path,
        Some(&json!({"text": text, "password": PASSWORD})),
    );
    assert_eq!(status, 200, "{answered}");
    assert_eq!(answered["state"], "answered");
    assert_eq!(answered["answered_by"], "body");
    let hash = answered["answer_hash"].as_str().unwrap_or_default();
    assert_eq!(hash.len(), 64, "{answered}");
    let (status, again) = call(
        &body_rad,
        "POST",
        &answer_path,
        Some(&json!({"text": "changed my mind", "password": PASSWORD})),
    );
    assert_eq!(status, 409, "{again}");
    let (_, mine) = call(&body_rad, "GET", "/api/consults", None);
    assert_eq!(mine["items"], json!([]), "{mine}");
    // Answered: the study is no longer the consultant's to read.
    assert_eq!(
        call(&body_rad, "GET", &format!("/api/studies/{uid}"), None).0,
        404
    );

    // The site reads it; another site does not.
    let (status, listed) = call(&clin_a, "GET", &consults, None);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"][0]["answer"], text, "{listed}");
    assert_eq!(call(&clin_b, "GET", &consults, None).0, 404);

    let (_, trail) = server.get("/api/audit?limit=500");
    let trail = trail.to_string();
    for action in ["consult.request", "consult.answer", "consult.read"] {
        assert!(trail.contains(action), "{action} not in the trail");
    }
    let verified = server.cli(&["audit", "verify"], None);
    assert!(verified.contains("intact"), "{verified}");
}
