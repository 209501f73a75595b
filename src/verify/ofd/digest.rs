//! The `References@CheckMethod` digests met in OFD packages.

use digest::Digest;

use crate::crypto::sm::{sm2_message_digest, sm2_public_key_from_cert_der, sm3};

/// A `CheckMethod`, by OID or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckMethod {
    Sm3,
    /// `1.2.156.10197.1.401.2`, "SM3 with key" (GM/T 0006): SM3 over `Z ‖ data` with Z from
    /// the signer's SM2 public key and the default ID, as SM2 pre-processes a message.
    Sm3WithSignerKey,
    Sha256,
    Sha1,
    Md5,
    Unknown(String),
}

/// A ready hasher; `Sm3WithSignerKey` carries the signer key.
pub enum Hasher {
    Sm3,
    Sm3Z(sm2::PublicKey),
    Sha256,
    Sha1,
    Md5,
}

impl Hasher {
    pub fn digest(&self, data: &[u8]) -> Vec<u8> {
        match self {
            Hasher::Sm3 => sm3(data).to_vec(),
            Hasher::Sm3Z(key) => sm2_message_digest(key, data)
                .map(|d| d.to_vec())
                .unwrap_or_default(),
            Hasher::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hasher::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Hasher::Md5 => md5::Md5::digest(data).to_vec(),
        }
    }
}

impl CheckMethod {
    pub fn parse(text: &str) -> Self {
        let t = text.trim();
        let norm: String = t
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_uppercase();
        match (t, norm.as_str()) {
            ("1.2.156.10197.1.401" | "1.2.156.10197.1.401.1", _) | (_, "SM3") => Self::Sm3,
            ("1.2.156.10197.1.401.2", _) => Self::Sm3WithSignerKey,
            ("2.16.840.1.101.3.4.2.1", _) | (_, "SHA256") => Self::Sha256,
            ("1.3.14.3.2.26", _) | (_, "SHA1") => Self::Sha1,
            ("1.2.840.113549.2.5", _) | (_, "MD5") => Self::Md5,
            _ => Self::Unknown(t.to_string()),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::Sm3 => "SM3".into(),
            Self::Sm3WithSignerKey => "SM3（带签名者公钥预处理，1.2.156.10197.1.401.2）".into(),
            Self::Sha256 => "SHA-256".into(),
            Self::Sha1 => "SHA-1".into(),
            Self::Md5 => "MD5".into(),
            Self::Unknown(s) => s.clone(),
        }
    }

    /// MD5 and SHA-1 are broken for collision resistance.
    pub fn is_weak(&self) -> bool {
        matches!(self, Self::Sha1 | Self::Md5)
    }

    /// A remark for the hint on methods that verify but deserve mention.
    pub fn note(&self) -> Option<&'static str> {
        match self {
            Self::Sha256 => Some("非国密摘要算法 SHA-256"),
            _ => None,
        }
    }

    pub fn hasher(&self, signer_cert_der: Option<&[u8]>) -> Result<Hasher, String> {
        Ok(match self {
            Self::Sm3 => Hasher::Sm3,
            Self::Sha256 => Hasher::Sha256,
            Self::Sha1 => Hasher::Sha1,
            Self::Md5 => Hasher::Md5,
            Self::Sm3WithSignerKey => {
                let cert = signer_cert_der
                    .ok_or("CheckMethod 1.2.156.10197.1.401.2 需要签名者证书，但签名值中没有")?;
                let key = sm2_public_key_from_cert_der(cert).map_err(|e| {
                    format!("CheckMethod 1.2.156.10197.1.401.2 需要签名者 SM2 公钥: {e}")
                })?;
                Hasher::Sm3Z(key)
            }
            Self::Unknown(m) => return Err(format!("不支持的 CheckMethod: {m}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_by_oid_and_name() {
        assert_eq!(CheckMethod::parse("1.2.156.10197.1.401"), CheckMethod::Sm3);
        assert_eq!(CheckMethod::parse(" sm3 "), CheckMethod::Sm3);
        assert_eq!(
            CheckMethod::parse("1.2.156.10197.1.401.2"),
            CheckMethod::Sm3WithSignerKey
        );
        assert_eq!(CheckMethod::parse("SHA-1"), CheckMethod::Sha1);
        assert_eq!(
            CheckMethod::parse("2.16.840.1.101.3.4.2.1"),
            CheckMethod::Sha256
        );
        assert_eq!(CheckMethod::parse("md5"), CheckMethod::Md5);
        assert!(matches!(
            CheckMethod::parse("CRC32"),
            CheckMethod::Unknown(_)
        ));
        assert!(CheckMethod::Md5.is_weak() && !CheckMethod::Sm3.is_weak());
    }

    #[test]
    fn sm3_hasher_matches_known_vector() {
        let h = CheckMethod::Sm3.hasher(None).unwrap();
        assert_eq!(
            hex::encode(h.digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert!(CheckMethod::Sm3WithSignerKey.hasher(None).is_err());
    }
}
