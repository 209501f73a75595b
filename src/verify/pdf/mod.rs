//! PDF signatures (ISO 32000, GM/T 0112-2021).
//!
//! Every signature field with a value is checked through the eight steps: its `ByteRange`
//! digest, the CMS SignedData or GB/T 38540 `SES_Signature` in `/Contents` (the container is
//! told from the DER, never from `/Filter`), the signer certificate, the time-stamp, and what
//! later incremental updates changed (`coverage`, see [`coverage`]).
//!
//! This file turns each signature into its report (the container told from the DER, CMS
//! through [`crate::verify::cms_step`], document time-stamps, SES); loading and object access
//! are in `parse`, the field walk in `fields`, `ByteRange` in `ranges`.

mod budget;
mod coverage;
mod diff;
mod fields;
mod parse;
mod ranges;

pub(crate) use fields::SigField;
use std::sync::Arc;

use fields::{find_signatures, name_of, provider};
pub use parse::Shared;
pub(crate) use parse::{deref_array, deref_dict, load_guarded, load_guarded_with, parse_pdf_date};
pub(crate) use ranges::{byte_ranges, covered};

use lopdf::{Document, Object};

use super::cert_step::{self, check_certificate};
use super::cms_step::{self, Coverage};
use super::{
    Algorithm, DocumentError, Format, SignatureReport, SignatureType, Step, VerifyOptions,
};
use crate::crypto::cms;
use crate::crypto::tsp;
use crate::crypto::x509::CertInfo;
use crate::time::format_time_ms;

/// Verifies every signature field of a PDF.
pub fn verify_pdf(
    bytes: &[u8],
    opts: &VerifyOptions,
) -> Result<Vec<SignatureReport>, DocumentError> {
    verify_pdf_shared(&Arc::new(bytes.to_vec()), opts)
}

/// [`verify_pdf`] of a file the caller owns: its parses share it, with no copy.
pub fn verify_pdf_shared(
    file: &Shared,
    opts: &VerifyOptions,
) -> Result<Vec<SignatureReport>, DocumentError> {
    let bytes: &[u8] = file;
    let planned = budget::check(bytes, opts).map_err(DocumentError::TooComplex)?;
    let doc =
        load_guarded(file, bytes.len(), opts).map_err(|e| parse_error(e, "解析 PDF 对象", opts))?;
    // Objects the count missed (headers the parser accepts in forms the count does not)
    // must not buy the two further views either.
    if doc.objects.len() as u64 > planned.objects {
        budget::recheck(doc.objects.len() as u64, bytes.len(), opts)
            .map_err(DocumentError::TooComplex)?;
    }
    if opts.out_of_time() {
        return Err(DocumentError::out_of_time("解析 PDF 对象", opts));
    }
    let sigs = find_signatures(&doc);
    let revisions = coverage::revision_ends(bytes);
    let mut reports = Vec::with_capacity(sigs.len());
    let mut old_docs = coverage::RevisionCache::default();
    // A second view of the final document, rebuilt by scanning, catches objects appended
    // without cross-reference data (an incremental saving attack some readers honour).
    let later_updates = sigs.iter().any(|s| {
        byte_ranges(&s.sig_dict, bytes.len())
            .ok()
            .and_then(|r| r.last().map(|(st, l)| st + l))
            .and_then(|end| bytes.get(end..))
            .is_some_and(|rest| rest.iter().any(|b| !b.is_ascii_whitespace() && *b != 0))
    });
    let rescanned = if later_updates {
        match load_guarded_with(file, bytes.len(), opts, true) {
            Ok(mut d) => {
                coverage::align_rescanned(&mut d, &doc);
                Some(d)
            }
            Err(_) if opts.out_of_time() => {
                return Err(DocumentError::out_of_time(
                    "重建交叉引用（扫描全部对象）",
                    opts,
                ));
            }
            Err(_) => None,
        }
    } else {
        None
    };
    let views: Vec<&Document> = std::iter::once(&doc).chain(rescanned.as_ref()).collect();
    for sig in &sigs {
        if opts.out_of_time() {
            let mut report = SignatureReport::new(Format::Pdf, SignatureType::Sign);
            report.location = sig.field_name.clone();
            report.fail(Step::Parse, opts.out_of_time_hint("签名验证"));
            reports.push(report);
            continue;
        }
        let mut report = verify_one(bytes, &doc, sig, opts);
        if opts.out_of_time() {
            report.fail(Step::Coverage, opts.out_of_time_hint("增量更新检查"));
            reports.push(report);
            continue;
        }
        coverage::check(
            &mut report,
            file,
            &views,
            sig,
            &sigs,
            &revisions,
            &mut old_docs,
            opts,
        );
        reports.push(report);
    }
    Ok(reports)
}

/// A failed parse is the budget's when the time ran out meanwhile, else the file's.
fn parse_error(e: String, step: &'static str, opts: &VerifyOptions) -> DocumentError {
    if opts.out_of_time() {
        DocumentError::out_of_time(step, opts)
    } else {
        DocumentError::Malformed(e)
    }
}

/// Which container `/Contents` holds, told from the DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Cms,
    Ses,
    Unknown,
}

