//! Hash and signature algorithms: OIDs to [`HashAlg`] / [`SigScheme`], public keys
//! (SubjectPublicKeyInfo) and signature verification for SM2, RSA (PKCS#1 v1.5, PSS) and ECDSA.
//!
//! Owns the cryptographic check of one signature under one key; must not parse certificates
//! or judge trust (that is `cert` and `chain`).

use super::{X509Error, asn1};
use crate::crypto::der;
use crate::crypto::sm;
use digest::Digest;
use signature::hazmat::PrehashVerifier;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sm3,
}

impl HashAlg {
    pub fn from_oid(oid: &str) -> Option<Self> {
        Some(match oid {
            "1.2.840.113549.2.5" => HashAlg::Md5,
            "1.3.14.3.2.26" => HashAlg::Sha1,
            "2.16.840.1.101.3.4.2.4" => HashAlg::Sha224,
            "2.16.840.1.101.3.4.2.1" => HashAlg::Sha256,
            "2.16.840.1.101.3.4.2.2" => HashAlg::Sha384,
            "2.16.840.1.101.3.4.2.3" => HashAlg::Sha512,
            "1.2.156.10197.1.401" | "1.2.156.10197.1.401.1" => HashAlg::Sm3,
            _ => return None,
        })
    }

    pub fn oid(self) -> &'static str {
        match self {
            HashAlg::Md5 => "1.2.840.113549.2.5",
            HashAlg::Sha1 => "1.3.14.3.2.26",
            HashAlg::Sha224 => "2.16.840.1.101.3.4.2.4",
            HashAlg::Sha256 => "2.16.840.1.101.3.4.2.1",
            HashAlg::Sha384 => "2.16.840.1.101.3.4.2.2",
            HashAlg::Sha512 => "2.16.840.1.101.3.4.2.3",
            HashAlg::Sm3 => "1.2.156.10197.1.401",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Md5 => "MD5",
            HashAlg::Sha1 => "SHA-1",
            HashAlg::Sha224 => "SHA-224",
            HashAlg::Sha256 => "SHA-256",
            HashAlg::Sha384 => "SHA-384",
            HashAlg::Sha512 => "SHA-512",
            HashAlg::Sm3 => "SM3",
        }
    }

    /// MD5 and SHA-1 are collision-broken; accepted only by policy.
    pub fn is_weak(self) -> bool {
        matches!(self, HashAlg::Md5 | HashAlg::Sha1)
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        self.digest_parts(&[data])
    }

    /// Digest of the concatenation of `parts` (PDF byte ranges) without copying them.
    pub fn digest_parts(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            h.finalize().to_vec()
        }
        match self {
            HashAlg::Md5 => run::<md5::Md5>(parts),
            HashAlg::Sha1 => run::<sha1::Sha1>(parts),
            HashAlg::Sha224 => run::<sha2::Sha224>(parts),
            HashAlg::Sha256 => run::<sha2::Sha256>(parts),
            HashAlg::Sha384 => run::<sha2::Sha384>(parts),
            HashAlg::Sha512 => run::<sha2::Sha512>(parts),
            HashAlg::Sm3 => run::<sm3::Sm3>(parts),
        }
    }

    /// DER DigestInfo prefix for RSA PKCS#1 v1.5 (with NULL parameters).
    pub fn digest_info_prefix(self, with_null: bool) -> Vec<u8> {
        let oid = oid_der(self.oid());
        let params: &[u8] = if with_null { &[0x05, 0x00] } else { &[] };
        let hash_len = self.digest(&[]).len();
        let alg_len = oid.len() + params.len();
        let seq_len = 2 + alg_len + 2 + hash_len;
        let mut out = vec![0x30, seq_len as u8, 0x30, alg_len as u8];
        out.extend(oid);
        out.extend_from_slice(params);
        out.extend([0x04, hash_len as u8]);
        out
    }
}

/// DER encoding of a dotted OID (only for the short constant OIDs above).
pub(crate) fn oid_der(dotted: &str) -> Vec<u8> {
    // Only ever called with the crate's own OID constants, all valid (see the tests).
    der::oid(dotted).unwrap_or_default()
}

/// The public-key algorithm family of a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigFamily {
    Rsa,
    RsaPss,
    Ecdsa,
    Sm2,
}

impl SigFamily {
    pub fn name(self) -> &'static str {
        match self {
            SigFamily::Rsa => "RSA",
            SigFamily::RsaPss => "RSA-PSS",
            SigFamily::Ecdsa => "ECDSA",
            SigFamily::Sm2 => "SM2",
        }
    }
}

