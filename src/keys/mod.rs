//! Key providers and the platform's keys (SPEC §5).
//!
//! A provider holds the key-encryption key (KEK) and wraps/unwraps everything else with it:
//! the platform's SM2 private key exists on disk only wrapped. Each tenant (data-key owner)
//! also has its own tenant KEK in the key store, never in the database or a backup, which
//! wraps that tenant's data key; deleting it is the tenant's crypto-shredding (SPEC §6.2).
//! `file` keeps the KEKs in 0600 files (evaluation only); `pkcs11` keeps them non-extractable
//! in an HSM.

use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("密钥提供者配置错误: {0}")]
    Config(String),
    #[error("HSM 登录失败（PIN 错误或令牌被锁定）: {0}")]
    Login(String),
    #[error("HSM 中找不到密钥加密密钥（标签 {0}）")]
    KekMissing(String),
    #[error("HSM 操作失败: {0}")]
    Hsm(String),
    #[error("密钥解封失败（密文被篡改或密钥不匹配）")]
    Unwrap,
    #[error("密钥文件读写失败: {0}")]
    Io(String),
    /// The owner's tenant KEK is not in the key store: destroyed, or a key store that is not
    /// this installation's.
    #[error("租户密钥已销毁或不在密钥库中（{0}）")]
    TenantKeyMissing(String),
}

/// What the console shows about a provider; never key material.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    pub provider: String,
    pub module: Option<String>,
    pub slot: Option<String>,
    pub kek_id: String,
    pub created_ms: Option<i64>,
}

/// Holder of the KEK. Wrapped blobs are self-describing: a provider must reject blobs it did
/// not make (authentication tag) rather than return garbage.
pub trait KeyProvider: Send + Sync {
    /// Encrypts `plaintext` under the KEK (authenticated).
    fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeyError>;
    /// Decrypts a blob made by [`KeyProvider::wrap`].
    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError>;
    fn status(&self) -> ProviderStatus;
    /// Encrypts `plaintext` under `owner`'s own tenant KEK, creating that key in the key store
    /// on first use. The blob is bound to `owner` (AAD): it opens under no other owner.
    fn tenant_wrap(&self, owner: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError>;
    /// Decrypts a blob made by [`KeyProvider::tenant_wrap`] for the same `owner`; never
    /// creates a key (`TenantKeyMissing` when there is none).
    fn tenant_unwrap(&self, owner: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError>;
    /// Deletes `owner`'s tenant KEK from the key store; returns whether there was one.
    fn destroy_tenant_key(&self, owner: &str) -> Result<bool, KeyError>;
}

/// The name a tenant KEK has in the key store: hex SM3 of the owner, so file names and HSM
/// labels carry no appId or username and any owner string makes a valid name.
pub fn tenant_key_name(owner: &str) -> String {
    crate::crypto::sm::sm3_hex(owner.as_bytes())
}

/// The AAD of a tenant blob: the format's magic and the owner, so a blob can neither be
/// re-labelled as another format nor opened as another tenant's.
fn tenant_aad(magic: &[u8], owner: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(magic.len() + 1 + owner.len());
    aad.extend_from_slice(magic);
    aad.push(0);
    aad.extend_from_slice(owner.as_bytes());
    aad
}

pub mod file;
pub mod pkcs11;

use crate::config::{Config, KeyProviderKind};
use crate::crypto::certgen::{self, CertSpec};
use crate::crypto::sm::{self, Sm2KeyPair};
use std::path::PathBuf;
use std::sync::Arc;

/// The platform's keys, loaded at start: the provider holding the KEK, the SM2 signing key
/// (unwrapped into zeroised memory) and the platform certificate.
pub struct Keyring {
    provider: Arc<dyn KeyProvider>,
    platform: Sm2KeyPair,
    platform_cert_der: Vec<u8>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").finish_non_exhaustive()
    }
}

fn keys_dir(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("keys")
}

const PLATFORM_KEY_FILE: &str = "platform.key.wrapped";
const PLATFORM_CERT_FILE: &str = "platform.crt";

/// The platform certificate (DER) as stored beside the keys; readable without the KEK, for
/// checks that need only the public half (audit verification).
pub fn platform_cert_der(cfg: &Config) -> Result<Vec<u8>, KeyError> {
    let path = keys_dir(cfg).join(PLATFORM_CERT_FILE);
    let pem = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
    let (_, der) = sm::pem_decode(&pem).map_err(|e| KeyError::Config(e.to_string()))?;
    Ok(der)
}
const FILE_KEK: &str = "kek.key";

fn io_err(path: &std::path::Path, e: std::io::Error) -> KeyError {
    KeyError::Io(format!("{}: {e}", path.display()))
}

/// Writes a file atomically (temp + rename + fsync) with mode 0600.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), KeyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_err(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

impl Keyring {
    /// Whether `hutong init` has run for this data directory.
    pub fn is_initialised(cfg: &Config) -> bool {
        keys_dir(cfg).join(PLATFORM_KEY_FILE).exists()
    }

