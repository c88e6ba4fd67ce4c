//! Accounts, the access policy and the audit trail, end to end: a real
//! server, accounts made with the command line, every endpoint called by
//! every role over HTTP, and the trail checked by `telerad audit verify`
//! after rows are changed behind its back.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(
    every_role_gets_exactly_its_answers_on_every_endpoint,
    the_audit_trail_names_the_first_record_changed_or_removed
);

/// Two radiologists licensed for site-a, one for site-b, and nobody on
/// duty: complete studies wait unassigned in their sites' pools.
const RADIOLOGISTS: &str = r#"
[[radiologists]]
id = "dr-a"
name = "Dr A"
subspecialties = ["general"]
sites = ["site-a"]
max_open_studies = 8

[[radiologists]]
id = "dr-a2"
name = "Dr A2"
subspecialties = ["general"]
sites = ["site-a"]
max_open_studies = 8

[[radiologists]]
id = "dr-b"
name = "Dr B"
subspecialties = ["general"]
sites = ["site-b"]
max_open_studies = 8
"#;

fn start(backend: &Backend) -> TestServer {
    TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 1,
            extra_config: RADIOLOGISTS.into(),
            ..ServerOptions::default()
        },
    )
}

/// A complete, unassigned study pushed as `calling`.
fn unassigned_study(server: &TestServer, calling: &str) -> String {
    let study = SyntheticStudy::ct(2);
    let dir = tempfile::tempdir().expect("a temp dir");
    study.write_to(dir.path()).expect("generate");
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination, "--calling-ae", calling])
        .arg(dir.path()));
    assert!(out.status.success(), "{}", text(&out));
    let uid = study.study_instance_uid;
    eventually("the study unassigned", Duration::from_secs(30), || {
        let (_, body) = server.get(&format!("/api/studies/{uid}"));
        (body["assignment"]["state"] == "unassigned").then_some(())
    });
    uid
}

