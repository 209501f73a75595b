//! The `signature`, `certificate`, `seal` and `timestamp` steps for GB/T 38540 v4 and
//! GM/T 0031 v1 `SES_Signature`s, shared by OFD (`Type="Seal"`) and PDF (raw SES `/Contents`).
//!
//! The caller owns `parse`, `integrity` and `coverage`: it knows what bytes were signed and
//! how the container holds them. The `dataHash` comparison is returned for it to fold in.

use base64::Engine;

use super::cert_step::check_certificate;
use super::{Algorithm, SignatureReport, Step, VerifyOptions};
use crate::crypto::sm::{sm2_message_digest, sm2_public_key_from_cert_der, sm3};
use crate::crypto::x509::CertInfo;
use crate::ses::{OID_SHA256_WITH_RSA, SesSeal, SesSignature};
use crate::time::format_time_ms;

/// Whether the `dataHash` of an `SES_Signature` matches the signed data; folded into the
/// caller's `integrity` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesDataHash {
    pub matches: bool,
    pub hint: String,
    /// The signer certificate (DER), for callers that hash with the signer's key (OFD
    /// `CheckMethod` `1.2.156.10197.1.401.2`).
    pub signer_cert_der: Vec<u8>,
}

/// Verifies an `SES_Signature` over `signed_data`.
///
/// Returns `Err(hint)` when the value is not a parseable `SES_Signature` (the caller records
/// `parse` failed); otherwise records `signature`, `certificate`, `seal` and `timestamp`,
/// fills the descriptive fields and returns the `dataHash` comparison.
pub fn check_ses_signature(
    report: &mut SignatureReport,
    ses_der: &[u8],
    signed_data: &[u8],
    opts: &VerifyOptions,
) -> Result<SesDataHash, String> {
    let sig = SesSignature::decode(ses_der).map_err(|e| e.to_string())?;
    fill_fields(report, &sig);

    // The signed `timeInfo` beats the container's unsigned claim, and a trusted v4 time-stamp
    // beats both; dated first so the other steps use that time.
    super::cert_step::date_signature(
        report,
        sig.time_ms,
        sig.timestamp.as_deref(),
        &sig.signature_value,
        opts,
    );

    match sig.verify_signature() {
        Ok(()) => report.pass(
            Step::Signature,
            with_encoding_note(
                format!(
                    "签章者签名验证通过（{}，{}）",
                    Algorithm::from_signature_oid(&sig.signature_alg),
                    sig.version.label()
                ),
                &sig.signature_value,
            ),
        ),
        Err(e) => report.fail(Step::Signature, e.to_string()),
    }
    check_certificate(report, &sig.cert_der, &[], report.sign_time_ms, opts);
    check_seal(report, &sig);

    Ok(compare_data_hash(&sig, signed_data))
}

/// Appends the note of [`crate::crypto::sm::read_sm2_signature`]'s lenient reading to the hint
/// of a step whose signature value needed it (issue 12 point 1: say so, never silently).
pub(crate) fn with_encoding_note(hint: String, signature_value: &[u8]) -> String {
    match crate::crypto::sm::lenient_encoding_hint(signature_value) {
        Some(note) => format!("{hint}；{note}"),
        None => hint,
    }
}

fn fill_fields(report: &mut SignatureReport, sig: &SesSignature) {
    let seal = &sig.seal;
    // The platform's seal type codes are two digits ("01"…"08"), as producers number them.
    report.seal_type = format!("{:02}", seal.seal_type);
    report.seal_name = seal.name.clone();
    report.seal_code = seal.es_id.clone();
    report.seal_pic_base64 = base64::engine::general_purpose::STANDARD.encode(&seal.picture.data);
    report.algorithm = Algorithm::from_signature_oid(&sig.signature_alg);
    if report.provider.is_empty() && !seal.vid.is_empty() {
        report.provider = seal.vid.clone();
    }
    report.seal_identity.es_id = Some(seal.es_id.clone()).filter(|s| !s.is_empty());
    report.seal_identity.seal_digest = Some(seal.digest());
    report.seal_identity.signer_cert_sn = CertInfo::parse(&sig.cert_der)
        .ok()
        .map(|c| c.serial_hex.to_ascii_lowercase());
}

