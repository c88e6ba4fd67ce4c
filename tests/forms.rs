//! Request forms end to end: a technician files a stroke form before the
//! images, DCMTK `storescu` pushes the CT, and the router reads the form
//! (neuro, stat); a form filed after the assignment raises the priority
//! and says so in the study's history; bad forms are refused field by
//! field, another site's patients stay out of reach, and the audit trail
//! still verifies. A site lists the forms waiting for their images,
//! corrects one (its mistyped accession number: it then finds its study,
//! and its urgency raises the study's priority; the old text is kept) and
//! calls another off (no study is matched to it any more).

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(
    forms_feed_the_router_and_are_checked_field_by_field,
    forms_are_corrected_and_called_off
);

/// Nobody on duty: complete studies wait unassigned, with the priority and
/// subspecialty the rules gave them.
const CONFIG: &str = r#"
[[radiologists]]
id = "dr-neuro"
name = "Dr Neuro"
subspecialties = ["neuro"]
sites = ["site-a"]
max_open_studies = 8

[[rules]]
name = "stroke-request"
stroke = true
subspecialty = "neuro"
priority = "stat"

[[rules]]
name = "stat-request"
urgency = "stat"
subspecialty = "general"
priority = "stat"
"#;

/// Pushes `study` with DCMTK's storescu as site-a's scanner and waits for
/// the router to have classified it.
fn push(server: &TestServer, study: &SyntheticStudy) -> Value {
    storescu_push(server, study, "SITE_A");
    let uid = &study.study_instance_uid;
    eventually("the study classified", Duration::from_secs(30), || {
        let (_, body) = server.get(&format!("/api/studies/{uid}"));
        body["assignment"]["state"].is_string().then_some(body)
    })
}

fn stroke_form(patient: &str, accession: &str) -> Value {
    json!({
        "patient_id": patient,
        "accession_number": accession,
        "urgency": "stroke",
        "clinical_question": "Left hemiparesis and aphasia since 01:40: haemorrhage?",
        "requested_examination": "CT head without contrast",
        "requesting_physician": "Dr Urgences",
        "callback_number": "+33 2 48 00 00 00",
        "symptom_onset": "2026-11-26T01:40:00+01:00",
        "nihss": 14,
        "anticoagulants": "none",
        "pregnancy": "not_applicable",
    })
}