fn visible(server: &TestServer, token: &str) -> BTreeSet<String> {
    let (status, body) = server.get_as(Some(token), "/api/studies?limit=100");
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            s["study_instance_uid"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn every_role_gets_exactly_its_answers_on_every_endpoint(backend: &Backend) {
    let server = start(backend);
    let study_a = unassigned_study(&server, "SITE_A");
    let study_b = unassigned_study(&server, "SITE_B");
    let admin = server.admin_token();
    let rad_a = server.user_token("rad-a", &["--role", "radiologist", "--radiologist", "dr-a"]);
    let rad_a2 = server.user_token(
        "rad-a2",
        &["--role", "radiologist", "--radiologist", "dr-a2"],
    );
    let rad_b = server.user_token("rad-b", &["--role", "radiologist", "--radiologist", "dr-b"]);
    let clin_a = server.user_token("clin-a", &["--role", "clinician", "--site", "site-a"]);
    let tech_b = server.user_token("tech-b", &["--role", "technician", "--site", "site-b"]);
    let integ_a = server.user_token("integ-a", &["--role", "integration", "--site", "site-a"]);
    let said = server.cli_refused(
        &["user", "passwd", "integ-a"],
        Some("a new password, long enough\n"),
    );
    assert!(
        said.contains("integration account has no password"),
        "{said}"
    );
    let both =
        |a: &str, b: &str| -> BTreeSet<String> { [a, b].into_iter().map(str::to_string).collect() };
    let only = |a: &str| -> BTreeSet<String> { [a.to_string()].into() };

    // Who sees which study, in the list and one by one.
    let sees: [(&str, &str, BTreeSet<String>); 7] = [
        ("admin", &admin, both(&study_a, &study_b)),
        ("rad-a", &rad_a, only(&study_a)),
        ("rad-a2", &rad_a2, only(&study_a)),
        ("rad-b", &rad_b, only(&study_b)),
        ("clin-a", &clin_a, only(&study_a)),
        ("tech-b", &tech_b, only(&study_b)),
        ("integ-a", &integ_a, only(&study_a)),
    ];
    for (who, token, expected) in &sees {
        assert_eq!(&visible(&server, token), expected, "{who}'s list");
        for study in [&study_a, &study_b] {
            let (status, body) = server.get_as(Some(token), &format!("/api/studies/{study}"));
            let want = if expected.contains(study.as_str()) {
                200
            } else {
                404
            };
            assert_eq!(status, want, "{who} reads {study}: {body}");
            // DICOMweb answers the same: the search finds exactly what
            // the caller may see, and a study outside it is not found.
            let (status, found) = server.get_as(
                Some(token),
                &format!("/dicom-web/studies?StudyInstanceUID={study}"),
            );
            assert_eq!(status, 200, "{who} searches {study}: {found}");
            let hits = found.as_array().map_or(0, Vec::len);
            assert_eq!(
                hits,
                usize::from(want == 200),
                "{who} searches {study}: {found}"
            );
            let (status, series) =
                server.get_as(Some(token), &format!("/dicom-web/studies/{study}/series"));
            assert_eq!(status, want, "{who} lists the series of {study}: {series}");
            let (status, metadata) =
                server.get_as(Some(token), &format!("/dicom-web/studies/{study}/metadata"));
            assert_eq!(
                status, want,
                "{who} reads the metadata of {study}: {metadata}"
            );
            if want == 404 {
                // The same answer as for a study that does not exist.
                let (_, missing) = server.get_as(Some(token), "/api/studies/1.2.3.4");
                assert_eq!(
                    body["error"]
                        .as_str()
                        .map(|m| m.replace(study.as_str(), "UID")),
                    missing["error"]
                        .as_str()
                        .map(|m| m.replace("1.2.3.4", "UID")),
                );
            }
        }
    }

    // The operators' and administrators' endpoints: admin only.
    let admin_only: [(&str, &str, &str); 14] = [
        ("GET", "/api/forwards", ""),
        ("GET", "/api/alerts", ""),
        (
            "POST",
            "/api/forwards/retry",
            r#"{"destination": "NOBODY"}"#,
        ),
        ("POST", "/api/forwards/1/retry", ""),
        ("GET", "/api/conflicts", ""),
        ("GET", "/api/events/failed", ""),
        ("GET", "/api/deliveries", ""),
        ("POST", "/api/deliveries/1/retry", ""),
        ("GET", "/api/turnaround", ""),
        ("GET", "/metrics", ""),
        ("GET", "/api/users", ""),
        ("POST", "/api/users/admin/tokens", r#"{"name": "matrix"}"#),
        ("GET", "/api/audit", ""),
        ("GET", "/api/audit/fhir", ""),
    ];
    for (who, token, _) in &sees {
        for (method, path, body) in admin_only {
            let (status, answer) = server
                .request(
                    method,
                    path,
                    Some(token),
                    Some(body).filter(|b| !b.is_empty()),
                )
                .expect("an answer");
            let want: &[u16] = match (*who, path) {
                // No forward job 1 exists.
                ("admin", "/api/forwards/1/retry" | "/api/deliveries/1/retry") => &[404],
                ("admin", "/api/users/admin/tokens") => &[201],
                ("admin", _) => &[200],
                _ => &[403],
            };
            assert!(
                want.contains(&status),
                "{who} {method} {path}: {status} {answer}"
            );
        }
        let (status, me) = server.get_as(Some(token), "/api/me");
        assert_eq!(status, 200, "{who}: {me}");
    }

    // A viewer token: the caller's own DICOMweb reads, in a URL, for a
    // viewer that cannot set headers; nothing else, and no other token is
    // taken from a URL.
    for (who, token, expected) in &sees {
        let (status, minted) = server.post_as(Some(token), "/api/viewer-tokens", "");
        assert_eq!(status, 201, "{who}: {minted}");
        let viewer = minted["token"].as_str().unwrap_or_default().to_string();
        assert!(viewer.starts_with("trv_"), "{minted}");
        for study in [&study_a, &study_b] {
            let (status, found) = server.get_as(
                None,
                &format!("/dicom-web/studies?StudyInstanceUID={study}&access_token={viewer}"),
            );
            assert_eq!(status, 200, "{who} searches {study} by URL: {found}");
            assert_eq!(
                found.as_array().map_or(0, Vec::len),
                usize::from(expected.contains(study.as_str())),
                "{who} searches {study} by URL: {found}"
            );
        }
        let (status, body) = server.get_as(Some(&viewer), &format!("/api/studies/{study_a}"));
        assert_eq!(status, 401, "{who}'s viewer token on the API: {body}");
        let (status, body) = server.post_as(Some(&viewer), "/api/viewer-tokens", "");
        assert_eq!(status, 401, "{who}'s viewer token makes another: {body}");
        let (status, body) =
            server.get_as(None, &format!("/dicom-web/studies?access_token={token}"));
        assert_eq!(status, 401, "{who}'s API token in a URL: {body}");
    }

    // Assigning is an administrator's; refused before anything is looked at.
    for (who, token, _) in &sees[1..] {
        for study in [&study_a, &study_b] {
            let (status, body) = server.post_as(
                Some(token),
                &format!("/api/studies/{study}/assign"),
                r#"{"radiologist": "dr-a"}"#,
            );
            assert_eq!(status, 403, "{who} assigns {study}: {body}");
        }
    }
    // Acknowledging is a radiologist's own, on a study they can see.
    for (who, token, expected) in &sees {
        for study in [&study_a, &study_b] {
            let (status, body) = server.post_as(
                Some(token),
                &format!("/api/studies/{study}/acknowledge"),
                "",
            );
            let want = match *who {
                "rad-a" | "rad-a2" | "rad-b" if expected.contains(study.as_str()) => 409,
                "rad-a" | "rad-a2" | "rad-b" => 404,
                _ => 403,
            };
            assert_eq!(status, want, "{who} acknowledges {study}: {body}");
        }
    }

    // Request forms: filed by a site's staff and integrations for their
    // sites (and by administrators); another site's is refused as unknown.
    for (who, token, _) in &sees {
        let form = serde_json::json!({
            "site": "site-a",
            "patient_id": format!("P-{who}"),
            "study_date": "20261126",
            "urgency": "urgent",
            "clinical_question": "Abdominal pain",
            "requested_examination": "CT abdomen",
            "requesting_physician": "Dr Urgences",
            "callback_number": "1234",
        });
        let (status, body) = server.post_as(Some(token), "/api/forms", &form.to_string());
        let want = match *who {
            "admin" | "clin-a" | "integ-a" => 201,
            "tech-b" => 400,
            _ => 403,
        };
        assert_eq!(status, want, "{who} files a form for site-a: {body}");
    }

    // Assigned to dr-a: it leaves the pool, so dr-a2 no longer sees it.
    let (status, body) = server.post_as(
        Some(&admin),
        &format!("/api/studies/{study_a}/assign"),
        r#"{"radiologist": "dr-a"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(visible(&server, &rad_a2), BTreeSet::new());
    let (status, _) = server.post_as(
        Some(&rad_a2),
        &format!("/api/studies/{study_a}/acknowledge"),
        "",
    );
    assert_eq!(status, 404);
    let (status, body) = server.post_as(
        Some(&rad_a),
        &format!("/api/studies/{study_a}/acknowledge"),
        "",
    );
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("acknowledged")),
        "{body}"
    );
    assert_eq!(visible(&server, &rad_a), only(&study_a));

    // Reports: written by the reader who claimed the study; read, once
    // issued, by whoever may read the study; the draft is its author's.
    let draft = r#"{"template": "free-text", "fields": {"conclusion": "No bleed."}}"#;
    for (who, token, _) in &sees {
        for study in [&study_a, &study_b] {
            let (status, body) = server
                .request(
                    "PUT",
                    &format!("/api/studies/{study}/report/draft"),
                    Some(token),
                    Some(draft),
                )
                .expect("an answer");
            let want = match (*who, study == &study_a) {
                ("rad-a", true) => 200,
                // Seen in the pool, not claimed.
                ("rad-b", false) => 409,
                ("rad-a" | "rad-a2" | "rad-b", _) => 404,
                _ => 403,
            };
            assert_eq!(status, want, "{who} drafts the report of {study}: {body}");
        }
    }
    let report_readers = |study: &str| -> BTreeSet<String> {
        sees.iter()
            .filter(|(_, token, _)| {
                server
                    .get_as(Some(token), &format!("/api/studies/{study}/report"))
                    .0
                    == 200
            })
            .map(|(who, _, _)| who.to_string())
            .collect()
    };
    assert_eq!(
        report_readers(&study_a),
        only("rad-a"),
        "a draft is private"
    );
    let (status, body) = server.post_as(
        Some(&rad_a),
        &format!("/api/studies/{study_a}/report/preliminary"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let expected: BTreeSet<String> = ["admin", "rad-a", "clin-a", "integ-a"]
        .into_iter()
        .map(str::to_string)
        .collect();
    assert_eq!(report_readers(&study_a), expected);
    assert_eq!(report_readers(&study_b), BTreeSet::new());

    // Without a valid token, nothing but /healthz.
    for (method, path) in [
        ("GET", "/api/studies".to_string()),
        ("GET", format!("/api/studies/{study_a}")),
        ("POST", format!("/api/studies/{study_a}/acknowledge")),
        ("POST", format!("/api/studies/{study_a}/assign")),
        ("POST", format!("/api/studies/{study_a}/claim")),
        ("POST", format!("/api/studies/{study_a}/release")),
        ("GET", "/api/worklist".to_string()),
        ("GET", "/api/alerts".to_string()),
        ("GET", format!("/api/studies/{study_a}/critical-results")),
        ("POST", format!("/api/studies/{study_a}/critical-results")),
        (
            "POST",
            format!("/api/studies/{study_a}/critical-results/1/acknowledge"),
        ),
        (
            "POST",
            format!("/api/studies/{study_a}/critical-results/1/communicated"),
        ),
        ("POST", format!("/api/studies/{study_a}/indication")),
        ("GET", format!("/api/studies/{study_a}/consults")),
        ("POST", format!("/api/studies/{study_a}/consults")),
        ("GET", "/api/consults".to_string()),
        ("POST", "/api/consults/1/answer".to_string()),
        ("GET", format!("/api/studies/{study_a}/messages")),
        ("POST", format!("/api/studies/{study_a}/messages")),
        ("GET", format!("/api/studies/{study_a}/report")),
        ("PUT", format!("/api/studies/{study_a}/report/draft")),
        ("POST", format!("/api/studies/{study_a}/report/preliminary")),
        ("POST", format!("/api/studies/{study_a}/report/final")),
        ("POST", format!("/api/studies/{study_a}/report/addenda")),
        ("GET", "/api/report-templates".to_string()),
        ("GET", "/api/forwards".to_string()),
        ("POST", "/api/forwards/retry".to_string()),
        ("GET", "/api/conflicts".to_string()),
        ("GET", "/api/events/failed".to_string()),
        ("GET", "/api/events/stream".to_string()),
        ("GET", "/api/deliveries".to_string()),
        ("POST", "/api/deliveries/1/retry".to_string()),
        ("GET", "/api/forms".to_string()),
        ("GET", "/api/forms/1".to_string()),
        ("PUT", "/api/forms/1".to_string()),
        ("POST", "/api/forms/1/cancel".to_string()),
        ("GET", "/api/turnaround".to_string()),
        ("GET", "/metrics".to_string()),
        ("GET", "/api/users".to_string()),
        ("POST", "/api/users/admin/tokens".to_string()),
        ("GET", "/api/audit".to_string()),
        ("GET", "/api/audit/fhir".to_string()),
        ("GET", "/api/me".to_string()),
        ("POST", "/api/logout".to_string()),
        ("POST", "/api/viewer-tokens".to_string()),
        ("POST", "/dicom-web/studies".to_string()),
    ] {
        for token in [None, Some("trd_0000"), Some("not even a token")] {
            let (status, body) = server
                .request(method, &path, token, Some("{}").filter(|_| method != "GET"))
                .expect("an answer");
            assert_eq!(status, 401, "{method} {path} with {token:?}: {body}");
            assert!(body["error"].is_string(), "{body}");
        }
    }
    let (status, _) = server.get_as(None, "/healthz");
    assert_eq!(status, 200);

    // What was done is in the trail, with who did it and how it ended.
    let (status, trail) = server.get_as(
        Some(&admin),
        &format!("/api/audit?study={study_a}&limit=1000"),
    );
    assert_eq!(status, 200, "{trail}");
    let records: BTreeSet<(String, String, String)> = trail["items"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| {
            (
                r["actor"].as_str().unwrap_or_default().to_string(),
                r["action"].as_str().unwrap_or_default().to_string(),
                r["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for expected in [
        ("clin-a", "study.read", "success"),
        ("tech-b", "study.read", "failed"),
        ("admin", "study.assign", "success"),
        ("rad-a", "study.acknowledge", "failed"),
        ("rad-a", "study.acknowledge", "success"),
        ("dicom:SITE_A", "dicom.store", "success"),
    ] {
        let expected = (expected.0.into(), expected.1.into(), expected.2.into());
        assert!(
            records.contains(&expected),
            "{expected:?} not in {records:?}"
        );
    }
    // The same trail as FHIR AuditEvents (IHE BALP).
    let (status, bundle) = server.get_as(
        Some(&admin),
        &format!("/api/audit/fhir?study={study_a}&limit=1000"),
    );
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["resourceType"], "Bundle");
    let events = bundle["entry"].as_array().expect("entries");
    assert_eq!(events.len(), trail["items"].as_array().map_or(0, Vec::len));
    assert!(
        events
            .iter()
            .any(|e| e["resource"]["subtype"][0]["code"] == "read"
                && e["resource"]["agent"][0]["who"]["identifier"]["value"] == "clin-a")
    );
    // A search by patient finds the changes too, whose records name only
    // the study.
    let (_, detail) = server.get_as(Some(&admin), &format!("/api/studies/{study_a}"));
    let patient = detail["patient_id"]
        .as_str()
        .expect("a patient id")
        .to_string();
    let (status, by_patient) = server.get_as(
        Some(&admin),
        &format!("/api/audit?patient={patient}&limit=1000"),
    );
    assert_eq!(status, 200, "{by_patient}");
    let actions: BTreeSet<String> = by_patient["items"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["action"].as_str().unwrap_or_default().to_string())
        .collect();
    for action in [
        "study.read",
        "study.assign",
        "study.acknowledge",
        "dicom.store",
    ] {
        assert!(actions.contains(action), "{action} not in {actions:?}");
    }

    let read = trail["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|r| r["actor"] == "clin-a" && r["outcome"] == "success")
        })
        .expect("clin-a's read");
    assert_eq!(read["role"], "clinician");
    assert_eq!(read["sites"], "site-a");
    assert_eq!(read["source"], "127.0.0.1");
    assert!(
        !read["patient_id"].as_str().unwrap_or_default().is_empty(),
        "{read}"
    );
}

fn verify(server: &TestServer) -> (bool, String) {
    let output = run(Command::new(telerad_bin())
        .args(["audit", "verify", "--config"])
        .arg(server.config_path()));
    (output.status.success(), text(&output))
}

fn the_audit_trail_names_the_first_record_changed_or_removed(backend: &Backend) {
    let server = start(backend);
    let admin = server.admin_token();
    for _ in 0..5 {
        let (status, _) = server.get_as(Some(&admin), "/api/studies");
        assert_eq!(status, 200);
    }
    // A peer whose AE title no site has: refused, and that is audited.
    let echo = run(telerad_fixtures::dcmtk::command("echoscu")
        .args(["-aet", "NOBODY", "-aec", SERVER_AE, "127.0.0.1"])
        .arg(server.dicom_port.to_string()));
    assert!(!echo.status.success(), "{}", text(&echo));
    let refused = eventually("the refusal audited", Duration::from_secs(10), || {
        let (_, trail) = server.get_as(Some(&admin), "/api/audit?user=dicom:NOBODY");
        trail["items"]
            .as_array()
            .and_then(|items| items.first().cloned())
    });
    assert_eq!(refused["action"], "dicom.associate");
    assert_eq!(refused["outcome"], "refused");
    assert_eq!(refused["source"], "127.0.0.1");

    let (ok, out) = verify(&server);
    assert!(ok, "{out}");
    assert!(out.contains("intact"), "{out}");

    let rt = runtime();
    let index = server.index(&rt);
    let pool = index.database().pool();
    let exec = |sql: &str| {
        rt.block_on(sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(pool))
            .expect(sql);
    };
    let (seq, actor): (i64, String) = rt
        .block_on(
            sqlx::query_as(
                "SELECT seq, actor FROM audit_log WHERE action = 'study.list' ORDER BY seq LIMIT 1",
            )
            .fetch_one(pool),
        )
        .expect("a study.list record");
    // Changed: the record names another actor.
    exec(&format!(
        "UPDATE audit_log SET actor = 'someone-else' WHERE seq = {seq}"
    ));
    let (ok, out) = verify(&server);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("broken at record {seq}")), "{out}");
    assert!(out.contains("changed"), "{out}");
    exec(&format!(
        "UPDATE audit_log SET actor = '{actor}' WHERE seq = {seq}"
    ));
    assert!(verify(&server).0);

    // Removed in the middle, then at the end.
    exec(&format!("DELETE FROM audit_log WHERE seq = {}", seq + 1));
    let (ok, out) = verify(&server);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("broken at record {}", seq + 1)),
        "{out}"
    );
    assert!(out.contains("missing"), "{out}");

    let server2 = start(backend);
    let admin2 = server2.admin_token();
    let (status, _) = server2.get_as(Some(&admin2), "/api/studies");
    assert_eq!(status, 200);
    let index2 = server2.index(&rt);
    let (last,): (i64,) = rt
        .block_on(
            sqlx::query_as("SELECT MAX(seq) FROM audit_log").fetch_one(index2.database().pool()),
        )
        .expect("the last record");
    rt.block_on(
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM audit_log WHERE seq = {last}"
        )))
        .execute(index2.database().pool()),
    )
    .expect("delete the last record");
    let (ok, out) = verify(&server2);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("broken at record {last}")), "{out}");
}

