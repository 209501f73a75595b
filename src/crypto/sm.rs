//! SM2 (GB/T 32918) signatures with SM3 (GB/T 32905), as every peer of the platform uses them.
//!
//! Signatures are accepted in both encodings met in the field (DER `SEQUENCE{r,s}` and the raw
//! 64-byte `r‖s`) and always produced as DER. The signer ID is fixed to `1234567812345678`
//! (GB/T 35276); never rely on a library's default ID.

use der::{Decode, Encode, asn1::ObjectIdentifier};
use signature::hazmat::{PrehashSigner, PrehashVerifier};
use sm2::dsa::{Signature, SigningKey, VerifyingKey};
use sm2::elliptic_curve::sec1::ToSec1Point;
use sm3::{Digest, Sm3};
use spki::SubjectPublicKeyInfoRef;
use zeroize::Zeroizing;

/// The SM2 signer ID of GB/T 35276 used by every party of the platform.
pub const SM2_ID: &str = "1234567812345678";

/// `id-ecPublicKey` (RFC 5480).
pub const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// The SM2 curve / SM2 algorithm (GB/T 33560).
pub const OID_SM2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");
/// SM2 signature with SM3 (GB/T 33560).
pub const OID_SM2_WITH_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
/// SM3 hash (GB/T 33560).
pub const OID_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.401");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("签名值既不是 DER SEQUENCE{{r,s}} 也不是 64 字节 r‖s")]
    MalformedSignature,
    #[error("公钥不是有效的 SM2 公钥")]
    BadPublicKey,
    #[error("签名验证失败")]
    BadSignature,
    #[error("数据格式错误: {0}")]
    Malformed(String),
    #[error("不支持的算法: {0}")]
    Unsupported(String),
    /// A well-formed public key of another algorithm, named so the submitter knows what they
    /// sent (issue 13 point 8), unlike [`CryptoError::Malformed`] input.
    #[error("这是 {0} 公钥，须为 SM2 公钥")]
    NotSm2(String),
}

/// SM3 digest of `data`.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    Sm3::digest(data).into()
}

/// Lower-case hex SM3 digest of `data`.
pub fn sm3_hex(data: &[u8]) -> String {
    hex::encode(sm3(data))
}

/// The hint a verification step adds when [`read_sm2_signature`] needed its lenient reading.
pub const LENIENT_INTEGER_HINT: &str = "签名值 INTEGER 编码不规范（缺少前导 0），已按无符号数验证";

/// The order n of the SM2 curve (GB/T 32918.5 §A.1 recommended parameters), big-endian.
const SM2_N: [u8; 32] = hex_lit("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123");

/// An SM2 signature value as read, with whether its encoding needed the lenient reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sm2SignatureValue {
    pub signature: Signature,
    /// `r` or `s` was a 32-byte INTEGER with the high bit set and no leading zero.
    pub lenient: bool,
}

/// Reads an SM2 signature value, DER `SEQUENCE { INTEGER r, INTEGER s }` (GB/T 35276 §7.3) or
/// raw 64-byte `r‖s` — the one reader of every SM2 signature value in the crate (seal maker,
/// SES signer, CMS SignerInfo, request `sign`).
///
/// One producer quirk is accepted because it is unambiguous: a 32-byte `r` or `s` whose high bit
/// is set and that lacks the leading 0x00 DER requires (strictly a negative number; X.690
/// §8.3.2) is read as the unsigned big-endian value its producer meant, and flagged. Everything
/// else is strict DER: definite minimal lengths, exact tags, no trailing bytes, no redundant
/// leading zero, at most 33 content bytes, and `r`, `s` in `[1, n−1]` (GB/T 32918.2 §7.1 B1–B2).
pub fn read_sm2_signature(bytes: &[u8]) -> Result<Sm2SignatureValue, CryptoError> {
    match read_der_signature(bytes) {
        // 64 bytes that are not a DER signature are r‖s (a DER one of 64 bytes exists: short
        // r and s).
        Err(_) if bytes.len() == 64 => Ok(Sm2SignatureValue {
            signature: Signature::from_slice(bytes).map_err(|_| CryptoError::MalformedSignature)?,
            lenient: false,
        }),
        other => other,
    }
}

