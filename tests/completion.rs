//! Completion sooner than the quiet period (ten minutes here): on release,
//! for a site whose scanner sends a study in one association
//! (`complete_on_release_secs`), a short grace after that association is
//! released, once no other association of the site is open; and after a
//! shorter quiet period for a study whose request form asks for a stroke
//! (`quiet_period_secs_by_urgency`), filed before its images or while they
//! arrive.

mod common;

use common::dicom::RawPeer;
use common::{ServerOptions, TestServer, eventually, ms, storescu_push};
use dicom_ul::pdu::Pdu;
use serde_json::json;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

fn server(backend: &common::Backend) -> TestServer {
    TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 600,
            site_a_extra: "complete_on_release_secs = 1".into(),
            ..ServerOptions::default()
        },
    )
}

fn wait_complete(server: &TestServer, study: &SyntheticStudy) -> serde_json::Value {
    eventually("the study complete", Duration::from_secs(20), || {
        let detail = server.study(&study.study_instance_uid);
        (detail["status"] == "complete").then_some(detail)
    })
}

fn a_study_completes_a_grace_after_its_association_is_released(backend: &common::Backend) {
    let server = server(backend);
    let study = SyntheticStudy::ct(3);
    storescu_push(&server, &study, "STORESCU");
    let detail = wait_complete(&server, &study);
    assert_eq!(detail["instance_count"], 3);
    let waited = ms(&detail["completed_at"]).expect("completed_at")
        - ms(&detail["last_received_at"]).expect("last_received_at");
    // One second of grace, a sweep every 250 ms.
    assert!(
        (1000..3000).contains(&waited),
        "completed {waited} ms after the last image"
    );
}

fn another_open_association_of_the_site_holds_the_completion(backend: &common::Backend) {
    let server = server(backend);
    // Another device of the site is connected (say the PACS).
    let mut other = RawPeer::connect(&server.dicom_address());
    other.expect_accepted("SITE_A", &[("1.2.840.10008.1.1", "1.2.840.10008.1.2")]);

    let study = SyntheticStudy::ct(2);
    storescu_push(&server, &study, "STORESCU");
    // The scanner's release has been handled once its store is audited
    // (written after the completion is, or is not, brought forward).
    eventually("the store audited", Duration::from_secs(10), || {
        let audit = server
            .get(&format!("/api/audit?study={}", study.study_instance_uid))
            .1
            .to_string();
        audit.contains("dicom.store").then_some(())
    });
    assert_eq!(
        server.study(&study.study_instance_uid)["status"],
        "receiving"
    );

    let released_at = jiff::Timestamp::now().as_millisecond();
    other.send(&Pdu::ReleaseRQ);
    assert!(matches!(other.receive(), Some(Pdu::ReleaseRP)));
    let detail = wait_complete(&server, &study);
    let completed_at = ms(&detail["completed_at"]).expect("completed_at");
    assert!(
        completed_at >= released_at + 1000,
        "completed at {completed_at}, before the other association's release at {released_at} + grace"
    );
}

fn stroke_form(study: &SyntheticStudy, urgency: &str) -> String {
    json!({
        "patient_id": study.patient_id,
        "accession_number": study.accession_number,
        "urgency": urgency,
        "clinical_question": "Left hemiparesis since 01:40: haemorrhage?",
        "requested_examination": "CT head without contrast",
        "requesting_physician": "Dr Urgences",
        "callback_number": "+33 2 48 00 00 00",
        "symptom_onset": "2026-11-26T01:40:00+01:00",
        "nihss": 14,
        "anticoagulants": "none",
        "pregnancy": "not_applicable",
    })
    .to_string()
}

fn a_stroke_form_filed_while_the_images_arrive_shortens_the_quiet_period(
    backend: &common::Backend,
) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 600,
            site_a_extra: "quiet_period_secs_by_urgency = { stroke = 1 }".into(),
            ..ServerOptions::default()
        },
    );
    let tech = server.user_token("tech-a", &["--role", "technician", "--site", "site-a"]);
    let stroke = SyntheticStudy::ct(2);
    // The technician files the form during the scan: the images are in,
    // the study waits for the site's ten minutes of quiet.
    storescu_push(&server, &stroke, "STORESCU");
    assert_eq!(
        server.study(&stroke.study_instance_uid)["status"],
        "receiving"
    );
    let filed_at = jiff::Timestamp::now().as_millisecond();
    let (status, body) = server.post_as(Some(&tech), "/api/forms", &stroke_form(&stroke, "stroke"));
    assert_eq!(status, 201, "{body}");
    let detail = wait_complete(&server, &stroke);
    let completed_at = ms(&detail["completed_at"]).expect("completed_at");
    let due = ms(&detail["last_received_at"]).expect("last_received_at") + 1000;
    // At the last image + 1 s, or at once if the form came later than
    // that; one sweep (250 ms) and the test's own latency either side.
    assert!(
        completed_at >= due.min(filed_at) && completed_at < due.max(filed_at) + 2000,
        "completed at {completed_at}: form filed at {filed_at}, due {due}"
    );
}

fn a_stroke_form_filed_before_the_images_shortens_the_quiet_period(backend: &common::Backend) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 600,
            site_a_extra: "quiet_period_secs_by_urgency = { stroke = 1, routine = 900 }".into(),
            ..ServerOptions::default()
        },
    );
    let tech = server.user_token("tech-a", &["--role", "technician", "--site", "site-a"]);
    let stroke = SyntheticStudy::ct(2);
    let routine = SyntheticStudy::ct(2);
    for (study, urgency) in [(&stroke, "stroke"), (&routine, "routine")] {
        let form = stroke_form(study, urgency);
        let (status, body) = server.post_as(Some(&tech), "/api/forms", &form);
        assert_eq!(status, 201, "{body}");
    }
    // The routine study first: it is still receiving when the stroke, sent
    // after it, completes.
    storescu_push(&server, &routine, "STORESCU");
    storescu_push(&server, &stroke, "STORESCU");
    let detail = wait_complete(&server, &stroke);
    let waited = ms(&detail["completed_at"]).expect("completed_at")
        - ms(&detail["last_received_at"]).expect("last_received_at");
    assert!(
        (1000..3000).contains(&waited),
        "completed {waited} ms after the last image"
    );
    assert_eq!(
        server.study(&routine.study_instance_uid)["status"],
        "receiving",
        "a longer period than the site's is not used, and other studies keep the site's"
    );
}

on_every_backend!(
    a_stroke_form_filed_before_the_images_shortens_the_quiet_period,
    a_stroke_form_filed_while_the_images_arrive_shortens_the_quiet_period,
    a_study_completes_a_grace_after_its_association_is_released,
    another_open_association_of_the_site_holds_the_completion,
);
