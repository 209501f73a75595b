//! Decoding of `SES_Signature` (GB/T 38540 v4 and GM/T 0031 v1) and the signature checks shared
//! with seals.
//!
//! v4: `SEQUENCE{ toSign TBS_Sign, cert, signatureAlgID, signature, timeStamp [0] OPTIONAL }`
//! with `TBS_Sign{ version, eseal, timeInfo GeneralizedTime, dataHash, propertyInfo,
//! extDatas [0] OPTIONAL }`.
//! v1: `SEQUENCE{ toSign TBS_Sign, signature }` with `TBS_Sign{ version, eseal, timeInfo,
//! dataHash, propertyInfo, cert, signatureAlgorithm }`. In both the signer signs the DER of
//! `TBS_Sign` as found.

use super::asn1::{self, Asn1Error, Tlv, tag};
use super::{SesError, SesSignature, SesVersion, VerifyFailure, seal};

fn field(field: &'static str) -> impl Fn(Asn1Error) -> SesError {
    move |e| SesError::SignField {
        field,
        detail: e.to_string(),
    }
}

pub(super) fn decode(der: &[u8]) -> Result<SesSignature, SesError> {
    let top = seal::check_limits(der)?;
    let top = top.expect(tag::SEQUENCE).map_err(field("SES_Signature"))?;
    let mut r = top.reader();
    let to_sign = r.expect(tag::SEQUENCE).map_err(field("toSign"))?;
    let rest: Vec<Tlv<'_>> = {
        let mut v = Vec::new();
        while let Some(t) = r.next_tlv().map_err(field("SES_Signature"))? {
            if v.len() >= 8 {
                return Err(SesError::SignField {
                    field: "SES_Signature",
                    detail: "字段过多".into(),
                });
            }
            v.push(t);
        }
        v
    };
    // v1 carries only the signature after TBS_Sign; v4 has cert, algorithm, signature[, ts].
    let version = if rest.len() == 1 {
        SesVersion::V1
    } else {
        SesVersion::V4
    };

    let mut t = to_sign.reader();
    let tbs_version = asn1::integer_i64(&t.required().map_err(field("toSign.version"))?)
        .map_err(field("toSign.version"))?;
    let eseal = t.required().map_err(field("toSign.eseal"))?;
    let seal = seal::decode_tlv(&eseal)?;
    let time_tlv = t.required().map_err(field("toSign.timeInfo"))?;
    let (time_ms, time_raw) = decode_time_info(&time_tlv)?;
    let data_hash_tlv = t.required().map_err(field("toSign.dataHash"))?;
    let data_hash = match data_hash_tlv.tag {
        // Some producers write OCTET STRING for the BIT STRING of the standards.
        tag::OCTET_STRING => data_hash_tlv.content.to_vec(),
        _ => asn1::bit_string_bytes(&data_hash_tlv)
            .map_err(field("toSign.dataHash"))?
            .to_vec(),
    };
    if data_hash.is_empty() {
        return Err(SesError::SignField {
            field: "toSign.dataHash",
            detail: "原文杂凑值为空".into(),
        });
    }
    let property_info = asn1::any_string(&t.required().map_err(field("toSign.propertyInfo"))?)
        .map_err(field("toSign.propertyInfo"))?;

    let (cert_der, alg_tlv, sig_tlv, timestamp, ext_datas) = match version {
        SesVersion::V1 => {
            let cert = t.expect(tag::OCTET_STRING).map_err(field("toSign.cert"))?;
            let alg = t.required().map_err(field("toSign.signatureAlgorithm"))?;
            let sig = rest.first().copied().ok_or_else(|| SesError::SignField {
                field: "signature",
                detail: "缺少该字段".into(),
            })?;
            (cert.content.to_vec(), alg, sig, None, Vec::new())
        }
        SesVersion::V4 => {
            let ext_datas = match t.next_tlv().map_err(field("toSign.extDatas"))? {
                Some(e) => seal::decode_ext_datas(&e).map_err(field("toSign.extDatas"))?,
                None => Vec::new(),
            };
            let mut it = rest.iter().copied();
            let missing = |name: &'static str| SesError::SignField {
                field: name,
                detail: "缺少该字段".into(),
            };
            let cert = it
                .next()
                .ok_or_else(|| missing("cert"))?
                .expect(tag::OCTET_STRING)
                .map_err(field("cert"))?;
            let alg = it.next().ok_or_else(|| missing("signatureAlgID"))?;
            let sig = it.next().ok_or_else(|| missing("signature"))?;
            let timestamp = match it.next() {
                Some(ts) => Some(decode_timestamp(&ts).map_err(field("timeStamp"))?),
                None => None,
            };
            (cert.content.to_vec(), alg, sig, timestamp, ext_datas)
        }
    };
    let signature_alg = seal::algorithm_oid(&alg_tlv).map_err(field("signatureAlgID"))?;
    let signature_value = seal::signature_bytes(&sig_tlv).map_err(field("signature"))?;
    if cert_der.is_empty() {
        return Err(SesError::SignField {
            field: "cert",
            detail: "签章者证书为空".into(),
        });
    }
    Ok(SesSignature {
        version,
        tbs_version,
        seal,
        time_ms,
        time_raw,
        data_hash,
        property_info,
        cert_der,
        signature_alg,
        signature_value,
        signed_bytes: to_sign.raw.to_vec(),
        timestamp,
        ext_datas,
        der: top.raw.to_vec(),
    })
}