/// A resolved signature scheme: family plus hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigScheme {
    pub family: SigFamily,
    pub hash: HashAlg,
}

impl SigScheme {
    /// e.g. "SM2withSM3", "RSAwithSHA-256".
    pub fn display(&self) -> String {
        format!("{}with{}", self.family.name(), self.hash.name())
    }
}

/// Resolves a signature AlgorithmIdentifier; `digest_hint` is the separate digest algorithm
/// CMS carries (needed when the signature OID names only the key type, e.g. rsaEncryption).
pub fn resolve_scheme(
    sig_oid: &str,
    sig_params: Option<&[u8]>,
    digest_hint: Option<HashAlg>,
) -> Result<SigScheme, X509Error> {
    let need = |h: Option<HashAlg>| {
        h.ok_or_else(|| X509Error::UnsupportedAlgorithm(format!("{sig_oid}（缺少摘要算法）")))
    };
    let (family, hash) = match sig_oid {
        "1.2.840.113549.1.1.1" => (SigFamily::Rsa, need(digest_hint)?),
        "1.2.840.113549.1.1.4" => (SigFamily::Rsa, HashAlg::Md5),
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => (SigFamily::Rsa, HashAlg::Sha1),
        "1.2.840.113549.1.1.14" => (SigFamily::Rsa, HashAlg::Sha224),
        "1.2.840.113549.1.1.11" => (SigFamily::Rsa, HashAlg::Sha256),
        "1.2.840.113549.1.1.12" => (SigFamily::Rsa, HashAlg::Sha384),
        "1.2.840.113549.1.1.13" => (SigFamily::Rsa, HashAlg::Sha512),
        "1.2.840.113549.1.1.10" => (SigFamily::RsaPss, pss_hash(sig_params)?),
        "1.2.840.10045.2.1" => (SigFamily::Ecdsa, need(digest_hint)?),
        "1.2.840.10045.4.1" => (SigFamily::Ecdsa, HashAlg::Sha1),
        "1.2.840.10045.4.3.1" => (SigFamily::Ecdsa, HashAlg::Sha224),
        "1.2.840.10045.4.3.2" => (SigFamily::Ecdsa, HashAlg::Sha256),
        "1.2.840.10045.4.3.3" => (SigFamily::Ecdsa, HashAlg::Sha384),
        "1.2.840.10045.4.3.4" => (SigFamily::Ecdsa, HashAlg::Sha512),
        "1.2.156.10197.1.501" => (SigFamily::Sm2, HashAlg::Sm3),
        "1.2.156.10197.1.301" | "1.2.156.10197.1.301.1" => (SigFamily::Sm2, HashAlg::Sm3),
        "1.3.101.113" => return Err(X509Error::UnsupportedAlgorithm("Ed448".into())),
        "1.3.101.112" => return Err(X509Error::UnsupportedAlgorithm("Ed25519".into())),
        other => return Err(X509Error::UnsupportedAlgorithm(other.to_string())),
    };
    Ok(SigScheme { family, hash })
}

/// The hash of RSASSA-PSS parameters (`[0] hashAlgorithm`, default SHA-1).
fn pss_hash(params: Option<&[u8]>) -> Result<HashAlg, X509Error> {
    let Some(params) = params else {
        return Ok(HashAlg::Sha1);
    };
    let (seq, _) = der::read_ber(params)?;
    for c in seq.children().unwrap_or_default() {
        if c.is_context(0) {
            let (alg, _) = der::read_ber(c.content)?;
            let oid_tlv = alg
                .children()?
                .into_iter()
                .next()
                .ok_or_else(|| asn1("PSS 参数"))?;
            let oid = der::oid_string(&oid_tlv)?;
            return HashAlg::from_oid(&oid).ok_or(X509Error::UnsupportedAlgorithm(format!(
                "RSA-PSS 摘要 {oid}"
            )));
        }
    }
    Ok(HashAlg::Sha1)
}

/// A parsed SubjectPublicKeyInfo.
#[derive(Debug, Clone)]
pub struct PublicKeyInfo {
    pub algorithm: String,
    pub curve: Option<String>,
    pub key_bits: Vec<u8>,
}

