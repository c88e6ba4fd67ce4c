//! Reports end to end: a technician files a stroke form, DCMTK `storescu`
//! pushes the CT, the router gives it to the neuroradiologist on duty, who
//! claims it, saves drafts (private to them), issues a preliminary the
//! site's clinician reads (another site's does not), signs the final with
//! their password (a wrong one signs nothing), and adds an addendum. The
//! reader flags critical results; the site's clinician acknowledges one
//! and the reader records the call of another, and the final report
//! carries both statements. The signed final frees the reader's open
//! load: the study waiting for them is then assigned. Illegal steps are 409s with their reason, bad content
//! 400s naming the field, and the audit trail verifies.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(a_report_goes_from_draft_to_addendum_and_frees_the_reader);

/// A Wednesday night in Paris: dr-neuro is on duty, and reads one open
/// study at a time.
const NIGHT: &str = "2026-03-18T03:00:00+01:00";
const PASSWORD: &str = "a password for the tests";

const CONFIG: &str = r#"
[[radiologists]]
id = "dr-neuro"
name = "Dr Neuro"
subspecialties = ["neuro"]
sites = ["site-a"]
max_open_studies = 1

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
"#;

fn stroke_form(patient: &str, accession: &str) -> Value {
    json!({
        "patient_id": patient,
        "accession_number": accession,
        "study_date": "20260318",
        "urgency": "stroke",
        "clinical_question": "Right hemiparesis since 01:40: haemorrhage? occlusion?",
        "requested_examination": "CT head without contrast, CT angiography",
        "requesting_physician": "Dr Urgences",
        "callback_number": "+33 2 48 00 00 00",
        "symptom_onset": "2026-03-18T01:40:00+01:00",
        "nihss": 9,
    })
}

fn stroke_study(patient: &str, accession: &str) -> SyntheticStudy {
    let mut study = SyntheticStudy::ct(2);
    study.patient_id = patient.into();
    study.accession_number = accession.into();
    study.study_date = "20260318".into();
    study
}

fn assignment_of(server: &TestServer, uid: &str, want: impl Fn(&Value) -> bool) -> Value {
    eventually("the assignment", Duration::from_secs(30), || {
        let (_, body) = server.get(&format!("/api/studies/{uid}"));
        want(&body["assignment"]).then(|| body["assignment"].clone())
    })
}

