//! The worklist: three studies pushed with DCMTK `storescu` at night (a
//! stroke with its form, given to the neuroradiologist on duty; two
//! others waiting, one without a form) are listed most urgent first, with
//! the thrombolysis window of the stroke; filters narrow the list, pages
//! chain without loss, another site sees nothing, and bad filters are 400s.
//! Readers claim their own study and one from the pool, release one with a
//! reason, and another reader of the site takes it. The site and the reader
//! exchange messages with read receipts.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(the_worklist_is_sorted_filtered_and_paged);

/// A Wednesday night in Paris; the stroke began at 01:40.
const NIGHT: &str = "2026-03-18T03:00:00+01:00";
const ONSET_MS: i64 = 1_773_794_400_000;

const CONFIG: &str = r#"
[[radiologists]]
id = "dr-neuro"
name = "Dr Neuro"
subspecialties = ["neuro"]
sites = ["site-a"]
max_open_studies = 4

[[radiologists]]
id = "dr-other"
name = "Dr Other"
subspecialties = ["general"]
sites = ["site-a"]
max_open_studies = 4

[rota]
time_zone = "Europe/Paris"

[[rota.shifts]]
radiologist = "dr-neuro"
role = "primary"
subspecialty = "neuro"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"

[[rules]]
name = "stroke-request"
stroke = true
subspecialty = "neuro"
priority = "stat"

[[rules]]
name = "urgent-request"
urgency = "urgent"
subspecialty = "general"
priority = "urgent"
"#;

fn form(patient: &str, urgency: &str) -> Value {
    let mut form = json!({
        "patient_id": patient,
        "accession_number": format!("ACC-{patient}"),
        "study_date": "20260318",
        "urgency": urgency,
        "clinical_question": "?",
        "requested_examination": format!("CT for {patient}"),
        "requesting_physician": "Dr Urgences",
        "callback_number": "1234",
    });
    if urgency == "stroke" {
        form["symptom_onset"] = json!("2026-03-18T01:40:00+01:00");
        form["nihss"] = json!(12);
    }
    form
}

fn study(patient: &str) -> SyntheticStudy {
    let mut study = SyntheticStudy::ct(1);
    study.patient_id = patient.into();
    study.accession_number = format!("ACC-{patient}");
    study.study_date = "20260318".into();
    study
}

