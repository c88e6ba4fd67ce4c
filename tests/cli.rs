//! The command line as an operator meets it: configuration checks and clear
//! failures.

mod common;

use common::*;
use std::process::Command;

#[test]
fn check_config_accepts_the_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml");
    let out = run(Command::new(telerad_bin()).args(["check-config", example]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("valid"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_config_lists_every_problem_with_its_path() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[dicom]
ae_title = "THIS_AE_TITLE_IS_FAR_TOO_LONG"
port = 11112

[[sites]]
name = "ch-a"
ae_titles = ["CT_A"]
time_zone = "Europe/Pariss"

[[sites]]
name = "ch-b"
ae_titles = ["CT_A"]
allowed_networks = ["10.0.0.0/33"]
time_zone = "Europe/Paris"
"#,
    )
    .expect("write a config");
    let out = run(Command::new(telerad_bin()).arg("check-config").arg(&path));
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "dicom.ae_title",
        "sites[0].time_zone",
        "sites[1].ae_titles[0]",
        "sites[1].allowed_networks[0]",
    ] {
        assert!(said.contains(expected), "{expected} not reported:\n{said}");
    }

    // serve refuses the same file, and says why.
    let out = run(Command::new(telerad_bin())
        .args(["serve", "--config"])
        .arg(&path));
    assert!(!out.status.success());
    assert!(text(&out).contains("sites[0].time_zone"), "{}", text(&out));
}

#[test]
fn unknown_keys_are_reported_with_their_path() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("typo.toml");
    std::fs::write(&path, "[dicom]\nae_titel = \"X\"\n").expect("write a config");
    let out = run(Command::new(telerad_bin()).arg("check-config").arg(&path));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("dicom.ae_titel"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_config_reports_a_typo_and_the_other_problems_each_with_its_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("typo.toml");
    std::fs::write(
        &path,
        "[dicom]\n\
         ae_titel = \"ROUTER\"\n\
         max_associations = 0\n\
         \n\
         [[sites]]\n\
         name = \"ch-a\"\n\
         ae_titles = [\"CT\"]\n\
         time_zone = \"Europe/Pariss\"\n",
    )
    .expect("write a config");
    let out = run(Command::new(telerad_bin()).arg("check-config").arg(&path));
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("3 problems"), "{said}");
    for (key, line) in [
        ("dicom.ae_titel", 2),
        ("dicom.max_associations", 3),
        ("sites[0].time_zone", 8),
    ] {
        let reported = said
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key}:")))
            .unwrap_or_else(|| panic!("{key} not reported:\n{said}"));
        assert!(
            reported.ends_with(&format!("(line {line})")),
            "{key} without line {line}: {reported}"
        );
    }
}

#[test]
fn check_config_reports_wrong_types_a_missing_key_and_the_rest_in_one_run() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "[dicom]\n\
         port = \"eleven\"\n\
         ae_titel = \"ROUTER\"\n\
         \n\
         [[sites]]\n\
         name = \"ch-a\"\n\
         ae_titles = [\"CT\"]\n\
         time_zone = \"Europe/Pariss\"\n\
         \n\
         [[radiologists]]\n\
         name = \"Dr A\"\n\
         subspecialties = [\"neuro\"]\n\
         sites = [\"ch-a\"]\n\
         max_open_studies = 4\n\
         \n\
         [[radiologists]]\n\
         id = \"dr-b\"\n\
         name = \"Dr B\"\n\
         subspecialties = \"neuro\"\n\
         sites = [\"ch-a\"]\n\
         max_open_studies = 4\n",
    )
    .expect("write a config");
    let expected = [
        ("dicom.port", 2, "invalid type"),
        ("dicom.ae_titel", 3, "unknown field `ae_titel`"),
        ("radiologists[0]", 10, "missing field `id`"),
        ("radiologists[1].subspecialties", 19, "expected a sequence"),
        ("sites[0].time_zone", 8, "unknown time zone"),
    ];
    let out = run(Command::new(telerad_bin()).arg("check-config").arg(&path));
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("{} problems", expected.len())),
        "{said}"
    );
    for (key, line, what) in expected {
        let reported = said
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key}:")))
            .unwrap_or_else(|| panic!("{key} not reported:\n{said}"));
        assert!(
            reported.contains(what) && reported.ends_with(&format!("(line {line})")),
            "{key} without {what:?} and line {line}: {reported}"
        );
    }

    // serve refuses it, listing the same problems.
    let out = run(Command::new(telerad_bin())
        .args(["serve", "--config"])
        .arg(&path));
    assert!(!out.status.success());
    let said = text(&out);
    for (key, line, _) in expected {
        assert!(
            said.contains(&format!("  {key}:")) && said.contains(&format!("(line {line})")),
            "{key} not reported by serve:\n{said}"
        );
    }
}

