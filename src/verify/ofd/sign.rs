//! `Type="Sign"` signed values: GB/T 35275 / RFC 5652 SignedData over `Signature.xml`,
//! verified through the shared [`crate::verify::cms_step`]; this file only words what the
//! signature covers and handles the OFD-specific shapes (bare SM2 values, content-type OIDs).

use super::ValueCheck;
use crate::crypto::cms;
use crate::crypto::sm::parse_sm2_signature;
use crate::crypto::x509::{HashAlg, SigFamily, SigScheme};
use crate::verify::cms_step::{Coverage, check_cms};
use crate::verify::{Algorithm, SignatureReport, Step, VerifyOptions};

/// Verifies a digital-signature value over `sig_xml` and records `signature`, `certificate`,
/// `seal` and `timestamp`. `Err(hint)` when the value is neither CMS nor a bare signature.
pub(crate) fn check_sign_value(
    report: &mut SignatureReport,
    value: &[u8],
    sig_xml: &[u8],
    opts: &VerifyOptions,
) -> Result<ValueCheck, String> {
    let mut sd = match cms::parse_signed_data(value) {
        Ok(sd) => sd,
        Err(e) => {
            if parse_sm2_signature(value).is_ok() {
                return Ok(bare_signature(report));
            }
            return Err(format!("签名值不是 CMS SignedData（GB/T 35275）: {e}"));
        }
    };
    unify_data_content_type(&mut sd);
    report.seal_type.clear();
    report.not_applicable(
        Step::Seal,
        "数字签名（Type=Sign）不含电子印章，本步骤不适用",
    );
    let check = check_cms(report, &sd, &[sig_xml], opts);
    let hint = match check.coverage {
        Coverage::Matches { encapsulated, .. } if check.verified => {
            let bound = if encapsulated {
                "封装内容为 Signature.xml 的摘要"
            } else {
                "messageDigest 与 Signature.xml 摘要一致"
            };
            return Ok(ValueCheck {
                matches: true,
                hint: format!("签名值覆盖 Signature.xml（{bound}）"),
                signer_cert_der: check.signer_cert_der,
            });
        }
        Coverage::Fails(why) => format!("签名值与 Signature.xml 不符: {why}"),
        Coverage::Matches { .. } | Coverage::NotExamined(_) => {
            "签名值未能验证，无法确认其覆盖 Signature.xml".to_string()
        }
    };
    Ok(ValueCheck {
        matches: false,
        hint,
        signer_cert_der: check.signer_cert_der,
    })
}

/// DER of the GB/T 35275 `data` OID 1.2.156.10197.6.1.4.2.1 and of PKCS#7 `data`.
const GM_DATA_OID_DER: [u8; 12] = [
    0x06, 0x0a, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x06, 0x01, 0x04, 0x02, 0x01,
];
const PKCS7_DATA_OID_DER: [u8; 11] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
];

/// GB/T 35275 producers (gomain_eseal among them) declare PKCS#7 `data` as eContentType but
/// GM `data` in the signed contentType attribute, or the reverse: one content type under its
/// two OIDs. Align eContentType with the signed attribute so the consistency check compares
/// meaning, not spelling; the signature still covers the attributes exactly as found.
fn unify_data_content_type(sd: &mut cms::SignedData) {
    let Some(attr) = sd.attr(cms::OID_CONTENT_TYPE) else {
        return;
    };
    if attr == GM_DATA_OID_DER && sd.econtent_type == cms::OID_DATA {
        sd.econtent_type = cms::OID_GM_DATA.to_string();
    } else if attr == PKCS7_DATA_OID_DER && sd.econtent_type == cms::OID_GM_DATA {
        sd.econtent_type = cms::OID_DATA.to_string();
    }
}

/// ofdrw's deprecated `DigitalSignContainer` writes only the SM2 value: nothing in the package
/// says whose key made it, so it cannot be verified — say so instead of guessing.
fn bare_signature(report: &mut SignatureReport) -> ValueCheck {
    let why = "签名值是裸 SM2 签名值（DER SEQUENCE{r,s}），不是 GB/T 35275 SignedData，包内没有签名者证书，无法验证";
    // Only the value's shape says SM2; the platform signs and expects SM3 with it.
    report.algorithm = Algorithm::Scheme(SigScheme {
        family: SigFamily::Sm2,
        hash: HashAlg::Sm3,
    });
    report.fail(Step::Signature, why);
    report.fail(Step::Certificate, "签名值未携带签名者证书");
    report.not_applicable(
        Step::Seal,
        "数字签名（Type=Sign）不含电子印章，本步骤不适用",
    );
    report.not_applicable(Step::Timestamp, "无时间戳");
    ValueCheck {
        matches: false,
        hint: "无法确认签名值覆盖 Signature.xml（签名者未知）".into(),
        signer_cert_der: None,
    }
}
