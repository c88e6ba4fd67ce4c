//! The `[http]` section: where the viewer and worklist API listens.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

/// The HTTP listener. It binds to loopback by default because the API is
/// meant to sit behind a reverse proxy that terminates TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub bind: IpAddr,
    pub port: u16,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
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
