//! TLS set-up: configured PEM files, or a self-signed certificate generated once in the data
//! directory for the embedded defaults.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS 证书或私钥文件 {0} / TLS file: {1}")]
    File(PathBuf, String),
    #[error("TLS 配置错误 / TLS configuration: {0}")]
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

/// The server's certificate and key, replaceable while serving: every new TLS handshake
/// gets the current pair, connections already open keep theirs.
pub struct ServerCert {
    cert: PathBuf,
    key: PathBuf,
    current: std::sync::RwLock<Loaded>,
}

#[derive(Clone)]
struct Loaded {
    certified: Arc<rustls::sign::CertifiedKey>,
    info: CertSummary,
}

/// What `hutong status`, `/metrics` and a reload report of the serving certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertSummary {
    pub subject: String,
    /// UTC ms of the leaf's notAfter.
    pub not_after_ms: i64,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

/// Reads and checks a PEM chain and its key (the key must match the leaf).
fn load(cert: &Path, key: &Path) -> Result<Loaded, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::File(cert.to_path_buf(), e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::File(cert.to_path_buf(), e.to_string()))?;
    let Some(leaf) = certs.first() else {
        return Err(TlsError::File(cert.to_path_buf(), "no certificate".into()));
    };
    let parsed = crate::crypto::x509::CertInfo::parse(leaf.as_ref())
        .map_err(|e| TlsError::File(cert.to_path_buf(), e.to_string()))?;
    let info = CertSummary {
        subject: parsed.subject.clone(),
        not_after_ms: parsed.not_after_ms,
    };
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::File(key.to_path_buf(), e.to_string()))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = rustls::sign::CertifiedKey::from_der(certs, key_der, &provider)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Loaded {
        certified: Arc::new(certified),
        info,
    })
}

impl ServerCert {
    /// Loads the pair from `cert` and `key`.
    pub fn open(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let loaded = load(cert, key)?;
        Ok(Arc::new(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: std::sync::RwLock::new(loaded),
        }))
    }

    /// Reads the files again; on any error the serving pair stays as it was.
    pub fn reload(&self) -> Result<CertSummary, TlsError> {
        let loaded = load(&self.cert, &self.key)?;
        let info = loaded.info.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(info)
    }

    /// The serving certificate's subject and expiry.
    pub fn summary(&self) -> CertSummary {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .info
            .clone()
    }
}

impl rustls::server::ResolvesServerCert for ServerCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .certified
                .clone(),
        )
    }
}

/// A rustls server configuration (ring provider, TLS 1.2 and 1.3) serving `cert`.
pub fn server_config(cert: Arc<ServerCert>) -> Result<rustls::ServerConfig, TlsError> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Config(e.to_string()))?
    .with_no_client_auth()
    .with_cert_resolver(cert);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}