fn forms_feed_the_router_and_are_checked_field_by_field(backend: &Backend) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 1,
            extra_config: CONFIG.into(),
            ..ServerOptions::default()
        },
    );
    let tech_a = server.user_token("tech-a", &["--role", "technician", "--site", "site-a"]);
    let clin_b = server.user_token("clin-b", &["--role", "clinician", "--site", "site-b"]);
    let rad = server.user_token(
        "rad",
        &["--role", "radiologist", "--radiologist", "dr-neuro"],
    );
    let file =
        |token: &str, form: &Value| server.post_as(Some(token), "/api/forms", &form.to_string());

    // Before the images: the form waits.
    let mut stroke = SyntheticStudy::ct(2);
    stroke.patient_id = "P-STROKE".into();
    stroke.accession_number = "ACC-STROKE".into();
    let (status, filed) = file(&tech_a, &stroke_form("P-STROKE", "ACC-STROKE"));
    assert_eq!(status, 201, "{filed}");
    assert_eq!(filed["study_instance_uid"], Value::Null, "{filed}");
    let study = push(&server, &stroke);
    let assignment = &study["assignment"];
    assert_eq!(
        (
            assignment["priority"].as_str(),
            assignment["subspecialty"].as_str(),
            assignment["rule"].as_str()
        ),
        (Some("stat"), Some("neuro"), Some("stroke-request")),
        "{study}"
    );
    let uid = stroke.study_instance_uid.as_str();
    let (status, form) = server.get_as(Some(&tech_a), &format!("/api/studies/{uid}/form"));
    assert_eq!(status, 200, "{form}");
    assert_eq!(form["form"]["nihss"], 14);
    assert_eq!(form["form"]["site"], "site-a");
    assert_eq!(form["filed_by"], "tech-a");
    // 01:40 +01:00 is 00:40 UTC; the window closes 4 h 30 later.
    assert_eq!(
        form["thrombolysis_until"].as_i64(),
        Some(1_795_653_600_000 + 270 * 60_000),
        "{form}"
    );
    // The radiologist of the pool reads it; another site does not see it.
    assert_eq!(
        server
            .get_as(Some(&rad), &format!("/api/studies/{uid}/form"))
            .0,
        200
    );
    let (status, body) = server.get_as(Some(&clin_b), &format!("/api/studies/{uid}/form"));
    assert_eq!(status, 404, "{body}");

    // After the assignment: a routine study becomes stat.
    let mut late = SyntheticStudy::ct(2);
    late.patient_id = "P-LATE".into();
    late.accession_number = String::new();
    let study = push(&server, &late);
    assert_eq!(study["assignment"]["priority"], "routine", "{study}");
    let (status, body) = server.get_as(
        Some(&tech_a),
        &format!("/api/studies/{}/form", late.study_instance_uid),
    );
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("form missing")
    );
    let late_form = json!({
        "patient_id": "P-LATE",
        "study_date": late.study_date,
        "urgency": "stat",
        "clinical_question": "Fall from a height, GCS 9",
        "requested_examination": "CT head",
        "requesting_physician": "Dr Urgences",
        "callback_number": "1234",
    });
    let (status, filed) = file(&tech_a, &late_form);
    assert_eq!(status, 201, "{filed}");
    assert_eq!(
        filed["study_instance_uid"],
        late.study_instance_uid.as_str()
    );
    assert_eq!(
        filed["reprioritised"],
        json!({"from": "routine", "to": "stat"}),
        "{filed}"
    );
    let (_, study) = server.get(&format!("/api/studies/{}", late.study_instance_uid));
    assert_eq!(study["assignment"]["priority"], "stat", "{study}");
    let history = study["assignment"]["history"].to_string();
    assert!(history.contains("reprioritised"), "{history}");
    // A second form for the patient that day waits for a study of its
    // own (a chest CT after the head, say): the first study keeps its form.
    let (status, body) = file(&tech_a, &late_form);
    assert_eq!(
        (status, &body["study_instance_uid"]),
        (201, &Value::Null),
        "{body}"
    );
    let (_, form) = server.get(&format!("/api/studies/{}/form", late.study_instance_uid));
    assert_eq!(form["id"], filed["id"], "{form}");

    // An accession number typed into another patient's form never gives
    // that form to this patient's study.
    let mut third = SyntheticStudy::ct(2);
    third.patient_id = "P-THIRD".into();
    third.accession_number = "ACC-3".into();
    push(&server, &third);
    let (status, filed) = file(&tech_a, &stroke_form("P-SOMEONE-ELSE", "ACC-3"));
    assert_eq!(
        (status, &filed["study_instance_uid"]),
        (201, &Value::Null),
        "{filed}"
    );
    let (status, filed) = file(&tech_a, &stroke_form("P-THIRD", "ACC-3"));
    assert_eq!(status, 201, "{filed}");
    assert_eq!(
        filed["study_instance_uid"],
        third.study_instance_uid.as_str()
    );

    // Bad forms: the field is named, nothing is stored.
    let mut no_nihss = stroke_form("P-X", "");
    no_nihss.as_object_mut().map(|f| f.remove("nihss"));
    let refusals: [(&str, Value, u16, &str); 6] = [
        ("tech-a", no_nihss, 400, "nihss"),
        (
            "tech-a",
            json!({"patient_id": "P", "urgency": "urgent"}),
            400,
            "clinical_question",
        ),
        ("tech-a", json!({"surprise": 1}), 400, "surprise"),
        (
            "tech-a",
            {
                let mut f = stroke_form("P-X", "");
                f["site"] = "site-b".into();
                f
            },
            400,
            "site",
        ),
        (
            "tech-a",
            {
                let mut f = stroke_form("P-X", "");
                f["symptom_onset"] = "yesterday".into();
                f
            },
            400,
            "symptom_onset",
        ),
        ("rad", stroke_form("P-X", ""), 403, ""),
    ];
    for (who, form, want, field) in refusals {
        let token = if who == "rad" { &rad } else { &tech_a };
        let (status, body) = file(token, &form);
        assert_eq!(status, want, "{who} files {form}: {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains(field),
            "{form}: {body}"
        );
    }
    let (status, body) = server
        .request("POST", "/api/forms", Some(&tech_a), Some("{not json"))
        .expect("an answer");
    assert_eq!(status, 400, "{body}");

    // Each filing and reading is in the trail, and the trail holds.
    let (status, trail) = server.get("/api/audit?limit=500");
    assert_eq!(status, 200, "{trail}");
    let trail = trail.to_string();
    assert!(
        trail.contains("form.file") && trail.contains("form.read"),
        "{trail}"
    );
    let verified = server.cli(&["audit", "verify"], None);
    assert!(verified.contains("intact"), "{verified}");
}

