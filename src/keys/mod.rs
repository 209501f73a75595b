//! Key providers and the platform's keys (SPEC §5).
//!
//! A provider holds the key-encryption key (KEK) and wraps/unwraps everything else with it:
//! the platform's SM2 private key and each tenant's data key exist on disk only wrapped.
//! `file` keeps the KEK in a 0600 file (evaluation only); `pkcs11` keeps it non-extractable
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
}

/// What the console shows about a provider; never key material.
#[derive(Debug, Clone, Default, serde::Serialize)]
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
}

pub mod file;
pub mod pkcs11;
