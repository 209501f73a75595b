//! CMS SignedData (RFC 5652; GB/T 35275 OIDs for SM2) verification.
//!
//! Parsing keeps the exact bytes of the signed attributes: the signature covers their DER
//! `SET` encoding as found, so nothing is re-encoded before verification.

use super::der::{self, DerError, Tlv};
use super::x509::{self, CertInfo, HashAlg, X509Error};

/// `signedData` of PKCS#7 / RFC 5652.
pub const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
/// `signedData` of GB/T 35275.
pub const OID_GM_SIGNED_DATA: &str = "1.2.156.10197.6.1.4.2.2";
pub const OID_DATA: &str = "1.2.840.113549.1.7.1";
pub const OID_GM_DATA: &str = "1.2.156.10197.6.1.4.2.1";
pub const OID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
pub const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
pub const OID_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
pub const OID_TIMESTAMP_TOKEN: &str = "1.2.840.113549.1.9.16.2.14";
/// Most certificates read from one SignedData.
const MAX_CERTS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmsError {
    #[error("CMS 结构无法解析: {0}")]
    Parse(String),
    #[error("CMS 内容类型 {0} 不是 SignedData")]
    NotSignedData(String),
    #[error("CMS 中没有签名者信息")]
    NoSigner,
    #[error("CMS 中找不到签名者证书")]
    SignerCertMissing,
    #[error("签名者证书无法解析: {0}")]
    BadSignerCert(String),
    #[error("不支持的摘要算法 {0}")]
    UnsupportedDigest(String),
    #[error("不支持的签名算法 {0}")]
    UnsupportedAlgorithm(String),
    #[error("摘要算法 {0} 强度不足（策略不允许）")]
    WeakHash(String),
    #[error("签名属性缺少 messageDigest")]
    MissingMessageDigest,
    #[error("签名属性 messageDigest 与文档摘要不一致")]
    DigestMismatch,
    #[error("签名属性 contentType 与封装内容类型不一致")]
    ContentTypeMismatch,
    #[error("分离式签名不应携带封装内容")]
    UnexpectedContent,
    #[error("签名值验证失败")]
    BadSignature,
    #[error("签名者公钥无效: {0}")]
    BadKey(String),
}

impl CmsError {
    /// Whether the error concerns the signed bytes (integrity) rather than the signature.
    pub fn is_integrity(&self) -> bool {
        matches!(self, CmsError::DigestMismatch | CmsError::UnexpectedContent)
    }
}

impl From<DerError> for CmsError {
    fn from(e: DerError) -> Self {
        CmsError::Parse(e.to_string())
    }
}

impl From<X509Error> for CmsError {
    fn from(e: X509Error) -> Self {
        match e {
            X509Error::UnsupportedAlgorithm(a) => CmsError::UnsupportedAlgorithm(a),
            X509Error::BadSignature => CmsError::BadSignature,
            X509Error::BadKey(k) => CmsError::BadKey(k),
            other => CmsError::Parse(other.to_string()),
        }
    }
}

/// How a SignerInfo names its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerId {
    IssuerSerial {
        issuer_der: Vec<u8>,
        serial: Vec<u8>,
    },
    SubjectKeyId(Vec<u8>),
}

/// One signed or unsigned attribute: type and the raw DER of each value.
#[derive(Debug, Clone)]
pub struct Attribute {
    pub oid: String,
    pub values: Vec<Vec<u8>>,
}

/// A SignerInfo as found.
#[derive(Debug, Clone)]
pub struct SignerInfo {
    pub sid: SignerId,
    pub digest_oid: String,
    /// The signed attributes re-tagged as `SET` (what the signature covers), if present.
    pub signed_attrs_der: Option<Vec<u8>>,
    pub signed_attrs: Vec<Attribute>,
    pub sig_alg_oid: String,
    pub sig_alg_params: Option<Vec<u8>>,
    pub signature: Vec<u8>,
    pub unsigned_attrs: Vec<Attribute>,
}

/// A SignedData parsed but not yet verified.
#[derive(Debug, Clone)]
pub struct SignedData {
    pub content_type_oid: String,
    pub econtent_type: String,
    pub econtent: Option<Vec<u8>>,
    pub certs: Vec<Vec<u8>>,
    pub signer: SignerInfo,
}