fn forms_are_corrected_and_called_off(backend: &Backend) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 1,
            extra_config: CONFIG.into(),
            ..ServerOptions::default()
        },
    );
    let tech_a = server.user_token("tech-a", &["--role", "technician", "--site", "site-a"]);
    let clin_b = server.user_token("clin-b", &["--role", "clinician", "--site", "site-b"]);
    let call = |token: &str, method: &str, path: &str, body: Option<&Value>| -> (u16, Value) {
        let body = body.map(Value::to_string);
        server
            .request(method, path, Some(token), body.as_deref())
            .expect("an answer")
    };
    let routine = |patient: &str, accession: &str| {
        json!({
            "patient_id": patient,
            "accession_number": accession,
            "urgency": "routine",
            "clinical_question": "Abdominal pain, fever: appendicitis?",
            "requested_examination": "CT abdomen-pelvis",
            "requesting_physician": "Dr Urgences",
            "callback_number": "1234",
        })
    };

    // The accession number is mistyped: the form waits, the study arrives
    // without it.
    let (status, filed) = call(
        &tech_a,
        "POST",
        "/api/forms",
        Some(&routine("P-FIX", "ACC-TYPO")),
    );
    assert_eq!(status, 201, "{filed}");
    let id = filed["id"].as_i64().expect("the form's id");
    let mut study = SyntheticStudy::ct(2);
    study.patient_id = "P-FIX".into();
    study.accession_number = "ACC-FIX".into();
    let arrived = push(&server, &study);
    assert_eq!(arrived["assignment"]["priority"], "routine", "{arrived}");
    let uid = study.study_instance_uid.as_str();
    let waiting_ids = |token: &str| -> Vec<i64> {
        let (status, list) = call(token, "GET", "/api/forms", None);
        assert_eq!(status, 200, "{list}");
        list["items"]
            .as_array()
            .map(|items| items.iter().filter_map(|f| f["id"].as_i64()).collect())
            .unwrap_or_default()
    };
    assert_eq!(waiting_ids(&tech_a), [id]);
    assert_eq!(waiting_ids(&clin_b), Vec::<i64>::new());
    let form_path = format!("/api/forms/{id}");
    assert_eq!(call(&clin_b, "GET", &form_path, None).0, 404);
    assert_eq!(
        call(
            &clin_b,
            "PUT",
            &form_path,
            Some(&routine("P-FIX", "ACC-FIX"))
        )
        .0,
        404
    );

    // Bad corrections are refused by field, the form unchanged.
    let mut moved = routine("P-FIX", "ACC-FIX");
    moved["site"] = "site-b".into();
    let mut stroke = routine("P-FIX", "ACC-FIX");
    stroke["urgency"] = "stroke".into();
    for (body, field) in [(moved, "site"), (stroke, "symptom_onset")] {
        let (status, answer) = call(&tech_a, "PUT", &form_path, Some(&body));
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .starts_with(field),
            "{answer}"
        );
    }

    // Corrected: it finds its study, now stat, and keeps the old text.
    let mut fixed = routine("P-FIX", "ACC-FIX");
    fixed["urgency"] = "stat".into();
    let (status, amended) = call(&tech_a, "PUT", &form_path, Some(&fixed));
    assert_eq!(status, 200, "{amended}");
    assert_eq!(amended["study_instance_uid"], uid, "{amended}");
    assert_eq!(
        amended["reprioritised"],
        json!({"from": "routine", "to": "stat"}),
        "{amended}"
    );
    let (_, detail) = server.get(&format!("/api/studies/{uid}"));
    assert_eq!(detail["assignment"]["priority"], "stat", "{detail}");
    let (status, shown) = call(&tech_a, "GET", &form_path, None);
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["form"]["accession_number"], "ACC-FIX", "{shown}");
    assert_eq!(shown["amended_by"], "tech-a", "{shown}");
    assert_eq!(shown["study_instance_uid"], uid, "{shown}");
    let revisions = shown["revisions"].as_array().cloned().unwrap_or_default();
    assert_eq!(revisions.len(), 1, "{shown}");
    assert_eq!(revisions[0]["form"]["accession_number"], "ACC-TYPO");
    assert_eq!(revisions[0]["written_by"], "tech-a");
    assert_eq!(waiting_ids(&tech_a), Vec::<i64>::new());

    // Called off: kept, marked, never matched.
    let (status, filed) = call(
        &tech_a,
        "POST",
        "/api/forms",
        Some(&routine("P-GONE", "ACC-GONE")),
    );
    assert_eq!(status, 201, "{filed}");
    let gone = filed["id"].as_i64().expect("an id");
    let cancel = format!("/api/forms/{gone}/cancel");
    let (status, body) = call(&tech_a, "POST", &cancel, Some(&json!({"reason": " "})));
    assert_eq!(status, 400, "{body}");
    let reason = json!({"reason": "patient transferred to the university hospital"});
    assert_eq!(call(&clin_b, "POST", &cancel, Some(&reason)).0, 404);
    let (status, cancelled) = call(&tech_a, "POST", &cancel, Some(&reason));
    assert_eq!(status, 200, "{cancelled}");
    assert!(cancelled["cancelled_at"].is_string(), "{cancelled}");
    for (path, body) in [
        (cancel.clone(), reason.clone()),
        (format!("/api/forms/{id}/cancel"), reason.clone()),
        (format!("/api/forms/{gone}"), routine("P-GONE", "ACC-GONE")),
    ] {
        let method = if path.ends_with("cancel") {
            "POST"
        } else {
            "PUT"
        };
        let (status, answer) = call(&tech_a, method, &path, Some(&body));
        assert_eq!(status, 409, "{method} {path}: {answer}");
    }
    assert_eq!(waiting_ids(&tech_a), Vec::<i64>::new());
    let mut late = SyntheticStudy::ct(1);
    late.patient_id = "P-GONE".into();
    late.accession_number = "ACC-GONE".into();
    push(&server, &late);
    let (status, body) = call(
        &tech_a,
        "GET",
        &format!("/api/studies/{}/form", late.study_instance_uid),
        None,
    );
    assert_eq!(status, 404, "a cancelled form is not matched: {body}");

    let (_, trail) = server.get("/api/audit?limit=500");
    let trail = trail.to_string();
    for action in ["form.amend", "form.cancel", "form.list_waiting"] {
        assert!(trail.contains(action), "{action} not in the trail");
    }
    let verified = server.cli(&["audit", "verify"], None);
    assert!(verified.contains("intact"), "{verified}");
}