fn detect_container(der: &[u8]) -> Container {
    let Ok((outer, _)) = crate::crypto::der::read_ber(der) else {
        return Container::Unknown;
    };
    if outer.tag != 0x30 {
        return Container::Unknown;
    }
    let kids = outer.children().unwrap_or_default();
    match kids.first() {
        Some(first) if first.tag == 0x06 => Container::Cms,
        // SES_Signature: SEQUENCE { TBS_Sign SEQUENCE { version INTEGER, ... }, ... }
        Some(first) if first.tag == 0x30 => {
            let inner = first.children().unwrap_or_default();
            if inner.first().is_some_and(|v| v.tag == 0x02) {
                Container::Ses
            } else {
                Container::Unknown
            }
        }
        _ => Container::Unknown,
    }
}

fn verify_one(
    bytes: &[u8],
    doc: &Document,
    sig: &SigField,
    opts: &VerifyOptions,
) -> SignatureReport {
    let d = &sig.sig_dict;
    let is_doc_ts = name_of(d, b"Type").as_deref() == Some("DocTimeStamp")
        || name_of(d, b"SubFilter").as_deref() == Some("ETSI.RFC3161");
    let mut report = SignatureReport::new(Format::Pdf, SignatureType::Sign);
    report.location = sig.field_name.clone();
    report.page = sig.page;
    report.position = sig
        .rect
        .map(|r| r.map(|v| (v * 25.4 / 72.0 * 100.0).round() / 100.0));
    report.provider = provider(doc, d);
    report.seal_type = if is_doc_ts {
        "文档时间戳".into()
    } else {
        "数字签名".into()
    };
    let m_time = d
        .get(b"M")
        .ok()
        .and_then(|o| o.as_str().ok())
        .and_then(parse_pdf_date);
    if let Some(t) = m_time {
        report.sign_time = format_time_ms(t);
        report.sign_time_ms = Some(t);
    }

    let contents = match d.get(b"Contents") {
        Ok(Object::String(s, _)) => s.clone(),
        _ => {
            report.fail(Step::Parse, "签名字典缺少 /Contents");
            return report;
        }
    };
    // `/Contents` is zero-padded; the DER element's own length delimits it.
    let der = match crate::crypto::der::read_ber(&contents) {
        Ok((t, _)) => t.raw.to_vec(),
        Err(e) => {
            report.fail(Step::Parse, format!("签名值 /Contents 不是 DER 结构: {e}"));
            return report;
        }
    };
    let ranges = match byte_ranges(d, bytes.len()) {
        Ok(r) => r,
        Err(e) => {
            report.pass(Step::Parse, "PDF 结构与签名字典可解析");
            report.fail(Step::Integrity, e);
            return report;
        }
    };
    let parts = covered(bytes, &ranges);
    match detect_container(&der) {
        Container::Cms if is_doc_ts => verify_doc_timestamp(&mut report, &der, &parts, opts),
        Container::Cms => verify_cms(&mut report, &der, &parts, opts),
        Container::Ses => verify_ses(&mut report, &der, &parts, opts),
        Container::Unknown => {
            report.fail(
                Step::Parse,
                "签名值 /Contents 既不是 CMS SignedData 也不是 SES_Signature",
            );
        }
    }
    report
}

fn verify_cms(report: &mut SignatureReport, der: &[u8], parts: &[&[u8]], opts: &VerifyOptions) {
    let sd = match cms::parse_signed_data(der) {
        Ok(sd) => sd,
        Err(e) => {
            report.fail(Step::Parse, format!("签名值无法解析: {e}"));
            return;
        }
    };
    report.pass(Step::Parse, "PDF 结构与 CMS SignedData 可解析");
    let check = cms_step::check_cms(report, &sd, parts, opts);
    match check.coverage {
        Coverage::Matches { digest, .. } => report.pass(
            Step::Integrity,
            format!("ByteRange 摘要（{digest}）与签名一致"),
        ),
        Coverage::Fails(hint) => report.fail(Step::Integrity, hint),
        Coverage::NotExamined(_) => {}
    }
    if check.verified {
        report.not_applicable(Step::Seal, "数字签名，不含电子印章");
    }
}

/// A document time-stamp (`/Type /DocTimeStamp`): the token's imprint covers the ranges.
fn verify_doc_timestamp(
    report: &mut SignatureReport,
    der: &[u8],
    parts: &[&[u8]],
    opts: &VerifyOptions,
) {
    report.pass(Step::Parse, "PDF 结构与时间戳令牌可解析");
    report.not_applicable(Step::Seal, "文档时间戳，不含电子印章");
    match tsp::verify_timestamp_token_parts(der, parts) {
        Ok(ts) => {
            report.pass(
                Step::Integrity,
                format!("ByteRange 摘要（{}）与时间戳一致", ts.hash_algorithm),
            );
            report.pass(Step::Signature, "时间戳服务器签名验证通过");
            report.algorithm = Algorithm::Scheme(ts.tsa_scheme);
            report.sign_time_ms = Some(ts.gen_time_ms);
            report.sign_time = format_time_ms(ts.gen_time_ms);
            cert_step::check_tsa(report, &ts, opts);
            check_certificate(
                report,
                &ts.tsa_cert_der,
                &ts.certs,
                Some(ts.gen_time_ms),
                opts,
            );
        }
        Err(tsp::TspError::ImprintMismatch) => {
            report.fail(Step::Integrity, "文档摘要与时间戳 messageImprint 不一致")
        }
        Err(tsp::TspError::Parse(e)) => {
            report.fail(Step::Parse, format!("时间戳令牌无法解析: {e}"))
        }
        Err(e) => {
            report.pass(Step::Integrity, "ByteRange 可读");
            report.fail(Step::Signature, e.to_string());
        }
    }
}

