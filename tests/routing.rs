//! Routing as the night shift lives it: a stroke CT from site A at 03:00 is
//! assigned to the neuroradiologist on duty who is licensed for A, its
//! images are forwarded to their workstation (a real DCMTK storescp), and
//! when nobody acknowledges it in time it goes to the backup.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use telerad_fixtures::SyntheticStudy;

on_every_backend!(
    stroke_ct_at_night_is_assigned_forwarded_and_escalated,
    nobody_on_duty_leaves_the_study_unassigned_with_an_alert,
    two_processes_on_one_database_assign_and_escalate_once,
);

/// A Wednesday night in Paris (winter time, UTC+1).
const WEDNESDAY_0300: &str = "2026-03-18T03:00:00+01:00";
/// The same Wednesday, mid-afternoon: nobody on the night rota.
const WEDNESDAY_1500: &str = "2026-03-18T15:00:00+01:00";

fn routing_config(neuro_ws_port: u16, backup_ws_port: u16, ack_secs: u64) -> String {
    format!(
        r#"
[[radiologists]]
id = "dr-neuro-a"
name = "Dr Neuro A"
subspecialties = ["neuro"]
sites = ["site-a"]
max_open_studies = 8
[radiologists.workstation]
ae_title = "NEURO_WS"
host = "127.0.0.1"
port = {neuro_ws_port}

[[radiologists]]
id = "dr-neuro-b"
name = "Dr Neuro B"
subspecialties = ["neuro"]
sites = ["site-b"]
max_open_studies = 8

[[radiologists]]
id = "dr-backup"
name = "Dr Backup"
subspecialties = ["neuro", "general"]
sites = ["site-a", "site-b"]
max_open_studies = 8
[radiologists.workstation]
ae_title = "BACKUP_WS"
host = "127.0.0.1"
port = {backup_ws_port}

[[radiologists]]
id = "dr-general"
name = "Dr General"
subspecialties = ["general"]
sites = ["site-a", "site-b"]
max_open_studies = 8

[rota]
time_zone = "Europe/Paris"

[[rota.shifts]]
radiologist = "dr-neuro-a"
role = "primary"
subspecialty = "neuro"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"

[[rota.shifts]]
radiologist = "dr-neuro-b"
role = "primary"
subspecialty = "neuro"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"

[[rota.shifts]]
radiologist = "dr-backup"
role = "backup"
subspecialty = "neuro"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"

[[rota.shifts]]
radiologist = "dr-general"
role = "primary"
subspecialty = "general"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"

[[rules]]
name = "stroke"
description = "(?i)AVC|stroke|thrombolys"
subspecialty = "neuro"
priority = "stat"

[sla]
stat = {{ acknowledge_secs = {ack_secs}, preliminary_secs = 1200 }}
urgent = {{ acknowledge_secs = 900, preliminary_secs = 3600 }}
routine = {{ acknowledge_secs = 3600, preliminary_secs = 43200 }}

[escalation]
chain = ["dr-general"]
"#
    )
}

fn push_study(server: &TestServer, study: &SyntheticStudy, calling: &str) {
    let dir = tempfile::tempdir().expect("a temp dir");
    study.write_to(dir.path()).expect("generate a study");
    push_dir(server, dir.path(), calling);
}

fn push_dir(server: &TestServer, dir: &Path, calling: &str) {
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination, "--calling-ae", calling])
        .arg(dir));
    assert!(out.status.success(), "{}", text(&out));
}