fn read_der_signature(bytes: &[u8]) -> Result<Sm2SignatureValue, CryptoError> {
    let bad = || CryptoError::MalformedSignature;
    let (seq, rest) = crate::crypto::der::read_der(bytes).map_err(|_| bad())?;
    if seq.tag != 0x30 || !rest.is_empty() || !minimal_header(&seq) {
        return Err(bad());
    }
    let mut body = seq.reader();
    let mut read_int = || -> Result<([u8; 32], bool), CryptoError> {
        let int = body.expect(0x02).map_err(|_| bad())?;
        if !minimal_header(&int) {
            return Err(bad());
        }
        unsigned_integer(int.content).ok_or_else(bad)
    };
    let (r, r_lenient) = read_int()?;
    let (s, s_lenient) = read_int()?;
    if !body.is_empty() {
        return Err(bad());
    }
    let mut raw = [0u8; 64];
    raw[..32].copy_from_slice(&r);
    raw[32..].copy_from_slice(&s);
    let signature = Signature::from_slice(&raw).map_err(|_| bad())?;
    Ok(Sm2SignatureValue {
        signature,
        lenient: r_lenient || s_lenient,
    })
}

/// The content of a DER INTEGER as a 32-byte unsigned value in `[1, n−1]`, and whether the
/// missing-leading-zero quirk was needed; `None` for anything else.
fn unsigned_integer(content: &[u8]) -> Option<([u8; 32], bool)> {
    let (digits, lenient) = match content {
        // Minimal positive with the sign octet: the next octet must need it.
        [0, rest @ ..] if rest.len() <= 32 && rest.first().is_some_and(|b| b & 0x80 != 0) => {
            (rest, false)
        }
        // A bare zero is out of range; any other leading zero is redundant.
        [0, ..] => return None,
        // The quirk: exactly 32 octets, high bit set, no sign octet.
        [first, ..] if first & 0x80 != 0 && content.len() == 32 => (content, true),
        // Any other negative number is not a signature value.
        [first, ..] if first & 0x80 != 0 => return None,
        [_, ..] if content.len() <= 32 => (content, false),
        _ => return None,
    };
    let mut out = [0u8; 32];
    out[32 - digits.len()..].copy_from_slice(digits);
    (out != [0u8; 32] && out < SM2_N).then_some((out, lenient))
}

/// Whether the element's length octets are the shortest form (X.690 §10.1).
fn minimal_header(tlv: &crate::crypto::der::Tlv<'_>) -> bool {
    crate::crypto::der::tlv(tlv.tag, tlv.content).len() == tlv.raw.len()
}

/// Parses an SM2 signature value (see [`read_sm2_signature`]).
pub fn parse_sm2_signature(bytes: &[u8]) -> Result<Signature, CryptoError> {
    read_sm2_signature(bytes).map(|v| v.signature)
}

/// [`LENIENT_INTEGER_HINT`] when `bytes` is an SM2 signature value that needed the lenient
/// reading, for the step that verified it to report.
pub fn lenient_encoding_hint(bytes: &[u8]) -> Option<&'static str> {
    read_sm2_signature(bytes)
        .ok()
        .filter(|v| v.lenient)
        .map(|_| LENIENT_INTEGER_HINT)
}

fn verifying_key(key: &sm2::PublicKey) -> Result<VerifyingKey, CryptoError> {
    VerifyingKey::new(SM2_ID, *key).map_err(|_| CryptoError::BadPublicKey)
}

