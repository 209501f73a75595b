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
    /// When the KEK last wrapped or unwrapped anything in this process.
    #[serde(default)]
    pub last_used_ms: Option<i64>,
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
    /// Names the KEK without revealing it (`file`: its check value; `pkcs11`: its CKA_ID).
    fn kek_fingerprint(&self) -> String;
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
pub mod kek;
pub mod pkcs11;
pub mod platform;

pub use kek::{KekRotation, RetiredKek};
pub use platform::{CertificateListing, Platform, PlatformRotation, PreviousCert};

use crate::config::{Config, KeyProviderKind};
use crate::crypto::sm::{self, Sm2KeyPair};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

/// The platform's keys, loaded at start: the provider holding the KEK and the platform's
/// SM2 key with its certificates. The platform half is swapped whole by a rotation, so a
/// signature and the certificate it belongs to always come from one snapshot.
pub struct Keyring {
    provider: Arc<kek::KeyStore>,
    platform: RwLock<Arc<Platform>>,
    /// Serialises rotations: two at once would each retire the same certificate.
    rotating: Mutex<()>,
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
/// Replaced platform certificates are `platform-<first 16 hex of SM3>.crt`.
const HISTORY_FILE_PREFIX: &str = "platform-";

/// The platform certificate (DER) as stored beside the keys; readable without the KEK.
pub fn platform_cert_der(cfg: &Config) -> Result<Vec<u8>, KeyError> {
    read_cert(&keys_dir(cfg).join(PLATFORM_CERT_FILE))
}

/// Whether the key store beside `cfg`'s data holds a platform certificate at all.
pub fn has_platform_cert(cfg: &Config) -> bool {
    keys_dir(cfg).join(PLATFORM_CERT_FILE).exists()
}

/// Every platform certificate on disk, the current one first, then those it replaced
/// (newest first): what checks of older signatures (audit checkpoints, backups) need.
pub fn platform_cert_ders(cfg: &Config) -> Result<Vec<Vec<u8>>, KeyError> {
    let mut all = vec![platform_cert_der(cfg)?];
    all.extend(
        platform::read_history(&keys_dir(cfg))?
            .into_iter()
            .map(|p| p.cert_der),
    );
    Ok(all)
}

fn read_cert(path: &std::path::Path) -> Result<Vec<u8>, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
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
        Self::init_with(cfg, None).map(|(k, _)| k)
    }

    /// [`Keyring::init`], finishing an interrupted one (its KEK is found by the label and
    /// CKA_ID recorded before it was made) and adopting an existing KEK only when `adopt`
    /// names it.
    pub fn init_with(cfg: &Config, adopt: Option<&str>) -> Result<(Self, KekOrigin), KeyError> {
        let dir = keys_dir(cfg);
        if Self::is_initialised(cfg) {
            return Err(KeyError::Config(format!("{} 已初始化", dir.display())));
        }
        platform::check_setting(cfg)?;
        let (provider, origin) = prepare_kek(cfg, adopt)?;
        let keyring = Self::finish_init(cfg, provider)?;
        let marker = dir.join(INIT_MARKER);
        match std::fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&marker, e)),
            _ => {}
        }
        Ok((keyring, origin))
    }

    /// The second half of `init`: the platform key and certificate under `provider`'s KEK.
    fn finish_init(cfg: &Config, provider: Arc<dyn KeyProvider>) -> Result<Self, KeyError> {
        let dir = keys_dir(cfg);
        let pair = Sm2KeyPair::generate();
        let wrapped = provider.wrap(&pair.secret_bytes())?;
        let cert = platform::new_certificate(&pair, crate::time::now_ms())?;
        write_private(
            &dir.join(PLATFORM_CERT_FILE),
            sm::pem_encode("CERTIFICATE", &cert).as_bytes(),
        )?;
        write_private(&dir.join(PLATFORM_KEY_FILE), &wrapped)?;
        Ok(Self::assemble(
            kek::KeyStore::single(provider),
            Platform::new(pair, cert, Vec::new()),
        ))
    }

    fn assemble(provider: Arc<kek::KeyStore>, platform: Platform) -> Self {
        Self {
            provider,
            platform: RwLock::new(Arc::new(platform)),
            rotating: Mutex::new(()),
        }
    }

    /// Opens the provider and unwraps the platform key; first completes or rolls back a KEK
    /// or platform-key rotation a crash interrupted.
    pub fn load(cfg: &Config) -> Result<Self, KeyError> {
        platform::check_setting(cfg)?;
        let dir = keys_dir(cfg);
        recover_rotations(cfg, &dir)?;
        let provider = kek::open(cfg, &dir)?;
        let key_path = dir.join(PLATFORM_KEY_FILE);
        let wrapped = std::fs::read(&key_path).map_err(|e| io_err(&key_path, e))?;
        let secret = provider.unwrap(&wrapped)?;
        let pair = Sm2KeyPair::from_secret_bytes(&secret).map_err(|_| KeyError::Unwrap)?;
        let cert = read_cert(&dir.join(PLATFORM_CERT_FILE))?;
        let cert_key = sm::sm2_public_key_from_cert_der(&cert)
            .map_err(|e| KeyError::Config(format!("平台证书无效: {e}")))?;
        if cert_key != pair.public_key() {
            return Err(KeyError::Config("平台证书与平台私钥不匹配".into()));
        }
        let previous = platform::read_history(&dir)?;
        Ok(Self::assemble(
            provider,
            Platform::new(pair, cert, previous),
        ))
    }

    pub fn load_or_init(cfg: &Config) -> Result<(Self, bool), KeyError> {
        if Self::is_initialised(cfg) {
            Ok((Self::load(cfg)?, false))
        } else {
            Ok((Self::init(cfg)?, true))
        }
    }

    /// The platform key and certificates as they stand now; a rotation does not change a
    /// snapshot already taken.
    pub fn platform(&self) -> Arc<Platform> {
        self.platform
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// DER SM2/SM3 signature by the current platform key.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.platform().sign(msg)
    }

    pub fn platform_public_key(&self) -> sm2::PublicKey {
        self.platform().public_key()
    }

    pub fn platform_cert_der(&self) -> Vec<u8> {
        self.platform().cert_der().to_vec()
    }

    pub fn platform_cert_pem(&self) -> String {
        sm::pem_encode("CERTIFICATE", self.platform().cert_der())
    }

    /// The current certificate first, then every one it replaced (newest first).
    pub fn platform_cert_ders(&self) -> Vec<Vec<u8>> {
        self.platform().all_cert_ders()
    }

    /// `hutong keys rotate platform`: a new SM2 key and certificate, written atomically
    /// beside the old one's record, then swapped in, so every signature from this call's
    /// return on is by the new key. No restart needed.
    pub fn rotate_platform(&self, cfg: &Config) -> Result<PlatformRotation, KeyError> {
        let _one = self.one_rotation(cfg)?;
        let old = self.platform();
        let (next, rotation) = platform::rotate(
            &keys_dir(cfg),
            self.provider.as_ref(),
            &old,
            cfg.keys.platform_overlap_days,
        )?;
        *self
            .platform
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(next);
        Ok(rotation)
    }

    /// What a backup needs from the keys, taken while no rotation runs so that it is one
    /// consistent set: `backup_key` wrapped by the KEK, the platform snapshot that signs the
    /// backup, and the key files it carries (see [`backed_up_key_files`]) by name.
    pub fn backup_material(
        &self,
        cfg: &Config,
        backup_key: &[u8],
    ) -> Result<BackupMaterial, KeyError> {
        let _one = self.one_rotation(cfg)?;
        let wrapped_key = self.provider.wrap(backup_key)?;
        let key_files = backed_up_key_files(cfg)?
            .into_iter()
            .map(|n| {
                let bytes = read_key_file(cfg, &n)?;
                Ok((n, bytes))
            })
            .collect::<Result<_, KeyError>>()?;
        Ok(BackupMaterial {
            wrapped_key,
            status: self.provider.status(),
            platform: self.platform(),
            key_files,
        })
    }

    /// Serialises rotations in this process (the mutex) and against other processes' recovery
    /// (the lock file, held while the returned guard lives).
    fn one_rotation(&self, cfg: &Config) -> Result<RotationGuard<'_>, KeyError> {
        let local = self
            .rotating
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = keys_dir(cfg);
        let file = rotation_lock_file(&dir)?;
        file.lock()
            .map_err(|e| io_err(&dir.join(ROTATION_LOCK), e))?;
        Ok(RotationGuard {
            _local: local,
            _file: file,
        })
    }

    /// `hutong keys rotate kek`: a new KEK, the platform key re-wrapped under it, the old
    /// KEK kept retired (it still opens older backups) until [`Keyring::finish_kek_rotation`].
    pub fn rotate_kek(&self, cfg: &Config) -> Result<KekRotation, KeyError> {
        let _one = self.one_rotation(cfg)?;
        let secret = self.platform().secret_bytes();
        kek::rotate(cfg, &keys_dir(cfg), &self.provider, &secret)
    }

    /// Destroys the retired KEKs; the caller has verified a backup under the current one
    /// with [`Keyring::current_kek`].
    pub fn finish_kek_rotation(&self, cfg: &Config) -> Result<Vec<RetiredKek>, KeyError> {
        let _one = self.one_rotation(cfg)?;
        kek::destroy_retired(cfg, &keys_dir(cfg), &self.provider)
    }

    /// The current KEK alone, without the retired ones' fallback.
    pub fn current_kek(&self) -> Arc<dyn KeyProvider> {
        self.provider.current_only()
    }

    pub fn retired_keks(&self) -> Vec<RetiredKek> {
        self.provider.retired_keks()
    }

    pub fn provider(&self) -> &dyn KeyProvider {
        self.provider.as_ref()
    }

    pub fn status(&self) -> ProviderStatus {
        self.provider.status()
    }
}