fn wait_for_assignment(
    server: &TestServer,
    study_uid: &str,
    what: impl Fn(&Value) -> bool,
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, body) = server.get(&format!("/api/studies/{study_uid}"));
        if status == 200 && what(&body["assignment"]) {
            return body["assignment"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "assignment of {study_uid} not as expected: {body}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stroke_ct(slices: usize) -> SyntheticStudy {
    let mut study = SyntheticStudy::ct(slices);
    study.rows = 128;
    study.columns = 128;
    study.study_description = "SCANNER CEREBRAL AVC".into();
    study
}

fn stroke_ct_at_night_is_assigned_forwarded_and_escalated(backend: &Backend) {
    let neuro_port = free_port();
    let backup_port = free_port();
    let neuro_ws = Workstation::start("NEURO_WS", neuro_port);
    let backup_ws = Workstation::start("BACKUP_WS", backup_port);
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 1,
            extra_config: routing_config(neuro_port, backup_port, 4),
            clock_start: Some(WEDNESDAY_0300.into()),
            ..ServerOptions::default()
        },
    );
    let study = stroke_ct(12);
    push_study(&server, &study, "SITE_A");
    let uid = &study.study_instance_uid;

    let assignment = wait_for_assignment(
        &server,
        uid,
        |a| a["state"] == "assigned",
        Duration::from_secs(20),
    );
    assert_eq!(
        assignment["radiologist"]["id"], "dr-neuro-a",
        "{assignment}"
    );
    assert_eq!(assignment["priority"], "stat");
    assert_eq!(assignment["subspecialty"], "neuro");
    assert_eq!(assignment["rule"], "stroke");
    let considered = assignment["explanation"]["considered"]
        .as_array()
        .expect("an explanation");
    let b = considered
        .iter()
        .find(|c| c["radiologist_id"] == "dr-neuro-b")
        .expect("dr-neuro-b considered");
    assert_eq!(b["eligible"], false);
    assert!(
        b["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("not licensed for site site-a"),
        "{b}"
    );
    // The deadline is the STAT acknowledgement SLA after assignment.
    assert_eq!(
        ms(&assignment["acknowledge_by"]).expect("a deadline")
            - ms(&assignment["assigned_at"]).expect("a time"),
        4000
    );
    neuro_ws.wait_for(12, Duration::from_secs(30));
    // The deliveries are dated on the server's clock, like the assignment.
    let assigned_at = ms(&assignment["assigned_at"]).expect("a time");
    let (status, jobs) = server.get("/api/forwards?limit=100");
    assert_eq!(status, 200, "{jobs}");
    assert!(jobs["next"].is_null(), "all jobs on one page: {jobs}");
    let jobs = jobs["items"].as_array().expect("a list of forward jobs");
    assert_eq!(jobs.len(), 12, "one job per instance");
    for job in jobs {
        let created_at = ms(&job["created_at"]).expect("a creation time");
        assert!(
            (created_at - assigned_at).abs() < 60_000,
            "job dated {created_at}, assignment {assigned_at}"
        );
    }

    // Nobody acknowledges: after the SLA the backup gets it, and the images.
    let assignment = wait_for_assignment(
        &server,
        uid,
        |a| a["radiologist"]["id"] == "dr-backup",
        Duration::from_secs(20),
    );
    assert_eq!(assignment["state"], "assigned");
    assert_eq!(assignment["escalation_level"], 1);
    let history = assignment["history"].as_array().expect("a history");
    let escalated = history
        .iter()
        .find(|h| h["action"] == "escalated" && h["radiologist_id"] == "dr-backup")
        .unwrap_or_else(|| panic!("no escalation in {assignment}"));
    // The SLA is 4 s: said in seconds, not "0 min".
    assert!(
        escalated["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("dr-neuro-a did not acknowledge within 4 s; given to dr-backup"),
        "{escalated}"
    );
    assert_eq!(assignment["assigned_at"], escalated["at"], "{assignment}");

    // The wrong radiologist cannot acknowledge (it is in their site's
    // escalated pool, so they see it); the right one can.
    let neuro_a = server.user_token(
        "neuro-a",
        &["--role", "radiologist", "--radiologist", "dr-neuro-a"],
    );
    let backup = server.user_token(
        "backup",
        &["--role", "radiologist", "--radiologist", "dr-backup"],
    );
    let (status, body) = server.post_as(
        Some(&neuro_a),
        &format!("/api/studies/{uid}/acknowledge"),
        "",
    );
    assert_eq!(status, 409, "{body}");
    let (status, body) = server.post_as(
        Some(&backup),
        &format!("/api/studies/{uid}/acknowledge"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "acknowledged");
    backup_ws.wait_for(12, Duration::from_secs(30));
    // Acknowledged: not escalated once its deadline has passed. The sign
    // that the escalation sweep has looked past that deadline: another
    // stroke CT, assigned later, is escalated at its own later deadline.
    let deadline = ms(&assignment["acknowledge_by"]).expect("a deadline");
    let witness = stroke_ct(2);
    push_study(&server, &witness, "SITE_A");
    let witnessed = wait_for_assignment(
        &server,
        &witness.study_instance_uid,
        |a| a["state"] == "assigned",
        Duration::from_secs(20),
    );
    assert!(
        ms(&witnessed["acknowledge_by"]).expect("a deadline") > deadline,
        "{witnessed}"
    );
    wait_for_assignment(
        &server,
        &witness.study_instance_uid,
        |a| a["escalation_level"] == 1,
        Duration::from_secs(20),
    );
    let (_, body) = server.get(&format!("/api/studies/{uid}"));
    assert_eq!(body["assignment"]["state"], "acknowledged");
    assert_eq!(body["assignment"]["escalation_level"], 1);

    // Manual reassignment: licence still applies.
    let (status, body) = server.post(
        &format!("/api/studies/{uid}/assign"),
        r#"{"radiologist": "dr-neuro-b"}"#,
    );
    assert_eq!(status, 409, "{body}");
    let (status, body) = server.post(
        &format!("/api/studies/{uid}/assign"),
        r#"{"radiologist": "dr-nobody"}"#,
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.post(
        &format!("/api/studies/{uid}/assign"),
        r#"{"radiologist": 7}"#,
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.post(
        &format!("/api/studies/{uid}/assign"),
        r#"{"radiologist": "dr-general"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["radiologist"]["id"], "dr-general");
    let reassigned = body["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|h| h["action"] == "reassigned")
        .unwrap_or_else(|| panic!("no reassignment in {body}"))
        .clone();
    // A person's choice is not an escalation: the level is the one before.
    assert_eq!(body["escalation_level"], 1, "{body}");
    assert_eq!(body["assigned_at"], reassigned["at"], "{body}");

    // Late images do not reassign; the assignment says there is more.
    let mut late = study.clone();
    late.slices = 14;
    let dir = tempfile::tempdir().expect("a temp dir");
    late.write_to(dir.path()).expect("generate");
    push_dir(&server, dir.path(), "SITE_A");
    let assignment = wait_for_assignment(
        &server,
        uid,
        |a| a["new_images"] == true,
        Duration::from_secs(20),
    );
    assert_eq!(assignment["radiologist"]["id"], "dr-general");
}

fn nobody_on_duty_leaves_the_study_unassigned_with_an_alert(backend: &Backend) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 1,
            extra_config: routing_config(free_port(), free_port(), 300),
            clock_start: Some(WEDNESDAY_1500.into()),
            ..ServerOptions::default()
        },
    );
    let study = stroke_ct(3);
    push_study(&server, &study, "SITE_A");
    let assignment = wait_for_assignment(
        &server,
        &study.study_instance_uid,
        |a| a["state"] == "unassigned",
        Duration::from_secs(20),
    );
    assert!(assignment["radiologist"].is_null());
    assert!(assignment["assigned_at"].is_null(), "{assignment}");
    assert!(
        assignment["explanation"]["why"]
            .as_str()
            .unwrap_or_default()
            .contains("no neuro or general radiologist"),
        "{assignment}"
    );
    assert!(
        server.log().contains("study unassigned"),
        "{}",
        server.log()
    );
    let rt = runtime();
    let index = server.index(&rt);
    let alerts: Vec<(String,)> = rt
        .block_on(
            sqlx::query_as("SELECT kind FROM alerts WHERE resolved_at IS NULL")
                .fetch_all(index.database().pool()),
        )
        .expect("alerts");
    assert_eq!(alerts, [("unassigned".to_string(),)]);
    // A coordinator steps in.
    let (status, body) = server.post(
        &format!("/api/studies/{}/assign", study.study_instance_uid),
        r#"{"radiologist": "dr-neuro-a"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let alerts: Vec<(String,)> = rt
        .block_on(
            sqlx::query_as("SELECT kind FROM alerts WHERE resolved_at IS NULL")
                .fetch_all(index.database().pool()),
        )
        .expect("alerts");
    assert!(alerts.is_empty(), "the alert stayed open after assignment");
}

fn two_processes_on_one_database_assign_and_escalate_once(backend: &Backend) {
    let options = ServerOptions {
        quiet_period_secs: 1,
        extra_config: routing_config(free_port(), free_port(), 2),
        clock_start: Some(WEDNESDAY_0300.into()),
        ..ServerOptions::default()
    };
    let first = TestServer::start_with(backend, options.clone());
    if matches!(backend, Backend::Sqlite) {
        // SQLite serves one process: the second is refused at start-up.
        let out = run(Command::new(telerad_bin())
            .args(["serve", "--config"])
            .arg(first.config_path())
            .args(["--dicom-port", &free_port().to_string()])
            .args(["--http-port", &free_port().to_string()]));
        let said = text(&out);
        assert!(!out.status.success(), "a second server started:\n{said}");
        assert!(
            said.contains(&format!(
                "another telerad process (pid {}) already serves the SQLite database",
                first.pid()
            )) && said.contains("use PostgreSQL for several nodes"),
            "{said}"
        );
        return;
    }
    let second = TestServer::start_with(
        backend,
        ServerOptions {
            shared_database_url: Some(first.database_url.clone()),
            ..options
        },
    );
    let studies: Vec<_> = (0..6).map(|_| stroke_ct(2)).collect();
    for (i, study) in studies.iter().enumerate() {
        push_study(if i % 2 == 0 { &first } else { &second }, study, "SITE_A");
    }
    // Let several SLA periods pass on both processes: assignment, escalation
    // to the backup, then to the chain, then nobody.
    for study in &studies {
        wait_for_assignment(
            &first,
            &study.study_instance_uid,
            |a| a["state"] == "unassigned" && a["escalation_level"] == 3,
            Duration::from_secs(40),
        );
    }
    for study in &studies {
        let (_, body) = second.get(&format!("/api/studies/{}", study.study_instance_uid));
        let history = body["assignment"]["history"]
            .as_array()
            .expect("history")
            .clone();
        let actions: Vec<_> = history
            .iter()
            .map(|h| h["action"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            actions,
            ["assigned", "escalated", "escalated", "unassigned"],
            "{body}"
        );
        let readers: Vec<_> = history
            .iter()
            .filter_map(|h| h["radiologist_id"].as_str())
            .collect();
        assert_eq!(readers, ["dr-neuro-a", "dr-backup", "dr-general"], "{body}");
        // Each hand-over waited for the full acknowledgement SLA (2 s): an
        // escalation fired twice would move on at once.
        let times: Vec<i64> = history.iter().filter_map(|h| ms(&h["at"])).collect();
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= 2000,
                "escalated {} ms after the previous step: {body}",
                pair[1] - pair[0]
            );
        }
    }
}