    /// Creates the KEK, the platform key (stored wrapped) and the self-issued platform
    /// certificate. Refuses to run twice.
    pub fn init(cfg: &Config) -> Result<Self, KeyError> {
        let dir = keys_dir(cfg);
        if Self::is_initialised(cfg) {
            return Err(KeyError::Config(format!("{} 已初始化", dir.display())));
        }
        create_private_dir(&dir)?;
        let provider = create_provider(cfg, &dir)?;
        let platform = Sm2KeyPair::generate();
        let wrapped = provider.wrap(&platform.secret_bytes())?;
        let now = crate::time::now_ms();
        let spec = CertSpec {
            common_name: "Hutong Platform".into(),
            organization: Some("电子印章互通互认服务平台".into()),
            not_before_ms: now - 60_000,
            not_after_ms: now + 10 * 365 * 24 * 3600 * 1000,
            is_ca: false,
            serial: None,
        };
        let cert = certgen::self_signed_sm2(&spec, &platform)
            .map_err(|e| KeyError::Config(format!("平台证书生成失败: {e}")))?;
        write_private(
            &dir.join(PLATFORM_CERT_FILE),
            sm::pem_encode("CERTIFICATE", &cert).as_bytes(),
        )?;
        write_private(&dir.join(PLATFORM_KEY_FILE), &wrapped)?;
        Ok(Self {
            provider,
            platform,
            platform_cert_der: cert,
        })
    }

    /// Opens the provider and unwraps the platform key.
    pub fn load(cfg: &Config) -> Result<Self, KeyError> {
        let dir = keys_dir(cfg);
        let provider = open_provider(cfg, &dir)?;
        let key_path = dir.join(PLATFORM_KEY_FILE);
        let wrapped = std::fs::read(&key_path).map_err(|e| io_err(&key_path, e))?;
        let secret = provider.unwrap(&wrapped)?;
        let platform = Sm2KeyPair::from_secret_bytes(&secret).map_err(|_| KeyError::Unwrap)?;
        let cert_path = dir.join(PLATFORM_CERT_FILE);
        let pem = std::fs::read_to_string(&cert_path).map_err(|e| io_err(&cert_path, e))?;
        let (_, cert) = sm::pem_decode(&pem).map_err(|e| KeyError::Config(e.to_string()))?;
        let cert_key = sm::sm2_public_key_from_cert_der(&cert)
            .map_err(|e| KeyError::Config(format!("平台证书无效: {e}")))?;
        if cert_key != platform.public_key() {
            return Err(KeyError::Config("平台证书与平台私钥不匹配".into()));
        }
        Ok(Self {
            provider,
            platform,
            platform_cert_der: cert,
        })
    }

    pub fn load_or_init(cfg: &Config) -> Result<(Self, bool), KeyError> {
        if Self::is_initialised(cfg) {
            Ok((Self::load(cfg)?, false))
        } else {
            Ok((Self::init(cfg)?, true))
        }
    }

    /// DER SM2/SM3 signature by the platform key.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.platform.sign(msg)
    }

    pub fn platform_public_key(&self) -> sm2::PublicKey {
        self.platform.public_key()
    }

    pub fn platform_cert_der(&self) -> &[u8] {
        &self.platform_cert_der
    }

    pub fn platform_cert_pem(&self) -> String {
        sm::pem_encode("CERTIFICATE", &self.platform_cert_der)
    }

    pub fn provider(&self) -> &dyn KeyProvider {
        self.provider.as_ref()
    }

    pub fn status(&self) -> ProviderStatus {
        self.provider.status()
    }
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), KeyError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_err(dir, e))
}

fn create_provider(cfg: &Config, dir: &std::path::Path) -> Result<Arc<dyn KeyProvider>, KeyError> {
    match cfg.keys.provider {
        KeyProviderKind::File => Ok(Arc::new(file::FileProvider::create(&dir.join(FILE_KEK))?)),
        KeyProviderKind::Pkcs11 => Ok(Arc::new(pkcs11_glue::create(cfg)?)),
    }
}

fn open_provider(cfg: &Config, dir: &std::path::Path) -> Result<Arc<dyn KeyProvider>, KeyError> {
    match cfg.keys.provider {
        KeyProviderKind::File => Ok(Arc::new(file::FileProvider::open(&dir.join(FILE_KEK))?)),
        KeyProviderKind::Pkcs11 => Ok(Arc::new(pkcs11_glue::open(cfg)?)),
    }
}

mod pkcs11_glue {
    use super::KeyError;
    use super::pkcs11::{Pkcs11Config, Pkcs11Provider};
    use crate::config::Config;

    fn config(cfg: &Config) -> Result<Pkcs11Config, KeyError> {
        Pkcs11Config::from_section(&cfg.keys.pkcs11)
    }

    pub fn create(cfg: &Config) -> Result<Pkcs11Provider, KeyError> {
        Pkcs11Provider::create_kek(&config(cfg)?)
    }

    pub fn open(cfg: &Config) -> Result<Pkcs11Provider, KeyError> {
        Pkcs11Provider::open(&config(cfg)?)
    }
}
