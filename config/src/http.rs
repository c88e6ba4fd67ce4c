//! The `[http]` section: where the viewer and worklist API listens.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The HTTP listener: HTTPS with the certificate given, or a self-signed
/// one made for a trial, or plain HTTP behind a reverse proxy that
/// terminates TLS (loopback by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub bind: IpAddr,
    pub port: u16,
    /// PEM certificate chain; with `tls_key`, HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// HTTPS with a certificate telerad makes into the data folder on the
    /// first start (browsers warn: for a trial, not for hospitals).
    pub self_signed_tls: bool,
    /// Origins (`https://viewer.example.org`) whose pages may call the
    /// DICOMweb API from a browser (CORS); none by default.
    pub cors_allowed_origins: Vec<String>,
}

/// How the HTTP listener is encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpTls {
    /// Plain HTTP (behind a reverse proxy that terminates TLS).
    Off,
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    SelfSigned,
}

impl HttpConfig {
    /// The TLS mode; validation has refused a certificate without its key.
    pub fn tls(&self) -> HttpTls {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => HttpTls::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ if self.self_signed_tls => HttpTls::SelfSigned,
            _ => HttpTls::Off,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            tls_cert: None,
            tls_key: None,
            self_signed_tls: false,
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// Why `origin` cannot be a CORS origin, if it cannot: a scheme
/// (`https`, or `http` for a viewer on this machine), a host, an optional
/// port, nothing else (a browser sends exactly that in `Origin`).
pub fn origin_problem(origin: &str) -> Option<String> {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Some(format!("{origin:?}: expected scheme://host[:port]"));
    };
    if scheme != "https" && scheme != "http" {
        return Some(format!("{origin:?}: the scheme must be https (or http)"));
    }
    let host = rest.rsplit_once(':').map_or(rest, |(host, port)| {
        if port.parse::<u16>().is_ok() {
            host
        } else {
            rest
        }
    });
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if !host_ok || rest.contains(['/', '?', '#', '@']) {
        return Some(format!(
            "{origin:?}: expected scheme://host[:port], without a path, query or user"
        ));
    }
    if scheme == "http" && !matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
        return Some(format!(
            "{origin:?}: plain http only for a viewer on this machine; use https"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_8080() {
        let http = HttpConfig::default();
        assert_eq!(http.bind, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(http.port, 8080);
    }

    #[test]
    fn cors_origins_are_a_scheme_a_host_and_a_port() {
        for good in [
            "https://viewer.example.org",
            "https://viewer.example.org:8443",
            "http://localhost:3000",
        ] {
            assert_eq!(origin_problem(good), None, "{good}");
        }
        for bad in [
            "*",
            "viewer.example.org",
            "https://viewer.example.org/",
            "https://user@viewer.example.org",
            "ftp://viewer.example.org",
            "http://viewer.example.org",
        ] {
            assert!(origin_problem(bad).is_some(), "{bad}");
        }
    }
}