/// Verifies an SM2/SM3 signature over `msg` (Z is computed from `key` and the standard ID).
pub fn sm2_verify(key: &sm2::PublicKey, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    let sig = parse_sm2_signature(sig)?;
    let e = sm2_message_digest(key, msg)?;
    verifying_key(key)?
        .verify_prehash(&e, &sig)
        .map_err(|_| CryptoError::BadSignature)
}

/// Verifies an SM2 signature over an already computed 32-byte digest `e = SM3(Z ‖ M)`.
pub fn sm2_verify_prehashed(key: &sm2::PublicKey, e: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    if e.len() != 32 {
        return Err(CryptoError::Malformed("SM2 摘要长度必须为 32 字节".into()));
    }
    let sig = parse_sm2_signature(sig)?;
    verifying_key(key)?
        .verify_prehash(e, &sig)
        .map_err(|_| CryptoError::BadSignature)
}

/// The SM2 message digest `e = SM3(Z ‖ M)` with Z from `key` and the standard ID.
pub fn sm2_message_digest(key: &sm2::PublicKey, msg: &[u8]) -> Result<[u8; 32], CryptoError> {
    let z = sm2_z(key)?;
    let mut h = Sm3::new();
    h.update(z);
    h.update(msg);
    Ok(h.finalize().into())
}

/// `Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)` (GB/T 32918.2 §5.5); public so the published
/// test vectors are checked against this very computation.
pub fn sm2_z(key: &sm2::PublicKey) -> Result<[u8; 32], CryptoError> {
    const A: [u8; 32] = hex_lit("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC");
    const B: [u8; 32] = hex_lit("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93");
    const GX: [u8; 32] =
        hex_lit("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7");
    const GY: [u8; 32] =
        hex_lit("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0");
    let point = key.to_sec1_point(false);
    let xy = point.as_bytes();
    if xy.len() != 65 {
        return Err(CryptoError::BadPublicKey);
    }
    let id = SM2_ID.as_bytes();
    let entl = ((id.len() * 8) as u16).to_be_bytes();
    let mut h = Sm3::new();
    for part in [&entl[..], id, &A, &B, &GX, &GY, &xy[1..33], &xy[33..65]] {
        h.update(part);
    }
    Ok(h.finalize().into())
}

const fn hex_lit(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

// Only evaluated in constant context, where a bad digit is a compile error, never a panic.
#[allow(clippy::panic)]
const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("not hex"),
    }
}

/// An SM2 public key from its uncompressed/compressed SEC1 point bytes.
pub fn sm2_public_key_from_sec1(bytes: &[u8]) -> Result<sm2::PublicKey, CryptoError> {
    sm2::PublicKey::from_sec1_bytes(bytes).map_err(|_| CryptoError::BadPublicKey)
}

/// `what` in our words for a report; the DER library's English text goes to the debug log
/// (issue 12 point 6).
fn der_error(what: &str, e: &dyn std::fmt::Display) -> CryptoError {
    tracing::debug!(error = %e, "{what}");
    CryptoError::Malformed(what.to_string())
}

/// An SM2 public key from a DER `SubjectPublicKeyInfo`; accepts both the `id-ecPublicKey` +
/// SM2-curve form and the bare SM2 algorithm OID some producers write.
pub fn sm2_public_key_from_spki_der(der: &[u8]) -> Result<sm2::PublicKey, CryptoError> {
    let spki = SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|e| der_error("公钥结构 SubjectPublicKeyInfo 不是有效的 DER", &e))?;
    sm2_public_key_from_spki(&spki)
}

pub fn sm2_public_key_from_spki(
    spki: &SubjectPublicKeyInfoRef<'_>,
) -> Result<sm2::PublicKey, CryptoError> {
    match key_algorithm(spki) {
        KeyAlgorithm::Sm2 => {}
        other => return Err(CryptoError::NotSm2(other.name())),
    }
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or(CryptoError::BadPublicKey)?;
    sm2_public_key_from_sec1(bits)
}

