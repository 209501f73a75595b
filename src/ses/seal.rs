//! Decoding of `SES_Seal` (GB/T 38540 v4) and `SESeal` (GM/T 0031 v1).
//!
//! The two versions share `SES_SealInfo` up to the property block; they differ in where the
//! maker's signature sits (three trailing fields vs. a `signInfo` SEQUENCE) and therefore in what
//! the maker signed. The version is taken from that layout, not from the header, because the
//! layout is what decides which bytes the signature covers.

use super::asn1::{self, Asn1Error, Reader, Tlv, tag};
use super::{
    ExtData, MAX_CERTS, MAX_DER_DEPTH, MAX_SES_LEN, SealPicture, SesError, SesSeal, SesVersion,
};

fn field(field: &'static str) -> impl Fn(Asn1Error) -> SesError {
    move |e| SesError::SealField {
        field,
        detail: e.to_string(),
    }
}

fn invalid(field: &'static str, detail: &str) -> SesError {
    SesError::SealField {
        field,
        detail: detail.to_string(),
    }
}

/// Checks the size and shape limits every SES input must meet before it is walked, and returns
/// its single top-level TLV (trailing zero padding is allowed and dropped).
pub(super) fn check_limits(der: &[u8]) -> Result<Tlv<'_>, SesError> {
    if der.len() > MAX_SES_LEN {
        return Err(SesError::TooLarge(MAX_SES_LEN));
    }
    asn1::check_tree_padded(der, MAX_DER_DEPTH).map_err(|e| SesError::Der(e.to_string()))
}

pub(super) fn decode(der: &[u8]) -> Result<SesSeal, SesError> {
    let top = check_limits(der)?;
    decode_tlv(&top)
}

/// Decodes a seal from an already limit-checked TLV (also the `eseal` inside `TBS_Sign`).
pub(super) fn decode_tlv(top: &Tlv<'_>) -> Result<SesSeal, SesError> {
    let top = top.expect(tag::SEQUENCE).map_err(field("SES_Seal"))?;
    let mut r = top.reader();
    let info = r.expect(tag::SEQUENCE).map_err(field("eSealInfo"))?;
    let after = r.required().map_err(field("cert"))?;
    let (version, maker_cert, alg_tlv, sig_tlv, signed_bytes) = match after.tag {
        // v4: eSealInfo, cert, signAlgID, signedValue — the maker signs SES_SealInfo.
        tag::OCTET_STRING => {
            let alg = r.required().map_err(field("signAlgID"))?;
            let sig = r.required().map_err(field("signedValue"))?;
            (SesVersion::V4, after, alg, sig, info.raw.to_vec())
        }
        // v1: esealInfo, signInfo{cert, signatureAlgorithm, signData} — the maker signs
        // SEQUENCE{esealInfo, cert, signatureAlgorithm}.
        tag::SEQUENCE => {
            let mut s = after.reader();
            let cert = s
                .expect(tag::OCTET_STRING)
                .map_err(field("signInfo.cert"))?;
            let alg = s.required().map_err(field("signInfo.signatureAlgorithm"))?;
            let sig = s.required().map_err(field("signInfo.signData"))?;
            let signed = asn1::sequence(&[info.raw, cert.raw, alg.raw]);
            (SesVersion::V1, cert, alg, sig, signed)
        }
        found => {
            return Err(field("cert")(Asn1Error::UnexpectedTag {
                expected: tag::OCTET_STRING,
                found,
            }));
        }
    };
    let (alg_name, sig_name) = match version {
        SesVersion::V4 => ("signAlgID", "signedValue"),
        SesVersion::V1 => ("signInfo.signatureAlgorithm", "signInfo.signData"),
    };
    let signature_alg = algorithm_oid(&alg_tlv).map_err(field(alg_name))?;
    let signature_value = signature_bytes(&sig_tlv).map_err(field(sig_name))?;
    if maker_cert.content.is_empty() {
        return Err(invalid("cert", "制章者证书为空"));
    }

    let mut seal = decode_seal_info(&info, version)?;
    seal.maker_cert_der = maker_cert.content.to_vec();
    seal.signature_alg = signature_alg;
    seal.signature_value = signature_value;
    seal.signed_bytes = signed_bytes;
    seal.der = top.raw.to_vec();
    Ok(seal)
}

/// A signature algorithm: a bare OID per the standards; an AlgorithmIdentifier SEQUENCE is
/// accepted too (its parameters, if any, are not used by SM2).
pub(super) fn algorithm_oid(t: &Tlv<'_>) -> Result<String, Asn1Error> {
    match t.tag {
        tag::SEQUENCE => asn1::oid_string(&t.reader().expect(tag::OID)?),
        _ => asn1::oid_string(t),
    }
}

