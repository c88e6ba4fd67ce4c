//! STOW-RS (DICOM PS3.18 §10.5): a hospital that cannot open a DICOM port
//! pushes its images over HTTP, with the PyPI `dicomweb-client` as the
//! sender. What is stored is durable and indexed for the technician's
//! site, as over DICOM; each failed part is listed with its reason, the
//! others stored; those who may not send images, or send something else
//! than DICOM, are refused; each request is audited.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(a_hospital_pushes_a_study_over_http);

const BOUNDARY: &str = "telerad-test-boundary-7f3a";

/// A `multipart/related` body of `(content type, bytes)` parts.
fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (kind, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Type: {kind}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (
        format!("multipart/related; type=\"application/dicom\"; boundary={BOUNDARY}"),
        body,
    )
}

/// The Part 10 files of `study`, in slice order.
fn files(study: &SyntheticStudy) -> (tempfile::TempDir, Vec<std::path::PathBuf>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    study.write_to(dir.path()).expect("generate");
    let mut files = files_under(dir.path());
    files.sort();
    (dir, files)
}

/// The (class, instance) pairs of a response's sequence `tag`, and the
/// failure reasons of its items.
fn items(answer: &Value, tag: &str) -> Vec<(String, u64)> {
    answer[tag]["Value"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    (
                        i["00081155"]["Value"][0].as_str().unwrap_or("").to_string(),
                        i["00081197"]["Value"][0].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn a_hospital_pushes_a_study_over_http(backend: &Backend) {
    let server = TestServer::start(backend);
    let tech_a = server.user_token("tech-a", &["--role", "technician", "--site", "site-a"]);
    let tech_b = server.user_token("tech-b", &["--role", "technician", "--site", "site-b"]);
    let clin_a = server.user_token("clin-a", &["--role", "clinician", "--site", "site-a"]);
    let admin = server.admin_token();
    let ct = SyntheticStudy::ct(3);
    let (_dir, ct_files) = files(&ct);

    // dicomweb-client stores the study.
    let script = format!(
        "import json, sys, pydicom\n\
         from dicomweb_client.api import DICOMwebClient\n\
         client = DICOMwebClient(url='http://127.0.0.1:{port}/dicom-web', \
         headers={{'Authorization': 'Bearer {tech_a}'}})\n\
         answer = client.store_instances([pydicom.dcmread(f) for f in sys.argv[1:]])\n\
         json.dump(answer.to_json_dict(), sys.stdout)\n",
        port = server.http_port,
    );
    let out = run(Command::new("python3")
        .args(["-c", &script])
        .args(&ct_files));
    assert!(out.status.success(), "dicomweb-client: {}", text(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("the answer's JSON");
    let stored: Vec<String> = items(&answer, "00081199")
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    let mut expected: Vec<String> = (0..3).map(|i| ct.sop_instance_uid(i)).collect();
    expected.sort();
    let mut got = stored.clone();
    got.sort();
    assert_eq!(got, expected, "{answer}");
    assert!(answer.get("00081198").is_none(), "{answer}");
    // Indexed for the technician's site, at once (stored means indexed).
    let study = server.study(&ct.study_instance_uid);
    assert_eq!(study["instance_count"], 3, "{study}");
    assert_eq!(study["site"], "site-a", "{study}");
    assert_eq!(server.stored_files().len(), 3);

    // One good part, one that is not DICOM, one that says it is but is
    // not: the good one is stored, the others listed with their reason.
    let mr = SyntheticStudy::mr(1);
    let (_mr_dir, mr_files) = files(&mr);
    let mr_bytes = std::fs::read(&mr_files[0]).expect("the MR file");
    let (kind, body) = multipart(&[
        ("application/dicom", &mr_bytes),
        ("text/plain", b"a report, not an image"),
        ("application/dicom", &[0u8; 300]),
    ]);
    let (status, answer) = server.post_bytes("/dicom-web/studies", Some(&tech_a), &kind, &body);
    assert_eq!(status, 202, "{answer}");
    assert_eq!(items(&answer, "00081199"), [(mr.sop_instance_uid(0), 0)]);
    let failed = items(&answer, "00081198");
    assert_eq!(failed.len(), 2, "{answer}");
    assert!(
        failed.iter().all(|(_, reason)| *reason == 0xC000),
        "{answer}"
    );

    // Sent to one study, an instance of another fails (A900), stored nowhere.
    let other = SyntheticStudy::ct(1);
    let (_other_dir, other_files) = files(&other);
    let other_bytes = std::fs::read(&other_files[0]).expect("the file");
    let (kind, body) = multipart(&[("application/dicom", &other_bytes)]);
    let (status, answer) = server.post_bytes(
        &format!("/dicom-web/studies/{}", ct.study_instance_uid),
        Some(&tech_a),
        &kind,
        &body,
    );
    assert_eq!(status, 409, "{answer}");
    assert_eq!(
        items(&answer, "00081198"),
        [(other.sop_instance_uid(0), 0xA900)],
        "{answer}"
    );
    let (status, _) = server.get_as(
        Some(&admin),
        &format!("/api/studies/{}", other.study_instance_uid),
    );
    assert_eq!(status, 404);

    // Another site's technician cannot slip an instance into site-a's
    // study: refused (0124), not retried.
    let mut changed = std::fs::read(&ct_files[0]).expect("the file");
    let last = changed.len() - 1;
    changed[last] ^= 0x01;
    let (kind, body) = multipart(&[("application/dicom", &changed)]);
    let (status, answer) = server.post_bytes("/dicom-web/studies", Some(&tech_b), &kind, &body);
    assert_eq!(status, 409, "{answer}");
    assert_eq!(items(&answer, "00081198")[0].1, 0x0124, "{answer}");

    // Who may not send, or without a token, or something else than DICOM.
    // (Small bodies: a refusal is answered before a body is read, and the
    // connection closed under a large one still being sent.)
    let (kind, body) = multipart(&[("application/dicom", &[0u8; 300])]);
    let (status, answer) = server.post_bytes("/dicom-web/studies", Some(&clin_a), &kind, &body);
    assert_eq!(status, 403, "{answer}");
    let (status, _) = server.post_bytes("/dicom-web/studies", None, &kind, &body);
    assert_eq!(status, 401);
    let (status, answer) = server.post_bytes(
        "/dicom-web/studies",
        Some(&tech_a),
        "application/json",
        b"{}",
    );
    assert_eq!(status, 415, "{answer}");
    let (status, answer) = server.post_bytes(
        "/dicom-web/studies",
        Some(&tech_a),
        &kind,
        b"--not-the-boundary\r\n",
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].is_string(), "{answer}");
    let (status, _) = server.get_as(
        Some(&admin),
        &format!("/api/studies/{}", other.study_instance_uid),
    );
    assert_eq!(status, 404, "nothing of the refused requests was stored");

    // Audited, with what was stored.
    let (status, trail) = server.get_as(
        Some(&admin),
        &format!("/api/audit?study={}&limit=100", ct.study_instance_uid),
    );
    assert_eq!(status, 200, "{trail}");
    let stores: Vec<&Value> = trail["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|r| r["action"] == "study.store")
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(stores.len(), 1, "{trail}");
    assert_eq!(stores[0]["actor"], "tech-a");
}

/// A hospital whose telerad stores CT only (`[dicom] accepted_sop_classes`)
/// gets the same answer over HTTP as over DIMSE: an MR is refused with
/// 0122 (SOP class not supported), the CT beside it stored.
#[test]
fn stow_rs_stores_the_sop_classes_the_configuration_accepts() {
    let server = TestServer::start_with(
        &Backend::Sqlite,
        ServerOptions {
            extra_dicom: "accepted_sop_classes = [\"1.2.840.10008.5.1.4.1.1.2\"]".into(),
            ..ServerOptions::default()
        },
    );
    let tech_a = server.user_token("tech-a", &["--role", "technician", "--site", "site-a"]);
    let (ct, mr) = (SyntheticStudy::ct(1), SyntheticStudy::mr(1));
    let ((_ct_dir, ct_files), (_mr_dir, mr_files)) = (files(&ct), files(&mr));
    let read = |path: &std::path::PathBuf| std::fs::read(path).expect("a file");
    let (ct_bytes, mr_bytes) = (read(&ct_files[0]), read(&mr_files[0]));
    let (kind, body) = multipart(&[
        ("application/dicom", &ct_bytes),
        ("application/dicom", &mr_bytes),
    ]);
    let (status, answer) = server.post_bytes("/dicom-web/studies", Some(&tech_a), &kind, &body);
    assert_eq!(status, 202, "{answer}");
    assert_eq!(items(&answer, "00081199"), [(ct.sop_instance_uid(0), 0)]);
    assert_eq!(
        items(&answer, "00081198"),
        [(mr.sop_instance_uid(0), 0x0122)],
        "{answer}"
    );
    assert_eq!(server.stored_files().len(), 1);
}
