//! Encoders for seals and signatures, used by tests and the member simulator.
//!
//! They write what the decoders read back: v4 per GB/T 38540 (GeneralizedTime, `certListType`,
//! bare `extDatas` in the seal, maker signature over `SES_SealInfo`) and v1 per GM/T 0031 (UTCTime,
//! plain certificate list, maker signature over `SEQUENCE{esealInfo, cert, signatureAlgorithm}`).
//! Every signature is SM2/SM3 with the standard signer ID and DER-encoded.

use super::asn1::{self, tag};
use super::{ExtData, OID_SM2_WITH_SM3, SesError, SesSeal, SesVersion};
use crate::crypto::sm::Sm2KeyPair;

/// Everything a seal holds besides the maker's signature.
#[derive(Debug, Clone, PartialEq)]
pub struct SealParams {
    /// `SES_Header.Vid`: the producer's identifier.
    pub vid: String,
    pub es_id: String,
    pub seal_type: i64,
    pub name: String,
    /// Signer certificates (DER) or, when `cert_list_is_digest`, their digests (v4 only).
    pub cert_list: Vec<Vec<u8>>,
    pub cert_list_is_digest: bool,
    /// `CertDigestObj.type` written for every digest, e.g. "SM3".
    pub cert_digest_type: String,
    pub create_date_ms: i64,
    pub valid_start_ms: i64,
    pub valid_end_ms: i64,
    /// Picture type as it should be written, e.g. "png" or "ofd".
    pub picture_kind: String,
    pub picture_data: Vec<u8>,
    pub width_mm: i64,
    pub height_mm: i64,
    pub ext_datas: Vec<ExtData>,
}

fn params_err(e: impl std::fmt::Display) -> SesError {
    SesError::Params(e.to_string())
}

fn check(params: &SealParams) -> Result<(), SesError> {
    if !params.vid.is_ascii() || !params.es_id.is_ascii() || !params.picture_kind.is_ascii() {
        return Err(SesError::Params(
            "Vid、esID 与图片类型须为 ASCII（IA5String）".into(),
        ));
    }
    if params.cert_list.len() > super::MAX_CERTS {
        return Err(SesError::TooManyCerts(super::MAX_CERTS));
    }
    if params.valid_end_ms < params.valid_start_ms {
        return Err(SesError::Params("有效期截止早于起始".into()));
    }
    if params.picture_data.is_empty() {
        return Err(SesError::Params("印章图片为空".into()));
    }
    for v in [params.width_mm, params.height_mm] {
        if !(1..=10_000).contains(&v) {
            return Err(SesError::Params("印章尺寸应为 1–10000 毫米".into()));
        }
    }
    Ok(())
}

fn ia5(s: &str) -> Vec<u8> {
    asn1::tlv(tag::IA5_STRING, s.as_bytes())
}

fn octets(b: &[u8]) -> Vec<u8> {
    asn1::tlv(tag::OCTET_STRING, b)
}

fn ext_datas(list: &[ExtData]) -> Result<Vec<u8>, SesError> {
    let mut items = Vec::new();
    for e in list {
        let mut body = asn1::oid(&e.oid).map_err(params_err)?;
        body.extend(asn1::tlv(
            tag::BOOLEAN,
            &[if e.critical { 0xff } else { 0 }],
        ));
        body.extend(octets(&e.value));
        items.extend(asn1::tlv(tag::SEQUENCE, &body));
    }
    Ok(asn1::tlv(tag::SEQUENCE, &items))
}

fn picture(params: &SealParams) -> Vec<u8> {
    asn1::sequence(&[
        &ia5(&params.picture_kind),
        &octets(&params.picture_data),
        &asn1::integer(params.width_mm),
        &asn1::integer(params.height_mm),
    ])
}

fn seal_info(params: &SealParams, version: SesVersion) -> Result<Vec<u8>, SesError> {
    check(params)?;
    let v4 = version == SesVersion::V4;
    let header = asn1::sequence(&[
        &ia5("ES"),
        &asn1::integer(if v4 { 4 } else { 1 }),
        &ia5(&params.vid),
    ]);
    let list: Vec<u8> = if params.cert_list_is_digest {
        if !v4 {
            return Err(SesError::Params(
                "GM/T 0031 印章不支持证书杂凑值列表".into(),
            ));
        }
        params
            .cert_list
            .iter()
            .flat_map(|d| {
                asn1::sequence(&[
                    &asn1::tlv(tag::PRINTABLE_STRING, params.cert_digest_type.as_bytes()),
                    &octets(d),
                ])
            })
            .collect()
    } else {
        params.cert_list.iter().flat_map(|c| octets(c)).collect()
    };
    let list = asn1::tlv(tag::SEQUENCE, &list);
    let time = |ms| asn1::time(ms, v4).map_err(params_err);
    let mut property = asn1::integer(params.seal_type);
    property.extend(asn1::tlv(tag::UTF8_STRING, params.name.as_bytes()));
    if v4 {
        property.extend(asn1::integer(if params.cert_list_is_digest {
            2
        } else {
            1
        }));
    }
    property.extend(list);
    property.extend(time(params.create_date_ms)?);
    property.extend(time(params.valid_start_ms)?);
    property.extend(time(params.valid_end_ms)?);
    let property = asn1::tlv(tag::SEQUENCE, &property);

    let mut info = [header, ia5(&params.es_id), property, picture(params)].concat();
    if !params.ext_datas.is_empty() {
        info.extend(ext_datas(&params.ext_datas)?);
    }
    Ok(asn1::tlv(tag::SEQUENCE, &info))
}

