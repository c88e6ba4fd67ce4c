//! The operators' HTTP API: what it returns, and a clear 4xx with a JSON
//! message for every bad request.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(
    studies_are_listed_newest_first_and_filtered,
    bad_requests_get_a_clear_4xx
);

fn push(server: &TestServer, calling: &str, dir: &std::path::Path) {
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination, "--calling-ae", calling])
        .arg(dir));
    assert!(out.status.success(), "{}", text(&out));
}

fn studies_are_listed_newest_first_and_filtered(backend: &Backend) {
    let server = TestServer::start(backend);
    let (status, body) = server.get("/healthz");
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = server.get("/api/studies");
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(0)));

    let first = SyntheticStudy::mr(3);
    let second = SyntheticStudy::ct(2);
    for (study, calling) in [(&first, "SITE_A"), (&second, "SITE_B")] {
        let dir = tempfile::tempdir().expect("a temp dir");
        study.write_to(dir.path()).expect("generate");
        push(&server, calling, dir.path());
    }
    let (_, list) = server.get("/api/studies");
    let uids: Vec<_> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["study_instance_uid"].clone())
        .collect();
    assert_eq!(
        uids,
        [
            second.study_instance_uid.as_str(),
            first.study_instance_uid.as_str()
        ]
    );

    let (_, list) = server.get("/api/studies?site=site-b&status=receiving");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["site"], "site-b");
    let (_, list) = server.get("/api/studies?limit=1");
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    let body = server.wait_for_study(
        &first.study_instance_uid,
        "complete",
        3,
        Duration::from_secs(20),
    );
    assert_eq!(body["modalities"], "MR");
    assert_eq!(
        body["series"][0]["series_instance_uid"],
        first.series_instance_uid.as_str()
    );
    assert_eq!(body["series"][0]["instance_count"], 3);
    assert!(body["completed_at"].as_i64().is_some());
    let (_, list) = server.get("/api/studies?status=complete");
    assert!(
        list.as_array()
            .expect("a list")
            .iter()
            .any(|s| s["study_instance_uid"] == first.study_instance_uid.as_str())
    );
}

fn bad_requests_get_a_clear_4xx(backend: &Backend) {
    let server = TestServer::start(backend);
    for (path, status, mentions) in [
        ("/api/studies?status=lost", 400, "status"),
        ("/api/studies?limit=0", 400, "limit"),
        ("/api/studies?limit=many", 400, "limit"),
        ("/api/studies?colour=red", 400, "colour"),
        (
            "/api/studies/..%2F..%2Fetc%2Fpasswd",
            400,
            "not a valid DICOM UID",
        ),
        ("/api/studies/1.2.3.4", 404, "no study"),
        ("/api/nothing-here", 404, "no such resource"),
    ] {
        let (code, body) = server.get(path);
        assert_eq!(code, status, "{path}: {body}");
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: no JSON error message: {body}"));
        assert!(message.contains(mentions), "{path}: {message}");
    }
}