/// What a verified SignedData says.
#[derive(Debug, Clone)]
pub struct CmsVerified {
    pub signer_cert_der: Vec<u8>,
    pub certs: Vec<Vec<u8>>,
    pub signing_time_ms: Option<i64>,
    pub digest_algorithm: String,
    /// "SM2", "RSA", "RSA-PSS", "ECDSA".
    pub signature_algorithm: String,
    /// The signer's key family with the digest algorithm it signed (`digestAlgorithm`).
    pub scheme: x509::SigScheme,
    /// RFC 3161 token from the unsigned attribute `id-aa-signatureTimeStampToken`.
    pub timestamp_token: Option<Vec<u8>>,
    pub encapsulated_content: Option<Vec<u8>>,
    pub weak_hash: bool,
    /// The SignerInfo `signature` octets (what a signature time-stamp covers).
    pub signature_value: Vec<u8>,
}

fn perr(msg: impl Into<String>) -> CmsError {
    CmsError::Parse(msg.into())
}

/// Parses a ContentInfo holding SignedData. Trailing bytes (PDF `/Contents` zero padding)
/// after the outer element are ignored.
pub fn parse_signed_data(cms_der: &[u8]) -> Result<SignedData, CmsError> {
    let (ci, _) = der::read_ber(cms_der).map_err(|e| perr(format!("ContentInfo: {e}")))?;
    if ci.tag != 0x30 {
        return Err(perr("ContentInfo 不是 SEQUENCE"));
    }
    let parts = ci.children()?;
    let ct = parts
        .first()
        .ok_or_else(|| perr("ContentInfo 缺少 contentType"))?;
    let content_type_oid = der::oid_string(ct)?;
    if content_type_oid != OID_SIGNED_DATA && content_type_oid != OID_GM_SIGNED_DATA {
        return Err(CmsError::NotSignedData(content_type_oid));
    }
    let wrapped = parts
        .get(1)
        .filter(|p| p.tag == 0xa0)
        .ok_or_else(|| perr("ContentInfo 缺少 [0] content"))?;
    let (sd, _) = der::read_ber(wrapped.content)?;
    let fields = sd.children()?;
    let mut it = fields.iter().peekable();
    let _version = it
        .next()
        .filter(|v| v.tag == 0x02)
        .ok_or_else(|| perr("SignedData 缺少 version"))?;
    let _digest_algs = it
        .next()
        .filter(|v| v.tag == 0x31)
        .ok_or_else(|| perr("SignedData 缺少 digestAlgorithms"))?;
    let encap = it
        .next()
        .filter(|v| v.tag == 0x30)
        .ok_or_else(|| perr("SignedData 缺少 encapContentInfo"))?;
    let encap_parts = encap.children()?;
    let econtent_type = der::oid_string(
        encap_parts
            .first()
            .ok_or_else(|| perr("encapContentInfo 缺少类型"))?,
    )?;
    let econtent = match encap_parts.get(1) {
        Some(e) if e.tag == 0xa0 => {
            let (inner, _) = der::read_ber(e.content)?;
            Some(der::octet_string(&inner)?)
        }
        _ => None,
    };
    let mut certs = Vec::new();
    let mut signer_infos: Option<&Tlv<'_>> = None;
    for f in it {
        match f.tag {
            0xa0 => {
                for c in f.children()? {
                    // Only plain certificates; attribute/other certificate choices are skipped.
                    if c.tag == 0x30 && certs.len() < MAX_CERTS {
                        certs.push(c.raw.to_vec());
                    }
                }
            }
            0xa1 => {}
            0x31 => signer_infos = Some(f),
            _ => {}
        }
    }
    let signer_infos = signer_infos.ok_or(CmsError::NoSigner)?;
    let first = signer_infos
        .children()?
        .into_iter()
        .next()
        .ok_or(CmsError::NoSigner)?;
    let signer = parse_signer_info(&first)?;
    Ok(SignedData {
        content_type_oid,
        econtent_type,
        econtent,
        certs,
        signer,
    })
}

