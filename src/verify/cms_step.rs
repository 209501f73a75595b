//! The one path from a CMS SignedData signature to the report, shared by PDF (`/Contents` over
//! the byte ranges) and OFD (`Type="Sign"` over `Signature.xml`): signer fields, algorithm,
//! the `signature` step with the one weak-hash policy, the signing time and `timestamp`, and
//! `certificate`.
//!
//! It does not record `integrity` or `seal`: it says whether the signed digest covers the
//! content ([`Coverage`]) and each format words that for what it covers. It never passes a
//! signature that did not verify.

use super::cert_step::{check_certificate, date_signature, fill_cert_fields};
use super::{Algorithm, SignatureReport, Step, VerifyOptions};
use crate::crypto::cms::{self, CmsError, SignedData};
use crate::crypto::x509::{self, HashAlg};

/// Whether what was signed is the content the format handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Coverage {
    /// The signed `messageDigest` (or the encapsulated content) matches.
    Matches {
        /// The digest algorithm, e.g. `SM3`.
        digest: String,
        /// The content was encapsulated rather than detached.
        encapsulated: bool,
    },
    /// The content is not what was signed, or cannot be compared (the hint says which).
    Fails(String),
    /// Not examined: the signature structure itself is unusable.
    NotExamined(String),
}

/// What [`check_cms`] found.
pub(crate) struct CmsCheck {
    pub coverage: Coverage,
    /// The cryptographic check went through (the weak-hash policy may still fail `signature`).
    pub verified: bool,
    pub signer_cert_der: Option<Vec<u8>>,
}

const TIMESTAMP_NOT_CHECKED: &str = "签名未通过验证，时间戳未检查";

