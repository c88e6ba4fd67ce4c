//! The operators' HTTP API: what it returns, and a clear 4xx with a JSON
//! message for every bad request.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(
    studies_are_listed_newest_first_and_filtered,
    bad_requests_get_a_clear_4xx,
    study_list_pages_say_where_the_next_page_is,
    dead_forwards_of_a_destination_are_retried_in_one_call
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
    assert_eq!(
        (status, body["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    assert_eq!(body["next"], serde_json::Value::Null);

    let first = SyntheticStudy::mr(3);
    let second = SyntheticStudy::ct(2);
    for (study, calling) in [(&first, "SITE_A"), (&second, "SITE_B")] {
        let dir = tempfile::tempdir().expect("a temp dir");
        study.write_to(dir.path()).expect("generate");
        push(&server, calling, dir.path());
    }
    let (_, list) = server.get("/api/studies");
    let uids: Vec<_> = list["items"]
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
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["items"][0]["site"], "site-b");
    let (_, list) = server.get("/api/studies?limit=1");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));

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
    assert!(ms(&body["completed_at"]).is_some());
    let (_, list) = server.get("/api/studies?status=complete");
    assert!(
        list["items"]
            .as_array()
            .expect("a list")
            .iter()
            .any(|s| s["study_instance_uid"] == first.study_instance_uid.as_str())
    );
}

