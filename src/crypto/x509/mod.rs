//! X.509 certificates (SM2, RSA, ECDSA): parsing (`cert`), signature schemes and keys
//! (`scheme`), names for reports (`names`), path building (`chain`). This file holds the error
//! type and the public names; callers use `crypto::x509::…` whatever file a piece lives in.
//! It must not read DER itself (that is `crypto::der`) nor know documents or trust policy
//! beyond a path to the anchors it is given.
//!
//! Certificates met in signed documents are often not strictly DER (negative serials, odd
//! string types), so parsing uses [`super::der`]'s BER reader over the exact bytes: what is
//! verified is always the bytes as found, never a re-encoding.

mod cert;
mod chain;
mod names;
mod scheme;

pub use cert::*;
pub use chain::*;
pub use names::*;
pub use scheme::*;

use super::der::DerError;

/// Longest accepted certification path (leaf included, anchor excluded).
pub const MAX_PATH_LEN: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    #[error("ASN.1 结构错误: {0}")]
    Asn1(String),
    #[error("证书无法解析: {0}")]
    Certificate(String),
    #[error("不支持的签名算法 {0}")]
    UnsupportedAlgorithm(String),
    #[error("公钥无效: {0}")]
    BadKey(String),
    #[error("签名值验证失败")]
    BadSignature,
}

impl From<DerError> for X509Error {
    fn from(e: DerError) -> Self {
        X509Error::Asn1(e.to_string())
    }
}

fn asn1(msg: &str) -> X509Error {
    X509Error::Asn1(msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::der;

    #[test]
    fn oid_round_trip() {
        for h in [HashAlg::Md5, HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sm3] {
            assert!(!oid_der(h.oid()).is_empty());
        }
        let der = oid_der("1.2.156.10197.1.501");
        let (t, _) = der::read_ber(&der).unwrap();
        assert_eq!(der::oid_string(&t).unwrap(), "1.2.156.10197.1.501");
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        assert!(der::read_ber(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(der::read_ber(&[0x30, 0x80, 0x30, 0x80]).is_err());
        assert!(CertInfo::parse(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
    }

    #[test]
    fn sha256_digest_info_prefix_is_standard() {
        assert_eq!(
            hex::encode(HashAlg::Sha256.digest_info_prefix(true)),
            "3031300d060960864801650304020105000420"
        );
    }
}