/// Sign in with the first start's password, use the session as a page
/// would (cookie and CSRF header), sign out.
#[test]
fn the_first_administrator_signs_in_with_the_printed_password() {
    let server = start(&Backend::Sqlite);
    let file = server.data_dir.join("initial-admin-password");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .expect("the password file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
    let password = std::fs::read_to_string(&file).expect("the password file");
    let password = password.trim();
    // Printed once on the standard output, never in the log.
    assert!(server.stdout().contains(password), "{}", server.stdout());
    assert!(!server.log().contains(password));
    let login = |login: &str, password: &str| {
        server
            .request(
                "POST",
                "/api/login",
                None,
                Some(&serde_json::json!({ "login": login, "password": password }).to_string()),
            )
            .expect("an answer")
    };
    let (status, body) = login("admin", "a wrong password!");
    assert_eq!(status, 401, "{body}");
    let (status, unknown) = login("nobody", "a wrong password!");
    assert_eq!(
        (status, &unknown),
        (401, &body),
        "the same answer for an unknown login"
    );

    // Bad input: a clear 400, nothing else.
    for body in [
        "not json",
        r#"{"login": "admin"}"#,
        r#"{"login": "admin", "password": "x", "x": 1}"#,
    ] {
        let (status, answer) = server
            .request("POST", "/api/login", None, Some(body))
            .expect("an answer");
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .contains("password"),
            "{answer}"
        );
    }

    let (status, session) = login("admin", password);
    assert_eq!(status, 200, "{session}");
    let token = session["token"].as_str().expect("a token").to_string();
    let csrf = session["csrf_token"]
        .as_str()
        .expect("a CSRF token")
        .to_string();
    assert_eq!(session["user"]["role"], "admin");

    let cookie = format!("telerad_session={token}");
    let (status, me) = cookie_request(&server, "GET", "/api/me", &cookie, None);
    assert_eq!((status, me["login"].as_str()), (200, Some("admin")), "{me}");
    // A change through a cookie session needs the CSRF header.
    let (status, body) = cookie_request(&server, "POST", "/api/logout", &cookie, None);
    assert_eq!(status, 403, "{body}");
    let (status, body) = cookie_request(&server, "POST", "/api/logout", &cookie, Some("wrong"));
    assert_eq!(status, 403, "{body}");
    // A viewer token made in the session opens DICOMweb until sign-out.
    let (status, minted) =
        cookie_request(&server, "POST", "/api/viewer-tokens", &cookie, Some(&csrf));
    assert_eq!(status, 201, "{minted}");
    let viewer = minted["token"].as_str().unwrap_or_default().to_string();
    let dicomweb = format!("/dicom-web/studies?access_token={viewer}");
    assert_eq!(server.get_as(None, &dicomweb).0, 200);
    let (status, _) = cookie_request(&server, "POST", "/api/logout", &cookie, Some(&csrf));
    assert_eq!(status, 204);
    let (status, body) = server.get_as(None, &dicomweb);
    assert_eq!(status, 401, "the viewer token outlived the session: {body}");
    let (status, body) = server.get_as(Some(&token), "/api/me");
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("revoked"),
        "{body}"
    );

    // Five failures for one account: the sixth attempt is refused unchecked,
    // even with the right password.
    for _ in 0..5 {
        assert_eq!(login("admin", "not the password").0, 401);
    }
    let (status, body) = login("admin", password);
    assert_eq!(status, 429, "{body}");

    // A disabled account's token stops working: the server notices the
    // command line's change within its poll of the credentials epoch
    // (0.2 s; 5 s allowed for a loaded machine).
    let clinician = server.user_token("clin", &["--role", "clinician", "--site", "site-a"]);
    assert_eq!(server.get_as(Some(&clinician), "/api/me").0, 200);
    server.cli(&["user", "disable", "clin"], None);
    let disabled_at = std::time::Instant::now();
    let (status, body) = loop {
        let (status, body) = server.get_as(Some(&clinician), "/api/me");
        if status != 200 || disabled_at.elapsed() > std::time::Duration::from_secs(5) {
            break (status, body);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("disabled"),
        "{body}"
    );

    let list = server.cli(&["user", "list"], None);
    assert!(list.contains("admin\tadmin"), "{list}");
    assert!(
        list.contains("clin\tclinician\tsites site-a\tdisabled"),
        "{list}"
    );
    // No secret reaches the log.
    let log = server.log();
    assert!(
        !log.contains(&token) && !log.contains(&clinician),
        "a token in the log"
    );
}

fn cookie_request(
    server: &TestServer,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{}{path}", server.http_port);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let result = if method == "GET" {
        agent.get(&url).header("cookie", cookie).call()
    } else {
        let mut request = agent.post(&url).header("cookie", cookie);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send_empty()
    };
    let mut response = result.expect("an answer");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
