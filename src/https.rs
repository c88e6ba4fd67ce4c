//! HTTPS for the HTTP listener (rustls): the configured certificate, or a
//! self-signed one made into the data folder for a trial.

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use std::path::{Path, PathBuf};
use telerad_config::{Config, HttpTls};

/// Where the self-signed certificate and its key are kept, under the data
/// folder: made once, then reused, so that a browser's exception holds.
pub const SELF_SIGNED_DIR: &str = "tls";

/// The TLS configuration of the HTTP listener, and what to say about it;
/// `None` for plain HTTP.
pub async fn tls_config(config: &Config) -> anyhow::Result<Option<(RustlsConfig, String)>> {
    // One process-wide provider: ring, which rustls already builds here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (cert, key, what) = match config.http.tls() {
        HttpTls::Off => return Ok(None),
        HttpTls::Files { cert, key } => {
            let what = format!("certificate {}", cert.display());
            (cert, key, what)
        }
        HttpTls::SelfSigned => {
            let (cert, key) = self_signed(&config.storage.data_dir.join(SELF_SIGNED_DIR))?;
            let what = format!(
                "a self-signed certificate ({}): browsers will warn; give a hospital's \
                 certificate with tls_cert and tls_key",
                cert.display()
            );
            (cert, key, what)
        }
    };
    let rustls = RustlsConfig::from_pem_file(&cert, &key)
        .await
        .with_context(|| {
            format!(
                "cannot load the HTTPS certificate {} and key {}",
                cert.display(),
                key.display()
            )
        })?;
    Ok(Some((rustls, what)))
}

/// The self-signed certificate in `dir`, made if absent, for this
/// machine's names and loopback addresses.
fn self_signed(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert_path = dir.join("self-signed-cert.pem");
    let key_path = dir.join("self-signed-key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_string());
        }
    }
    let certified = rcgen::generate_simple_self_signed(names)
        .context("cannot make a self-signed certificate")?;
    crate::serve::write_owner_only(&key_path, &certified.signing_key.serialize_pem())
        .with_context(|| format!("cannot write {}", key_path.display()))?;
    std::fs::write(&cert_path, certified.cert.pem())
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    tracing::warn!(
        "made a self-signed HTTPS certificate: {}",
        cert_path.display()
    );
    Ok((cert_path, key_path))
}