/// Verifies `sd` over the concatenation of `parts` and records `signature`, `timestamp` and
/// `certificate` (and `parse` when the SignerInfo is unusable).
pub(crate) fn check_cms(
    report: &mut SignatureReport,
    sd: &SignedData,
    parts: &[&[u8]],
    opts: &VerifyOptions,
) -> CmsCheck {
    let signer = sd.signer_cert().ok();
    if let Some(c) = &signer {
        fill_cert_fields(report, c);
        report.seal_identity.signer_cert_sn = Some(c.serial_hex.to_ascii_lowercase());
        report.algorithm = Algorithm::from_key(&c.spki_der);
    }
    let signer_der = signer.as_ref().map(|c| c.der.clone());
    let check_signer_cert = |report: &mut SignatureReport, e: Option<&CmsError>| match &signer {
        Some(c) => check_certificate(report, &c.der, &sd.certs, report.sign_time_ms, opts),
        None => report.fail(
            Step::Certificate,
            e.map_or_else(|| "签名者证书缺失".to_string(), CmsError::to_string),
        ),
    };

    // A public-key algorithm the platform does not implement is reported as such
    // (indeterminate), never passed; the digest can still be compared.
    if let Some(alg) = unsupported_algorithm(sd) {
        let coverage = match sd.digest_alg() {
            Some(h) => match sd.message_digest() {
                Ok(md) if md == h.digest_parts(parts) => Coverage::Matches {
                    digest: h.name().to_string(),
                    encapsulated: false,
                },
                _ => Coverage::Fails("文档摘要与签名属性 messageDigest 不一致".into()),
            },
            None => Coverage::Fails(format!(
                "不支持的摘要算法 {}，无法校验完整性",
                digest_name(&sd.signer.digest_oid)
            )),
        };
        report.fail(Step::Signature, format!("不支持的签名算法 {alg}"));
        report.fail(Step::Timestamp, TIMESTAMP_NOT_CHECKED);
        check_signer_cert(report, None);
        return CmsCheck {
            coverage,
            verified: false,
            signer_cert_der: signer_der,
        };
    }

    // Weak digests are verified, then judged by the one policy below, so the report can say
    // the value is right but the digest too weak.
    match cms::verify_detached_parts(sd, parts, true) {
        Ok(v) => {
            report.algorithm = Algorithm::Scheme(v.scheme);
            if v.weak_hash && !opts.allow_weak_hashes {
                report.fail(
                    Step::Signature,
                    format!(
                        "签名值正确，但摘要算法 {} 强度不足（策略不允许）",
                        v.digest_algorithm
                    ),
                );
            } else if v.weak_hash {
                report.pass(
                    Step::Signature,
                    format!("签名值验证通过（弱摘要算法 {}）", v.digest_algorithm),
                );
            } else {
                let hint = format!("{} 签名值验证通过", report.algorithm);
                report.pass(
                    Step::Signature,
                    super::ses_step::with_encoding_note(hint, &v.signature_value),
                );
            }
            date_signature(
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
            CmsCheck {
                coverage: Coverage::Matches {
                    digest: v.digest_algorithm,
                    encapsulated: v
                        .encapsulated_content
                        .as_deref()
                        .is_some_and(|c| !c.is_empty()),
                },
                verified: true,
                signer_cert_der: Some(v.signer_cert_der),
            }
        }
        Err(e) => {
            let coverage = match &e {
                CmsError::DigestMismatch => Coverage::Fails(
                    "文档摘要与签名属性 messageDigest 不一致，签名后文档被修改".into(),
                ),
                CmsError::UnexpectedContent => {
                    Coverage::Fails("分离式签名不应携带封装内容（封装内容与文档摘要不符）".into())
                }
                CmsError::UnsupportedDigest(d) => {
                    Coverage::Fails(format!("不支持的摘要算法 {d}，无法校验完整性"))
                }
                CmsError::MissingMessageDigest | CmsError::ContentTypeMismatch => {
                    Coverage::Fails(e.to_string())
                }
                CmsError::Parse(_) | CmsError::NotSignedData(_) | CmsError::NoSigner => {
                    report.fail(Step::Parse, e.to_string());
                    Coverage::NotExamined(e.to_string())
                }
                // The digest was compared before the signature: it matched.
                CmsError::BadSignature
                | CmsError::BadKey(_)
                | CmsError::UnsupportedAlgorithm(_)
                | CmsError::WeakHash(_)
                | CmsError::SignerCertMissing
                | CmsError::BadSignerCert(_) => Coverage::Matches {
                    digest: sd
                        .digest_alg()
                        .map(|h| h.name().to_string())
                        .unwrap_or_default(),
                    encapsulated: false,
                },
            };
            let why = if matches!(coverage, Coverage::Matches { .. }) {
                e.to_string()
            } else {
                format!("签名所签内容不符，签名未能验证: {e}")
            };
            report.fail(Step::Signature, why);
            report.fail(Step::Timestamp, TIMESTAMP_NOT_CHECKED);
            check_signer_cert(report, Some(&e));
            CmsCheck {
                coverage,
                verified: false,
                signer_cert_der: signer_der,
            }
        }
    }
}

/// The signature algorithm, when it is one the platform does not implement (GM OIDs in the
/// wrong place are left to the verifier, which then decides by the key).
fn unsupported_algorithm(sd: &SignedData) -> Option<String> {
    match x509::resolve_scheme(
        &sd.signer.sig_alg_oid,
        sd.signer.sig_alg_params.as_deref(),
        sd.digest_alg(),
    ) {
        Err(x509::X509Error::UnsupportedAlgorithm(a)) if !a.starts_with("1.2.156") => Some(a),
        _ => None,
    }
}

fn digest_name(oid: &str) -> String {
    match oid {
        "2.16.840.1.101.3.4.2.12" => "SHAKE256".into(),
        other => HashAlg::from_oid(other)
            .map(|h| h.name().to_string())
            .unwrap_or_else(|| other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::certgen::{CertSpec, self_signed_sm2};
    use crate::crypto::sm::Sm2KeyPair;
    use crate::verify::{Format, SignatureType};

    fn signed(content: &[u8]) -> SignedData {
        let key = Sm2KeyPair::generate();
        let spec = CertSpec {
            common_name: "签名者".into(),
            organization: None,
            not_before_ms: 1_700_000_000_000,
            not_after_ms: 1_900_000_000_000,
            is_ca: false,
            serial: Some(vec![0x0a]),
        };
        let cert = self_signed_sm2(&spec, &key).unwrap();
        let der = cms::sign_detached_sm2(&[content], &key, &cert, 1_763_800_000_000, true).unwrap();
        cms::parse_signed_data(&der).unwrap()
    }

    #[test]
    fn both_formats_get_the_same_verdict_from_one_path() {
        let sd = signed(b"content");
        for format in [Format::Pdf, Format::Ofd] {
            let mut r = SignatureReport::new(format, SignatureType::Sign);
            let ok = check_cms(&mut r, &sd, &[b"con", b"tent"], &VerifyOptions::default());
            assert!(ok.verified);
            assert!(matches!(ok.coverage, Coverage::Matches { ref digest, .. } if digest == "SM3"));
            assert!(r.passed(Step::Signature));
            assert_eq!(r.algorithm.to_string(), "SM2withSM3");
            assert_eq!(r.seal_identity.signer_cert_sn.as_deref(), Some("0a"));

            let mut r = SignatureReport::new(format, SignatureType::Sign);
            let bad = check_cms(&mut r, &sd, &[b"changed"], &VerifyOptions::default());
            assert!(!bad.verified);
            assert!(matches!(bad.coverage, Coverage::Fails(ref h) if h.contains("messageDigest")));
            assert!(!r.passed(Step::Signature));
            assert!(!r.passed(Step::Timestamp));
        }
    }
}
