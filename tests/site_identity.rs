//! A study belongs to one site: an instance from another site that reuses
//! its Study Instance UID, a series UID of another study, or a SOP Instance
//! UID stored for another site is refused as not authorized (0124)
//! and recorded for operators, never merged into the other site's study.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(another_sites_uids_are_refused_and_recorded);

fn storescu(server: &TestServer, calling_ae: &str, file: &Path) -> Output {
    run(telerad_fixtures::dcmtk::command("storescu")
        .env("TCP_NODELAY", "1")
        .args(["-v", "-aet", calling_ae, "-aec", SERVER_AE, "127.0.0.1"])
        .arg(server.dicom_port.to_string())
        .arg(file))
}

fn assert_stored(output: &Output, server: &TestServer) {
    let text = text(output);
    assert!(
        output.status.success() && text.contains("(Success)"),
        "expected success:\n{text}\n{}",
        server.log()
    );
}

fn assert_refused(output: &Output, server: &TestServer) {
    let text = text(output);
    assert!(
        text.contains("0x124") || text.contains("Not Authorized"),
        "expected refused: not authorized (0124):\n{text}\n{}",
        server.log()
    );
}

fn conflicts(server: &TestServer) -> Vec<Value> {
    let (status, body) = server.get("/api/conflicts");
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

fn another_sites_uids_are_refused_and_recorded(backend: &Backend) {
    let server = TestServer::start(backend);
    let slices = tempfile::tempdir().expect("a temp dir");
    let mut study = SyntheticStudy::ct(2);
    study.rows = 32;
    study.columns = 32;
    let paths = study.write_to(slices.path()).expect("generate");

    // Site A's first slice.
    assert_stored(&storescu(&server, "SITE_A", &paths[0]), &server);

    // Site B sends the second slice of the same study: refused.
    assert_refused(&storescu(&server, "SITE_B", &paths[1]), &server);
    // Site B re-sends site A's own instance: refused too, not taken as a
    // duplicate of A's.
    assert_refused(&storescu(&server, "SITE_B", &paths[0]), &server);

    // Site A sends a new study whose series UID is the first study's.
    let other = tempfile::tempdir().expect("a temp dir");
    let mut reused = study.clone();
    reused.study_instance_uid = format!("{}.9", study.study_instance_uid);
    let reused_paths = reused.write_to(other.path()).expect("generate");
    let reused_path = &reused_paths[1];
    assert_refused(&storescu(&server, "SITE_A", reused_path), &server);

    // A's study is as A sent it; no other study holds those UIDs.
    let body = server.wait_for_study(
        &study.study_instance_uid,
        "complete",
        1,
        Duration::from_secs(30),
    );
    assert_eq!(body["site"], "site-a");
    let (status, _) = server.get(&format!("/api/studies/{}", reused.study_instance_uid));
    assert_eq!(status, 404);
    assert_eq!(
        server.stored_files().len(),
        1,
        "{:?}",
        server.stored_files()
    );

    let found = conflicts(&server);
    let summary: Vec<(String, String, String)> = found
        .iter()
        .map(|c| {
            (
                c["site"].as_str().unwrap_or_default().to_string(),
                c["owner_site"].as_str().unwrap_or_default().to_string(),
                c["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .rev()
        .collect();
    assert_eq!(summary.len(), 3, "{found:?}");
    assert_eq!((&summary[0].0[..], &summary[0].1[..]), ("site-b", "site-a"));
    assert!(summary[0].2.contains("Study Instance UID"), "{summary:?}");
    assert_eq!((&summary[1].0[..], &summary[1].1[..]), ("site-b", "site-a"));
    assert!(summary[1].2.contains("SOP Instance UID"), "{summary:?}");
    assert_eq!((&summary[2].0[..], &summary[2].1[..]), ("site-a", "site-a"));
    assert!(summary[2].2.contains("Series Instance UID"), "{summary:?}");
    assert!(
        server.log().contains("instance refused"),
        "a log line says why:\n{}",
        server.log()
    );
}