/// Opens the configured key store alone (no platform key): what a restore needs to unwrap a
/// backup key, and a backup check to read its body.
pub fn open_key_store(cfg: &Config) -> Result<Arc<dyn KeyProvider>, KeyError> {
    let dir = keys_dir(cfg);
    recover_rotations(cfg, &dir)?;
    Ok(kek::open(cfg, &dir)?)
}

/// Held (`flock`) by a rotation and by the recovery of an interrupted one, across processes:
/// a CLI command opening the keys while the server rotates them must not take the
/// half-done rotation for a crashed one.
const ROTATION_LOCK: &str = "rotation.lock";

fn rotation_lock_file(dir: &std::path::Path) -> Result<std::fs::File, KeyError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(ROTATION_LOCK);
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io_err(&path, e))
}

/// Completes or rolls back a KEK or platform-key rotation a crash interrupted, unless a
/// rotation is running right now in another process (then its files are left alone).
fn recover_rotations(cfg: &Config, dir: &std::path::Path) -> Result<(), KeyError> {
    // Nothing to do (the usual case): touch nothing, not even the lock file.
    if !kek::pending(dir) && !platform::pending(dir) {
        return Ok(());
    }
    let lock = rotation_lock_file(dir)?;
    match lock.try_lock() {
        Ok(()) => {
            kek::recover(cfg, dir)?;
            platform::recover(dir)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::warn!(
                "a key rotation is running in another process; its files are left alone"
            );
            Ok(())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io_err(&dir.join(ROTATION_LOCK), e)),
    }
}