fn check_seal(report: &mut SignatureReport, sig: &SesSignature) {
    let seal = &sig.seal;
    if let Err(e) = seal.verify_maker() {
        report.fail(Step::Seal, format!("印章 {}: {e}", seal.es_id));
        return;
    }
    let Some(at) = report.sign_time_ms else {
        report.fail(Step::Seal, "签署时间未知，无法判断印章有效期");
        return;
    };
    if let Err(e) = seal.check_validity_at(at) {
        report.fail(Step::Seal, format!("签署时（{}）{e}", format_time_ms(at)));
        return;
    }
    if let Err(why) = signer_bound_to_seal(seal, &sig.cert_der) {
        report.fail(Step::Seal, why);
        return;
    }
    report.pass(
        Step::Seal,
        with_encoding_note(
            format!(
                "印章“{}”（{}，{}）制章者签名有效，有效期 {} 至 {} 覆盖签署时间",
                seal.name,
                seal.es_id,
                seal.version.label(),
                format_time_ms(seal.valid_start_ms),
                format_time_ms(seal.valid_end_ms)
            ),
            &seal.signature_value,
        ),
    );
}

/// The seal names the certificates allowed to sign with it; an empty list binds nobody in
/// particular (GM/T 0031 producers often leave it empty).
fn signer_bound_to_seal(seal: &SesSeal, signer_cert_der: &[u8]) -> Result<(), String> {
    if seal.cert_list.is_empty() {
        return Ok(());
    }
    let bound = if seal.cert_list_is_digest {
        seal.cert_list.iter().enumerate().any(|(i, d)| {
            let kind = seal
                .cert_digest_types
                .get(i)
                .map(|t| t.to_ascii_uppercase())
                .unwrap_or_default();
            let ours = if kind.contains("SHA1") || kind.contains("SHA-1") || d.len() == 20 {
                <sha1::Sha1 as digest::Digest>::digest(signer_cert_der).to_vec()
            } else if kind.contains("SHA256") || kind.contains("SHA-256") {
                <sha2::Sha256 as digest::Digest>::digest(signer_cert_der).to_vec()
            } else {
                sm3(signer_cert_der).to_vec()
            };
            ours == *d
        })
    } else {
        seal.cert_list
            .iter()
            .any(|c| c.as_slice() == signer_cert_der)
    };
    if bound {
        Ok(())
    } else {
        Err(format!(
            "签章者证书不在印章 {} 绑定的 {} 个证书之中",
            seal.es_id,
            seal.cert_list.len()
        ))
    }
}

/// `dataHash` is SM3 of the signed data (GB/T 38540); some GM/T 0031 producers pre-process it
/// with the signer's SM2 key as SM2 does (`SM3(Z ‖ data)`), and RSA seals use SHA-256.
fn compare_data_hash(sig: &SesSignature, signed_data: &[u8]) -> SesDataHash {
    let want = sig.data_hash.as_slice();
    let mut matched: Option<&str> = None;
    if want == sm3(signed_data).as_slice() {
        matched = Some("SM3");
    } else if let Ok(key) = sm2_public_key_from_cert_der(&sig.cert_der)
        && sm2_message_digest(&key, signed_data).is_ok_and(|d| d.as_slice() == want)
    {
        matched = Some("SM3，带签名者公钥预处理");
    } else if sig.signature_alg == OID_SHA256_WITH_RSA
        && <sha2::Sha256 as digest::Digest>::digest(signed_data).as_slice() == want
    {
        matched = Some("SHA-256");
    }
    SesDataHash {
        matches: matched.is_some(),
        hint: match matched {
            Some(alg) => format!("签章 dataHash 与被签数据摘要一致（{alg}）"),
            None => "签章 dataHash 与被签数据的摘要不一致（被签数据在签章后被修改）".into(),
        },
        signer_cert_der: sig.cert_der.clone(),
    }
}
