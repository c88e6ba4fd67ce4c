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
        }
    }
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
}
