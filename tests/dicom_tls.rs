//! DICOM TLS (PS3.15 Annex B) on the SCP, against DCMTK's `storescu +tls`:
//! a peer with a certificate from the configured CA stores; one in plain
//! TCP, one without a client certificate and one whose certificate another
//! CA signed are refused in the handshake, and the server goes on serving.

mod common;

use common::*;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;
use telerad_fixtures::pki::issue;

#[test]
fn storescu_over_tls_stores_and_other_peers_are_refused_in_the_handshake() {
    let pki = tempfile::tempdir().expect("a temp dir");
    let dir = pki.path();
    issue(dir, "hospital-ca", "telerad");
    issue(dir, "hospital-ca", "scanner");
    issue(dir, "rogue-ca", "intruder");
    issue(dir, "hospital-ca", "ct.site-tls.example");
    let tls_port = free_port();
    let server = TestServer::start_with(
        &Backend::Sqlite,
        ServerOptions {
            extra_dicom: format!(
                "tls_port = {tls_port}\ntls_cert = \"{0}/telerad.pem\"\n\
                 tls_key = \"{0}/telerad.key\"\ntls_client_ca = \"{0}/hospital-ca.pem\"",
                dir.display()
            ),
            // A site whose scanner is bound to its certificate.
            extra_config: "[[sites]]\nname = \"site-tls\"\nae_titles = [\"CT_TLS\"]\n\
                           allowed_networks = []\ntime_zone = \"Europe/Paris\"\n\
                           tls_client_names = [\"ct.site-tls.example\"]\n"
                .into(),
            ..ServerOptions::default()
        },
    );
    assert!(
        server.log().contains("client certificates required"),
        "{}",
        server.log()
    );
    let study = SyntheticStudy::ct(3);
    let images = tempfile::tempdir().expect("a temp dir");
    let files = study.write_to(images.path()).expect("generate");
    let storescu = |tls: &[String]| {
        let mut command = telerad_fixtures::dcmtk::command("storescu");
        command
            .args(tls)
            .args([
                "-aet", "SITE_A", "-aec", SERVER_AE, "-to", "10", "-ta", "10",
            ])
            .args(["127.0.0.1", &tls_port.to_string()])
            .args(&files);
        run(&mut command)
    };
    let path = |name: &str| dir.join(name).display().to_string();
    let with = |key: &str, cert: &str| -> Vec<String> {
        vec![
            "+tls".into(),
            path(key),
            path(cert),
            "+cf".into(),
            path("hospital-ca.pem"),
        ]
    };

    // Refused: plain TCP, no client certificate, a certificate of another CA.
    let plain = storescu(&[]);
    assert!(
        !plain.status.success(),
        "plain TCP stored: {}",
        text(&plain)
    );
    let anonymous = storescu(&["+tla".into(), "+cf".into(), path("hospital-ca.pem")]);
    assert!(!anonymous.status.success(), "{}", text(&anonymous));
    let intruder = storescu(&with("intruder.key", "intruder.pem"));
    assert!(!intruder.status.success(), "{}", text(&intruder));
    eventually("the refusals logged", Duration::from_secs(10), || {
        (server.log().matches("DICOM TLS handshake failed").count() >= 3).then_some(())
    });

    // The scanner, with the hospital's certificate, stores every image.
    let scanner = storescu(&with("scanner.key", "scanner.pem"));
    assert!(
        scanner.status.success(),
        "{}\n{}",
        text(&scanner),
        server.log()
    );
    server.wait_for_study(
        &study.study_instance_uid,
        "complete",
        3,
        Duration::from_secs(30),
    );
    // A site bound to its scanner's certificate: refused over plain TCP and
    // with another certificate of the same authority; accepted with its own.
    let echo = |port: u16, tls: &[String]| {
        run(telerad_fixtures::dcmtk::command("echoscu")
            .args(tls)
            .args(["-aet", "CT_TLS", "-aec", SERVER_AE, "127.0.0.1"])
            .arg(port.to_string()))
    };
    let plain = echo(server.dicom_port, &[]);
    assert!(!plain.status.success(), "{}", text(&plain));
    let other = echo(tls_port, &with("scanner.key", "scanner.pem"));
    assert!(!other.status.success(), "{}", text(&other));
    let own = echo(
        tls_port,
        &with("ct.site-tls.example.key", "ct.site-tls.example.pem"),
    );
    assert!(own.status.success(), "{}\n{}", text(&own), server.log());
    let log = server.log();
    assert!(
        log.contains("this site sends over DICOM TLS with a client certificate only"),
        "{log}"
    );
    assert!(
        log.contains("valid for none of the site's names (ct.site-tls.example)"),
        "{log}"
    );

    // The plain port still serves.
    let plain_port = run(telerad_fixtures::dcmtk::command("echoscu")
        .args(["-aet", "SITE_A", "-aec", SERVER_AE, "127.0.0.1"])
        .arg(server.dicom_port.to_string()));
    assert!(plain_port.status.success(), "{}", text(&plain_port));
}
