//! SM4-GCM (GB/T 32907 with GCM) for personal data at rest, under a tenant's data key.

use super::sm::{CryptoError, random_bytes};
use aes_gcm::AesGcm;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit};

/// SM4 in GCM mode with a 96-bit nonce (also the backup file's chunk cipher).
pub type Sm4Gcm = AesGcm<sm4::Sm4, U12>;

/// Marks blobs: `S4G1 ‖ nonce(12) ‖ ciphertext ‖ tag(16)`.
const MAGIC: &[u8; 4] = b"S4G1";

/// Encrypts `plaintext` under a 16-byte SM4 key with a random nonce.
pub fn seal(key: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    let nonce = random_bytes::<12>();
    let cipher = Sm4Gcm::new(&(*key).into());
    // GCM encryption fails only for inputs beyond 64 GiB, far over any record.
    let ct = cipher.encrypt(&nonce.into(), plaintext).unwrap_or_default();
    let mut out = Vec::with_capacity(4 + 12 + ct.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Decrypts a blob made by [`seal`]; tampering or the wrong key is an error.
pub fn open(key: &[u8; 16], blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let rest = blob
        .strip_prefix(MAGIC)
        .ok_or_else(|| CryptoError::Malformed("不是 SM4-GCM 密文".into()))?;
    if rest.len() < 12 + 16 {
        return Err(CryptoError::Malformed("SM4-GCM 密文过短".into()));
    }
    let (nonce, ct) = rest.split_at(12);
    let nonce: [u8; 12] = nonce
        .try_into()
        .map_err(|_| CryptoError::Malformed("SM4-GCM nonce".into()))?;
    Sm4Gcm::new(&(*key).into())
        .decrypt(&nonce.into(), ct)
        .map_err(|_| CryptoError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_authentication() {
        let key = random_bytes::<16>();
        let blob = seal(&key, "110105194912310021".as_bytes());
        assert_eq!(open(&key, &blob).unwrap(), b"110105194912310021");
        let mut bad = blob.clone();
        bad[20] ^= 1;
        assert!(open(&key, &bad).is_err());
        assert!(open(&random_bytes::<16>(), &blob).is_err());
        assert!(open(&key, b"S4G1short").is_err());
    }
}
