//! X.509 certificates (SM2, RSA, ECDSA): parsing, signature checks, chain building.
//!
//! Certificates met in signed documents are often not strictly DER (negative serials, odd
//! string types), so parsing uses [`super::der`]'s BER reader over the exact bytes: what is
//! verified is always the bytes as found, never a re-encoding.

use digest::Digest;
use signature::hazmat::PrehashVerifier;

use super::der::{self, DerError, Tlv};
use super::sm;

/// Longest accepted certification path (leaf included, anchor excluded).
pub const MAX_PATH_LEN: usize = 8;
/// Most signature checks one chain search may spend.
const MAX_CHAIN_WORK: usize = 64;

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

// The reader is `der`'s (BER mode: certificates in documents are not always strict DER). These
// two names stay for call sites outside `crypto` that read a messageDigest by hand.
pub use super::der::{octet_string, read_ber as read_tlv};

// ---------------------------------------------------------------------------------------------
// Hashes and signature algorithms
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

/// The fields of an X.509 certificate the verifiers need.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub der: Vec<u8>,
    pub tbs_der: Vec<u8>,
    pub serial: Vec<u8>,
    /// Lower-case hex of the serial's content octets, leading zero octet removed.
    pub serial_hex: String,
    pub issuer_der: Vec<u8>,
    pub subject_der: Vec<u8>,
    pub issuer: String,
    pub subject: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    pub spki_der: Vec<u8>,
    pub sig_alg_oid: String,
    pub sig_alg_params: Option<Vec<u8>>,
    pub signature: Vec<u8>,
    /// basicConstraints: (cA, pathLenConstraint).
    pub basic_constraints: Option<(bool, Option<u32>)>,
    /// keyUsage bits (bit 0 = digitalSignature … bit 5 = keyCertSign), when present.
    pub key_usage: Option<u16>,
    /// extKeyUsage purposes (OIDs), when present.
    pub ext_key_usage: Option<Vec<String>>,
    pub subject_key_id: Option<Vec<u8>>,
    pub authority_key_id: Option<Vec<u8>>,
}

pub const KU_DIGITAL_SIGNATURE: u16 = 1 << 0;
pub const KU_NON_REPUDIATION: u16 = 1 << 1;
pub const KU_KEY_CERT_SIGN: u16 = 1 << 5;
/// `id-kp-timeStamping` (RFC 3161 §2.3: a TSA certificate carries exactly this purpose).
pub const EKU_TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";

impl CertInfo {
    /// Parses a DER certificate.
    pub fn parse(der: &[u8]) -> Result<CertInfo, X509Error> {
        let cert_err = |m: &str| X509Error::Certificate(m.to_string());
        let (cert, _) = der::read_ber(der).map_err(|e| X509Error::Certificate(e.to_string()))?;
        if cert.tag != 0x30 {
            return Err(cert_err("不是 SEQUENCE"));
        }
        let parts = cert.children()?;
        let (tbs, alg, sig) = match parts.as_slice() {
            [tbs, alg, sig, ..] => (tbs, alg, sig),
            _ => return Err(cert_err("缺少 tbsCertificate/签名")),
        };
        let alg_parts = alg.children()?;
        let sig_alg_oid =
            der::oid_string(alg_parts.first().ok_or_else(|| cert_err("签名算法缺失"))?)?;
        let sig_alg_params = alg_parts.get(1).map(|p| p.raw.to_vec());
        if sig.tag != 0x03 {
            return Err(cert_err("签名值不是 BIT STRING"));
        }
        let signature = sig.content.get(1..).unwrap_or_default().to_vec();

        let fields = tbs.children()?;
        let mut it = fields.iter().peekable();
        if it.peek().is_some_and(|f| f.tag == 0xa0) {
            it.next();
        }
        let serial_tlv = it.next().ok_or_else(|| cert_err("序列号缺失"))?;
        if serial_tlv.tag != 0x02 {
            return Err(cert_err("序列号不是 INTEGER"));
        }
        let _tbs_alg = it.next().ok_or_else(|| cert_err("算法缺失"))?;
        let issuer = it.next().ok_or_else(|| cert_err("签发者缺失"))?;
        let validity = it.next().ok_or_else(|| cert_err("有效期缺失"))?;
        let subject = it.next().ok_or_else(|| cert_err("主体缺失"))?;
        let spki = it.next().ok_or_else(|| cert_err("公钥缺失"))?;
        let times = validity.children()?;
        let not_before_ms = der::time_ms(times.first().ok_or_else(|| cert_err("notBefore 缺失"))?)?;
        let not_after_ms = der::time_ms(times.get(1).ok_or_else(|| cert_err("notAfter 缺失"))?)?;

        let mut info = CertInfo {
            der: cert.raw.to_vec(),
            tbs_der: tbs.raw.to_vec(),
            serial: serial_tlv.content.to_vec(),
            serial_hex: serial_hex(serial_tlv.content),
            issuer_der: issuer.raw.to_vec(),
            subject_der: subject.raw.to_vec(),
            issuer: name_to_string(issuer),
            subject: name_to_string(subject),
            not_before_ms,
            not_after_ms,
            spki_der: spki.raw.to_vec(),
            sig_alg_oid,
            sig_alg_params,
            signature,
            basic_constraints: None,
            key_usage: None,
            ext_key_usage: None,
            subject_key_id: None,
            authority_key_id: None,
        };
        for f in it {
            if f.tag == 0xa3 {
                info.read_extensions(f)?;
            }
        }
        Ok(info)
    }