/// Dropping it releases both locks (closing the file releases the `flock`).
struct RotationGuard<'a> {
    _local: std::sync::MutexGuard<'a, ()>,
    _file: std::fs::File,
}

/// See [`Keyring::backup_material`].
pub struct BackupMaterial {
    pub wrapped_key: Vec<u8>,
    pub status: ProviderStatus,
    pub platform: Arc<Platform>,
    pub key_files: Vec<(String, Vec<u8>)>,
}

/// The files of `keys/` that a backup carries: the platform key as the KEK wrapped it, the
/// platform certificate, and the record of certificates it replaced (so audit checkpoints
/// signed before a rotation verify on a restored appliance). Never the KEK itself nor a
/// tenant's key (SPEC §6.2).
fn backed_up_key_files(cfg: &Config) -> Result<Vec<String>, KeyError> {
    let dir = keys_dir(cfg);
    let mut names = vec![
        PLATFORM_KEY_FILE.to_string(),
        PLATFORM_CERT_FILE.to_string(),
    ];
    names.extend(platform::history_files(&dir)?);
    Ok(names)
}

fn is_backed_up_key_file(name: &str) -> bool {
    name == PLATFORM_KEY_FILE || name == PLATFORM_CERT_FILE || platform::is_history_file(name)
}

fn read_key_file(cfg: &Config, name: &str) -> Result<Vec<u8>, KeyError> {
    let path = keys_dir(cfg).join(name);
    std::fs::read(&path).map_err(|e| io_err(&path, e))
}