/// `rsaEncryption` (RFC 8017).
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// The NIST curves of RFC 5480.
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The algorithm of a SubjectPublicKeyInfo, read from its OIDs alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// `id-ecPublicKey` with the SM2 curve, or the bare SM2 OID some producers write.
    Sm2,
    Rsa,
    /// `id-ecPublicKey` with a NIST curve (`P-256`, `P-384`, `P-521`).
    Nist(&'static str),
    /// `id-ecPublicKey` with another curve (its OID, if any).
    OtherCurve(String),
    Ed25519,
    Other(String),
}

impl KeyAlgorithm {
    /// How a person calls it.
    pub fn name(&self) -> String {
        match self {
            KeyAlgorithm::Sm2 => "SM2".into(),
            KeyAlgorithm::Rsa => "RSA".into(),
            KeyAlgorithm::Nist(c) => format!("NIST {c}"),
            KeyAlgorithm::OtherCurve(c) => format!("椭圆曲线（{c}）"),
            KeyAlgorithm::Ed25519 => "Ed25519".into(),
            KeyAlgorithm::Other(o) => format!("算法 {o} 的"),
        }
    }
}

pub fn key_algorithm(spki: &SubjectPublicKeyInfoRef<'_>) -> KeyAlgorithm {
    let alg = spki.algorithm.oid;
    let curve = || {
        spki.algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
    };
    match alg {
        OID_SM2 => KeyAlgorithm::Sm2,
        OID_RSA => KeyAlgorithm::Rsa,
        OID_ED25519 => KeyAlgorithm::Ed25519,
        OID_EC_PUBLIC_KEY => match curve() {
            Some(OID_SM2) => KeyAlgorithm::Sm2,
            Some(OID_P256) => KeyAlgorithm::Nist("P-256"),
            Some(OID_P384) => KeyAlgorithm::Nist("P-384"),
            Some(OID_P521) => KeyAlgorithm::Nist("P-521"),
            Some(c) => KeyAlgorithm::OtherCurve(c.to_string()),
            None => KeyAlgorithm::OtherCurve("未指明".into()),
        },
        other => KeyAlgorithm::Other(other.to_string()),
    }
}

/// The fingerprint shown for a public key: lower-case hex SM3 of its DER SubjectPublicKeyInfo,
/// what `openssl pkey -pubin -outform DER | openssl dgst -sm3` prints, so a vendor can check
/// the key on file against their own without our tools.
pub fn spki_fingerprint(spki_der: &[u8]) -> String {
    sm3_hex(spki_der)
}

/// The fingerprint of the SM2 key in PEM text (`PUBLIC KEY` or `CERTIFICATE`), over its
/// canonical SubjectPublicKeyInfo (id-ecPublicKey, SM2 curve, uncompressed point: the form
/// OpenSSL writes), so a key and a certificate carrying it have the same fingerprint.
pub fn sm2_pem_fingerprint(text: &str) -> Result<String, CryptoError> {
    let key = sm2_public_key_from_pem(text)?;
    Ok(spki_fingerprint(&sm2_public_key_to_spki_der(&key)))
}

/// An SM2 public key from PEM text holding a `PUBLIC KEY` or a `CERTIFICATE`.
pub fn sm2_public_key_from_pem(text: &str) -> Result<sm2::PublicKey, CryptoError> {
    let (label, der) = pem_decode(text)?;
    match label.as_str() {
        "PUBLIC KEY" => sm2_public_key_from_spki_der(&der),
        "CERTIFICATE" => sm2_public_key_from_cert_der(&der),
        other => Err(CryptoError::Malformed(format!("不支持的 PEM 类型 {other}"))),
    }
}

/// The SM2 public key of a DER X.509 certificate.
pub fn sm2_public_key_from_cert_der(der: &[u8]) -> Result<sm2::PublicKey, CryptoError> {
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| der_error("X.509 证书不是有效的 DER 结构", &e))?;
    let spki_der = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| der_error("证书公钥无法重新编码", &e))?;
    sm2_public_key_from_spki_der(&spki_der)
}