    fn read_extensions(&mut self, wrapper: &Tlv<'_>) -> Result<(), X509Error> {
        let (exts, _) = der::read_ber(wrapper.content)?;
        for ext in exts.children()? {
            let parts = ext.children()?;
            let Some(oid_tlv) = parts.first() else {
                continue;
            };
            let oid = der::oid_string(oid_tlv)?;
            let Some(value) = parts.iter().rev().find(|p| p.tag == 0x04) else {
                continue;
            };
            let Ok((inner, _)) = der::read_ber(value.content) else {
                continue;
            };
            match oid.as_str() {
                "2.5.29.19" => {
                    let kids = inner.children().unwrap_or_default();
                    let mut ca = false;
                    let mut path_len = None;
                    for k in kids {
                        match k.tag {
                            0x01 => ca = k.content.first().is_some_and(|b| *b != 0),
                            0x02 => {
                                path_len = Some(
                                    k.content
                                        .iter()
                                        .take(4)
                                        .fold(0u32, |a, b| (a << 8) | u32::from(*b)),
                                )
                            }
                            _ => {}
                        }
                    }
                    self.basic_constraints = Some((ca, path_len));
                }
                "2.5.29.15" if inner.tag == 0x03 => {
                    let b0 = inner.content.get(1).copied().unwrap_or(0);
                    let b1 = inner.content.get(2).copied().unwrap_or(0);
                    // Bit 0 of the ASN.1 BIT STRING is the most significant bit of the octet.
                    let mut bits = 0u16;
                    for i in 0..8 {
                        if b0 & (0x80 >> i) != 0 {
                            bits |= 1 << i;
                        }
                    }
                    if b1 & 0x80 != 0 {
                        bits |= 1 << 8;
                    }
                    self.key_usage = Some(bits);
                }
                "2.5.29.37" => {
                    self.ext_key_usage = Some(
                        inner
                            .children()
                            .unwrap_or_default()
                            .iter()
                            .take(32)
                            .filter_map(|k| der::oid_string(k).ok())
                            .collect(),
                    );
                }
                "2.5.29.14" if inner.tag == 0x04 => {
                    self.subject_key_id = Some(inner.content.to_vec());
                }
                "2.5.29.35" => {
                    self.authority_key_id = inner
                        .children()
                        .unwrap_or_default()
                        .into_iter()
                        .find(|k| k.tag == 0x80)
                        .map(|k| k.content.to_vec());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether this certificate's signature verifies under `issuer_spki_der`.
    pub fn verify_signed_by(&self, issuer_spki_der: &[u8]) -> Result<(), X509Error> {
        let scheme = resolve_scheme(&self.sig_alg_oid, self.sig_alg_params.as_deref(), None)?;
        verify_signature(issuer_spki_der, scheme, &self.tbs_der, &self.signature)
    }

    pub fn is_valid_at(&self, ms: i64) -> bool {
        self.not_before_ms <= ms && ms <= self.not_after_ms
    }

    fn is_self_issued(&self) -> bool {
        self.issuer_der == self.subject_der
    }

    /// The key type for reports.
    pub fn key_type(&self) -> String {
        key_type_name(&self.spki_der)
    }

    /// `CN` of the subject, else the whole subject string.
    pub fn subject_cn(&self) -> String {
        common_name(&self.subject)
    }
}

/// The CN of a `CN=…,O=…` string, else the string itself.
pub fn common_name(name: &str) -> String {
    name.split(',')
        .find_map(|p| p.strip_prefix("CN="))
        .map(str::to_string)
        .unwrap_or_else(|| name.to_string())
}

/// Serial as lower-case hex, without the sign octet DER adds for a high first bit.
pub fn serial_hex(content: &[u8]) -> String {
    let trimmed = match content {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    hex::encode(trimmed)
}

/// A distinguished name as `CN=…,O=…,C=…` (RFC 4514 order: most specific first).
pub fn name_to_string(name: &Tlv<'_>) -> String {
    let mut parts = Vec::new();
    for rdn in name.children().unwrap_or_default() {
        let mut atvs = Vec::new();
        for atv in rdn.children().unwrap_or_default() {
            let kids = atv.children().unwrap_or_default();
            let (Some(oid), Some(value)) = (kids.first(), kids.get(1)) else {
                continue;
            };
            let oid = der::oid_from_content(oid.content).unwrap_or_default();
            let label = match oid.as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.6" => "C",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                "2.5.4.9" => "STREET",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "2.5.4.5" => "SERIALNUMBER",
                "2.5.4.4" => "SN",
                "2.5.4.42" => "GN",
                "2.5.4.12" => "T",
                "1.2.840.113549.1.9.1" => "E",
                "0.9.2342.19200300.100.1.25" => "DC",
                "0.9.2342.19200300.100.1.1" => "UID",
                _ => "",
            };
            let text = string_value(value);
            if label.is_empty() {
                atvs.push(format!("{oid}={text}"));
            } else {
                atvs.push(format!("{label}={text}"));
            }
        }
        parts.push(atvs.join("+"));
    }
    parts.reverse();
    parts.join(",")
}

/// UTF-16BE text (BMPString, PDF text strings); an odd last byte and bad surrogates become
/// replacement characters.
pub fn utf16be_lossy(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| {
            u16::from_be_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .collect();
    String::from_utf16_lossy(&units)
}

/// Decodes the directory string types met in names.
pub fn string_value(value: &Tlv<'_>) -> String {
    match value.tag {
        0x0c | 0x13 | 0x16 | 0x1a | 0x12 => String::from_utf8_lossy(value.content).into_owned(),
        // T61String: treat as Latin-1, the common practice.
        0x14 => value.content.iter().map(|b| char::from(*b)).collect(),
        0x1e => utf16be_lossy(value.content),
        _ => format!("#{}", hex::encode(value.raw)),
    }
}

// ---------------------------------------------------------------------------------------------
// Chain building
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("证书无法解析: {0}")]
    Parse(String),
    #[error("证书链不受信任，签发者 {issuer}")]
    Untrusted { issuer: String },
    #[error("中间证书 {subject} 在签署时不在有效期内")]
    IntermediateExpired { subject: String },
    #[error("受信任根证书 {subject} 在签署时不在有效期内")]
    AnchorExpired { subject: String },
    #[error("证书 {subject} 不是 CA 证书（basicConstraints/keyUsage）")]
    NotCa { subject: String },
    #[error("证书链超过 {MAX_PATH_LEN} 级")]
    TooLong,
}

/// The outcome of a successful chain search.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Leaf first, then intermediates; the anchor last.
    pub path: Vec<CertInfo>,
    pub anchor: CertInfo,
}

/// Builds a path from `leaf` through `extra` to one of `anchors` (DER), checking signatures,
/// CA constraints and (when `at_ms` is given) intermediate validity at that time.
pub fn build_chain(
    leaf: &CertInfo,
    extra: &[Vec<u8>],
    anchors: &[Vec<u8>],
    at_ms: Option<i64>,
) -> Result<Chain, ChainError> {
    let anchors: Vec<CertInfo> = anchors
        .iter()
        .filter_map(|a| CertInfo::parse(a).ok())
        .collect();
    let pool: Vec<CertInfo> = extra
        .iter()
        .take(64)
        .filter_map(|c| CertInfo::parse(c).ok())
        .filter(|c| c.der != leaf.der)
        .collect();
    let mut work = 0usize;
    let mut path = vec![leaf.clone()];
    let mut last_error: Option<ChainError> = None;
    if let Some(anchor) = search(
        &mut path,
        &pool,
        &anchors,
        at_ms,
        &mut work,
        &mut last_error,
    ) {
        return Ok(Chain { path, anchor });
    }
    Err(last_error.unwrap_or_else(|| ChainError::Untrusted {
        issuer: leaf.issuer.clone(),
    }))
}

fn search(
    path: &mut Vec<CertInfo>,
    pool: &[CertInfo],
    anchors: &[CertInfo],
    at_ms: Option<i64>,
    work: &mut usize,
    last_error: &mut Option<ChainError>,
) -> Option<CertInfo> {
    let current = path.last()?.clone();
    // The certificate itself may be a configured anchor.
    if let Some(a) = anchors.iter().find(|a| a.der == current.der) {
        return Some(a.clone());
    }
    for anchor in anchors
        .iter()
        .filter(|a| a.subject_der == current.issuer_der || a.subject == current.issuer)
    {
        if *work >= MAX_CHAIN_WORK {
            return None;
        }
        *work += 1;
        if current.verify_signed_by(&anchor.spki_der).is_ok() {
            // A root is trusted only within its own validity period.
            if let Some(t) = at_ms
                && !anchor.is_valid_at(t)
            {
                *last_error = Some(ChainError::AnchorExpired {
                    subject: anchor.subject.clone(),
                });
                continue;
            }
            return Some(anchor.clone());
        }
    }
    if path.len() >= MAX_PATH_LEN {
        *last_error = Some(ChainError::TooLong);
        return None;
    }
    if current.is_self_issued() {
        return None;
    }
    for cand in pool
        .iter()
        .filter(|c| c.subject_der == current.issuer_der || c.subject == current.issuer)
    {
        if path.iter().any(|p| p.der == cand.der) {
            continue;
        }
        if *work >= MAX_CHAIN_WORK {
            return None;
        }
        *work += 1;
        if current.verify_signed_by(&cand.spki_der).is_err() {
            continue;
        }
        let is_ca = matches!(cand.basic_constraints, Some((true, _)))
            && cand.key_usage.is_none_or(|ku| ku & KU_KEY_CERT_SIGN != 0);
        if !is_ca {
            *last_error = Some(ChainError::NotCa {
                subject: cand.subject.clone(),
            });
            continue;
        }
        if let Some((_, Some(max))) = cand.basic_constraints {
            // Intermediates below this CA (excluding the leaf) may not exceed pathLen.
            let below = path.len().saturating_sub(1);
            if below > max as usize {
                *last_error = Some(ChainError::NotCa {
                    subject: cand.subject.clone(),
                });
                continue;
            }
        }
        if let Some(t) = at_ms
            && !cand.is_valid_at(t)
        {
            *last_error = Some(ChainError::IntermediateExpired {
                subject: cand.subject.clone(),
            });
            continue;
        }
        path.push(cand.clone());
        if let Some(anchor) = search(path, pool, anchors, at_ms, work, last_error) {
            return Some(anchor);
        }
        path.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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
