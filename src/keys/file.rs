//! The `file` key provider: the KEK in a 0600 file. For evaluation only — anyone who can
//! read the data directory can read every key; the server warns about it at start.

use super::{KeyError, KeyProvider, ProviderStatus};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Marks blobs made by this provider: `HF1 ‖ nonce(12) ‖ ciphertext ‖ tag`.
const MAGIC: &[u8; 3] = b"HF1";

pub struct FileProvider {
    kek: Zeroizing<[u8; 32]>,
    path: PathBuf,
    created_ms: Option<i64>,
}

impl FileProvider {
    /// Creates a new KEK file; refuses to overwrite an existing one.
    pub fn create(path: &Path) -> Result<Self, KeyError> {
        let kek = Zeroizing::new(crate::crypto::sm::random_bytes::<32>());
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
        let meta = std::fs::metadata(path)
            .map_err(|e| KeyError::Io(format!("{}: {e}", path.display())))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(KeyError::Config(format!(
                "{} 权限过宽，必须为 0600",
                path.display()
            )));
        }
        let bytes = Zeroizing::new(
            std::fs::read(path).map_err(|e| KeyError::Io(format!("{}: {e}", path.display())))?,
        );
        let kek: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Config(format!("{} 不是 32 字节的密钥", path.display())))?;
        let created_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64);
        Ok(Self {
            kek: Zeroizing::new(kek),
            path: path.to_path_buf(),
            created_ms,
        })
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&(*self.kek).into())
    }
}

impl KeyProvider for FileProvider {
    fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let nonce = crate::crypto::sm::random_bytes::<12>();
        let ct = self
            .cipher()
            .encrypt(&Nonce::from(nonce), plaintext)
            .map_err(|_| KeyError::Unwrap)?;
        let mut out = Vec::with_capacity(3 + 12 + ct.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let rest = wrapped.strip_prefix(MAGIC).ok_or(KeyError::Unwrap)?;
        if rest.len() < 12 + 16 {
            return Err(KeyError::Unwrap);
        }
        let (nonce, ct) = rest.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| KeyError::Unwrap)?;
        self.cipher()
            .decrypt(&Nonce::from(nonce), ct)
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Unwrap)
    }

    fn status(&self) -> ProviderStatus {
        ProviderStatus {
            provider: "file".into(),
            module: None,
            slot: None,
            kek_id: self.path.display().to_string(),
            created_ms: self.created_ms,
        }
    }
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
}
