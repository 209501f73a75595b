//! Issuing SM2 X.509 certificates: the platform certificate, test PKIs and the member simulator.
//!
//! The TBSCertificate is DER-encoded by hand (a handful of fixed structures) so that the bytes the
//! SM2/SM3 signature covers are exactly the bytes written, with the GB/T 35276 signer ID. Parsing
//! of the result is left to `x509_cert`, which every test of this module exercises.

use der::{Decode, Encode, asn1::ObjectIdentifier};
use sha1::{Digest, Sha1};

use super::sm::{
    CryptoError, OID_SM2_WITH_SM3, Sm2KeyPair, random_bytes, sm2_public_key_from_spki_der,
    sm2_public_key_to_spki_der, sm2_verify,
};

/// What goes into a certificate besides the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    pub common_name: String,
    pub organization: Option<String>,
    /// Validity start, UTC milliseconds since the Unix epoch.
    pub not_before_ms: i64,
    /// Validity end, UTC milliseconds since the Unix epoch.
    pub not_after_ms: i64,
    /// A CA certificate gets keyCertSign|cRLSign and basicConstraints CA; a leaf gets
    /// digitalSignature|nonRepudiation (what seal signing needs).
    pub is_ca: bool,
    /// Big-endian serial number; 16 random bytes when absent.
    pub serial: Option<Vec<u8>>,
}

const OID_CN: &str = "2.5.4.3";
const OID_O: &str = "2.5.4.10";
const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
const OID_KEY_USAGE: &str = "2.5.29.15";
const OID_SKI: &str = "2.5.29.14";
const OID_AKI: &str = "2.5.29.35";

/// A self-signed SM2 certificate (DER) for `key`; subject and issuer are both `spec`'s name.
pub fn self_signed_sm2(spec: &CertSpec, key: &Sm2KeyPair) -> Result<Vec<u8>, CryptoError> {
    let name = encode_name(spec)?;
    let spki = spki_of(&key.public_key())?;
    let ski = key_identifier(&spki)?;
    build_and_sign(spec, &name, &name, &spki, &ski, &ski, key)
}

/// A certificate (DER) for `subject_key`, issued by the holder of `issuer_key` whose certificate is
/// `issuer_cert_der`. Fails when `issuer_key` does not match the issuer certificate.
pub fn issue_sm2(
    spec: &CertSpec,
    subject_key: &sm2::PublicKey,
    issuer_cert_der: &[u8],
    issuer_key: &Sm2KeyPair,
) -> Result<Vec<u8>, CryptoError> {
    issue_for_spki(spec, &spki_of(subject_key)?, issuer_cert_der, issuer_key)
}

/// Like [`issue_sm2`] for any subject key given as a DER SubjectPublicKeyInfo (e.g. an RSA
/// seal signer under an SM2 CA).
pub fn issue_for_spki(
    spec: &CertSpec,
    spki: &[u8],
    issuer_cert_der: &[u8],
    issuer_key: &Sm2KeyPair,
) -> Result<Vec<u8>, CryptoError> {
    let issuer = x509_cert::Certificate::from_der(issuer_cert_der)
        .map_err(|e| CryptoError::Malformed(format!("签发者证书: {e}")))?;
    let tbs = issuer.tbs_certificate();
    let issuer_spki = tbs
        .subject_public_key_info()
        .to_der()
        .map_err(|e| CryptoError::Malformed(format!("签发者公钥: {e}")))?;
    if sm2_public_key_from_spki_der(&issuer_spki)? != issuer_key.public_key() {
        return Err(CryptoError::Malformed(
            "签发者私钥与签发者证书的公钥不匹配".into(),
        ));
    }
    let issuer_name = tbs
        .subject()
        .to_der()
        .map_err(|e| CryptoError::Malformed(format!("签发者名称: {e}")))?;
    // The AKI must equal the issuer's own SKI when it has one, or chain builders lose the link.
    let ski_oid = oid(OID_SKI)?;
    let issuer_ski = match tbs
        .extensions()
        .and_then(|exts| exts.iter().find(|e| e.extn_id == ski_oid))
    {
        Some(ext) => der::asn1::OctetString::from_der(ext.extn_value.as_bytes())
            .map_err(|e| CryptoError::Malformed(format!("签发者 subjectKeyIdentifier: {e}")))?
            .as_bytes()
            .to_vec(),
        None => key_identifier(&issuer_spki)?,
    };
    let subject_name = encode_name(spec)?;
    let ski = key_identifier(spki)?;
    build_and_sign(
        spec,
        &subject_name,
        &issuer_name,
        spki,
        &ski,
        &issuer_ski,
        issuer_key,
    )
}

