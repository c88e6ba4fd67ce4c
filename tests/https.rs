//! HTTPS: with `self_signed_tls`, the first start makes a certificate for
//! this machine into the data folder, serves the API over TLS with it, and
//! every answer carries the security headers, HSTS included.

mod common;

use common::*;
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn a_trial_serves_https_with_a_self_signed_certificate_and_security_headers() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let http_port = free_port();
    let config = format!(
        "[dicom]\nport = {}\n\n[http]\nbind = \"127.0.0.1\"\nport = {http_port}\n\
         self_signed_tls = true\n\n[storage]\ndata_dir = \"{}\"\n\n[[sites]]\n\
         name = \"site-a\"\nae_titles = [\"SITE_A\"]\nallowed_networks = []\n\
         time_zone = \"Europe/Paris\"\n",
        free_port(),
        dir.path().join("data").display()
    );
    let config_path = dir.path().join("telerad.toml");
    std::fs::write(&config_path, config).expect("write the config");
    let (mut child, log) = serve_until_ready(&["--config".as_ref(), config_path.as_os_str()]);
    assert!(
        log.contains(&format!("HTTP on https://127.0.0.1:{http_port}")),
        "{log}"
    );
    assert!(log.contains("self-signed certificate"), "{log}");

    // The client trusts that certificate alone: it must name 127.0.0.1.
    let pem = std::fs::read(dir.path().join("data/tls/self-signed-cert.pem"))
        .expect("the certificate in the data folder");
    let certificate = ureq::tls::Certificate::from_pem(&pem).expect("a PEM certificate");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[
                    certificate.to_owned()
                ]))
                .build(),
        )
        .build()
        .into();
    let response = agent
        .get(&format!("https://127.0.0.1:{http_port}/healthz"))
        .call()
        .expect("an HTTPS answer");
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers();
    for (name, value) in [
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name}"
        );
    }
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let response = agent
        .get(&format!("https://127.0.0.1:{http_port}/api/studies"))
        .call()
        .expect("an HTTPS answer");
    assert_eq!(response.status().as_u16(), 401);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain =
        std::net::TcpStream::connect(("127.0.0.1", http_port)).expect("connect in plain TCP");
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send a plain request");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "plain HTTP was served: {}",
        String::from_utf8_lossy(&answer)
    );

    let _ = child.kill();
    let _ = child.wait();
}