pub fn parse_spki(spki_der: &[u8]) -> Result<PublicKeyInfo, X509Error> {
    let (seq, _) = der::read_ber(spki_der)?;
    let parts = seq.children()?;
    let alg = parts
        .first()
        .ok_or_else(|| asn1("SubjectPublicKeyInfo 缺少算法"))?;
    let bits = parts
        .get(1)
        .ok_or_else(|| asn1("SubjectPublicKeyInfo 缺少公钥"))?;
    let alg_parts = alg.children()?;
    let algorithm = der::oid_string(alg_parts.first().ok_or_else(|| asn1("算法 OID 缺失"))?)?;
    let curve = alg_parts
        .get(1)
        .filter(|p| p.tag == 0x06)
        .and_then(|p| der::oid_from_content(p.content).ok());
    if bits.tag != 0x03 || bits.content.first() != Some(&0) {
        return Err(asn1("公钥 BIT STRING 错误"));
    }
    Ok(PublicKeyInfo {
        algorithm,
        curve,
        key_bits: bits.content.get(1..).unwrap_or_default().to_vec(),
    })
}

/// Names the key type of an SPKI for reports ("SM2", "RSA", "ECDSA P-256", "Ed448").
pub fn key_type_name(spki_der: &[u8]) -> String {
    match parse_spki(spki_der) {
        Ok(k) => match (k.algorithm.as_str(), k.curve.as_deref()) {
            ("1.2.840.113549.1.1.1", _) | ("1.2.840.113549.1.1.10", _) => "RSA".into(),
            (_, Some("1.2.156.10197.1.301")) | ("1.2.156.10197.1.301", _) => "SM2".into(),
            ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7")) => "ECDSA P-256".into(),
            ("1.2.840.10045.2.1", Some("1.3.132.0.34")) => "ECDSA P-384".into(),
            ("1.3.101.113", _) => "Ed448".into(),
            ("1.3.101.112", _) => "Ed25519".into(),
            (alg, _) => alg.to_string(),
        },
        Err(_) => "未知".into(),
    }
}

/// The signature family of an SPKI's key, when the platform knows one.
pub fn key_family(spki_der: &[u8]) -> Option<SigFamily> {
    let k = parse_spki(spki_der).ok()?;
    match (k.algorithm.as_str(), k.curve.as_deref()) {
        ("1.2.840.113549.1.1.1", _) => Some(SigFamily::Rsa),
        ("1.2.840.113549.1.1.10", _) => Some(SigFamily::RsaPss),
        (_, Some("1.2.156.10197.1.301")) | ("1.2.156.10197.1.301", _) => Some(SigFamily::Sm2),
        ("1.2.840.10045.2.1", _) => Some(SigFamily::Ecdsa),
        _ => None,
    }
}

/// Verifies `signature` over `message` with the key in `spki_der` under `scheme`.
/// SM2 uses the signer ID `1234567812345678` (Z value) as GB/T 35276 requires.
pub fn verify_signature(
    spki_der: &[u8],
    scheme: SigScheme,
    message: &[u8],
    signature: &[u8],
) -> Result<(), X509Error> {
    let hashed = scheme.hash.digest(message);
    verify_signature_prehashed(spki_der, scheme, message, &hashed, signature)
}

/// Verifies a signature made over a digest the signer received instead of the message (digest
/// signing): SM2 over e = SM3(Z‖M), RSA PKCS#1 v1.5 or ECDSA over `digest` of `hash`.
pub fn verify_digest(
    spki_der: &[u8],
    hash: HashAlg,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), X509Error> {
    let scheme = scheme_for_key(spki_der, hash)?;
    if scheme.family == SigFamily::Sm2 {
        let key = parse_spki(spki_der)?;
        let pk = sm::sm2_public_key_from_sec1(&key.key_bits)
            .map_err(|e| X509Error::BadKey(e.to_string()))?;
        return sm::sm2_verify_prehashed(&pk, digest, signature)
            .map_err(|_| X509Error::BadSignature);
    }
    verify_signature_prehashed(spki_der, scheme, &[], digest, signature)
}

