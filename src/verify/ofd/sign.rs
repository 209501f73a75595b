//! `Type="Sign"` signed values: GB/T 35275 / RFC 5652 SignedData over `Signature.xml`.

use super::ValueCheck;
use crate::crypto::cms::{self, CmsError};
use crate::crypto::sm::parse_sm2_signature;
use crate::crypto::x509::{CertInfo, HashAlg, SigFamily, SigScheme};
use crate::verify::cert_step::{check_certificate, fill_cert_fields};
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
    report.pass(
        Step::Seal,
        "数字签名（Type=Sign）不含电子印章，本步骤不适用",
    );
    match cms::verify_detached_parts(&sd, &[sig_xml], opts.allow_weak_hashes) {
        Ok(v) => {
            report.algorithm = Algorithm::Scheme(v.scheme);
            let bound = if v
                .encapsulated_content
                .as_deref()
                .is_some_and(|c| !c.is_empty())
            {
                "封装内容为 Signature.xml 的摘要"
            } else {
                "messageDigest 与 Signature.xml 摘要一致"
            };
            report.pass(
                Step::Signature,
                format!(
                    "CMS SignedData 签名验证通过（{}，{}）",
                    v.signature_algorithm, v.digest_algorithm
                ),
            );
            super::super::cert_step::date_signature(
                report,
                v.signing_time_ms,
                v.timestamp_token.as_deref(),
                &v.signature_value,
                opts,
            );
            check_certificate(
                report,
                &v.signer_cert_der,
                &v.certs,
                report.sign_time_ms,
                opts,
            );
            report.seal_identity.signer_cert_sn =
                Some(report.cert_sn.to_ascii_lowercase()).filter(|s| !s.is_empty());
            Ok(ValueCheck {
                matches: true,
                hint: format!("签名值覆盖 Signature.xml（{bound}）"),
                signer_cert_der: Some(v.signer_cert_der),
            })
        }
        Err(e) => {
            let signer = sd.signer_cert().ok().map(|c| c.der.clone());
            if let Some(der) = &signer {
                if let Ok(info) = CertInfo::parse(der) {
                    fill_cert_fields(report, &info);
                }
                check_certificate(report, der, &sd.certs, report.sign_time_ms, opts);
            } else {
                report.fail(Step::Certificate, e.to_string());
            }
            let (integrity_hint, sig_hint) = if e.is_integrity() {
                (
                    format!("签名值与 Signature.xml 不符: {e}"),
                    "签名值所签内容与 Signature.xml 不符，签名未能验证".to_string(),
                )
            } else {
                (
                    "签名值未能验证，无法确认其覆盖 Signature.xml".to_string(),
                    describe(&e),
                )
            };
            report.fail(Step::Signature, sig_hint);
            report.fail(Step::Timestamp, "签名未通过验证，时间戳未检查");
            Ok(ValueCheck {
                matches: false,
                hint: integrity_hint,
                signer_cert_der: signer,
            })
        }
    }
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

fn describe(e: &CmsError) -> String {
    format!("CMS SignedData 验证失败: {e}")
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
    report.pass(
        Step::Seal,
        "数字签名（Type=Sign）不含电子印章，本步骤不适用",
    );
    report.pass(Step::Timestamp, "无时间戳");
    ValueCheck {
        matches: false,
        hint: "无法确认签名值覆盖 Signature.xml（签名者未知）".into(),
        signer_cert_der: None,
    }
}