fn parse_attributes(set_content: &[u8]) -> Result<Vec<Attribute>, CmsError> {
    let mut out = Vec::new();
    for attr in der::read_all(set_content)? {
        let kids = attr.children()?;
        let oid = der::oid_string(kids.first().ok_or_else(|| perr("属性缺少类型"))?)?;
        let values = match kids.get(1) {
            Some(set) => set.children()?.iter().map(|v| v.raw.to_vec()).collect(),
            None => Vec::new(),
        };
        out.push(Attribute { oid, values });
    }
    Ok(out)
}

fn parse_signer_info(si: &Tlv<'_>) -> Result<SignerInfo, CmsError> {
    let fields = si.children()?;
    let mut it = fields.iter().peekable();
    let _version = it.next().ok_or_else(|| perr("SignerInfo 缺少 version"))?;
    let sid_tlv = it.next().ok_or_else(|| perr("SignerInfo 缺少 sid"))?;
    let sid = match sid_tlv.tag {
        0x30 => {
            let kids = sid_tlv.children()?;
            let issuer = kids
                .first()
                .ok_or_else(|| perr("issuerAndSerialNumber 缺少 issuer"))?;
            let serial = kids
                .get(1)
                .ok_or_else(|| perr("issuerAndSerialNumber 缺少 serial"))?;
            SignerId::IssuerSerial {
                issuer_der: issuer.raw.to_vec(),
                serial: serial.content.to_vec(),
            }
        }
        0x80 | 0xa0 => SignerId::SubjectKeyId(sid_tlv.content.to_vec()),
        _ => return Err(perr("SignerInfo sid 类型未知")),
    };
    let digest_alg = it
        .next()
        .ok_or_else(|| perr("SignerInfo 缺少 digestAlgorithm"))?;
    let digest_oid = der::oid_string(
        digest_alg
            .children()?
            .first()
            .ok_or_else(|| perr("digestAlgorithm 为空"))?,
    )?;
    let mut signed_attrs_der = None;
    let mut signed_attrs = Vec::new();
    if it.peek().is_some_and(|t| t.tag == 0xa0) {
        let t = it.next().ok_or_else(|| perr("signedAttrs"))?;
        // The signature covers the attributes with the universal SET tag (RFC 5652 §5.4).
        let mut der = t.raw.to_vec();
        if let Some(first) = der.first_mut() {
            *first = 0x31;
        }
        signed_attrs_der = Some(der);
        signed_attrs = parse_attributes(t.content)?;
    }
    let sig_alg = it
        .next()
        .ok_or_else(|| perr("SignerInfo 缺少 signatureAlgorithm"))?;
    let sig_alg_parts = sig_alg.children()?;
    let sig_alg_oid = der::oid_string(
        sig_alg_parts
            .first()
            .ok_or_else(|| perr("signatureAlgorithm 为空"))?,
    )?;
    let sig_alg_params = sig_alg_parts
        .get(1)
        .filter(|p| p.tag != 0x05)
        .map(|p| p.raw.to_vec());
    let sig_tlv = it.next().ok_or_else(|| perr("SignerInfo 缺少 signature"))?;
    let signature = der::octet_string(sig_tlv)?;
    let mut unsigned_attrs = Vec::new();
    if let Some(t) = it.next().filter(|t| t.tag == 0xa1) {
        unsigned_attrs = parse_attributes(t.content)?;
    }
    Ok(SignerInfo {
        sid,
        digest_oid,
        signed_attrs_der,
        signed_attrs,
        sig_alg_oid,
        sig_alg_params,
        signature,
        unsigned_attrs,
    })
}

impl SignedData {
    /// The certificate the SignerInfo names.
    pub fn signer_cert(&self) -> Result<CertInfo, CmsError> {
        for der in &self.certs {
            let Ok(c) = CertInfo::parse(der) else {
                continue;
            };
            let hit = match &self.signer.sid {
                SignerId::IssuerSerial { issuer_der, serial } => {
                    (c.issuer_der == *issuer_der || same_name(&c.issuer_der, issuer_der))
                        && strip_zero(&c.serial) == strip_zero(serial)
                }
                SignerId::SubjectKeyId(ski) => c.subject_key_id.as_deref() == Some(ski.as_slice()),
            };
            if hit {
                return Ok(c);
            }
        }
        Err(CmsError::SignerCertMissing)
    }

    /// Verifies the SignerInfo over `content` (the eContent or the detached data).
    pub fn verify_over(&self, content: &[u8], allow_weak: bool) -> Result<CmsVerified, CmsError> {
        self.verify_parts(&[content], allow_weak)
    }