/// `timeInfo`: GeneralizedTime in v4; in v1 a BIT STRING holding a time text or a time-stamp
/// token (producers also use UTCTime or OCTET STRING).
fn decode_time_info(t: &Tlv<'_>) -> Result<(Option<i64>, String), SesError> {
    match t.tag {
        tag::GENERALIZED_TIME | tag::UTC_TIME => {
            let ms = asn1::time_ms(t).map_err(field("toSign.timeInfo"))?;
            let text = String::from_utf8_lossy(t.content).into_owned();
            Ok((Some(ms), text))
        }
        tag::BIT_STRING | tag::OCTET_STRING => {
            let bytes = if t.tag == tag::BIT_STRING {
                asn1::bit_string_bytes(t).map_err(field("toSign.timeInfo"))?
            } else {
                t.content
            };
            let printable = !bytes.is_empty() && bytes.iter().all(|b| (0x20..0x7f).contains(b));
            if printable {
                let text = String::from_utf8_lossy(bytes).into_owned();
                let utc = text.trim().len() <= 13 && !text.contains('-');
                let ms = asn1::parse_time_text(&text, utc).ok();
                Ok((ms, text))
            } else {
                // A time-stamp token: its time is for the `timestamp` step to establish.
                Ok((None, hex::encode(bytes)))
            }
        }
        found => Err(field("toSign.timeInfo")(Asn1Error::UnexpectedTag {
            expected: tag::GENERALIZED_TIME,
            found,
        })),
    }
}

/// `timeStamp [0] EXPLICIT BIT STRING`; also accepts `[0]` over the token SEQUENCE itself and the
/// IMPLICIT primitive form.
fn decode_timestamp(t: &Tlv<'_>) -> Result<Vec<u8>, Asn1Error> {
    match t.tag {
        tag::CONTEXT_0 => {
            let inner = t.reader().required()?;
            match inner.tag {
                tag::BIT_STRING => Ok(asn1::bit_string_bytes(&inner)?.to_vec()),
                tag::OCTET_STRING => Ok(inner.content.to_vec()),
                tag::SEQUENCE => Ok(inner.raw.to_vec()),
                found => Err(Asn1Error::UnexpectedTag {
                    expected: tag::BIT_STRING,
                    found,
                }),
            }
        }
        tag::CONTEXT_0_PRIM => {
            let (&unused, bytes) = t
                .content
                .split_first()
                .ok_or(Asn1Error::Invalid("时间戳为空"))?;
            if unused != 0 {
                return Err(Asn1Error::Invalid("BIT STRING 含未用位"));
            }
            Ok(bytes.to_vec())
        }
        found => Err(Asn1Error::UnexpectedTag {
            expected: tag::CONTEXT_0,
            found,
        }),
    }
}

/// The DER SubjectPublicKeyInfo of a certificate, found without judging anything else in it
/// (validity and chain are the `certificate` step's business).
pub(super) fn cert_spki(cert_der: &[u8]) -> Result<&[u8], Asn1Error> {
    let (cert, rest) = asn1::read_tlv(cert_der)?;
    if !rest.is_empty() {
        return Err(Asn1Error::TrailingData);
    }
    let mut c = cert.expect(tag::SEQUENCE)?.reader();
    let mut tbs = c.expect(tag::SEQUENCE)?.reader();
    if tbs.peek_tag() == Some(tag::CONTEXT_0) {
        tbs.required()?;
    }
    tbs.expect(tag::INTEGER)?; // serialNumber
    tbs.expect(tag::SEQUENCE)?; // signature
    tbs.expect(tag::SEQUENCE)?; // issuer
    tbs.expect(tag::SEQUENCE)?; // validity
    tbs.expect(tag::SEQUENCE)?; // subject
    Ok(tbs.expect(tag::SEQUENCE)?.raw)
}

const SM2_SIGNATURE_OIDS: [&str; 3] = [
    super::OID_SM2_WITH_SM3,
    // "sm2sign" (GM/T 0006) and the bare SM2 OID, both meaning SM2 with SM3 in practice.
    "1.2.156.10197.1.301.1",
    "1.2.156.10197.1.301",
];

/// Verifies `sig` over `msg` with the key of `cert_der` under the algorithm `alg` (dotted OID).
pub(super) fn verify_with_cert(
    cert_der: &[u8],
    alg: &str,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), VerifyFailure> {
    let spki = cert_spki(cert_der).map_err(|e| VerifyFailure::Cert(format!("证书结构: {e}")))?;
    if SM2_SIGNATURE_OIDS.contains(&alg) {
        let key = crate::crypto::sm::sm2_public_key_from_spki_der(spki)
            .map_err(|e| VerifyFailure::Cert(format!("签名算法为 SM2，但{e}")))?;
        return crate::crypto::sm::sm2_verify(&key, msg, sig).map_err(|_| VerifyFailure::Signature);
    }
    // RSA (and ECDSA) seals: the certificate module knows those algorithms.
    use crate::crypto::x509;
    let scheme = x509::resolve_scheme(alg, None, None)
        .map_err(|_| VerifyFailure::Algorithm(alg.to_string()))?;
    match x509::verify_signature(spki, scheme, msg, sig) {
        Ok(()) => Ok(()),
        Err(x509::X509Error::BadSignature) => Err(VerifyFailure::Signature),
        Err(x509::X509Error::UnsupportedAlgorithm(a)) => Err(VerifyFailure::Algorithm(a)),
        Err(e) => Err(VerifyFailure::Cert(e.to_string())),
    }
}