fn study_list_pages_say_where_the_next_page_is(backend: &Backend) {
    let server = TestServer::start(backend);
    let studies = [
        SyntheticStudy::ct(1),
        SyntheticStudy::ct(1),
        SyntheticStudy::mr(1),
    ];
    for study in &studies {
        let dir = tempfile::tempdir().expect("a temp dir");
        study.write_to(dir.path()).expect("generate");
        push(&server, "SITE_A", dir.path());
    }
    // Two a page, on one site: every study once, newest first, and the
    // last page says it is the last.
    let mut seen = Vec::new();
    let mut next = Some("/api/studies?site=site-a&limit=2".to_owned());
    let mut pages = 0;
    while let Some(url) = next {
        let (status, page) = server.get(&url);
        assert_eq!(status, 200, "{url}: {page}");
        for study in page["items"].as_array().expect("items") {
            assert_eq!(study["site"], "site-a");
            seen.push(
                study["study_instance_uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        next = page["next"].as_str().map(str::to_owned);
        if let Some(url) = &next {
            assert!(
                url.contains("site=site-a") && url.contains("limit=2"),
                "{url}"
            );
            assert!(page["next_cursor"].is_string(), "{page}");
        }
        pages += 1;
        assert!(pages <= 2, "more pages than studies: {seen:?}");
    }
    let newest_first: Vec<String> = studies
        .iter()
        .rev()
        .map(|s| s.study_instance_uid.clone())
        .collect();
    assert_eq!(seen, newest_first);
}

/// A workstation that never answers, every hour on the rota, one attempt
/// per delivery: the study's forwards die, and one call re-queues them all.
fn dead_forwards_of_a_destination_are_retried_in_one_call(backend: &Backend) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 1,
            extra_config: format!(
                r#"
[[radiologists]]
id = "dr-always"
name = "Dr Always"
subspecialties = ["general"]
sites = ["site-a"]
max_open_studies = 10
[radiologists.workstation]
ae_title = "GONE_WS"
host = "127.0.0.1"
port = {port}

[rota]
time_zone = "Europe/Paris"

[[rota.shifts]]
radiologist = "dr-always"
role = "primary"
subspecialty = "general"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "00:00"

[forwarding]
max_attempts = 1
retry_base_secs = 1
"#,
                port = free_port()
            ),
            ..ServerOptions::default()
        },
    );
    let study = SyntheticStudy::ct(3);
    let dir = tempfile::tempdir().expect("a temp dir");
    study.write_to(dir.path()).expect("generate");
    push(&server, "SITE_A", dir.path());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = server.get("/api/forwards?state=dead");
        if page["items"].as_array().map(Vec::len) == Some(3) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "forwards not dead: {page}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = server.post("/api/forwards/retry", r#"{"destination": "OTHER_WS"}"#);
    assert_eq!((status, &body["requeued"]), (200, &0.into()), "{body}");
    let (status, body) = server.post("/api/forwards/retry", r#"{"destination": "dr-always"}"#);
    assert_eq!((status, &body["requeued"]), (200, &3.into()), "{body}");
    // They die again against the same silent port; then by study.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = server.get("/api/forwards?state=dead");
        if page["items"].as_array().map(Vec::len) == Some(3) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not dead again: {page}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = server.post(
        "/api/forwards/retry",
        &format!(
            r#"{{"study_instance_uid": "{}"}}"#,
            study.study_instance_uid
        ),
    );
    assert_eq!((status, &body["requeued"]), (200, &3.into()), "{body}");
}

fn bad_requests_get_a_clear_4xx(backend: &Backend) {
    let server = TestServer::start(backend);
    for (path, status, mentions) in [
        ("/api/studies?status=lost", 400, "status"),
        ("/api/studies?limit=0", 400, "limit"),
        ("/api/studies?limit=many", 400, "limit"),
        ("/api/studies?colour=red", 400, "colour"),
        ("/api/studies?limit=1001", 400, "limit"),
        ("/api/studies?cursor=yesterday", 400, "cursor"),
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
    // PostgreSQL refuses NUL in text: such a request is the caller's
    // mistake, answered 400 before any handler, on either backend, and
    // nothing is created.
    let (status, users_before) = server.get("/api/users");
    assert_eq!(status, 200, "{users_before}");
    for path in [
        "/api/studies?site=a%00b",
        "/api/worklist?site=site%00",
        "/api/audit?user=ad%00min",
    ] {
        let (code, body) = server.get(path);
        assert_eq!(code, 400, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|m| m.contains("NUL")),
            "{path}: {body}"
        );
    }
    for (path, json) in [
        ("/api/login", r#"{"login": "ad\u0000min", "password": "x"}"#),
        ("/api/users", r#"{"login": "x\u0000y", "role": "admin"}"#),
        ("/api/forwards/retry", r#"{"destination": "ws\u0000"}"#),
    ] {
        let (code, body) = server.post(path, json);
        assert_eq!(code, 400, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|m| m.contains("NUL")),
            "{path}: {body}"
        );
    }
    // An escaped backslash before "u0000" is text, not a NUL.
    let (code, body) = server.post("/api/forwards/retry", r#"{"destination": "ws\\u0000"}"#);
    assert_eq!((code, &body["requeued"]), (200, &0.into()), "{body}");
    // In the path, and in a body whatever type it claims (a handler may
    // read JSON from any).
    let (code, body) = server.get("/api/studies/1.2%00");
    assert_eq!(code, 400, "{body}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    for content_type in ["text/plain", "application/x+JSON"] {
        let mut response = agent
            .post(format!(
                "http://127.0.0.1:{}/api/forwards/retry",
                server.http_port
            ))
            .header("authorization", format!("Bearer {}", server.admin_token()))
            .header("content-type", content_type)
            .send(r#"{"destination": "ws\u0000"}"#)
            .expect("an answer");
        let text = response.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(response.status().as_u16(), 400, "{content_type}: {text}");
        assert!(text.contains("NUL"), "{content_type}: {text}");
    }
    let (_, users_after) = server.get("/api/users");
    assert_eq!(users_after, users_before);
}

/// (status, content type, JSON body) of a request whose body, if any, is
/// `size` bytes of JSON-looking text, sent with a Content-Length or, when
/// `chunked`, without one.
fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<(usize, bool)>,
) -> (u16, String, Option<String>, serde_json::Value) {
    let url = format!("http://127.0.0.1:{}{path}", server.http_port);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(&url)
        .header("authorization", format!("Bearer {}", server.admin_token()))
        .header("content-type", "application/json");
    let result = match body {
        None => agent.run(request.body(()).expect("a request")),
        // As curl does for large bodies: the server can refuse by the
        // declared length before the body is sent, and does.
        Some((size, false)) => agent.run(
            request
                .header("expect", "100-continue")
                .body(vec![b' '; size])
                .expect("a request"),
        ),
        Some((size, true)) => {
            let reader = std::io::Read::take(std::io::repeat(b' '), size as u64);
            agent.run(
                request
                    .body(ureq::SendBody::from_owned_reader(reader))
                    .expect("a request"),
            )
        }
    };
    let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let allow = response
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: {status} body is not JSON ({e}): {text:?}"));
    (status, content_type, allow, json)
}

#[test]
fn every_error_is_json() {
    let server = TestServer::start(&Backend::Sqlite);
    let too_large = telerad_http::MAX_BODY_BYTES + 1;
    for (method, path, body, status, mentions) in [
        (
            "DELETE",
            "/api/studies",
            None,
            405,
            "method DELETE is not allowed on /api/studies",
        ),
        (
            "PUT",
            "/api/forwards/1/retry",
            None,
            405,
            "the Allow header",
        ),
        ("GET", "/api/nothing-here", None, 404, "no such resource"),
        (
            "POST",
            "/api/studies/1.2.3/assign",
            Some((too_large, false)),
            413,
            "too large",
        ),
        (
            "POST",
            "/api/studies/1.2.3/assign",
            Some((too_large, true)),
            413,
            "too large",
        ),
        (
            "POST",
            "/api/studies/1.2.3/assign",
            Some((10, true)),
            400,
            "radiologist",
        ),
    ] {
        let what = format!("{method} {path} {body:?}");
        let (code, content_type, allow, json) = call(&server, method, path, body);
        assert_eq!(code, status, "{what}: {json}");
        if status == 405 {
            assert!(
                allow.is_some_and(|a| !a.is_empty()),
                "{what}: no Allow header"
            );
        }
        assert_eq!(content_type, "application/json", "{what}");
        let message = json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no error message: {json}"));
        assert!(message.contains(mentions), "{what}: {message}");
    }
}
