//! The `file` key provider: the KEK in a 0600 file, and each tenant's KEK in its own 0600
//! file `tenants/<hex SM3(owner)>.key` beside it (directory 0700). For evaluation only —
//! anyone who can read the data directory can read every key; the server warns about it at
//! start.

use super::{KeyError, KeyProvider, ProviderStatus, tenant_aad, tenant_key_name};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Marks blobs made by this provider: `HF1 ‖ nonce(12) ‖ ciphertext ‖ tag`.
const MAGIC: &[u8; 3] = b"HF1";
/// Marks blobs under a tenant KEK: `HFT ‖ nonce(12) ‖ ciphertext ‖ tag`, AAD `HFT ‖ 0 ‖ owner`.
const TENANT_MAGIC: &[u8; 3] = b"HFT";
/// The tenant KEKs' directory, beside the KEK file.
pub const TENANTS_DIR: &str = "tenants";

pub struct FileProvider {
    kek: Zeroizing<[u8; 32]>,
    path: PathBuf,
    tenants: PathBuf,
    created_ms: Option<i64>,
    /// UTC ms of the last wrap or unwrap (0: none yet).
    last_used_ms: std::sync::atomic::AtomicI64,
}

fn io(path: &Path, e: std::io::Error) -> KeyError {
    KeyError::Io(format!("{}: {e}", path.display()))
}

/// Reads a 32-byte key file that must be private to the owner.
fn read_key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(KeyError::Config(format!(
            "{} 权限过宽，必须为 0600",
            path.display()
        )));
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| io(path, e))?);
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::Config(format!("{} 不是 32 字节的密钥", path.display())))?;
    Ok(Zeroizing::new(key))
}

/// Makes a rename or unlink in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), KeyError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

fn seal(key: &[u8; 32], aad: &[u8], magic: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
    let nonce = crate::crypto::sm::random_bytes::<12>();
    let ct = Aes256Gcm::new(&(*key).into())
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| KeyError::Unwrap)?;
    let mut out = Vec::with_capacity(magic.len() + 12 + ct.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open_blob(
    key: &[u8; 32],
    aad: &[u8],
    magic: &[u8],
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let rest = wrapped.strip_prefix(magic).ok_or(KeyError::Unwrap)?;
    if rest.len() < 12 + 16 {
        return Err(KeyError::Unwrap);
    }
    let (nonce, ct) = rest.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| KeyError::Unwrap)?;
    Aes256Gcm::new(&(*key).into())
        .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| KeyError::Unwrap)
}

impl FileProvider {
    /// Creates a new KEK file; refuses to overwrite an existing one.
    pub fn create(path: &Path) -> Result<Self, KeyError> {
        Self::create_with(
            path,
            Zeroizing::new(crate::crypto::sm::random_bytes::<32>()),
        )
    }

    /// [`FileProvider::create`] with a KEK chosen by the caller (who recorded its check
    /// value first, so an interrupted `init` recognises its own file).
    pub fn create_with(path: &Path, kek: Zeroizing<[u8; 32]>) -> Result<Self, KeyError> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| KeyError::Io(format!("{}: {e}", path.display())))?;
        f.write_all(&kek[..])
            .and_then(|_| f.sync_all())
            .map_err(|e| KeyError::Io(format!("{}: {e}", path.display())))?;
        Self::open(path)
    }

    pub fn open(path: &Path) -> Result<Self, KeyError> {
        let kek = read_key_file(path)?;
        let created_ms = std::fs::metadata(path)
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64);
        let tenants = path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(TENANTS_DIR);
        Ok(Self {
            kek,
            path: path.to_path_buf(),
            tenants,
            created_ms,
            last_used_ms: std::sync::atomic::AtomicI64::new(0),
        })
    }

    fn tenant_path(&self, owner: &str) -> PathBuf {
        self.tenants.join(format!("{}.key", tenant_key_name(owner)))
    }

    /// The owner's tenant KEK, `None` when the key store has none.
    fn tenant_key(&self, owner: &str) -> Result<Option<Zeroizing<[u8; 32]>>, KeyError> {
        let path = self.tenant_path(owner);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => read_key_file(&path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Creates the owner's tenant KEK unless another caller just did, and returns the one on
    /// disk. The key is written to a private temporary file and hard-linked into place: the
    /// link never replaces an existing key, so of two creators one wins and both use its key.
    fn create_tenant_key(&self, owner: &str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        super::create_private_dir(&self.tenants)?;
        let path = self.tenant_path(owner);
        let tmp = self.tenants.join(format!(
            ".{}.{}.tmp",
            tenant_key_name(owner),
            hex::encode(crate::crypto::sm::random_bytes::<6>())
        ));
        let key = Zeroizing::new(crate::crypto::sm::random_bytes::<32>());
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&key[..]).and_then(|()| f.sync_all()))
            .map_err(|e| io(&tmp, e))
            .and_then(|()| match std::fs::hard_link(&tmp, &path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(io(&path, e)),
            });
        let removed = std::fs::remove_file(&tmp).map_err(|e| io(&tmp, e));
        written.and(removed)?;
        sync_dir(&self.tenants)?;
        self.tenant_key(owner)?
            .ok_or_else(|| KeyError::TenantKeyMissing(tenant_key_name(owner)))
    }
}

/// A KEK's check value: SM3 of a fixed label and the key, hex. Names one key without
/// revealing it.
pub fn check_value(kek: &[u8]) -> String {
    crate::crypto::sm::sm3_hex(&[b"hutong-kek-check\0".as_slice(), kek].concat())
}

impl FileProvider {
    /// The check value of the KEK file at `path`.
    pub fn check_value_of(path: &Path) -> Result<String, KeyError> {
        Ok(check_value(&read_key_file(path)?[..]))
    }