fn uids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["study_instance_uid"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn rank(priority: &str) -> u8 {
    match priority {
        "stat" => 0,
        "urgent" => 1,
        _ => 2,
    }
}

fn the_worklist_is_sorted_filtered_and_paged(backend: &Backend) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 1,
            extra_config: CONFIG.into(),
            clock_start: Some(NIGHT.into()),
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
    let list = |token: &str, query: &str| -> Value {
        let (status, body) = server.get_as(Some(token), &format!("/api/worklist{query}"));
        assert_eq!(status, 200, "{query}: {body}");
        body
    };

    let (stroke, urgent, bare) = (study("P-STROKE"), study("P-URGENT"), study("P-BARE"));
    for (patient, urgency) in [("P-STROKE", "stroke"), ("P-URGENT", "urgent")] {
        let (status, body) = server.post_as(
            Some(&tech_a),
            "/api/forms",
            &form(patient, urgency).to_string(),
        );
        assert_eq!(status, 201, "{body}");
    }
    for s in [&bare, &urgent, &stroke] {
        storescu_push(&server, s, "SITE_A");
    }
    let all = eventually("three studies classified", Duration::from_secs(30), || {
        let page = list(&admin, "");
        (uids(&page).len() == 3).then_some(page)
    });

    // Most urgent first, then by deadline; the stroke is on top with its window.
    let items = all["items"].as_array().cloned().unwrap_or_default();
    // Deadlines compared as instants: RFC 3339 text drops trailing zeros
    // of the fraction (".23Z" is before ".233Z" but sorts after it).
    let keys: Vec<(u8, Option<i64>)> = items
        .iter()
        .map(|i| {
            (
                rank(i["priority"].as_str().unwrap_or("")),
                ms(&i["report_due"]),
            )
        })
        .collect();
    assert!(keys.iter().all(|(_, due)| due.is_some()), "{all}");
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "{all}");
    let top = &items[0];
    assert_eq!(
        top["study_instance_uid"],
        stroke.study_instance_uid.as_str()
    );
    assert_eq!(top["reader"]["name"], "Dr Neuro", "{top}");
    assert_eq!(top["form"], "present");
    assert_eq!(top["examination"], "CT for P-STROKE");
    assert_eq!(top["report_status"], "none");
    assert_eq!(
        ms(&top["stroke"]["thrombolysis_until"]),
        Some(ONSET_MS + 270 * 60_000),
        "{top}"
    );
    // 06:10 minus a few seconds past 03:00 on the server's clock.
    let left = top["stroke"]["thrombolysis_left_ms"].as_i64().unwrap_or(0);
    assert!(
        (3 * 3_600_000 + 9 * 60_000..=3 * 3_600_000 + 10 * 60_000).contains(&left),
        "{top}"
    );
    assert!(
        top["report_due_in_ms"].as_i64().is_some_and(|d| d > 0),
        "{top}"
    );

    // Filters.
    assert_eq!(
        uids(&list(&admin, "?form_missing=true")),
        [bare.study_instance_uid.as_str()]
    );
    assert_eq!(
        uids(&list(&rad, "?mine=true")),
        [stroke.study_instance_uid.as_str()]
    );
    // A reader's landing view: theirs, and the urgent ones nobody has
    // (the routine study without a form waits for the whole list).
    let priorities: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            let text = |v: &Value| v.as_str().unwrap_or("").to_string();
            (text(&i["study_instance_uid"]), text(&i["priority"]))
        })
        .collect();
    assert!(
        priorities.contains(&(urgent.study_instance_uid.clone(), "urgent".into())),
        "{priorities:?}"
    );
    assert_eq!(
        uids(&list(&rad, "?mine_or_urgent=true")),
        [
            stroke.study_instance_uid.as_str(),
            urgent.study_instance_uid.as_str()
        ]
    );
    assert_eq!(uids(&list(&rad, "")).len(), 3);
    let waiting = uids(&list(&admin, "?unassigned=true"));
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    assert!(!waiting.contains(&stroke.study_instance_uid));
    assert_eq!(
        uids(&list(&admin, "?priority=stat")),
        [stroke.study_instance_uid.as_str()]
    );
    assert_eq!(uids(&list(&admin, "?site=site-b")), Vec::<String>::new());
    assert_eq!(uids(&list(&admin, "?status=signed")), Vec::<String>::new());
    assert_eq!(uids(&list(&clin_a, "")), uids(&all));
    assert_eq!(uids(&list(&clin_b, "")), Vec::<String>::new());

    // A page at a time, the same studies in the same order.
    let mut paged = Vec::new();
    let mut next = Some("/api/worklist?limit=1".to_string());
    while let Some(path) = next {
        let (status, page) = server.get_as(Some(&admin), &path);
        assert_eq!(status, 200, "{page}");
        paged.extend(uids(&page));
        next = page["next"].as_str().map(str::to_string);
        assert!(paged.len() <= 3, "{paged:?}");
    }
    assert_eq!(paged, uids(&all));

    // Bad filters are refused, saying why.
    for (token, query, says) in [
        (&admin, "?status=finished", "status"),
        (&admin, "?priority=asap", "priority"),
        (&clin_a, "?mine=true", "mine"),
        (&clin_a, "?mine_or_urgent=true", "mine_or_urgent"),
        (&admin, "?cursor=1.2", "cursor"),
        (&admin, "?limit=0", "limit"),
        (&admin, "?colour=red", "colour"),
    ] {
        let (status, body) = server.get_as(Some(token), &format!("/api/worklist{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap_or("").contains(says),
            "{query}: {body}"
        );
    }

    // Claims: one's own study, or one from the pool; one reader only.
    let other = server.user_token(
        "other",
        &["--role", "radiologist", "--radiologist", "dr-other"],
    );
    let act = |token: &str, uid: &str, what: &str, body: &str| {
        server.post_as(Some(token), &format!("/api/studies/{uid}/{what}"), body)
    };
    let (status, body) = act(&rad, &stroke.study_instance_uid, "claim", "");
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("acknowledged")),
        "{body}"
    );
    let (status, body) = act(&rad, &bare.study_instance_uid, "claim", "");
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("acknowledged")),
        "{body}"
    );
    assert_eq!(body["radiologist"]["id"], "dr-neuro", "{body}");
    assert!(
        body["history"].to_string().contains("from the pool"),
        "{body}"
    );
    // A second click changes nothing; another reader no longer sees it.
    assert_eq!(act(&rad, &bare.study_instance_uid, "claim", "").0, 200);
    assert_eq!(act(&other, &bare.study_instance_uid, "claim", "").0, 404);
    assert_eq!(act(&clin_a, &bare.study_instance_uid, "claim", "").0, 403);
    let mine = uids(&list(&rad, "?mine=true"));
    assert_eq!(mine.len(), 2, "{mine:?}");
    // A draft left behind is not the next reader's to issue.
    let bare_report = format!("/api/studies/{}/report", bare.study_instance_uid);
    let draft = r#"{"template": "free-text", "fields": {"conclusion": "Draft by dr-neuro."}}"#;
    let (status, body) = server
        .request(
            "PUT",
            &format!("{bare_report}/draft"),
            Some(&rad),
            Some(draft),
        )
        .expect("an answer");
    assert_eq!(status, 200, "{body}");
    // Released: back in the pool with a reason, an alert, and not mine.
    assert_eq!(
        act(&other, &urgent.study_instance_uid, "release", "").0,
        409
    );
    assert_eq!(
        act(&rad, &bare.study_instance_uid, "release", "{\"colour\": 1}").0,
        400
    );
    let (status, body) = act(
        &rad,
        &bare.study_instance_uid,
        "release",
        r#"{"reason": "not my subspecialty"}"#,
    );
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("unassigned")),
        "{body}"
    );
    assert!(
        body["history"].to_string().contains("not my subspecialty"),
        "{body}"
    );
    assert_eq!(
        uids(&list(&rad, "?mine=true")),
        [stroke.study_instance_uid.as_str()]
    );
    let (status, alerts) = server.get("/api/alerts");
    assert_eq!(status, 200, "{alerts}");
    let released = alerts.as_array().into_iter().flatten().any(|a| {
        a["kind"] == "released" && a["study_instance_uid"] == bare.study_instance_uid.as_str()
    });
    assert!(released, "{alerts}");
    // The other reader of the site takes it from the pool.
    let (status, body) = act(&other, &bare.study_instance_uid, "claim", "");
    assert_eq!(body["radiologist"]["id"], "dr-other", "{status} {body}");
    assert_eq!(
        server.get_as(Some(&other), &bare_report).0,
        404,
        "not theirs to see"
    );
    for step in ["preliminary", "final"] {
        let body = if step == "final" {
            r#"{"password": "a password for the tests"}"#
        } else {
            ""
        };
        let (status, answer) = act(
            &other,
            &bare.study_instance_uid,
            &format!("report/{step}"),
            body,
        );
        assert_eq!(status, 409, "{step} of another's draft: {answer}");
    }
    let listed = list(&other, "?mine=true");
    assert_eq!(listed["items"][0]["report_status"], "none", "{listed}");

    // The study's thread: the site asks, the reader reads; receipts say who.
    let thread = format!("/api/studies/{}/messages", stroke.study_instance_uid);
    let (status, body) = server.post_as(
        Some(&clin_a),
        &thread,
        r#"{"body": "Patient on apixaban since June."}"#,
    );
    assert_eq!(status, 201, "{body}");
    let (status, seen) = server.get_as(Some(&rad), &thread);
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["messages"][0]["author"]["login"], "clin-a", "{seen}");
    let (_, seen) = server.get_as(Some(&clin_a), &thread);
    let readers: Vec<&str> = seen["messages"][0]["read_by"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["login"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(readers, ["clin-a", "rad"], "{seen}");
    assert_eq!(server.get_as(Some(&clin_b), &thread).0, 404);
    assert_eq!(
        server
            .post_as(Some(&clin_b), &thread, r#"{"body": "hello"}"#)
            .0,
        404
    );
    for bad in [r#"{"body": "   "}"#, "{not json", r#"{"text": "hi"}"#] {
        let (status, body) = server.post_as(Some(&clin_a), &thread, bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // Who saw which studies is in the trail.
    let (status, trail) = server.get("/api/audit?limit=1000");
    assert_eq!(status, 200);
    let read_by_clin_a = trail["items"].as_array().into_iter().flatten().any(|r| {
        r["action"] == "worklist.read"
            && r["actor"] == "clin-a"
            && r["detail"].to_string().contains(&stroke.study_instance_uid)
    });
    assert!(read_by_clin_a, "{trail}");
}