/// DER `SubjectPublicKeyInfo` (id-ecPublicKey with the SM2 curve) of an SM2 public key.
pub fn sm2_public_key_to_spki_der(key: &sm2::PublicKey) -> Vec<u8> {
    use spki::EncodePublicKey;
    // Encoding a valid point cannot fail; an empty vector would be rejected by any parser.
    key.to_public_key_der()
        .map(|d| d.into_vec())
        .unwrap_or_default()
}

/// PEM `PUBLIC KEY` of an SM2 public key.
pub fn sm2_public_key_to_pem(key: &sm2::PublicKey) -> String {
    pem_encode("PUBLIC KEY", &sm2_public_key_to_spki_der(key))
}

/// Decodes the first PEM block of `text` into (label, DER).
pub fn pem_decode(text: &str) -> Result<(String, Vec<u8>), CryptoError> {
    use base64::Engine;
    let begin = text
        .find("-----BEGIN ")
        .ok_or_else(|| CryptoError::Malformed("缺少 PEM 头".into()))?;
    let rest = &text[begin + 11..];
    let label_end = rest
        .find("-----")
        .ok_or_else(|| CryptoError::Malformed("PEM 头不完整".into()))?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let body_end = rest
        .find(&end_marker)
        .ok_or_else(|| CryptoError::Malformed("缺少 PEM 尾".into()))?;
    if body_end < body_start {
        return Err(CryptoError::Malformed("PEM 结构错误".into()));
    }
    let b64: String = rest[body_start..body_end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| CryptoError::Malformed("PEM 内容不是有效的 Base64".into()))?;
    Ok((label, der))
}

/// Encodes DER as PEM with 64-character lines.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if let Err(e) = getrandom::fill(&mut buf) {
        // Without randomness no key, nonce or token is safe: stop rather than go on weakly.
        tracing::error!(error = %e, "operating system random generator failed");
        std::process::abort();
    }
    buf
}

/// An SM2 key pair held in zeroised memory.
#[derive(Clone)]
pub struct Sm2KeyPair {
    signing: SigningKey,
    public: sm2::PublicKey,
    /// `Z` of the public key with the standard ID, computed once: every signature needs it.
    z: [u8; 32],
}

impl std::fmt::Debug for Sm2KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sm2KeyPair").finish_non_exhaustive()
    }
}