/// Encodes and signs a GB/T 38540 v4 `SES_Seal`.
pub fn build_seal_v4(
    params: &SealParams,
    maker: &Sm2KeyPair,
    maker_cert_der: &[u8],
) -> Result<Vec<u8>, SesError> {
    let info = seal_info(params, SesVersion::V4)?;
    let sig = maker.sign(&info);
    Ok(asn1::sequence(&[
        &info,
        &octets(maker_cert_der),
        &asn1::oid(OID_SM2_WITH_SM3).map_err(params_err)?,
        &asn1::bit_string(&sig),
    ]))
}

/// Encodes and signs a GM/T 0031 v1 `SESeal`.
pub fn build_seal_v1(
    params: &SealParams,
    maker: &Sm2KeyPair,
    maker_cert_der: &[u8],
) -> Result<Vec<u8>, SesError> {
    let info = seal_info(params, SesVersion::V1)?;
    let cert = octets(maker_cert_der);
    let alg = asn1::oid(OID_SM2_WITH_SM3).map_err(params_err)?;
    let sig = maker.sign(&asn1::sequence(&[&info, &cert, &alg]));
    let sign_info = asn1::sequence(&[&cert, &alg, &asn1::bit_string(&sig)]);
    Ok(asn1::sequence(&[&info, &sign_info]))
}

fn embedded_seal(seal_der: &[u8], want: SesVersion) -> Result<(), SesError> {
    let seal = SesSeal::decode(seal_der)?;
    if seal.version != want {
        return Err(SesError::Params(format!(
            "印章版本为 {}，与签章版本 {} 不符",
            seal.version.label(),
            want.label()
        )));
    }
    Ok(())
}

/// Encodes and signs a GB/T 38540 v4 `SES_Signature` over `seal_der` (a v4 seal).
pub fn sign_v4(
    seal_der: &[u8],
    signer: &Sm2KeyPair,
    signer_cert_der: &[u8],
    data_hash: &[u8],
    property_info: &str,
    time_ms: i64,
) -> Result<Vec<u8>, SesError> {
    embedded_seal(seal_der, SesVersion::V4)?;
    if !property_info.is_ascii() {
        return Err(SesError::Params(
            "propertyInfo 须为 ASCII（IA5String）".into(),
        ));
    }
    let tbs = asn1::sequence(&[
        &asn1::integer(4),
        seal_der,
        &asn1::time(time_ms, true).map_err(params_err)?,
        &asn1::bit_string(data_hash),
        &ia5(property_info),
    ]);
    let sig = signer.sign(&tbs);
    Ok(asn1::sequence(&[
        &tbs,
        &octets(signer_cert_der),
        &asn1::oid(OID_SM2_WITH_SM3).map_err(params_err)?,
        &asn1::bit_string(&sig),
    ]))
}

/// Encodes and signs a GM/T 0031 v1 `SES_Signature` over `seal_der` (a v1 seal). `timeInfo` is
/// written as a BIT STRING holding the UTCTime text, as GM/T 0031 producers do.
pub fn sign_v1(
    seal_der: &[u8],
    signer: &Sm2KeyPair,
    signer_cert_der: &[u8],
    data_hash: &[u8],
    property_info: &str,
    time_ms: i64,
) -> Result<Vec<u8>, SesError> {
    embedded_seal(seal_der, SesVersion::V1)?;
    if !property_info.is_ascii() {
        return Err(SesError::Params(
            "propertyInfo 须为 ASCII（IA5String）".into(),
        ));
    }
    let utc = asn1::time(time_ms, false).map_err(params_err)?;
    let (time_tlv, _) = asn1::read_tlv(&utc).map_err(params_err)?;
    let tbs = asn1::sequence(&[
        &asn1::integer(1),
        seal_der,
        &asn1::bit_string(time_tlv.content),
        &asn1::bit_string(data_hash),
        &ia5(property_info),
        &octets(signer_cert_der),
        &asn1::oid(OID_SM2_WITH_SM3).map_err(params_err)?,
    ]);
    let sig = signer.sign(&tbs);
    Ok(asn1::sequence(&[&tbs, &asn1::bit_string(&sig)]))
}