fn build_and_sign(
    spec: &CertSpec,
    subject_name: &[u8],
    issuer_name: &[u8],
    spki: &[u8],
    ski: &[u8],
    aki: &[u8],
    signer: &Sm2KeyPair,
) -> Result<Vec<u8>, CryptoError> {
    if spec.not_after_ms < spec.not_before_ms {
        return Err(CryptoError::Malformed("证书有效期结束早于开始".into()));
    }
    let alg = tlv(0x30, &tlv(0x06, &oid_body(&OID_SM2_WITH_SM3)?)?)?;
    let serial = match &spec.serial {
        Some(s) => integer_from_unsigned(s)?,
        None => {
            let mut s = random_bytes::<16>();
            // A positive, non-zero serial of exactly 16 bytes.
            if let Some(first) = s.first_mut() {
                *first = (*first & 0x7f) | 0x40;
            }
            tlv(0x02, &s)?
        }
    };
    let validity = tlv(
        0x30,
        &[time_der(spec.not_before_ms)?, time_der(spec.not_after_ms)?].concat(),
    )?;
    let extensions = tlv(0xa3, &tlv(0x30, &extensions(spec.is_ca, ski, aki)?)?)?;
    let tbs = tlv(
        0x30,
        &[
            tlv(0xa0, &tlv(0x02, &[2])?)?,
            serial,
            alg.clone(),
            issuer_name.to_vec(),
            validity,
            subject_name.to_vec(),
            spki.to_vec(),
            extensions,
        ]
        .concat(),
    )?;
    let sig = signer.sign(&tbs);
    // Never hand out a certificate that would not verify (e.g. a key mismatch upstream).
    sm2_verify(&signer.public_key(), &tbs, &sig)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&sig);
    tlv(0x30, &[tbs, alg, tlv(0x03, &bits)?].concat())
}

fn extensions(is_ca: bool, ski: &[u8], aki: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (basic, usage) = if is_ca {
        // cA TRUE; keyCertSign (bit 5) | cRLSign (bit 6): one unused bit.
        (tlv(0x30, &tlv(0x01, &[0xff])?)?, tlv(0x03, &[0x01, 0x06])?)
    } else {
        // digitalSignature (bit 0) | nonRepudiation (bit 1): six unused bits.
        (tlv(0x30, &[])?, tlv(0x03, &[0x06, 0xc0])?)
    };
    let aki_value = tlv(0x30, &tlv(0x80, aki)?)?;
    Ok([
        extension(OID_BASIC_CONSTRAINTS, true, &basic)?,
        extension(OID_KEY_USAGE, true, &usage)?,
        extension(OID_SKI, false, &tlv(0x04, ski)?)?,
        extension(OID_AKI, false, &aki_value)?,
    ]
    .concat())
}

fn extension(id: &str, critical: bool, value: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut body = tlv(0x06, &oid_body(&oid(id)?)?)?;
    if critical {
        body.extend(tlv(0x01, &[0xff])?);
    }
    body.extend(tlv(0x04, value)?);
    tlv(0x30, &body)
}

fn encode_name(spec: &CertSpec) -> Result<Vec<u8>, CryptoError> {
    if spec.common_name.is_empty() {
        return Err(CryptoError::Malformed("证书主体 CN 不能为空".into()));
    }
    let mut rdns = Vec::new();
    if let Some(o) = spec.organization.as_deref().filter(|o| !o.is_empty()) {
        rdns.extend(rdn(OID_O, o)?);
    }
    rdns.extend(rdn(OID_CN, &spec.common_name)?);
    tlv(0x30, &rdns)
}