/// Profile D: a raw GB/T 38540 `SES_Signature`; the SES module checks signature, seal and
/// time-stamp and compares its `dataHash` with the covered bytes.
fn verify_ses(report: &mut SignatureReport, der: &[u8], parts: &[&[u8]], opts: &VerifyOptions) {
    report.signature_type = SignatureType::Seal;
    report.seal_type = "电子签章".into();
    let signed: Vec<u8> = parts.concat();
    match super::ses_step::check_ses_signature(report, der, &signed, opts) {
        Ok(hash) => {
            report.pass(Step::Parse, "PDF 结构与 SES_Signature 可解析");
            report.record(Step::Integrity, hash.matches, hash.hint.clone());
            if !hash.signer_cert_der.is_empty() {
                if let Ok(c) = CertInfo::parse(&hash.signer_cert_der)
                    && report.algorithm.is_unknown()
                {
                    report.algorithm = Algorithm::from_key(&c.spki_der);
                }
                if report.outcome(Step::Certificate).is_none() {
                    check_certificate(
                        report,
                        &hash.signer_cert_der,
                        &[],
                        report.sign_time_ms,
                        opts,
                    );
                }
            }
        }
        Err(msg) => report.fail(Step::Parse, msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_dates_with_offsets() {
        assert_eq!(
            parse_pdf_date(b"D:20201101000000Z"),
            Some(1_604_188_800_000)
        );
        assert_eq!(
            parse_pdf_date(b"D:20201101080000+08'00'"),
            Some(1_604_188_800_000)
        );
        assert_eq!(parse_pdf_date(b"D:2020"), Some(1_577_836_800_000));
        assert_eq!(parse_pdf_date(b"D:20201341"), None);
        assert_eq!(parse_pdf_date(b"garbage"), None);
    }

    fn sig_with(range: Vec<Object>) -> lopdf::Dictionary {
        let mut d = lopdf::Dictionary::new();
        d.set("ByteRange", Object::Array(range));
        d
    }

    #[test]
    fn byte_ranges_are_bounded_by_the_file() {
        let ok = sig_with(vec![0.into(), 10.into(), 20.into(), 5.into()]);
        assert_eq!(byte_ranges(&ok, 25).unwrap(), vec![(0, 10), (20, 5)]);
        assert!(byte_ranges(&ok, 24).unwrap_err().contains("超出文件长度"));
        let negative = sig_with(vec![0.into(), (-1).into()]);
        assert!(byte_ranges(&negative, 25).is_err());
        let odd = sig_with(vec![0.into(), 10.into(), 20.into()]);
        assert!(byte_ranges(&odd, 25).is_err());
        let huge = sig_with(vec![0.into(), i64::MAX.into()]);
        assert!(byte_ranges(&huge, 25).is_err());
    }

    #[test]
    fn container_is_told_from_the_der() {
        // ContentInfo starts with an OID; SES_Signature with TBS_Sign { version INTEGER ... }.
        assert_eq!(
            detect_container(&[0x30, 0x03, 0x06, 0x01, 0x2a]),
            Container::Cms
        );
        assert_eq!(
            detect_container(&[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x04]),
            Container::Ses
        );
        assert_eq!(detect_container(b"not der"), Container::Unknown);
    }

    #[test]
    fn an_exhausted_time_budget_names_the_step_it_interrupted() {
        let pdf = include_bytes!("../../../tests/data/pdf/generated/sm2-cms-pkcs7oid-detached.pdf");
        let opts = VerifyOptions {
            time_budget: Some(std::time::Duration::from_millis(5)),
            deadline: Some(std::time::Instant::now()),
            ..VerifyOptions::default()
        };
        let r = verify_pdf(pdf, &opts);
        assert_eq!(
            r.unwrap_err(),
            DocumentError::OutOfTime {
                step: "解析 PDF 对象",
                budget_ms: 5
            }
        );
        // Without a deadline the same file verifies its signature.
        let r = verify_pdf(pdf, &VerifyOptions::default()).unwrap();
        assert!(r[0].outcome(Step::Signature).is_some_and(|(ok, _)| ok));
    }

    #[test]
    fn unparseable_pdf_is_a_document_error_not_a_panic() {
        let r = verify_pdf(b"%PDF-1.7\n1 0 obj <<", &VerifyOptions::default());
        assert!(
            matches!(r, Err(DocumentError::Malformed(ref m)) if m.contains("PDF")),
            "{r:?}"
        );
    }
}