/// A signature value: BIT STRING as specified; some producers write an OCTET STRING.
pub(super) fn signature_bytes(tlv: &Tlv<'_>) -> Result<Vec<u8>, Asn1Error> {
    let bytes = match tlv.tag {
        tag::OCTET_STRING => tlv.content,
        _ => asn1::bit_string_bytes(tlv)?,
    };
    if bytes.is_empty() {
        return Err(Asn1Error::Invalid("签名值为空"));
    }
    Ok(bytes.to_vec())
}

fn decode_seal_info(info: &Tlv<'_>, version: SesVersion) -> Result<SesSeal, SesError> {
    let mut r = info.reader();

    let header = r.expect(tag::SEQUENCE).map_err(field("header"))?;
    let mut h = header.reader();
    let id =
        asn1::any_string(&h.required().map_err(field("header.ID"))?).map_err(field("header.ID"))?;
    if id != "ES" {
        return Err(invalid("header.ID", "应为 \"ES\""));
    }
    let header_version = asn1::integer_i64(&h.required().map_err(field("header.version"))?)
        .map_err(field("header.version"))?;
    let vid = asn1::any_string(&h.required().map_err(field("header.Vid"))?)
        .map_err(field("header.Vid"))?;
    // The layout, not this number, decides what the maker signed; later versions (e.g. the
    // 2026 five-field draft) have different layouts and are refused by name.
    if !(1..=4).contains(&header_version) {
        return Err(SesError::UnsupportedVersion(header_version));
    }

    let es_id = asn1::any_string(&r.required().map_err(field("esID"))?).map_err(field("esID"))?;

    let property = r.expect(tag::SEQUENCE).map_err(field("property"))?;
    let props = decode_property(&property)?;

    let picture_tlv = r.expect(tag::SEQUENCE).map_err(field("picture"))?;
    let picture = decode_picture(&picture_tlv)?;

    let ext_datas = match r.next_tlv().map_err(field("extDatas"))? {
        Some(t) => decode_ext_datas(&t).map_err(field("extDatas"))?,
        None => Vec::new(),
    };

    Ok(SesSeal {
        version,
        header_version,
        vid,
        es_id,
        seal_type: props.seal_type,
        name: props.name,
        cert_list: props.cert_list,
        cert_list_is_digest: props.is_digest,
        cert_digest_types: props.digest_types,
        create_date_ms: props.create_date_ms,
        valid_start_ms: props.valid_start_ms,
        valid_end_ms: props.valid_end_ms,
        picture,
        ext_datas,
        maker_cert_der: Vec::new(),
        signature_alg: String::new(),
        signature_value: Vec::new(),
        signed_bytes: Vec::new(),
        der: Vec::new(),
    })
}

struct Property {
    seal_type: i64,
    name: String,
    cert_list: Vec<Vec<u8>>,
    is_digest: bool,
    digest_types: Vec<String>,
    create_date_ms: i64,
    valid_start_ms: i64,
    valid_end_ms: i64,
}

fn decode_property(property: &Tlv<'_>) -> Result<Property, SesError> {
    let mut p = property.reader();
    let seal_type = asn1::integer_i64(&p.required().map_err(field("property.type"))?)
        .map_err(field("property.type"))?;
    let name = asn1::any_string(&p.required().map_err(field("property.name"))?)
        .map_err(field("property.name"))?;
    // v4 writes certListType before the list; GM/T 0031 has only the list of certificates.
    let list_type = if p.peek_tag() == Some(tag::INTEGER) {
        asn1::integer_i64(&p.required().map_err(field("property.certListType"))?)
            .map_err(field("property.certListType"))?
    } else {
        1
    };
    let list = p
        .expect(tag::SEQUENCE)
        .map_err(field("property.certList"))?;
    let (cert_list, digest_types) = match list_type {
        1 => (decode_cert_list(&list)?, Vec::new()),
        2 => decode_digest_list(&list)?,
        _ => {
            return Err(invalid(
                "property.certListType",
                "应为 1（证书）或 2（证书杂凑值）",
            ));
        }
    };
    let time = |name: &'static str, r: &mut Reader<'_>| -> Result<i64, SesError> {
        asn1::time_ms(&r.required().map_err(field(name))?).map_err(field(name))
    };
    let create_date_ms = time("property.createDate", &mut p)?;
    let valid_start_ms = time("property.validStart", &mut p)?;
    let valid_end_ms = time("property.validEnd", &mut p)?;
    if valid_end_ms < valid_start_ms {
        return Err(invalid("property.validEnd", "有效期截止早于起始"));
    }
    Ok(Property {
        seal_type,
        name,
        cert_list,
        is_digest: list_type == 2,
        digest_types,
        create_date_ms,
        valid_start_ms,
        valid_end_ms,
    })
}

