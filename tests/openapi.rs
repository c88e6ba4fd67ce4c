//! The OpenAPI 3.1 description of the HTTP API (`GET /api/openapi.json`,
//! `telerad openapi`): served to signed-in callers only, every operation
//! it lists answered by a route of that method, and `schemathesis`
//! (PyPI), generating requests from it against a running server as an
//! administrator and as a radiologist, finds no server error.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

on_every_backend!(schemathesis_finds_no_server_error);

const RADIOLOGIST: &str = r#"
[[radiologists]]
id = "dr-a"
name = "Dr A"
subspecialties = ["general", "neuro"]
sites = ["site-a"]
max_open_studies = 8
"#;

fn start(backend: &Backend) -> TestServer {
    TestServer::start_with(
        backend,
        ServerOptions {
            extra_config: RADIOLOGIST.into(),
            ..ServerOptions::default()
        },
    )
}

/// The description as served, after checking who may read it.
fn description(server: &TestServer) -> Value {
    let (status, body) = server.get_as(None, "/api/openapi.json");
    assert_eq!(status, 401, "read without signing in: {body}");
    let (status, body) = server.get("/api/openapi.json");
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn the_description_is_openapi_3_1_and_the_command_prints_the_same() {
    let server = start(&Backend::Sqlite);
    let served = description(&server);
    assert_eq!(served["openapi"], "3.1.0");
    let printed = Command::new(telerad_bin())
        .arg("openapi")
        .output()
        .expect("run telerad openapi");
    assert!(printed.status.success());
    let printed: Value = serde_json::from_slice(&printed.stdout).expect("JSON");
    assert_eq!(printed, served);
    // Login and health are open, everything else asks for a credential,
    // and every error answer has the one error body.
    let paths = served["paths"].as_object().expect("paths");
    let mut ids = std::collections::BTreeSet::new();
    for item in paths.values() {
        for operation in item.as_object().expect("a path item").values() {
            let id = operation["operationId"].as_str().expect("an operationId");
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
        }
    }
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item") {
            let open = operation["security"] == serde_json::json!([{}]);
            assert_eq!(
                open,
                path == "/api/login" || path == "/healthz",
                "{method} {path}: security {}",
                operation["security"]
            );
            let responses = operation["responses"].as_object().expect("responses");
            for code in ["400", "404", "503"] {
                assert!(responses.contains_key(code), "{method} {path}: no {code}");
            }
            if !open {
                assert!(responses.contains_key("401"), "{method} {path}: no 401");
            }
        }
    }
    assert!(
        served["components"]["schemas"]["ErrorBody"].is_object(),
        "no ErrorBody schema"
    );
}

/// Every operation the description lists is served by a route of that
/// method: never the "no such resource" of the fallback, never a 405.
#[test]
fn every_described_operation_is_served() {
    let server = start(&Backend::Sqlite);
    let served = description(&server);
    let token = server.admin_token();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let mut checked = 0;
    for (path, item) in served["paths"].as_object().expect("paths") {
        let concrete = path
            .replace("{study_uid}", "1.2.3.4")
            .replace("{study}", "1.2.3.4")
            .replace("{series}", "1.2.3.5")
            .replace("{instance}", "1.2.3.6")
            .replace("{frames}", "1")
            .replace("{tag}", "7FE00010")
            .replace("{id}", "1")
            .replace("{login}", "nobody");
        assert!(
            !concrete.contains('{'),
            "a parameter this test does not fill: {path}"
        );
        let url = format!("http://127.0.0.1:{}{concrete}", server.http_port);
        for method in item.as_object().expect("a path item").keys() {
            let bearer = format!("Bearer {token}");
            let result = match method.as_str() {
                "get" => agent.get(&url).header("authorization", &bearer).call(),
                "post" => agent
                    .post(&url)
                    .header("authorization", &bearer)
                    .header("content-type", "application/json")
                    .send("{}"),
                "put" => agent
                    .put(&url)
                    .header("authorization", &bearer)
                    .header("content-type", "application/json")
                    .send("{}"),
                other => panic!("{other} {path}: a method this test does not send"),
            };
            let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            let status = response.status().as_u16();
            // The event stream stays open: its status says enough.
            let text = if path == "/api/events/stream" {
                String::new()
            } else {
                response.body_mut().read_to_string().unwrap_or_default()
            };
            assert_ne!(status, 405, "{method} {path}: no route of that method");
            assert!(
                !(status == 404 && text.contains("no such resource")),
                "{method} {path}: not routed: {text}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} operations described");
}

/// `schemathesis` (PyPI, installed by `.ci/run`): the command, or a
/// failure saying how to install it.
fn schemathesis() -> Command {
    let probe = Command::new("schemathesis").arg("--version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "schemathesis is not installed: python3 -m pip install 'schemathesis>=4,<5'"
    );
    Command::new("schemathesis")
}

/// Runs schemathesis against `server` with `token`; its output, after
/// checking it passed.
fn run_schemathesis(server: &TestServer, spec: &std::path::Path, token: &str, who: &str) {
    let report = server.dir.path().join(format!("schemathesis-{who}"));
    let output = schemathesis()
        .arg("run")
        .arg(spec)
        .args(["--url", &format!("http://127.0.0.1:{}", server.http_port)])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "not_a_server_error"])
        // Signing out would revoke the token the run is made with; the
        // event stream stays open for minutes by design.
        .args(["--exclude-path", "/api/logout"])
        .args(["--exclude-path", "/api/events/stream"])
        // STOW-RS bodies (multipart/related of Part 10 files) have no
        // serializer in schemathesis; tests/stow.rs sends good and bad ones.
        .args(["--exclude-operation-id", "post_dicom_web_studies"])
        .args(["--exclude-operation-id", "post_dicom_web_studies_study"])
        // One worker: hypothesis, under schemathesis's threads, sometimes
        // fails in Python's own parser (an error of the tool, not a finding).
        .args(["--max-examples", "12", "--workers", "1"])
        .args(["--request-timeout", "20"])
        .arg("--report-dir")
        .arg(&report)
        .env("NO_COLOR", "1")
        // Its cache of findings goes to the server's temporary folder,
        // not into the checkout.
        .current_dir(server.dir.path())
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis as {who} found failures:\n{text}\nserver log:\n{}",
        server.log()
    );
    // A run that tested nothing would also succeed.
    assert!(
        text.contains("Tested:") && !text.contains("Tested: 0"),
        "schemathesis as {who} tested nothing:\n{text}"
    );
}

fn schemathesis_finds_no_server_error(backend: &Backend) {
    let server = start(backend);
    let spec = server.dir.path().join("openapi.json");
    let described = description(&server);
    std::fs::write(&spec, described.to_string()).expect("write the description");
    let admin = server.admin_token();
    let reader = server.user_token(
        "reader",
        &["--role", "radiologist", "--radiologist", "dr-a"],
    );
    run_schemathesis(&server, &spec, &admin, "admin");
    run_schemathesis(&server, &spec, &reader, "radiologist");
    // Nothing the run did left the server unable to answer.
    let (status, body) = server.get("/healthz");
    assert_eq!(status, 200, "{body}");
}