/// Puts a backed-up key file in place when it is missing (returns true) or finds the same
/// one there (false); a different one is refused.
pub fn install_key_file(cfg: &Config, name: &str, bytes: &[u8]) -> Result<bool, KeyError> {
    if !is_backed_up_key_file(name) {
        return Err(KeyError::Config(format!("备份中有未知的密钥文件 {name:?}")));
    }
    let dir = keys_dir(cfg);
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(existing) if existing == bytes => Ok(false),
        Ok(_) => Err(KeyError::Config(format!(
            "{} 与备份中的不同（该密钥库属于另一个平台）",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_private_dir(&dir)?;
            write_private(&path, bytes).map(|()| true)
        }
        Err(e) => Err(io_err(&path, e)),
    }
}

/// Removes a key file [`install_key_file`] put in place (a failed restore's).
pub fn remove_key_file(cfg: &Config, name: &str) {
    if is_backed_up_key_file(name) {
        let _ = std::fs::remove_file(keys_dir(cfg).join(name));
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

/// Where the KEK of an `init` came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekOrigin {
    Created,
    /// An interrupted `init` had made it (label or file named).
    Resumed(String),
    /// An existing KEK the operator named with `--adopt-kek`.
    Adopted(String),
}

/// Written (fsynced) before `init` makes a KEK and removed when `init` is done: which KEK
/// this data directory's `init` made, so a re-run after a crash uses it and no other.
const INIT_MARKER: &str = "init.pending";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct PendingInit {
    provider: String,
    kek_label: String,
    /// Hex CKA_ID with `pkcs11`.
    kek_id: String,
}

/// The first half of `init`: a KEK to wrap the platform key under, made now, left by an
/// interrupted `init`, or adopted by name. Public so that tests can stop `init` right there.
pub fn prepare_kek(
    cfg: &Config,
    adopt: Option<&str>,
) -> Result<(Arc<dyn KeyProvider>, KekOrigin), KeyError> {
    let dir = keys_dir(cfg);
    create_private_dir(&dir)?;
    let marker = dir.join(INIT_MARKER);
    let pending: Option<PendingInit> = match std::fs::read(&marker) {
        Ok(b) => Some(
            serde_json::from_slice(&b)
                .map_err(|e| KeyError::Config(format!("{} 无法解析: {e}", marker.display())))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(&marker, e)),
    };
    let record = |p: &PendingInit| {
        let bytes = serde_json::to_vec(p).map_err(|e| KeyError::Config(e.to_string()))?;
        write_private(&marker, &bytes)
    };
    let refuse = |what: String, name: &str| {
        KeyError::Config(format!(
            "{what}：它不是本数据目录一次中断的初始化留下的，拒绝沿用或覆盖；确认它属于本平台且未用于别处时，请以 --adopt-kek {name} 重新运行 / not left by an interrupted init here; rerun with --adopt-kek {name} to use it"
        ))
    };
    match cfg.keys.provider {
        KeyProviderKind::File => {
            let path = dir.join(FILE_KEK);
            // Ours only when the file is the key whose check value the marker recorded.
            let ours = pending.as_ref().is_some_and(|p| {
                p.provider == "file"
                    && file::FileProvider::check_value_of(&path).is_ok_and(|c| c == p.kek_id)
            });
            if path.exists() {
                let origin = match adopt {
                    _ if ours => KekOrigin::Resumed(FILE_KEK.into()),
                    Some(a) if a == FILE_KEK => KekOrigin::Adopted(FILE_KEK.into()),
                    _ => return Err(refuse(format!("{} 已存在", path.display()), FILE_KEK)),
                };
                return Ok((Arc::new(file::FileProvider::open(&path)?), origin));
            }
            let kek = Zeroizing::new(sm::random_bytes::<32>());
            record(&PendingInit {
                provider: "file".into(),
                kek_label: FILE_KEK.into(),
                kek_id: file::check_value(&kek[..]),
            })?;
            Ok((
                Arc::new(file::FileProvider::create_with(&path, kek)?),
                KekOrigin::Created,
            ))
        }
        KeyProviderKind::Pkcs11 => {
            let pcfg = pkcs11_glue::config(cfg)?;
            let label = pcfg.kek_label.clone();
            if let Some(a) = adopt.filter(|a| *a != label) {
                return Err(KeyError::Config(format!(
                    "--adopt-kek {a} 与配置的 KEK 标签 {label} 不符"
                )));
            }
            let ours = pending
                .as_ref()
                .filter(|p| p.provider == "pkcs11" && p.kek_label == label);
            if let Some(p) = ours {
                match pkcs11::Pkcs11Provider::open(&pcfg) {
                    Ok(found) if found.details().kek_id == p.kek_id => {
                        return Ok((Arc::new(found), KekOrigin::Resumed(label)));
                    }
                    Ok(found) if adopt.is_some() => {
                        return Ok((Arc::new(found), KekOrigin::Adopted(label)));
                    }
                    Ok(found) => {
                        return Err(refuse(
                            format!(
                                "令牌中标签 {label} 的 KEK（CKA_ID {}）不是上次初始化创建的那把（{}）",
                                found.details().kek_id,
                                p.kek_id
                            ),
                            &label,
                        ));
                    }
                    // Killed before the KEK was made: make it now, with the recorded id.
                    Err(KeyError::KekMissing(_)) => {
                        let id = hex::decode(&p.kek_id)
                            .map_err(|_| KeyError::Config(format!("{} 损坏", marker.display())))?;
                        let made = pkcs11::Pkcs11Provider::create_kek_with_id(&pcfg, id)?;
                        return Ok((Arc::new(made), KekOrigin::Created));
                    }
                    Err(e) => return Err(e),
                }
            }
            match pkcs11::Pkcs11Provider::open(&pcfg) {
                Ok(found) if adopt.is_some() => {
                    return Ok((Arc::new(found), KekOrigin::Adopted(label)));
                }
                Ok(_) => return Err(refuse(format!("令牌中已有标签为 {label} 的 KEK"), &label)),
                Err(KeyError::KekMissing(_)) => {}
                Err(e) => return Err(e),
            }
            let id = pkcs11::new_kek_id()?;
            record(&PendingInit {
                provider: "pkcs11".into(),
                kek_label: label.clone(),
                kek_id: hex::encode(&id),
            })?;
            let made = pkcs11::Pkcs11Provider::create_kek_with_id(&pcfg, id).inspect_err(|_| {
                // Nothing was made: a later init starts afresh.
                let _ = std::fs::remove_file(&marker);
            })?;
            Ok((Arc::new(made), KekOrigin::Created))
        }
    }
}

mod pkcs11_glue {
    use super::KeyError;
    use super::pkcs11::Pkcs11Config;
    use crate::config::Config;

    pub fn config(cfg: &Config) -> Result<Pkcs11Config, KeyError> {
        Pkcs11Config::from_section(&cfg.keys.pkcs11)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> Config {
        let mut cfg = Config::load(None, Vec::<(String, String)>::new()).unwrap();
        cfg.data_dir = dir.to_path_buf();
        cfg
    }

    /// `init` killed between making `kek.key` and writing the platform key: run again, it
    /// finishes with that file; a `kek.key` swapped in meanwhile is refused unless adopted.
    #[test]
    fn an_interrupted_file_init_resumes_only_with_its_own_kek() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let (_, origin) = prepare_kek(&cfg, None).unwrap();
        assert_eq!(origin, KekOrigin::Created);
        assert!(!Keyring::is_initialised(&cfg));
        let (_, origin) = Keyring::init_with(&cfg, None).unwrap();
        assert_eq!(origin, KekOrigin::Resumed(FILE_KEK.into()));
        assert!(!keys_dir(&cfg).join(INIT_MARKER).exists());
        Keyring::load(&cfg).unwrap();

        let other = tempfile::tempdir().unwrap();
        let cfg = config(other.path());
        prepare_kek(&cfg, None).unwrap();
        write_private(&keys_dir(&cfg).join(FILE_KEK), &sm::random_bytes::<32>()).unwrap();
        let refused = Keyring::init_with(&cfg, None).expect_err("a foreign kek.key");
        assert!(
            refused.to_string().contains("--adopt-kek kek.key"),
            "{refused}"
        );
        assert!(!Keyring::is_initialised(&cfg));
        let (_, origin) = Keyring::init_with(&cfg, Some(FILE_KEK)).unwrap();
        assert_eq!(origin, KekOrigin::Adopted(FILE_KEK.into()));
    }
}