fn decode_cert_list(list: &Tlv<'_>) -> Result<Vec<Vec<u8>>, SesError> {
    let mut out = Vec::new();
    let mut r = list.reader();
    while let Some(item) = r.next_tlv().map_err(field("property.certList"))? {
        if out.len() >= MAX_CERTS {
            return Err(SesError::TooManyCerts(MAX_CERTS));
        }
        // OCTET STRING per both standards; one v1 producer writes an IA5String placeholder,
        // which is kept as its bytes (it will simply not match any signer certificate).
        if item.is_constructed() {
            return Err(field("property.certList")(Asn1Error::UnexpectedTag {
                expected: tag::OCTET_STRING,
                found: item.tag,
            }));
        }
        out.push(item.content.to_vec());
    }
    Ok(out)
}

fn decode_digest_list(list: &Tlv<'_>) -> Result<(Vec<Vec<u8>>, Vec<String>), SesError> {
    let mut digests = Vec::new();
    let mut types = Vec::new();
    let mut r = list.reader();
    while let Some(item) = r.next_tlv().map_err(field("property.certList"))? {
        if digests.len() >= MAX_CERTS {
            return Err(SesError::TooManyCerts(MAX_CERTS));
        }
        let obj = item
            .expect(tag::SEQUENCE)
            .map_err(field("property.certList.CertDigestObj"))?;
        let mut o = obj.reader();
        let kind = asn1::any_string(&o.required().map_err(field("CertDigestObj.type"))?)
            .map_err(field("CertDigestObj.type"))?;
        let value = o
            .expect(tag::OCTET_STRING)
            .map_err(field("CertDigestObj.value"))?;
        types.push(kind);
        digests.push(value.content.to_vec());
    }
    Ok((digests, types))
}

fn decode_picture(picture: &Tlv<'_>) -> Result<SealPicture, SesError> {
    let mut p = picture.reader();
    let kind = asn1::any_string(&p.required().map_err(field("picture.type"))?)
        .map_err(field("picture.type"))?
        .trim()
        .to_ascii_lowercase();
    let data = p
        .expect(tag::OCTET_STRING)
        .map_err(field("picture.data"))?
        .content
        .to_vec();
    if data.is_empty() {
        return Err(invalid("picture.data", "印章图片为空"));
    }
    let width = asn1::integer_i64(&p.required().map_err(field("picture.width"))?)
        .map_err(field("picture.width"))?;
    let height = asn1::integer_i64(&p.required().map_err(field("picture.height"))?)
        .map_err(field("picture.height"))?;
    // Seals are centimetres in size; anything outside (0, 10 m] is a corrupt field.
    for (name, v) in [("picture.width", width), ("picture.height", height)] {
        if !(1..=10_000).contains(&v) {
            return Err(invalid(name, "尺寸应为 1–10000 毫米"));
        }
    }
    Ok(SealPicture {
        kind,
        data,
        width_mm: width as f64,
        height_mm: height as f64,
    })
}

/// `extDatas`: `[0] EXPLICIT ExtensionDatas` or the bare SEQUENCE OF `ExtData` (both occur).
pub(super) fn decode_ext_datas(t: &Tlv<'_>) -> Result<Vec<ExtData>, Asn1Error> {
    let list = match t.tag {
        tag::CONTEXT_0 => t.reader().expect(tag::SEQUENCE)?,
        tag::SEQUENCE => *t,
        found => {
            return Err(Asn1Error::UnexpectedTag {
                expected: tag::SEQUENCE,
                found,
            });
        }
    };
    let mut out = Vec::new();
    let mut r = list.reader();
    while let Some(item) = r.next_tlv()? {
        if out.len() >= MAX_CERTS {
            return Err(Asn1Error::Invalid("自定义数据项过多"));
        }
        let mut e = item.expect(tag::SEQUENCE)?.reader();
        let oid = asn1::oid_string(&e.expect(tag::OID)?)?;
        let critical = if e.peek_tag() == Some(tag::BOOLEAN) {
            e.required()?.content.first().is_some_and(|b| *b != 0)
        } else {
            false
        };
        let value = e.expect(tag::OCTET_STRING)?.content.to_vec();
        out.push(ExtData {
            oid,
            critical,
            value,
        });
    }
    Ok(out)
}