    fn verify_parts(&self, content: &[&[u8]], allow_weak: bool) -> Result<CmsVerified, CmsError> {
        let hash = HashAlg::from_oid(&self.signer.digest_oid)
            .ok_or_else(|| CmsError::UnsupportedDigest(digest_label(&self.signer.digest_oid)))?;
        if hash.is_weak() && !allow_weak {
            return Err(CmsError::WeakHash(hash.name().into()));
        }
        let cert = self.signer_cert()?;
        let scheme = match x509::resolve_scheme(
            &self.signer.sig_alg_oid,
            self.signer.sig_alg_params.as_deref(),
            Some(hash),
        ) {
            Ok(s) => s,
            // Some producers put the key algorithm (e.g. SM2 curve OID) where the signature
            // algorithm belongs; the key then decides.
            Err(X509Error::UnsupportedAlgorithm(a)) if a.starts_with("1.2.156") => {
                x509::scheme_for_key(&cert.spki_der, hash)?
            }
            Err(e) => return Err(e.into()),
        };
        // The signature algorithm's own hash wins for e.g. sha256WithRSA, but a mismatch
        // with digestAlgorithm on messageDigest is still computed with digestAlgorithm.
        let scheme = x509::SigScheme {
            family: scheme.family,
            hash: if matches!(scheme.family, x509::SigFamily::Sm2) {
                HashAlg::Sm3
            } else {
                scheme.hash
            },
        };
        let mut signing_time_ms = None;
        match &self.signer.signed_attrs_der {
            Some(attrs_der) => {
                if self.message_digest()? != hash.digest_parts(content) {
                    return Err(CmsError::DigestMismatch);
                }
                if let Some(ct) = self.attr(OID_CONTENT_TYPE) {
                    let (ct_tlv, _) = der::read_ber(ct)?;
                    let ct = der::oid_string(&ct_tlv)?;
                    if ct != self.econtent_type {
                        return Err(CmsError::ContentTypeMismatch);
                    }
                }
                if let Some(t) = self.attr(OID_SIGNING_TIME)
                    && let Ok((t_tlv, _)) = der::read_ber(t)
                {
                    signing_time_ms = der::time_ms(&t_tlv).ok();
                }
                x509::verify_signature(&cert.spki_der, scheme, attrs_der, &self.signer.signature)?;
            }
            None => {
                let joined;
                let message: &[u8] = match content {
                    [one] => one,
                    many => {
                        joined = many.concat();
                        &joined
                    }
                };
                x509::verify_signature(&cert.spki_der, scheme, message, &self.signer.signature)?;
            }
        }
        let timestamp_token = self
            .signer
            .unsigned_attrs
            .iter()
            .find(|a| a.oid == OID_TIMESTAMP_TOKEN)
            .and_then(|a| a.values.first().cloned());
        Ok(CmsVerified {
            signer_cert_der: cert.der.clone(),
            certs: self.certs.clone(),
            signing_time_ms,
            digest_algorithm: hash.name().to_string(),
            signature_algorithm: scheme.family.name().to_string(),
            scheme: x509::SigScheme {
                family: scheme.family,
                hash,
            },
            timestamp_token,
            encapsulated_content: self.econtent.clone(),
            weak_hash: hash.is_weak() || scheme.hash.is_weak(),
            signature_value: self.signer.signature.clone(),
        })
    }

    /// The first value of a signed attribute.
    pub fn attr(&self, oid: &str) -> Option<&[u8]> {
        self.signer
            .signed_attrs
            .iter()
            .find(|a| a.oid == oid)
            .and_then(|a| a.values.first())
            .map(Vec::as_slice)
    }

    /// The signed `messageDigest` attribute's octets: `MissingMessageDigest` when there is
    /// none, a parse error when it is not an OCTET STRING.
    pub fn message_digest(&self) -> Result<Vec<u8>, CmsError> {
        let md = self
            .attr(OID_MESSAGE_DIGEST)
            .ok_or(CmsError::MissingMessageDigest)?;
        let (md_tlv, _) = der::read_ber(md)?;
        Ok(der::octet_string(&md_tlv)?)
    }

    /// The digest algorithm the signer declares.
    pub fn digest_alg(&self) -> Option<HashAlg> {
        HashAlg::from_oid(&self.signer.digest_oid)
    }
}

