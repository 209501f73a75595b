//! TLS set-up: configured PEM files, or a self-signed certificate generated once in the data
//! directory for the embedded defaults.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS file {0}: {1}")]
    File(PathBuf, String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Paths of the generated self-signed pair.
pub fn generated_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("server.crt"), dir.join("server.key"))
}

/// Generates a self-signed certificate for `localhost`/`127.0.0.1` unless one exists.
pub fn ensure_self_signed(data_dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (cert, key) = generated_paths(data_dir);
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir).map_err(|e| TlsError::File(dir.clone(), e.to_string()))?;
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key)
        .map_err(|e| TlsError::File(key.clone(), e.to_string()))?;
    f.write_all(generated.signing_key.serialize_pem().as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| TlsError::File(key.clone(), e.to_string()))?;
    std::fs::write(&cert, generated.cert.pem())
        .map_err(|e| TlsError::File(cert.clone(), e.to_string()))?;
    Ok((cert, key))
}

/// A rustls server configuration (ring provider, TLS 1.2 and 1.3) from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::File(cert.to_path_buf(), e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::File(cert.to_path_buf(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::File(cert.to_path_buf(), "no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::File(key.to_path_buf(), e.to_string()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Config(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| TlsError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}