/// Like [`verify_signature`] with the digest of `message` already computed (SM2 still needs
/// `message` itself because its digest includes Z).
fn verify_signature_prehashed(
    spki_der: &[u8],
    scheme: SigScheme,
    message: &[u8],
    hashed: &[u8],
    signature: &[u8],
) -> Result<(), X509Error> {
    let key = parse_spki(spki_der)?;
    match scheme.family {
        SigFamily::Sm2 => {
            let pk = sm::sm2_public_key_from_sec1(&key.key_bits)
                .map_err(|e| X509Error::BadKey(e.to_string()))?;
            if scheme.hash != HashAlg::Sm3 {
                return Err(X509Error::UnsupportedAlgorithm(format!(
                    "SM2 与 {}",
                    scheme.hash.name()
                )));
            }
            sm::sm2_verify(&pk, message, signature).map_err(|_| X509Error::BadSignature)
        }
        SigFamily::Rsa | SigFamily::RsaPss => {
            if key.algorithm != "1.2.840.113549.1.1.1" && key.algorithm != "1.2.840.113549.1.1.10" {
                return Err(X509Error::BadKey(format!(
                    "签名算法为 RSA，但公钥算法为 {}",
                    key.algorithm
                )));
            }
            use rsa::pkcs1::DecodeRsaPublicKey;
            let pk = rsa::PublicKey::from_pkcs1_der(&key.key_bits)
                .map_err(|e| X509Error::BadKey(format!("RSA: {e}")))?;
            if scheme.family == SigFamily::RsaPss {
                return verify_pss(&pk, scheme.hash, hashed, signature);
            }
            for with_null in [true, false] {
                let padding = rsa::Pkcs1v15Sign {
                    hash_len: Some(hashed.len()),
                    prefix: scheme.hash.digest_info_prefix(with_null).into_boxed_slice(),
                };
                if pk.verify(padding, hashed, signature).is_ok() {
                    return Ok(());
                }
            }
            Err(X509Error::BadSignature)
        }
        SigFamily::Ecdsa => {
            if key.algorithm != "1.2.840.10045.2.1" {
                return Err(X509Error::BadKey(format!(
                    "签名算法为 ECDSA，但公钥算法为 {}",
                    key.algorithm
                )));
            }
            match key.curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => {
                    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key.key_bits)
                        .map_err(|_| X509Error::BadKey("P-256".into()))?;
                    let sig = p256::ecdsa::Signature::from_der(signature)
                        .map_err(|_| X509Error::BadSignature)?;
                    vk.verify_prehash(hashed, &sig)
                        .map_err(|_| X509Error::BadSignature)
                }
                Some("1.3.132.0.34") => {
                    let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(&key.key_bits)
                        .map_err(|_| X509Error::BadKey("P-384".into()))?;
                    let sig = p384::ecdsa::Signature::from_der(signature)
                        .map_err(|_| X509Error::BadSignature)?;
                    vk.verify_prehash(hashed, &sig)
                        .map_err(|_| X509Error::BadSignature)
                }
                Some("1.2.156.10197.1.301") => {
                    // An SM2 key used under an ECDSA OID is still an SM2 signature.
                    let pk = sm::sm2_public_key_from_sec1(&key.key_bits)
                        .map_err(|e| X509Error::BadKey(e.to_string()))?;
                    sm::sm2_verify(&pk, message, signature).map_err(|_| X509Error::BadSignature)
                }
                other => Err(X509Error::UnsupportedAlgorithm(format!(
                    "ECDSA 曲线 {}",
                    other.unwrap_or("未知")
                ))),
            }
        }
    }
}

fn verify_pss(
    pk: &rsa::PublicKey,
    hash: HashAlg,
    hashed: &[u8],
    signature: &[u8],
) -> Result<(), X509Error> {
    let r = match hash {
        HashAlg::Sha1 => pk.verify(rsa::pss::Pss::<sha1::Sha1>::new(), hashed, signature),
        HashAlg::Sha256 => pk.verify(rsa::pss::Pss::<sha2::Sha256>::new(), hashed, signature),
        HashAlg::Sha384 => pk.verify(rsa::pss::Pss::<sha2::Sha384>::new(), hashed, signature),
        HashAlg::Sha512 => pk.verify(rsa::pss::Pss::<sha2::Sha512>::new(), hashed, signature),
        other => {
            return Err(X509Error::UnsupportedAlgorithm(format!(
                "RSA-PSS 与 {}",
                other.name()
            )));
        }
    };
    r.map_err(|_| X509Error::BadSignature)
}

/// The family a key would sign with, to resolve algorithms named only by their key.
pub fn scheme_for_key(spki_der: &[u8], hash: HashAlg) -> Result<SigScheme, X509Error> {
    let key = parse_spki(spki_der)?;
    let family = match (key.algorithm.as_str(), key.curve.as_deref()) {
        ("1.2.840.113549.1.1.1", _) => SigFamily::Rsa,
        ("1.2.840.113549.1.1.10", _) => SigFamily::RsaPss,
        (_, Some("1.2.156.10197.1.301")) | ("1.2.156.10197.1.301", _) => SigFamily::Sm2,
        ("1.2.840.10045.2.1", _) => SigFamily::Ecdsa,
        ("1.3.101.113", _) => return Err(X509Error::UnsupportedAlgorithm("Ed448".into())),
        (alg, _) => return Err(X509Error::UnsupportedAlgorithm(alg.to_string())),
    };
    Ok(SigScheme { family, hash })
}