impl Sm2KeyPair {
    pub fn generate() -> Self {
        loop {
            let secret = Zeroizing::new(random_bytes::<32>());
            if let Ok(kp) = Self::from_secret_bytes(&secret[..]) {
                return kp;
            }
        }
    }

    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let signing = SigningKey::from_slice(SM2_ID, bytes)
            .map_err(|_| CryptoError::Malformed("SM2 私钥无效".into()))?;
        let public = sm2::PublicKey::from_affine(*signing.verifying_key().as_affine())
            .map_err(|_| CryptoError::BadPublicKey)?;
        let z = sm2_z(&public)?;
        Ok(Self { signing, public, z })
    }

    pub fn secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.signing.to_bytes().to_vec())
    }

    pub fn public_key(&self) -> sm2::PublicKey {
        self.public
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// DER SM2/SM3 signature over `msg`.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let mut h = Sm3::new();
        h.update(self.z);
        h.update(msg);
        self.sign_prehashed(&h.finalize().into())
    }

    /// DER SM2 signature over a 32-byte digest `e` (no further hashing).
    pub fn sign_prehashed(&self, e: &[u8; 32]) -> Vec<u8> {
        use signature::hazmat::RandomizedPrehashSigner;
        if let Ok(sig) = self.signing.sign_prehash(e) {
            return sig.to_der().to_bytes().to_vec();
        }
        // The deterministic k was rejected (r = 0 or r + k = n, probability about 2^-256):
        // pick k afresh, as GB/T 32918.2 A3 says, until a signature comes out.
        loop {
            if let Ok(sig) = self.signing.sign_prehash_with_rng(&mut rand::rng(), e) {
                return sig.to_der().to_bytes().to_vec();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the openssl CLI in `dir`; the keys of these tests are made at test time.
    fn openssl(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl CLI");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
        out.stdout
    }

    fn read(dir: &std::path::Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    #[test]
    fn the_fingerprint_is_what_openssl_prints_for_the_key_and_its_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(d, &["genpkey", "-algorithm", "SM2", "-out", "k.pem"]);
        openssl(d, &["pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"]);
        openssl(
            d,
            &[
                "pkey", "-pubin", "-in", "pub.pem", "-outform", "DER", "-out", "pub.der",
            ],
        );
        let printed = String::from_utf8(openssl(d, &["dgst", "-sm3", "pub.der"])).unwrap();
        let expected = printed.trim().rsplit(' ').next().unwrap().to_string();
        assert_eq!(expected.len(), 64, "{printed}");
        openssl(
            d,
            &[
                "req", "-x509", "-new", "-key", "k.pem", "-subj", "/CN=t", "-days", "1", "-out",
                "c.pem",
            ],
        );
        assert_eq!(sm2_pem_fingerprint(&read(d, "pub.pem")).unwrap(), expected);
        assert_eq!(sm2_pem_fingerprint(&read(d, "c.pem")).unwrap(), expected);
        assert_eq!(
            spki_fingerprint(&std::fs::read(d.join("pub.der")).unwrap()),
            expected
        );
    }

    #[test]
    fn rsa_and_nist_keys_are_named_and_garbage_is_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1024",
                "-out",
                "rsa.pem",
            ],
        );
        openssl(d, &["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub"]);
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "p256.pem",
            ],
        );
        openssl(
            d,
            &["pkey", "-in", "p256.pem", "-pubout", "-out", "p256.pub"],
        );
        openssl(
            d,
            &[
                "req", "-x509", "-new", "-key", "p256.pem", "-subj", "/CN=t", "-days", "1", "-out",
                "p256.crt",
            ],
        );
        let said = |name: &str| sm2_pem_fingerprint(&read(d, name)).unwrap_err().to_string();
        assert_eq!(said("rsa.pub"), "这是 RSA 公钥，须为 SM2 公钥");
        assert_eq!(said("p256.pub"), "这是 NIST P-256 公钥，须为 SM2 公钥");
        assert_eq!(said("p256.crt"), "这是 NIST P-256 公钥，须为 SM2 公钥");
        let garbage = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert!(matches!(
            sm2_public_key_from_pem(garbage),
            Err(CryptoError::Malformed(_))
        ));
        assert!(!matches!(
            sm2_public_key_from_pem("nonsense"),
            Err(CryptoError::NotSm2(_))
        ));
    }

    #[test]
    fn sign_verify_round_trip_in_both_encodings() {
        let kp = Sm2KeyPair::generate();
        let sig = kp.sign(b"abc");
        sm2_verify(&kp.public_key(), b"abc", &sig).unwrap();
        let parsed = parse_sm2_signature(&sig).unwrap();
        let raw = parsed.to_bytes();
        sm2_verify(&kp.public_key(), b"abc", &raw).unwrap();
        assert_eq!(
            sm2_verify(&kp.public_key(), b"abd", &sig),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn interoperates_with_the_library_signer() {
        use signature::{Signer, Verifier};
        let kp = Sm2KeyPair::generate();
        // The library computes Z itself; our prehash path must agree with it.
        let lib_sig: Signature = kp.signing_key().sign(b"message");
        sm2_verify(&kp.public_key(), b"message", &lib_sig.to_der().to_bytes()).unwrap();
        let ours = parse_sm2_signature(&kp.sign(b"message")).unwrap();
        kp.signing_key()
            .verifying_key()
            .verify(b"message", &ours)
            .unwrap();
    }

    #[test]
    fn gbt32918_sm3_vector() {
        assert_eq!(
            sm3_hex(b"abc"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    #[test]
    fn spki_pem_round_trip() {
        let kp = Sm2KeyPair::generate();
        let pem = sm2_public_key_to_pem(&kp.public_key());
        assert_eq!(sm2_public_key_from_pem(&pem).unwrap(), kp.public_key());
    }

    #[test]
    fn malformed_signatures_are_rejected_not_panicking() {
        let kp = Sm2KeyPair::generate();
        for bad in [&b""[..], &[0x30, 0x00], &[0u8; 64], &[0xff; 70]] {
            assert!(sm2_verify(&kp.public_key(), b"x", bad).is_err());
        }
    }

    /// Reference DER encoder of GB/T 35276 `SEQUENCE { INTEGER r, INTEGER s }`; `minimal`
    /// false drops the sign octet of a value with its high bit set (the producer quirk).
    fn encode_rs(r: &[u8; 32], s: &[u8; 32], minimal: (bool, bool)) -> Vec<u8> {
        fn int(v: &[u8; 32], minimal: bool) -> Vec<u8> {
            let start = v.iter().position(|&b| b != 0).unwrap_or(31);
            let mut body = v[start..].to_vec();
            // The quirk exists for full 32-byte values only.
            if body[0] & 0x80 != 0 && (minimal || body.len() < 32) {
                body.insert(0, 0);
            }
            crate::crypto::der::tlv(0x02, &body)
        }
        crate::crypto::der::tlv(0x30, &[int(r, minimal.0), int(s, minimal.1)].concat())
    }

    fn in_range() -> impl proptest::strategy::Strategy<Value = [u8; 32]> {
        use proptest::prelude::*;
        prop_oneof![
            any::<[u8; 32]>(),
            // Short values (leading zero octets) and high-bit values are the edge cases.
            any::<[u8; 32]>().prop_map(|mut v| {
                v[..3].fill(0);
                v
            }),
            any::<[u8; 32]>().prop_map(|mut v| {
                v[0] |= 0x80;
                v
            }),
        ]
        .prop_filter("in [1, n-1]", |v| *v != [0u8; 32] && *v < SM2_N)
    }

    fn values(v: &Sm2SignatureValue) -> ([u8; 32], [u8; 32]) {
        let raw = v.signature.to_bytes();
        (raw[..32].try_into().unwrap(), raw[32..].try_into().unwrap())
    }

    proptest::proptest! {
        #[test]
        fn strict_encodings_read_back_unflagged(r in in_range(), s in in_range()) {
            let v = read_sm2_signature(&encode_rs(&r, &s, (true, true))).unwrap();
            proptest::prop_assert_eq!(values(&v), (r, s));
            proptest::prop_assert!(!v.lenient);
        }

        #[test]
        fn missing_sign_octet_reads_the_same_values_flagged(
            r in in_range(), s in in_range(), which in 0u8..3,
        ) {
            let minimal = (which == 1, which == 0);
            let high = (r[0] & 0x80 != 0 && !minimal.0) || (s[0] & 0x80 != 0 && !minimal.1);
            let v = read_sm2_signature(&encode_rs(&r, &s, minimal)).unwrap();
            proptest::prop_assert_eq!(values(&v), (r, s));
            proptest::prop_assert_eq!(v.lenient, high);
        }

        #[test]
        fn mutated_encodings_never_panic(
            r in in_range(), s in in_range(),
            edits in proptest::collection::vec((0usize..80, proptest::num::u8::ANY, 0u8..3), 1..6),
        ) {
            let mut der = encode_rs(&r, &s, (r[0] & 1 == 0, s[0] & 1 == 0));
            for (at, byte, op) in edits {
                let at = at % (der.len() + 1);
                match op {
                    0 if at < der.len() => der[at] = byte,
                    1 => der.insert(at, byte),
                    _ => der.truncate(at),
                }
            }
            if let Ok(v) = read_sm2_signature(&der) {
                // Whatever is accepted is a value in range that the reference re-encodes.
                let (r, s) = values(&v);
                proptest::prop_assert!(r != [0u8; 32] && r < SM2_N && s != [0u8; 32] && s < SM2_N);
            }
        }
    }

    #[test]
    fn a_real_signature_re_encoded_without_sign_octets_verifies_flagged() {
        let kp = Sm2KeyPair::generate();
        // Signatures are deterministic: vary the message until r has its high bit set (half
        // of them do).
        let (msg, sig, r, s) = (0u32..)
            .find_map(|i| {
                let msg = format!("quirk {i}");
                let sig = kp.sign(msg.as_bytes());
                let (r, s) = values(&read_sm2_signature(&sig).unwrap());
                (r[0] & 0x80 != 0).then_some((msg, sig, r, s))
            })
            .unwrap();
        let quirky = encode_rs(&r, &s, (false, false));
        assert_ne!(quirky, sig);
        sm2_verify(&kp.public_key(), msg.as_bytes(), &quirky).unwrap();
        assert_eq!(lenient_encoding_hint(&quirky), Some(LENIENT_INTEGER_HINT));
        assert_eq!(lenient_encoding_hint(&sig), None);
        assert_eq!(
            sm2_verify(&kp.public_key(), b"other", &quirky),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn every_other_malformation_is_rejected() {
        let mut high = [0x11u8; 32];
        high[0] = 0x90;
        let one = {
            let mut v = [0u8; 32];
            v[31] = 1;
            v
        };
        let good = encode_rs(&high, &one, (true, true));
        let int = |body: &[u8]| crate::crypto::der::tlv(0x02, body);
        let seq = |parts: &[Vec<u8>]| crate::crypto::der::tlv(0x30, &parts.concat());
        let mut n_plus = SM2_N;
        n_plus[31] += 1;
        let mut neg31 = vec![0x90u8];
        neg31.extend([0x22; 30]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("trailing bytes", [good.clone(), vec![0]].concat()),
            ("extra element", seq(&[int(&[1]), int(&[1]), int(&[1])])),
            ("one element", seq(&[int(&[1])])),
            (
                "indefinite length",
                [&[0x30, 0x80][..], &good[2..], &[0, 0]].concat(),
            ),
            ("long-form length", [&[0x30, 0x81][..], &good[1..]].concat()),
            (
                "34 content bytes",
                seq(&[int(&[&[0, 0][..], &high].concat()), int(&[1])]),
            ),
            ("two leading zeros", seq(&[int(&[0, 0, 0x90]), int(&[1])])),
            ("redundant leading zero", seq(&[int(&[0, 0x10]), int(&[1])])),
            ("zero", seq(&[int(&[0]), int(&[1])])),
            ("empty integer", seq(&[int(&[]), int(&[1])])),
            (
                "r = n",
                seq(&[int(&[&[0][..], &SM2_N].concat()), int(&[1])]),
            ),
            (
                "r = n + 1",
                seq(&[int(&[&[0][..], &n_plus].concat()), int(&[1])]),
            ),
            ("s = n unsigned", seq(&[int(&[1]), int(&SM2_N)])),
            ("31-byte negative", seq(&[int(&neg31), int(&[1])])),
            (
                "SET instead of SEQUENCE",
                [&[0x31][..], &good[1..]].concat(),
            ),
            (
                "BIT STRING instead of INTEGER",
                seq(&[crate::crypto::der::tlv(0x03, &[1]), int(&[1])]),
            ),
        ];
        assert!(read_sm2_signature(&good).is_ok());
        for (what, bytes) in cases {
            assert_eq!(
                read_sm2_signature(&bytes),
                Err(CryptoError::MalformedSignature),
                "{what} must be rejected"
            );
        }
    }
}