    fn used(&self) {
        self.last_used_ms
            .store(crate::time::now_ms(), std::sync::atomic::Ordering::Relaxed);
    }
}

impl KeyProvider for FileProvider {
    fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.used();
        // The platform KEK's blobs have always had no AAD; kept so existing blobs open.
        seal(&self.kek, &[], MAGIC, plaintext)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.used();
        open_blob(&self.kek, &[], MAGIC, wrapped)
    }

    fn status(&self) -> ProviderStatus {
        ProviderStatus {
            provider: "file".into(),
            module: None,
            slot: None,
            kek_id: self.path.display().to_string(),
            created_ms: self.created_ms,
            last_used_ms: Some(self.last_used_ms.load(std::sync::atomic::Ordering::Relaxed))
                .filter(|ms| *ms > 0),
        }
    }

    fn tenant_wrap(&self, owner: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = match self.tenant_key(owner)? {
            Some(k) => k,
            None => self.create_tenant_key(owner)?,
        };
        seal(
            &key,
            &tenant_aad(TENANT_MAGIC, owner),
            TENANT_MAGIC,
            plaintext,
        )
    }

    fn tenant_unwrap(&self, owner: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let key = self
            .tenant_key(owner)?
            .ok_or_else(|| KeyError::TenantKeyMissing(tenant_key_name(owner)))?;
        open_blob(
            &key,
            &tenant_aad(TENANT_MAGIC, owner),
            TENANT_MAGIC,
            wrapped,
        )
    }

    fn destroy_tenant_key(&self, owner: &str) -> Result<bool, KeyError> {
        shred(&self.tenant_path(owner))
    }

    fn kek_fingerprint(&self) -> String {
        check_value(&self.kek[..])
    }
}

/// Deletes a 32-byte key file; false when there was none. Overwritten before the unlink, so
/// the bytes do not linger in a freed block on file systems that write in place; copies of
/// the key store are the operator's to destroy.
pub(super) fn shred(path: &Path) -> Result<bool, KeyError> {
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(mut f) => f
            .write_all(&[0u8; 32])
            .and_then(|()| f.sync_all())
            .map_err(|e| io(path, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io(path, e)),
    }
    std::fs::remove_file(path).map_err(|e| io(path, e))?;
    sync_dir(path.parent().unwrap_or_else(|| Path::new(".")))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trip_and_tamper_detection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let p = FileProvider::create(&path).unwrap();
        assert!(
            FileProvider::create(&path).is_err(),
            "never overwrites a KEK"
        );
        let blob = p.wrap(b"secret").unwrap();
        let reopened = FileProvider::open(&path).unwrap();
        assert_eq!(&reopened.unwrap(&blob).unwrap()[..], b"secret");
        let mut bad = blob.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(p.unwrap(&bad), Err(KeyError::Unwrap)));
        assert!(matches!(p.unwrap(b"HF1"), Err(KeyError::Unwrap)));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            FileProvider::open(&path),
            Err(KeyError::Config(_))
        ));
    }

    #[test]
    fn tenant_keys_are_created_bound_to_their_owner_and_destroyed() {
        let dir = tempfile::tempdir().unwrap();
        let p = FileProvider::create(&dir.path().join("kek.key")).unwrap();
        assert!(matches!(
            p.tenant_unwrap("HTA", b"HFT"),
            Err(KeyError::TenantKeyMissing(_))
        ));
        let a = p.tenant_wrap("HTA", b"data key A").unwrap();
        let b = p.tenant_wrap("HTB", b"data key B").unwrap();
        let file = dir
            .path()
            .join(TENANTS_DIR)
            .join(format!("{}.key", tenant_key_name("HTA")));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir.path().join(TENANTS_DIR)), 0o700);
        assert_eq!(&p.tenant_unwrap("HTA", &a).unwrap()[..], b"data key A");
        // A second wrap reuses the key; a reopened provider finds it.
        let a2 = p.tenant_wrap("HTA", b"again").unwrap();
        let reopened = FileProvider::open(&dir.path().join("kek.key")).unwrap();
        assert_eq!(&reopened.tenant_unwrap("HTA", &a2).unwrap()[..], b"again");
        // Bound to the owner, and not a platform-KEK blob.
        assert!(matches!(p.tenant_unwrap("HTB", &a), Err(KeyError::Unwrap)));
        assert!(matches!(p.unwrap(&a), Err(KeyError::Unwrap)));
        assert!(matches!(
            p.tenant_unwrap("HTA", &p.wrap(b"x").unwrap()),
            Err(KeyError::Unwrap)
        ));
        assert!(p.destroy_tenant_key("HTA").unwrap());
        assert!(!file.exists());
        assert!(!p.destroy_tenant_key("HTA").unwrap());
        assert!(matches!(
            p.tenant_unwrap("HTA", &a),
            Err(KeyError::TenantKeyMissing(_))
        ));
        assert_eq!(&p.tenant_unwrap("HTB", &b).unwrap()[..], b"data key B");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join(TENANTS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
    }

    /// The operations guide tells operators to find a tenant key with `openssl dgst -sm3`.
    #[test]
    fn tenant_key_names_are_what_openssl_prints() {
        assert_eq!(
            tenant_key_name("HT1"),
            "d664920e81d2471ba225e7ed0dc96a8b8f72697e28e80644a4c14cfde713e952"
        );
    }

    #[test]
    fn concurrent_first_wraps_of_one_tenant_share_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = FileProvider::create(&dir.path().join("kek.key")).unwrap();
        let blobs: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let p = &p;
                    s.spawn(move || p.tenant_wrap("HTC", &[i]).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, blob) in blobs.iter().enumerate() {
            assert_eq!(&p.tenant_unwrap("HTC", blob).unwrap()[..], &[i as u8]);
        }
    }
}