#[test]
fn check_config_says_why_a_file_cannot_be_read() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("missing.toml");
    let out = run(Command::new(telerad_bin()).arg("check-config").arg(&path));
    assert!(!out.status.success());
    let said = text(&out);
    let expected = format!(
        "cannot read configuration file {}: No such file or directory (os error 2)",
        path.display()
    );
    assert!(said.contains(&expected), "{said}");
    assert_eq!(said.matches("No such file").count(), 1, "{said}");

    // serve says the same, once.
    let out = run(Command::new(telerad_bin())
        .args(["serve", "--config"])
        .arg(&path));
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains(&expected), "{said}");
    assert_eq!(said.matches("No such file").count(), 1, "{said}");
}

#[test]
fn push_and_echo_fail_clearly_when_nobody_listens() {
    let port = free_port();
    let destination = format!("TELERAD@127.0.0.1:{port}");
    let out = run(Command::new(telerad_bin()).args(["echo", &destination]));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{}", text(&out));
    // The OS error once, not once per link of the error chain.
    assert_eq!(stderr.matches("Connection refused").count(), 1, "{stderr}");
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination])
        .arg(telerad_fixtures::samples_dir().join("CT_small.dcm")));
    assert!(!out.status.success());
    assert!(text(&out).contains("sent 0/1"), "{}", text(&out));
    let out = run(Command::new(telerad_bin()).args(["push", "--to", "no-at-sign", "x.dcm"]));
    assert!(!out.status.success());
    assert!(text(&out).contains("AE@HOST:PORT"), "{}", text(&out));
}

#[test]
fn start_up_lines_name_the_configuration_database_storage_and_who_is_on_duty() {
    let server = TestServer::start(&Backend::Sqlite);
    // The server answers HTTP only after its start-up lines are written.
    let log = server.log();
    let config_path = server.dir.path().join("telerad.toml");
    for expected in [
        format!("configuration: {}", config_path.display()),
        format!("database: {}", server.database_url),
        format!("storage: {}", server.data_dir.display()),
        // The test configuration has no rota.
        "nobody on duty for site site-a".to_owned(),
        format!("DICOM as TELERAD on 127.0.0.1:{}", server.dicom_port),
        format!("HTTP on http://127.0.0.1:{}", server.http_port),
    ] {
        assert!(log.contains(&expected), "{expected:?} missing from:\n{log}");
    }
    assert!(!log.contains("\x1b["), "colour codes in a log file:\n{log}");
}

#[test]
fn start_up_with_the_embedded_example_says_so_and_names_who_is_on_duty() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dicom_port = free_port().to_string();
    let http_port = free_port().to_string();
    let (mut child, log) = serve_until_ready(&[
        "--data-dir".as_ref(),
        dir.path().as_os_str(),
        "--dicom-port".as_ref(),
        dicom_port.as_ref(),
        "--http-port".as_ref(),
        http_port.as_ref(),
        // Saturday night after the clocks went forward.
        "--clock-start".as_ref(),
        "2026-03-29T03:00:00+02:00".as_ref(),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    for expected in [
        "configuration: embedded example configuration".to_owned(),
        format!("database: sqlite://{}/telerad.db", dir.path().display()),
        format!("storage: {}", dir.path().display()),
        "on duty for site ch-vierzon: dr-lefebvre (primary general), \
         dr-nguyen (primary neuro), dr-rousseau (backup general)"
            .to_owned(),
        "on duty for site ch-aubusson: dr-nguyen (primary neuro), \
         dr-rousseau (backup general)"
            .to_owned(),
    ] {
        assert!(log.contains(&expected), "{expected:?} missing from:\n{log}");
    }
    assert!(!log.contains("\x1b["), "colour codes in a pipe:\n{log}");
}

#[test]
fn push_prints_the_servers_error_comment_whole() {
    // The data set names another SOP instance than its file meta
    // information, which push sends as the command's: telerad answers
    // A900 with a comment saying so, written to fit the 64 characters of
    // an LO without losing its sense.
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("mismatch.dcm");
    let mut bytes =
        std::fs::read(telerad_fixtures::samples_dir().join("CT_small.dcm")).expect("a sample");
    // CT_small is explicit VR little endian: (0008,0018) UI, 2-byte length,
    // value. Its last digit changes; the meta information keeps the old UID.
    let tag = [0x08, 0x00, 0x18, 0x00, b'U', b'I'];
    let at = bytes
        .windows(tag.len())
        .position(|w| w == tag)
        .expect("a SOP Instance UID element");
    let len = usize::from(u16::from_le_bytes([bytes[at + 6], bytes[at + 7]]));
    let last = bytes[at + 8..at + 8 + len]
        .iter()
        .rposition(u8::is_ascii_digit)
        .map(|i| at + 8 + i)
        .expect("a digit");
    bytes[last] = if bytes[last] == b'9' {
        b'8'
    } else {
        bytes[last] + 1
    };
    std::fs::write(&file, bytes).expect("write the file");
    let server = TestServer::start(&Backend::Sqlite);
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination])
        .arg(&file));
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("status 0xA900 the data set's SOP Instance UID differs from the command's\n"),
        "{said}"
    );
    // The log has the whole story, UIDs included.
    assert!(
        server
            .log()
            .contains("differs from the command's 1.3.6.1.4.1.5962"),
        "{}",
        server.log()
    );
}