fn digest_label(oid: &str) -> String {
    match oid {
        "2.16.840.1.101.3.4.2.12" => "SHAKE256".into(),
        "2.16.840.1.101.3.4.2.11" => "SHAKE128".into(),
        other => other.to_string(),
    }
}

fn strip_zero(b: &[u8]) -> &[u8] {
    match b {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    }
}

fn same_name(a: &[u8], b: &[u8]) -> bool {
    match (der::read_ber(a), der::read_ber(b)) {
        (Ok((a, _)), Ok((b, _))) => x509::name_to_string(&a) == x509::name_to_string(&b),
        _ => false,
    }
}

/// Verifies a detached SignedData over `content`.
///
/// An encapsulated content (even an empty one) is accepted only when it is the digest of
/// `content` (vendor profile C and `adbe.pkcs7.sha1`); the signature then covers that digest.
/// Any other encapsulated content is rejected: a detached signature that carries its own data
/// may not bind the document, and accepting it invites wrapping tricks.
pub fn verify_detached(
    cms_der: &[u8],
    content: &[u8],
    allow_weak_hashes: bool,
) -> Result<CmsVerified, CmsError> {
    let sd = parse_signed_data(cms_der)?;
    verify_detached_parts(&sd, &[content], allow_weak_hashes)
}

/// [`verify_detached`] over the concatenation of `parts`, on an already parsed SignedData.
pub fn verify_detached_parts(
    sd: &SignedData,
    parts: &[&[u8]],
    allow_weak_hashes: bool,
) -> Result<CmsVerified, CmsError> {
    match &sd.econtent {
        Some(ec) => {
            let hash = sd
                .digest_alg()
                .ok_or_else(|| CmsError::UnsupportedDigest(digest_label(&sd.signer.digest_oid)))?;
            let candidates = [hash, HashAlg::Sm3, HashAlg::Sha1, HashAlg::Sha256];
            if candidates.iter().any(|h| h.digest_parts(parts) == *ec) {
                sd.verify_over(ec, allow_weak_hashes)
            } else {
                Err(CmsError::UnexpectedContent)
            }
        }
        None => sd.verify_parts(parts, allow_weak_hashes),
    }
}

// ---------------------------------------------------------------------------------------------
// Producing SignedData (test PKIs, benchmarks, the member simulator's P7 answers)
// ---------------------------------------------------------------------------------------------

use super::der::{sequence as der_seq, tlv as der_tlv};

fn alg_id(oid: &str) -> Vec<u8> {
    der_seq(&[&x509::oid_der(oid)])
}

/// UTCTime (years 1950–2049) or GeneralizedTime of UTC milliseconds.
fn der_time(ms: i64) -> Result<Vec<u8>, CmsError> {
    super::der::time(ms, super::der::TimeForm::Rfc5280).map_err(perr)
}