fn a_report_goes_from_draft_to_addendum_and_frees_the_reader(backend: &Backend) {
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
    let call = |token: &str, method: &str, path: &str, body: Option<&Value>| -> (u16, Value) {
        let body = body.map(Value::to_string);
        server
            .request(method, path, Some(token), body.as_deref())
            .expect("an answer")
    };

    let (status, body) = call(
        &tech_a,
        "POST",
        "/api/forms",
        Some(&stroke_form("P-1", "ACC-1")),
    );
    assert_eq!(status, 201, "{body}");
    let form_id = body["id"].as_i64().expect("the form's id");
    let first = stroke_study("P-1", "ACC-1");
    storescu_push(&server, &first, "SITE_A");
    let uid = first.study_instance_uid.as_str();
    let assignment = assignment_of(&server, uid, |a| a["state"] == "assigned");
    assert_eq!(assignment["radiologist"]["id"], "dr-neuro", "{assignment}");
    assert_eq!(assignment["priority"], "stat", "{assignment}");
    let report = format!("/api/studies/{uid}/report");
    // A refusal in the language the request prefers: French where it is
    // preferred (telerad's pages send their own), English otherwise.
    let said_in = |language: &str, method: &str, path: &str, body: Option<&Value>| {
        let body = body.map(Value::to_string);
        let (status, headers, answer) = server
            .request_with(
                method,
                path,
                Some(&rad),
                body.as_deref(),
                &[("accept-language", language)],
            )
            .expect("an answer");
        let content_language = headers
            .get("content-language")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let error = answer["error"].as_str().unwrap_or_default().to_string();
        (status, content_language, error)
    };

    // Not claimed yet: nothing may be written.
    let partial = json!({
        "template": "ct-head-stroke",
        "fields": {"haemorrhage": "absent", "aspects": 9},
    });
    let (status, body) = call(&rad, "PUT", &format!("{report}/draft"), Some(&partial));
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("acknowledge"),
        "{body}"
    );
    let draft = format!("{report}/draft");
    let french = said_in("fr-FR,fr;q=0.9,en;q=0.8", "PUT", &draft, Some(&partial));
    assert_eq!(
        french,
        (
            409,
            "fr".to_string(),
            "prenez l'examen avant d'en rédiger le compte rendu".to_string()
        )
    );
    let english = said_in("de-DE,en;q=0.5", "PUT", &draft, Some(&partial));
    assert_eq!(
        english,
        (
            409,
            "en".to_string(),
            "acknowledge the study before writing its report".to_string()
        )
    );
    // A role the policy refuses, and a field the template refuses, too.
    let (status, language, error) = said_in("fr", "POST", "/api/forms", Some(&json!({})));
    assert_eq!((status, language.as_str()), (403, "fr"), "{error}");
    assert_eq!(
        error, "un compte radiologue ne peut pas déposer de demandes d'examen",
        "{error}"
    );
    let (status, body) = call(
        &rad,
        "POST",
        &format!("/api/studies/{uid}/acknowledge"),
        None,
    );
    assert_eq!(status, 200, "{body}");

    // The indication: more information asked of the site, in its thread;
    // then accepted. Only the claimed reader checks it.
    let indication = format!("/api/studies/{uid}/indication");
    let ask = json!({"decision": "more_information", "note": "Anticoagulants? INR?"});
    for (token, body, want) in [
        (&clin_a, ask.clone(), 403),
        (&rad, json!({"decision": "more_information"}), 400),
        (&rad, json!({"decision": "maybe"}), 400),
    ] {
        let (status, answer) = call(token, "POST", &indication, Some(&body));
        assert_eq!(status, want, "{body}: {answer}");
    }
    let (status, asked) = call(&rad, "POST", &indication, Some(&ask));
    assert_eq!(status, 200, "{asked}");
    let (status, thread) = call(
        &clin_a,
        "GET",
        &format!("/api/studies/{uid}/messages"),
        None,
    );
    assert_eq!(status, 200, "{thread}");
    assert!(
        thread["messages"][0]["body"]
            .as_str()
            .unwrap_or_default()
            .contains("Anticoagulants? INR?"),
        "{thread}"
    );
    let (status, answer) = call(
        &rad,
        "POST",
        &indication,
        Some(&json!({"decision": "accepted"})),
    );
    assert_eq!(status, 200, "{answer}");
    let (_, form) = call(&clin_a, "GET", &format!("/api/studies/{uid}/form"), None);
    assert_eq!(form["indication"]["decision"], "accepted", "{form}");
    assert_eq!(form["indication"]["by"], "dr-neuro", "{form}");

    // Bad content names its field; nothing is stored.
    for (content, field) in [
        (
            json!({"template": "ct-head-stroke", "fields": {"aspects": 12}}),
            "fields.aspects",
        ),
        (
            json!({"template": "ct-head-stroke", "fields": {"haemorrhage": "maybe"}}),
            "fields.haemorrhage",
        ),
        (json!({"template": "ct-knee"}), "template"),
        (json!({"template": "free-text", "colour": "red"}), "colour"),
    ] {
        let (status, body) = call(&rad, "PUT", &format!("{report}/draft"), Some(&content));
        assert_eq!(status, 400, "{content}: {body}");
        assert!(
            body["error"].as_str().unwrap_or("").contains(field),
            "{body}"
        );
    }
    let aspects = json!({"template": "ct-head-stroke", "fields": {"aspects": 12}});
    let (status, language, error) = said_in("fr", "PUT", &draft, Some(&aspects));
    assert_eq!((status, language.as_str()), (400, "fr"), "{error}");
    assert_eq!(error, "fields.aspects : doit être entre 0 et 10", "{error}");
    assert_eq!(call(&rad, "GET", &report, None).0, 404);

    // A draft: the author's alone.
    let (status, body) = call(&rad, "PUT", &format!("{report}/draft"), Some(&partial));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "draft");
    assert_eq!(body["draft"]["content"]["fields"]["aspects"], 9);
    let (status, body) = call(&clin_a, "GET", &report, None);
    assert_eq!(status, 404, "{body}");
    // Signing is refused while required fields are empty, password or not.
    let (status, body) = call(
        &rad,
        "POST",
        &format!("{report}/final"),
        Some(&json!({"password": PASSWORD})),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("fields.acquisitions"),
        "{body}"
    );
    // An addendum needs a signed final.
    let (status, body) = call(
        &rad,
        "POST",
        &format!("{report}/addenda"),
        Some(&json!({"text": "Too early.", "password": PASSWORD})),
    );
    assert_eq!(status, 409, "{body}");

    // A preliminary answers the required fields too: the site acts on it.
    let (status, body) = call(&rad, "POST", &format!("{report}/preliminary"), None);
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("fields.conclusion"),
        "{body}"
    );
    let first_read = json!({
        "template": "ct-head-stroke",
        "fields": {
            "acquisitions": "non-contrast CT",
            "haemorrhage": "absent",
            "early_ischaemia": "indeterminate",
            "aspects": 9,
            "conclusion": "No haemorrhage. CT angiography to follow."
        },
    });
    let (status, body) = call(&rad, "PUT", &format!("{report}/draft"), Some(&first_read));
    assert_eq!(status, 200, "{body}");

    // The preliminary: the site reads it at once, another site does not.
    let (status, body) = call(&rad, "POST", &format!("{report}/preliminary"), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["status"].as_str(),
            body["interop"]["fhir"].as_str(),
            body["interop"]["hl7v2"].as_str()
        ),
        (Some("preliminary"), Some("preliminary"), Some("P")),
        "{body}"
    );
    let (status, seen) = call(&clin_a, "GET", &report, None);
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["versions"][0]["kind"], "preliminary", "{seen}");
    assert_eq!(
        seen["versions"][0]["content"]["fields"]["haemorrhage"],
        "absent"
    );
    assert!(seen.get("draft").is_none(), "{seen}");
    assert_eq!(call(&clin_b, "GET", &report, None).0, 404);
    // Printable, marked preliminary.
    let print = format!("{report}/print");
    let (status, page) = call(&clin_a, "GET", &print, None);
    assert_eq!(status, 200, "{page}");
    let page = page.as_str().unwrap_or("").to_string();
    assert!(
        page.starts_with("<!doctype html>") && page.contains("Preliminary report"),
        "{page}"
    );
    assert_eq!(call(&clin_b, "GET", &print, None).0, 404);
    // Nothing more to issue until the draft changes again.
    assert_eq!(
        call(&rad, "POST", &format!("{report}/preliminary"), None).0,
        409
    );

    // A critical finding: the site's clinician closes the loop.
    let critical = format!("/api/studies/{uid}/critical-results");
    let finding = json!({"category": 1, "finding": "Left M1 occlusion"});
    let (status, flagged) = call(&rad, "POST", &critical, Some(&finding));
    assert_eq!(status, 201, "{flagged}");
    let result = &flagged[0];
    assert_eq!(
        (result["state"].as_str(), result["category"].as_i64()),
        (Some("open"), Some(1))
    );
    assert_eq!(result["callback_number"], "+33 2 48 00 00 00", "{result}");
    assert_eq!(
        ms(&result["due_at"])
            .zip(ms(&result["flagged_at"]))
            .map(|(due, at)| due - at),
        Some(30 * 60_000),
        "category 1: 30 minutes by default"
    );
    let id = result["id"].as_i64().unwrap_or(0);
    for (token, want) in [(&clin_b, 404), (&tech_a, 403), (&rad, 403)] {
        let (status, body) = call(token, "POST", &format!("{critical}/{id}/acknowledge"), None);
        assert_eq!(status, want, "{body}");
    }
    for bad in [
        json!({"category": 4, "finding": "x"}),
        json!({"category": 2, "finding": " "}),
    ] {
        let (status, body) = call(&rad, "POST", &critical, Some(&bad));
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, seen) = call(&clin_a, "GET", &critical, None);
    assert_eq!(
        (status, seen[0]["state"].as_str()),
        (200, Some("open")),
        "{seen}"
    );
    let (status, closed) = call(
        &clin_a,
        "POST",
        &format!("{critical}/{id}/acknowledge"),
        None,
    );
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed[0]["state"], "acknowledged", "{closed}");
    assert_eq!(
        closed[0]["acknowledgement"]["recorded_by"], "clin-a",
        "{closed}"
    );
    let statement = closed[0]["statement"].as_str().unwrap_or("").to_string();
    assert!(
        statement.contains("Communicated to")
            && statement.contains("emergency physician, on 2026-03-18 at 03:")
            && statement.contains("(Europe/Paris) by acknowledgement in telerad"),
        "{statement}"
    );
    // The same loop read in French: the statement as a French report
    // would carry it.
    let (status, _, french) = server
        .request_with(
            "GET",
            &critical,
            Some(&clin_a),
            None,
            &[("accept-language", "fr")],
        )
        .expect("an answer");
    assert_eq!(status, 200, "{french}");
    let statement = french[0]["statement"].as_str().unwrap_or("").to_string();
    assert!(
        statement.starts_with("Résultat critique (catégorie ACR ")
            && statement.contains("médecin urgentiste, le 18/03/2026 à 03:")
            && statement.ends_with("(Europe/Paris) par accusé de réception dans telerad."),
        "{statement}"
    );
    let (status, body) = call(
        &clin_a,
        "POST",
        &format!("{critical}/{id}/acknowledge"),
        None,
    );
    assert_eq!(status, 409, "{body}");
    // The reader records a call for another one.
    let incidental = json!({"category": 3, "finding": "Incidental 2 cm adrenal nodule"});
    let (_, flagged) = call(&rad, "POST", &critical, Some(&incidental));
    let second = flagged[1]["id"].as_i64().unwrap_or(0);
    let communicated = format!("{critical}/{second}/communicated");
    let (status, body) = call(
        &rad,
        "POST",
        &communicated,
        Some(&json!({"to": "Dr Garde", "role": "emergency physician", "means": "telerad"})),
    );
    assert_eq!(
        status, 400,
        "a call is not an acknowledgement in telerad: {body}"
    );
    let (status, body) = call(
        &rad,
        "POST",
        &communicated,
        Some(&json!({"to": "Dr Garde", "role": "emergency physician", "means": "phone"})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body[1]["statement"]
            .as_str()
            .unwrap_or("")
            .contains("Dr Garde"),
        "{body}"
    );

    // The next stroke waits: dr-neuro is at their limit of one open study.
    let (status, body) = call(
        &tech_a,
        "POST",
        "/api/forms",
        Some(&stroke_form("P-2", "ACC-2")),
    );
    assert_eq!(status, 201, "{body}");
    let second = stroke_study("P-2", "ACC-2");
    storescu_push(&server, &second, "SITE_A");
    let waiting = assignment_of(&server, &second.study_instance_uid, |a| {
        a["state"].is_string()
    });
    assert_eq!(waiting["state"], "unassigned", "{waiting}");

    // The final: a wrong password signs nothing.
    let complete = json!({
        "template": "ct-head-stroke",
        "fields": {
            "acquisitions": "non-contrast CT + CT angiography",
            "haemorrhage": "absent",
            "early_ischaemia": "present",
            "aspects": 8,
            "occlusion": "M1",
            "conclusion": "Left M1 occlusion, ASPECTS 8, no haemorrhage."
        },
        "text": "Thrombectomy centre informed <at 03:20>."
    });
    // What the signer read: the draft's hash, quoted at signing.
    let (status, read) = call(&rad, "PUT", &format!("{report}/draft"), Some(&first_read));
    assert_eq!(status, 200, "{read}");
    let stale_hash = read["draft"]["content_hash"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(stale_hash.len(), 64, "{read}");
    let (status, body) = call(&rad, "PUT", &format!("{report}/draft"), Some(&complete));
    assert_eq!(status, 200, "{body}");
    let read_hash = body["draft"]["content_hash"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_ne!(read_hash, stale_hash);
    let (status, body) = call(
        &rad,
        "POST",
        &format!("{report}/final"),
        Some(&json!({"password": "not it"})),
    );
    assert_eq!(status, 403, "{body}");
    // Another tab saved after the signer read: their signature is refused.
    let (status, body) = call(
        &rad,
        "POST",
        &format!("{report}/final"),
        Some(&json!({"password": PASSWORD, "read_hash": stale_hash})),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("changed since you read it"),
        "{body}"
    );
    let (_, unchanged) = call(&clin_a, "GET", &report, None);
    assert_eq!(unchanged["status"], "preliminary", "{unchanged}");
    assert_eq!(unchanged["versions"].as_array().map(Vec::len), Some(1));
    let (status, body) = call(
        &rad,
        "POST",
        &format!("{report}/final"),
        Some(&json!({"password": PASSWORD, "read_hash": read_hash})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["status"].as_str(),
            body["interop"]["fhir"].as_str(),
            body["interop"]["hl7v2"].as_str()
        ),
        (Some("final"), Some("final"), Some("F")),
        "{body}"
    );
    let signed = body["versions"][1].clone();
    assert_eq!(signed["kind"], "final");
    assert_eq!(signed["signed_by"], "rad");
    assert_eq!(
        signed["content"]["fields"], complete["fields"],
        "the signed text is the last draft"
    );
    let said = signed["content"]["communications"].to_string();
    assert!(
        said.contains("Left M1 occlusion") && said.contains("Dr Garde"),
        "the report says what was communicated: {signed}"
    );
    let hash = signed["content_hash"].as_str().unwrap_or("");
    assert!(
        hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{signed}"
    );
    assert_ne!(signed["content_hash"], body["versions"][0]["content_hash"]);

    // Signed: it never changes, only grows.
    let (status, body) = call(&rad, "PUT", &format!("{report}/draft"), Some(&complete));
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("addendum"),
        "{body}"
    );
    let (status, body) = call(
        &rad,
        "POST",
        &format!("{report}/final"),
        Some(&json!({"password": PASSWORD})),
    );
    assert_eq!(status, 409, "{body}");
    // Nor does the request it answered.
    let mut corrected = stroke_form("P-1", "ACC-1");
    corrected["nihss"] = 4.into();
    let (status, body) = call(
        &tech_a,
        "PUT",
        &format!("/api/forms/{form_id}"),
        Some(&corrected),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("signed"),
        "{body}"
    );

    // The study waiting for dr-neuro is theirs now that the final is signed.
    let given = assignment_of(&server, &second.study_instance_uid, |a| {
        a["state"] == "assigned"
    });
    assert_eq!(given["radiologist"]["id"], "dr-neuro", "{given}");

    // Next morning, an addendum.
    let addendum = json!({"text": "Correction: ASPECTS 7 on review.", "password": PASSWORD});
    let (status, body) = call(
        &rad,
        "POST",
        &format!("{report}/addenda"),
        Some(&json!({"text": "x", "password": "wrong"})),
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(&rad, "POST", &format!("{report}/addenda"), Some(&addendum));
    assert_eq!(status, 200, "{body}");
    let (status, seen) = call(&clin_a, "GET", &report, None);
    assert_eq!(status, 200, "{seen}");
    assert_eq!(
        (
            seen["status"].as_str(),
            seen["interop"]["fhir"].as_str(),
            seen["interop"]["hl7v2"].as_str()
        ),
        (Some("addendum"), Some("appended"), Some("C")),
        "{seen}"
    );
    let kinds: Vec<&str> = seen["versions"]
        .as_array()
        .map(|v| v.iter().filter_map(|v| v["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["preliminary", "final", "addendum"]);
    assert_eq!(
        seen["versions"][1]["content"], signed["content"],
        "the final is kept as signed"
    );
    assert_eq!(call(&clin_b, "GET", &report, None).0, 404);

    // The printed final: the patient, the request, the findings, the
    // statements, the signer and the addendum; the text escaped.
    let (status, page) = call(&clin_a, "GET", &print, None);
    assert_eq!(status, 200, "{page}");
    let page = page.as_str().unwrap_or("").to_string();
    for expected in [
        "Final report, with addenda",
        "P-1",
        "Right hemiparesis since 01:40",
        "Left M1 occlusion, ASPECTS 8",
        "Communicated to",
        "Signed by dr-neuro (rad)",
        "Correction: ASPECTS 7 on review.",
        "at 03:20",
    ] {
        assert!(page.contains(expected), "{expected:?} missing from\n{page}");
    }
    assert!(!page.contains("<at 03:20>"), "unescaped text");
    // In French, as the pages link it (and as a browser preferring French
    // asks): the words around the content and the template's own.
    let (status, french) = call(&clin_a, "GET", &format!("{print}?lang=fr"), None);
    assert_eq!(status, 200, "{french}");
    let french = french.as_str().unwrap_or("").to_string();
    for expected in [
        "<html lang=\"fr\">",
        "Compte rendu définitif, avec addenda",
        "Scanner cérébral, suspicion d&#39;AVC",
        "Hémorragie intracrânienne",
        "<dd>absente</dd>",
        "Signé par dr-neuro (rad) le ",
        "Date de naissance",
        "<strong>AVC</strong>",
        "Right hemiparesis since 01:40",
    ] {
        assert!(
            french.contains(expected),
            "{expected:?} missing from\n{french}"
        );
    }
    let (status, _, asked) = server
        .request_with(
            "GET",
            &print,
            Some(&clin_a),
            None,
            &[("accept-language", "fr-FR,fr;q=0.9")],
        )
        .expect("an answer");
    assert_eq!(status, 200);
    assert!(
        asked
            .as_str()
            .unwrap_or("")
            .contains("Compte rendu définitif")
    );
    assert_eq!(
        call(&clin_a, "GET", &format!("{print}?lang=de"), None).0,
        400
    );
    let hash = seen["versions"][1]["content_hash"]
        .as_str()
        .expect("the final's content hash");
    assert!(page.contains(hash), "the signed hash is printed");
    // The same as a PDF file, read back by poppler's pdftotext; another
    // site's clinician finds no report to print.
    let pdf = pdf_text(&server, &clin_a, &format!("{report}/pdf"));
    assert_eq!(call(&clin_b, "GET", &format!("{report}/pdf"), None).0, 404);
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let pdf_words = words(&pdf);
    for expected in [
        "Final report, with addenda",
        "P-1",
        "Right hemiparesis since 01:40",
        "Left M1 occlusion, ASPECTS 8",
        "Communicated to",
        "Signed by dr-neuro (rad)",
        "Correction: ASPECTS 7 on review.",
        "<at 03:20>",
        hash,
    ] {
        assert!(
            pdf_words.contains(&words(expected)),
            "{expected:?} missing from the PDF:\n{pdf}"
        );
    }

    let pdf_french = words(&pdf_text(
        &server,
        &clin_a,
        &format!("{report}/pdf?lang=fr"),
    ));
    for expected in [
        "Compte rendu définitif, avec addenda",
        "Hémorragie intracrânienne",
        "Signé par dr-neuro (rad)",
        "Empreinte SHA-256 du contenu :",
    ] {
        assert!(
            pdf_french.contains(&words(expected)),
            "{expected:?} missing from the French PDF:\n{pdf_french}"
        );
    }

    // Every step, refusal and read is in the trail, and the trail holds.
    let (status, trail) = server.get(&format!("/api/audit?study={uid}&limit=1000"));
    assert_eq!(status, 200, "{trail}");
    let outcomes = |action: &str| -> Vec<String> {
        trail["items"]
            .as_array()
            .map(|records| {
                records
                    .iter()
                    .filter(|r| r["action"] == action)
                    .filter_map(|r| r["outcome"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (action, outcome) in [
        ("report.final", "success"),
        ("report.final", "refused"),
        ("report.preliminary", "success"),
        ("report.addendum", "success"),
        ("report.read", "success"),
        ("report.pdf", "success"),
        ("critical.acknowledge", "success"),
    ] {
        assert!(
            outcomes(action).iter().any(|o| o == outcome),
            "no {action} {outcome} in {trail}"
        );
    }
    let verified = server.cli(&["audit", "verify"], None);
    assert!(verified.contains("intact"), "{verified}");
}

/// The text of the PDF at `path`, fetched with `token`, as `pdftotext`
/// (poppler-utils, installed by `.ci/run`) reads it.
fn pdf_text(server: &TestServer, token: &str, path: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(format!("http://127.0.0.1:{}{path}", server.http_port))
        .header("authorization", format!("Bearer {token}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(response.status().as_u16(), 200, "GET {path}");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/pdf")
    );
    let bytes = response
        .body_mut()
        .read_to_vec()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    let file = server.dir.path().join("report.pdf");
    std::fs::write(&file, &bytes).expect("write the PDF");
    let output = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (apt-get install poppler-utils)");
    assert!(
        output.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
