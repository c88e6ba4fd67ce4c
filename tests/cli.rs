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
    assert!(text(&out).contains("cannot connect"), "{}", text(&out));
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination])
        .arg(telerad_fixtures::samples_dir().join("CT_small.dcm")));
    assert!(!out.status.success());
    assert!(text(&out).contains("sent 0/1"), "{}", text(&out));
    let out = run(Command::new(telerad_bin()).args(["push", "--to", "no-at-sign", "x.dcm"]));
    assert!(!out.status.success());
    assert!(text(&out).contains("AE@HOST:PORT"), "{}", text(&out));
}