/// A detached SM2/SM3 SignedData over the concatenation of `parts`, with signed attributes
/// (contentType, signingTime, messageDigest) and the signer certificate; GB/T 35275 OIDs when
/// `gm_oids`, else PKCS#7 OIDs (profiles B and A).
pub fn sign_detached_sm2(
    parts: &[&[u8]],
    key: &super::sm::Sm2KeyPair,
    cert_der: &[u8],
    signing_time_ms: i64,
    gm_oids: bool,
) -> Result<Vec<u8>, CmsError> {
    let cert = CertInfo::parse(cert_der).map_err(|e| CmsError::BadSignerCert(e.to_string()))?;
    let (signed_data_oid, data_oid) = if gm_oids {
        (OID_GM_SIGNED_DATA, OID_GM_DATA)
    } else {
        (OID_SIGNED_DATA, OID_DATA)
    };
    let digest = HashAlg::Sm3.digest_parts(parts);
    let mut attrs = [
        der_seq(&[
            &x509::oid_der(OID_CONTENT_TYPE),
            &der_tlv(0x31, &x509::oid_der(data_oid)),
        ]),
        der_seq(&[
            &x509::oid_der(OID_SIGNING_TIME),
            &der_tlv(0x31, &der_time(signing_time_ms)?),
        ]),
        der_seq(&[
            &x509::oid_der(OID_MESSAGE_DIGEST),
            &der_tlv(0x31, &der_tlv(0x04, &digest)),
        ]),
    ];
    // DER orders SET OF elements by their encodings.
    attrs.sort();
    let attrs_content = attrs.concat();
    let signature = key.sign(&der_tlv(0x31, &attrs_content));
    let serial = der_tlv(0x02, &cert.serial);
    let signer_info = der_seq(&[
        &der_tlv(0x02, &[1]),
        &der_seq(&[&cert.issuer_der, &serial]),
        &alg_id(HashAlg::Sm3.oid()),
        &der_tlv(0xa0, &attrs_content),
        &alg_id("1.2.156.10197.1.501"),
        &der_tlv(0x04, &signature),
    ]);
    let signed_data = der_seq(&[
        &der_tlv(0x02, &[1]),
        &der_tlv(0x31, &alg_id(HashAlg::Sm3.oid())),
        &der_seq(&[&x509::oid_der(data_oid)]),
        &der_tlv(0xa0, &cert.der),
        &der_tlv(0x31, &signer_info),
    ]);
    Ok(der_seq(&[
        &x509::oid_der(signed_data_oid),
        &der_tlv(0xa0, &signed_data),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::certgen::{CertSpec, self_signed_sm2};
    use crate::crypto::sm::Sm2KeyPair;

    fn signer() -> (Sm2KeyPair, Vec<u8>) {
        let key = Sm2KeyPair::generate();
        let spec = CertSpec {
            common_name: "测试签名者".into(),
            organization: Some("Hutong".into()),
            not_before_ms: 1_700_000_000_000,
            not_after_ms: 1_900_000_000_000,
            is_ca: false,
            serial: Some(vec![0x01, 0x02]),
        };
        let cert = self_signed_sm2(&spec, &key).unwrap();
        (key, cert)
    }

    #[test]
    fn sm2_round_trip_both_oid_profiles() {
        let (key, cert) = signer();
        for gm in [false, true] {
            let cms = sign_detached_sm2(&[b"hello ", b"world"], &key, &cert, 1_763_800_000_000, gm)
                .unwrap();
            let v = verify_detached(&cms, b"hello world", false).unwrap();
            assert_eq!(v.signature_algorithm, "SM2");
            assert_eq!(v.digest_algorithm, "SM3");
            assert_eq!(v.signing_time_ms, Some(1_763_800_000_000));
            assert_eq!(v.signer_cert_der, cert);
        }
    }

    #[test]
    fn message_digest_is_the_signed_attribute() {
        let (key, cert) = signer();
        let cms =
            sign_detached_sm2(&[b"hello world"], &key, &cert, 1_763_800_000_000, true).unwrap();
        let mut sd = parse_signed_data(&cms).unwrap();
        assert_eq!(
            sd.message_digest().unwrap(),
            HashAlg::Sm3.digest(b"hello world")
        );
        sd.signer
            .signed_attrs
            .retain(|a| a.oid != OID_MESSAGE_DIGEST);
        assert_eq!(sd.message_digest(), Err(CmsError::MissingMessageDigest));
    }

    #[test]
    fn changed_content_is_a_digest_mismatch() {
        let (key, cert) = signer();
        let cms =
            sign_detached_sm2(&[b"hello world"], &key, &cert, 1_763_800_000_000, true).unwrap();
        assert_eq!(
            verify_detached(&cms, b"hello World", false).unwrap_err(),
            CmsError::DigestMismatch
        );
    }

    #[test]
    fn flipped_signature_bit_fails_verification() {
        let (key, cert) = signer();
        let mut cms = sign_detached_sm2(&[b"x"], &key, &cert, 1_763_800_000_000, false).unwrap();
        // The signature value is the last OCTET STRING of the SignerInfo, at the very end.
        let last = cms.len() - 5;
        cms[last] ^= 0x01;
        assert_eq!(
            verify_detached(&cms, b"x", false).unwrap_err(),
            CmsError::BadSignature
        );
    }

    #[test]
    fn garbage_is_a_parse_error() {
        assert!(matches!(
            parse_signed_data(&[0x30, 0x03, 0x02, 0x01]),
            Err(CmsError::Parse(_))
        ));
        assert!(matches!(parse_signed_data(b""), Err(CmsError::Parse(_))));
    }
}