fn rdn(id: &str, value: &str) -> Result<Vec<u8>, CryptoError> {
    let atv = tlv(
        0x30,
        &[
            tlv(0x06, &oid_body(&oid(id)?)?)?,
            tlv(0x0c, value.as_bytes())?,
        ]
        .concat(),
    )?;
    tlv(0x31, &atv)
}

fn spki_of(key: &sm2::PublicKey) -> Result<Vec<u8>, CryptoError> {
    let spki = sm2_public_key_to_spki_der(key);
    if spki.is_empty() {
        return Err(CryptoError::BadPublicKey);
    }
    Ok(spki)
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| CryptoError::Malformed(format!("SubjectPublicKeyInfo: {e}")))?;
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or(CryptoError::BadPublicKey)?;
    Ok(Sha1::digest(bits).to_vec())
}

/// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
fn time_der(ms: i64) -> Result<Vec<u8>, CryptoError> {
    super::der::time(ms, super::der::TimeForm::Rfc5280)
        .map_err(|e| CryptoError::Malformed(format!("证书时间 {ms}: {e}")))
}

/// DER INTEGER of a big-endian unsigned magnitude (leading zeros stripped, sign byte added).
fn integer_from_unsigned(bytes: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let mag = bytes.get(start..).unwrap_or_default();
    if mag.is_empty() {
        return Err(CryptoError::Malformed("证书序列号必须为正数".into()));
    }
    if mag.len() > 20 {
        return Err(CryptoError::Malformed("证书序列号超过 20 字节".into()));
    }
    let mut body = Vec::with_capacity(mag.len() + 1);
    if mag.first().is_some_and(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(mag);
    tlv(0x02, &body)
}

fn oid(dotted: &str) -> Result<ObjectIdentifier, CryptoError> {
    ObjectIdentifier::new(dotted).map_err(|e| CryptoError::Malformed(format!("OID {dotted}: {e}")))
}

fn oid_body(oid: &ObjectIdentifier) -> Result<Vec<u8>, CryptoError> {
    Ok(oid.as_bytes().to_vec())
}

/// One DER TLV; fallible so certificate assembly reads uniformly with `?`.
fn tlv(tag: u8, body: &[u8]) -> Result<Vec<u8>, CryptoError> {
    Ok(super::der::tlv(tag, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sm::sm2_public_key_from_cert_der;

    fn spec(cn: &str, is_ca: bool) -> CertSpec {
        CertSpec {
            common_name: cn.into(),
            organization: Some("互通测试".into()),
            not_before_ms: 1_700_000_000_000,
            not_after_ms: 1_700_000_000_000 + 365 * 86_400_000,
            is_ca,
            serial: None,
        }
    }

    /// Checks the outer signature with the issuer's key and returns the parsed certificate.
    fn verify_with(cert_der: &[u8], issuer: &sm2::PublicKey) -> x509_cert::Certificate {
        let cert = x509_cert::Certificate::from_der(cert_der).unwrap();
        let tbs = cert.tbs_certificate().to_der().unwrap();
        let sig = cert.signature().as_bytes().unwrap();
        sm2_verify(issuer, &tbs, sig).unwrap();
        assert_eq!(cert.signature_algorithm().oid, OID_SM2_WITH_SM3);
        assert_eq!(cert.tbs_certificate().signature().oid, OID_SM2_WITH_SM3);
        cert
    }

    fn ext_value(cert: &x509_cert::Certificate, id: &str) -> Vec<u8> {
        let id = oid(id).unwrap();
        cert.tbs_certificate()
            .extensions()
            .unwrap()
            .iter()
            .find(|e| e.extn_id == id)
            .unwrap()
            .extn_value
            .as_bytes()
            .to_vec()
    }

    #[test]
    fn self_signed_ca_verifies_and_carries_ca_extensions() {
        let ca = Sm2KeyPair::generate();
        let der = self_signed_sm2(&spec("测试根 CA", true), &ca).unwrap();
        let cert = verify_with(&der, &ca.public_key());
        assert_eq!(sm2_public_key_from_cert_der(&der).unwrap(), ca.public_key());
        assert_eq!(
            cert.tbs_certificate().subject(),
            cert.tbs_certificate().issuer()
        );
        // basicConstraints cA TRUE, keyUsage keyCertSign|cRLSign.
        assert_eq!(
            ext_value(&cert, OID_BASIC_CONSTRAINTS),
            [0x30, 3, 1, 1, 0xff]
        );
        assert_eq!(ext_value(&cert, OID_KEY_USAGE), [0x03, 2, 0x01, 0x06]);
        let name = cert.tbs_certificate().subject().to_string();
        assert!(name.contains("测试根 CA"), "{name}");
    }

    #[test]
    fn issued_leaf_chains_to_its_issuer() {
        let ca = Sm2KeyPair::generate();
        let ca_der = self_signed_sm2(&spec("CA", true), &ca).unwrap();
        let leaf = Sm2KeyPair::generate();
        let mut leaf_spec = spec("签章人", false);
        leaf_spec.serial = Some(vec![0x00, 0x90, 0x01]);
        let der = issue_sm2(&leaf_spec, &leaf.public_key(), &ca_der, &ca).unwrap();
        let cert = verify_with(&der, &ca.public_key());
        assert_eq!(
            sm2_public_key_from_cert_der(&der).unwrap(),
            leaf.public_key()
        );
        let ca_cert = x509_cert::Certificate::from_der(&ca_der).unwrap();
        assert_eq!(
            cert.tbs_certificate().issuer(),
            ca_cert.tbs_certificate().subject()
        );
        assert_eq!(
            cert.tbs_certificate().serial_number().as_bytes(),
            [0x00, 0x90, 0x01]
        );
        assert_eq!(ext_value(&cert, OID_KEY_USAGE), [0x03, 2, 0x06, 0xc0]);
        // AKI keyIdentifier == the CA's SKI.
        let ca_ski = ext_value(&ca_cert, OID_SKI);
        let aki = ext_value(&cert, OID_AKI);
        assert_eq!(aki.get(4..), ca_ski.get(2..));
        // And the leaf does not verify under its own key.
        let tbs = cert.tbs_certificate().to_der().unwrap();
        let sig = cert.signature().as_bytes().unwrap();
        assert!(sm2_verify(&leaf.public_key(), &tbs, sig).is_err());
    }

    #[test]
    fn issuing_with_the_wrong_key_is_refused() {
        let ca = Sm2KeyPair::generate();
        let ca_der = self_signed_sm2(&spec("CA", true), &ca).unwrap();
        let other = Sm2KeyPair::generate();
        let leaf = Sm2KeyPair::generate();
        assert!(issue_sm2(&spec("x", false), &leaf.public_key(), &ca_der, &other).is_err());
    }

    #[test]
    fn validity_after_2049_uses_generalized_time() {
        let ca = Sm2KeyPair::generate();
        let mut s = spec("long", true);
        s.not_after_ms = 2_600_000_000_000; // 2052
        let der = self_signed_sm2(&s, &ca).unwrap();
        let cert = verify_with(&der, &ca.public_key());
        let end = cert
            .tbs_certificate()
            .validity()
            .not_after
            .to_unix_duration();
        assert_eq!(end.as_millis(), 2_600_000_000_000);
    }

    #[test]
    fn bad_specs_are_rejected() {
        let ca = Sm2KeyPair::generate();
        let mut s = spec("x", true);
        s.not_after_ms = s.not_before_ms - 1;
        assert!(self_signed_sm2(&s, &ca).is_err());
        let mut s = spec("", true);
        assert!(self_signed_sm2(&s, &ca).is_err());
        s = spec("x", true);
        s.serial = Some(vec![0, 0]);
        assert!(self_signed_sm2(&s, &ca).is_err());
    }
}
