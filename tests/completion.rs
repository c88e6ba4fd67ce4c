//! Completion on release: for a site whose scanner sends a study in one
//! association (`complete_on_release_secs`), the study is complete a short
//! grace after that association is released, once no other association of
//! the site is open; the quiet period (ten minutes here) is not waited for.

mod common;

use common::dicom::RawPeer;
use common::{ServerOptions, TestServer, eventually, ms, storescu_push};
use dicom_ul::pdu::Pdu;
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

on_every_backend!(
    a_study_completes_a_grace_after_its_association_is_released,
    another_open_association_of_the_site_holds_the_completion,
);
