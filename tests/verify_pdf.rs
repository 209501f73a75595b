//! PDF signature verification against the corpus expectations (tests/data/pdf/PROVENANCE.md)
//! and against tampering made here: incremental updates after signing, changed signed bytes,
//! rewritten signature dictionaries, and random or mutated input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

#[path = "support/words.rs"]
mod words;

#[path = "support/pdf_updates.rs"]
mod pdf_updates;

use std::time::{Duration, Instant};

use hutong::crypto::sm::LENIENT_INTEGER_HINT;
use hutong::crypto::sm::pem_decode;
use hutong::verify::report::{DocumentReport, EmptyRegistry, SignatureReport};
use hutong::verify::{Format, SignatureType, Step, VerifyOptions, verify_document};
use pdf_updates::*;
use proptest::prelude::*;

fn pem_certs(rel: &str) -> Vec<Vec<u8>> {
    let text = String::from_utf8(data(rel)).unwrap();
    text.split("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| {
            pem_decode(&format!("{b}-----END CERTIFICATE-----"))
                .unwrap()
                .1
        })
        .collect()
}

const PYHANKO_ROOT: &[&str] = &["pyhanko/certs/root.cert.pem"];
const GENERATED_ROOTS: &[&str] = &["generated/pki/root.cert.pem", "generated/pki-sm2/root.pem"];
const NO_ROOTS: &[&str] = &[];

fn opts_with(anchors: &[&str]) -> VerifyOptions {
    VerifyOptions {
        trust_anchors: anchors.iter().flat_map(|a| pem_certs(a)).collect(),
        ..Default::default()
    }
}

fn verify_bytes(bytes: &[u8], opts: &VerifyOptions) -> DocumentReport {
    verify_document(bytes, "test.pdf", opts, &EmptyRegistry).unwrap()
}

/// Steps that failed, without `registry` (nothing is on file in these tests, which by
/// default does not fail a document).
fn failed(sig: &SignatureReport) -> Vec<&'static str> {
    sig.flow_vo_list
        .iter()
        .filter(|f| f.status == 0 && f.step != Step::Registry)
        .map(|f| f.step.name())
        .collect()
}

fn hint<'a>(sig: &'a SignatureReport, step: &str) -> &'a str {
    sig.flow_vo_list
        .iter()
        .find(|f| f.step.name() == step)
        .map(|f| f.hint.as_str())
        .unwrap_or("")
}

/// One corpus row: file, trust roots, expected `verifyResult`, and per signature (in field
/// order) the steps that must fail (all others must pass) plus a phrase the first failing
/// step's hint must contain.
struct Row {
    file: &'static str,
    roots: &'static [&'static str],
    valid: bool,
    sigs: &'static [(&'static [&'static str], &'static str)],
}

const UNTRUSTED: &str = "证书链不受信任";

#[rustfmt::skip]
const CORPUS: &[Row] = &[
    // SM2 (profile A) from iText5 + BouncyCastle with CNCA test certificates: crypto intact,
    // signer and TSA untrusted here (their roots are not supplied).
    Row { file: "hongzhe-itext5-sm2/sm2sign.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate", "timestamp"], "签发者 CN=CNCA Global Root CA2")] },
    Row { file: "hongzhe-itext5-sm2/rsasign.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate", "timestamp"], "签发者 CN=CNCA Identity CA")] },
    // SHA-1 is weak by policy: the signature value verifies but the step fails.
    Row { file: "openpdf/sample_signed-sha1.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["signature", "certificate"], "SHA-1 强度不足")] },
    Row { file: "openpdf/sample_signed-sha512.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate"], UNTRUSTED)] },
    Row { file: "openpdf/pdf_digital_signature_timestamp.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate", "timestamp"], UNTRUSTED)] },
    // ByteRange beyond the end of the file: reported, never looped on.
    Row { file: "openpdf/pades_infinite_loop.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["integrity", "signature", "certificate", "seal", "timestamp", "coverage"], "ByteRange 超出文件长度")] },
    Row { file: "pyhanko/coverage-anomalies/base.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[(&["parse", "integrity", "signature", "certificate", "seal", "timestamp"], "既不是 CMS SignedData")] },
    // Intact signatures whose ByteRange is not the standard two ranges around /Contents.
    Row { file: "pyhanko/coverage-anomalies/one-byterange.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[(&["certificate", "coverage"], UNTRUSTED)] },
    Row { file: "pyhanko/coverage-anomalies/signature-gap-too-big.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[(&["certificate", "coverage"], UNTRUSTED)] },
    Row { file: "pyhanko/coverage-anomalies/weird-byterange.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[(&["certificate", "coverage"], UNTRUSTED)] },
    Row { file: "pyhanko/certified-with-indirect-refs-in-dir.pdf", roots: PYHANKO_ROOT, valid: true, sigs: &[(&[], "")] },
    Row { file: "pyhanko/ed448-disallowed-hash.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[(&["signature", "certificate", "seal", "timestamp"], "不支持的签名算法 Ed448")] },
    Row { file: "pyhanko/ed448-shake256-nolen.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[(&["integrity", "signature", "certificate", "seal", "timestamp"], "不支持的摘要算法 SHAKE256")] },
    // The pyHanko test signer expired on 2022-01-01 but these were signed (signingTime) in
    // 2023: the certificate step says so. Coverage is what the rows are about.
    Row { file: "pyhanko/form-update-override-appearance-stream.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[(&["certificate"], "已过期"), (&["certificate"], "已过期")] },
    Row { file: "pyhanko/form-update-override-appearance-stream-sneaky.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[(&["certificate", "coverage"], "已过期"), (&["certificate"], "已过期")] },
    Row { file: "pyhanko/minimal-signed-twice-both-created.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[(&["certificate", "timestamp"], UNTRUSTED), (&["certificate", "timestamp"], UNTRUSTED)] },
    Row { file: "pyhanko/minimal-signed-twice-second-created.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[(&["certificate", "timestamp"], UNTRUSTED), (&["certificate", "timestamp"], UNTRUSTED)] },
    Row { file: "pyhanko/minimal-two-fields-signed-twice.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[(&["certificate", "timestamp"], UNTRUSTED), (&["certificate", "timestamp"], UNTRUSTED)] },
    // ECDSA P-384: signed with a certificate of a different "Intermediate CA" than pyHanko's.
    Row { file: "pyhanko/minimal-signed-twice-no-sig-type.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[(&["certificate"], UNTRUSTED), (&["certificate"], UNTRUSTED)] },
    Row { file: "pyhanko/pades-lta-dss-indirect-arrs-test.pdf", roots: PYHANKO_ROOT, valid: true, sigs: &[(&[], ""), (&[], "")] },
    Row { file: "pyhanko/pades-with-old-style-signing-cert-attr.pdf", roots: PYHANKO_ROOT, valid: true, sigs: &[(&[], "")] },
    Row { file: "pyhanko/pdf-sig-with-econtent.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[(&["integrity", "signature", "certificate", "seal", "timestamp"], "分离式签名不应携带封装内容")] },
    Row { file: "pyhanko/sig-no-signed-attrs.pdf", roots: PYHANKO_ROOT, valid: true, sigs: &[(&[], "")] },
    Row { file: "pyhanko/minimal.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[] },
    Row { file: "pyhanko/minimal-with-field.pdf", roots: PYHANKO_ROOT, valid: false, sigs: &[] },
    // Shadow attacks: the prepared documents are intact; every manipulated one is flagged by
    // `coverage` although its signature still verifies.
    Row { file: "rub-nds-pdf-attacker/hide/variant-1_hide-via-referenced-object/3_original-document-shadowed-signed.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate"], UNTRUSTED)] },
    Row { file: "rub-nds-pdf-attacker/hide/variant-1_hide-via-referenced-object/4_original-document-shadowed-signed-manipulated_v1.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate", "coverage"], UNTRUSTED)] },
    Row { file: "rub-nds-pdf-attacker/hide/variant-1_hide-via-referenced-object/4_original-document-shadowed-signed-manipulated_v2.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate", "coverage"], UNTRUSTED)] },
    Row { file: "rub-nds-pdf-attacker/hide/variant-2_hide-via-referenced-object/hide-form-via-form/3_original-document-shadowed-signed.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate"], UNTRUSTED)] },
    Row { file: "rub-nds-pdf-attacker/hide/variant-2_hide-via-referenced-object/hide-form-via-form/4_original-document-shadowed-signed-manipulated.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate", "coverage"], UNTRUSTED)] },
    Row { file: "rub-nds-pdf-attacker/hide/variant-2_hide-via-referenced-object/hide-text-via-form/3_original-document-shadowed-signed.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate"], UNTRUSTED)] },
    Row { file: "rub-nds-pdf-attacker/hide/variant-2_hide-via-referenced-object/hide-text-via-form/4_original-document-shadowed-signed-manipulated.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate", "coverage"], UNTRUSTED)] },
    Row { file: "rub-nds-pdf-attacker/replace/variant-1_replace-via-overlay/3_original-document-shadowed-signed.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate"], UNTRUSTED)] },
    Row { file: "rub-nds-pdf-attacker/replace/variant-1_replace-via-overlay/4_original-document-shadowed-signed-manipulated.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate", "coverage"], UNTRUSTED)] },
    Row { file: "rub-nds-pdf-tester/PDFDocs_minimal_cert.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["certificate"], UNTRUSTED)] },
    Row { file: "rub-nds-pdf-tester/PDFDocs_minimal_cert_invalid.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["integrity", "signature", "certificate", "seal", "timestamp"], "messageDigest 不一致")] },
    // Certified (P=2) then approval-signed: the later update also rewrites a font object,
    // which this verifier does not allow after the certification signature.
    Row { file: "rub-nds-pdf-tester/ex1_02_Test_cert_p2_sign_original.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["signature", "certificate"], "SHA-1 强度不足"), (&["signature", "certificate", "coverage"], "SHA-1 强度不足")] },
    Row { file: "rub-nds-pdf-tester/ex1_03_Test_cert_p2_sign_manipulate.pdf", roots: NO_ROOTS, valid: false, sigs: &[(&["parse", "integrity", "signature", "certificate", "seal", "timestamp", "coverage"], "缺少 /Contents"), (&["signature", "certificate", "coverage"], "SHA-1 强度不足")] },
    Row { file: "generated/base.pdf", roots: GENERATED_ROOTS, valid: false, sigs: &[] },
    Row { file: "generated/rsa-pkcs7-valid.pdf", roots: GENERATED_ROOTS, valid: true, sigs: &[(&[], "")] },
    Row { file: "generated/ecdsa-pades-valid.pdf", roots: GENERATED_ROOTS, valid: true, sigs: &[(&[], "")] },
    Row { file: "generated/rsa-certified-p1.pdf", roots: GENERATED_ROOTS, valid: true, sigs: &[(&[], "")] },
    Row { file: "generated/rsa-tampered-content-byte.pdf", roots: GENERATED_ROOTS, valid: false, sigs: &[(&["integrity", "signature", "seal", "timestamp"], "messageDigest 不一致")] },
    Row { file: "generated/rsa-isa-content-replaced-after-signing.pdf", roots: GENERATED_ROOTS, valid: false, sigs: &[(&["coverage"], "第 1 页 的 /Contents 被修改")] },
    Row { file: "generated/rsa-incremental-info-update-after-signing.pdf", roots: GENERATED_ROOTS, valid: true, sigs: &[(&[], "")] },
    Row { file: "generated/rsa-pades-bt-with-sig-timestamp.pdf", roots: GENERATED_ROOTS, valid: true, sigs: &[(&[], "")] },
    Row { file: "generated/sm2-base-unsigned.pdf", roots: GENERATED_ROOTS, valid: false, sigs: &[] },
    Row { file: "generated/sm2-cms-pkcs7oid-detached.pdf", roots: GENERATED_ROOTS, valid: true, sigs: &[(&[], "")] },
    Row { file: "generated/sm2-cms-pkcs7oid-detached-tampered.pdf", roots: GENERATED_ROOTS, valid: false, sigs: &[(&["integrity", "signature", "seal", "timestamp"], "messageDigest 不一致")] },
    Row { file: "generated/sm2-ses-v4-seal.pdf", roots: GENERATED_ROOTS, valid: true, sigs: &[(&[], "")] },
    Row { file: "generated/sm2-ses-v4-seal-tampered.pdf", roots: GENERATED_ROOTS, valid: false, sigs: &[(&["integrity"], "dataHash")] },
];

#[test]
fn every_corpus_pdf_gets_its_expected_outcome() {
    let provenance = String::from_utf8(data("PROVENANCE.md")).unwrap();
    let listed: Vec<&str> = provenance
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    for file in &listed {
        assert!(
            CORPUS.iter().any(|r| r.file == *file),
            "{file} has no expectation"
        );
    }
    for row in CORPUS {
        let report = verify_bytes(&data(row.file), &opts_with(row.roots));
        assert!(report.error.is_none(), "{}: {:?}", row.file, report.error);
        assert_eq!(report.verify_result, row.valid, "{}", row.file);
        assert_eq!(
            report.details.len(),
            row.sigs.len(),
            "{}: signature count",
            row.file
        );
        for (i, (sig, (fails, phrase))) in report.details.iter().zip(row.sigs).enumerate() {
            assert_eq!(failed(sig), fails.to_vec(), "{} signature #{i}", row.file);
            if let Some(first) = fails.first() {
                let first_hint = hint(sig, first);
                let any_hint = sig
                    .flow_vo_list
                    .iter()
                    .any(|f| f.status == 0 && f.hint.contains(phrase));
                assert!(
                    any_hint,
                    "{} #{i}: no failing hint contains {phrase:?} (first: {first_hint})",
                    row.file
                );
            }
            assert_eq!(sig.format, Format::Pdf);
        }
    }
}

#[test]
fn valid_corpus_signatures_report_their_signer_and_algorithm() {
    let r = verify_bytes(
        &data("generated/sm2-cms-pkcs7oid-detached.pdf"),
        &opts_with(GENERATED_ROOTS),
    );
    let sig = &r.details[0];
    assert_eq!(sig.signature_type, SignatureType::Sign);
    // The one vocabulary of docs/integration-guide.md, the same word OFD reports.
    assert_eq!(sig.algorithm.to_string(), "SM2withSM3");
    let wire = serde_json::to_value(sig).unwrap();
    assert_eq!(
        (
            wire["algorithm"].as_str(),
            wire["format"].as_str(),
            wire["signatureType"].as_str()
        ),
        (Some("SM2withSM3"), Some("PDF"), Some("sign"))
    );
    assert!(sig.cert_owner.contains("CN="), "{}", sig.cert_owner);
    assert!(
        !sig.cert_sn.is_empty()
            && sig
                .cert_sn
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert!(!sig.sign_time.is_empty());
    assert!(hint(sig, "certificate").starts_with("证书有效，链至受信任根 CN="));
    assert_eq!(hint(sig, "timestamp"), "无时间戳");

    let r = verify_bytes(
        &data("generated/sm2-ses-v4-seal.pdf"),
        &opts_with(GENERATED_ROOTS),
    );
    let seal = &r.details[0];
    assert_eq!(seal.signature_type, SignatureType::Seal);
    assert!(
        !seal.seal_pic_base64.is_empty(),
        "the seal picture comes from the SES"
    );
    assert!(!seal.sign_time.is_empty());
    assert_eq!(seal.algorithm.to_string(), "SM2withSM3");
    assert_eq!(seal.provider, "Gomain.GMPkiLite");

    let r = verify_bytes(
        &data("generated/rsa-pades-bt-with-sig-timestamp.pdf"),
        &opts_with(GENERATED_ROOTS),
    );
    assert!(hint(&r.details[0], "timestamp").starts_with("时间戳有效"));
}

#[test]
fn without_trust_roots_a_valid_signature_is_untrusted_naming_the_issuer() {
    let r = verify_bytes(
        &data("generated/rsa-pkcs7-valid.pdf"),
        &VerifyOptions::default(),
    );
    assert!(!r.verify_result);
    assert_eq!(failed(&r.details[0]), vec!["certificate"]);
    assert!(hint(&r.details[0], "certificate").starts_with("证书链不受信任，签发者 CN="));
}

#[test]
fn weak_hashes_pass_only_when_policy_allows() {
    let opts = VerifyOptions {
        allow_weak_hashes: true,
        ..Default::default()
    };
    let r = verify_bytes(&data("openpdf/sample_signed-sha1.pdf"), &opts);
    assert_eq!(failed(&r.details[0]), vec!["certificate"]);
    assert!(hint(&r.details[0], "signature").contains("SHA-1"));
}

#[test]
fn an_unreadable_pdf_is_reported_not_a_crash() {
    let r = verify_bytes(b"%PDF-1.7\n1 0 obj <<", &VerifyOptions::default());
    assert!(!r.verify_result);
    assert_eq!(r.sign_count, 0);
    assert!(
        r.error.as_deref().unwrap_or("").contains("PDF 无法解析"),
        "{:?}",
        r.error
    );
}

#[test]
fn hostile_byte_range_terminates_quickly() {
    let start = Instant::now();
    let r = verify_bytes(
        &data("openpdf/pades_infinite_loop.pdf"),
        &VerifyOptions::default(),
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!r.verify_result);
}

// ---------------------------------------------------------------------------------------------
// Tampering made here
// ---------------------------------------------------------------------------------------------

#[test]
fn own_sm2_signature_verifies_and_chains_to_the_configured_root() {
    let pki = pki(1_900_000_000_000);
    let pdf = signed_sample(&pki);
    let r = verify_bytes(&pdf, &trusting(&pki));
    let sig = &r.details[0];
    assert!(r.verify_result, "{:?}", sig.flow_vo_list);
    assert_eq!(sig.location, "Sig1");
    assert_eq!(sig.cert_sn, "0abc");
    assert_eq!(sig.cert_owner, "CN=张三,O=某某有限公司");
    assert_eq!(sig.cert_issuer, "CN=测试根 CA,O=Hutong Test");
    assert_eq!(sig.sign_time, "2025-11-22 16:26:40");
    assert_eq!(
        hint(sig, "certificate"),
        "证书有效，链至受信任根 CN=测试根 CA,O=Hutong Test"
    );
    assert_eq!(hint(sig, "coverage"), "签名覆盖整个文档（共 2 个修订版本）");

    let untrusted = verify_bytes(&pdf, &VerifyOptions::default());
    assert_eq!(failed(&untrusted.details[0]), vec!["certificate"]);
    assert_eq!(
        hint(&untrusted.details[0], "certificate"),
        "证书链不受信任，签发者 CN=测试根 CA,O=Hutong Test"
    );
}

#[test]
fn certificate_expired_at_signing_time_fails_the_certificate_step() {
    let pki = pki(SIGN_TIME - 86_400_000);
    let r = verify_bytes(&signed_sample(&pki), &trusting(&pki));
    assert_eq!(failed(&r.details[0]), vec!["certificate"]);
    assert!(hint(&r.details[0], "certificate").starts_with("签署时证书已过期"));
}

#[test]
fn one_changed_byte_inside_the_signed_range_fails_integrity() {
    let pki = pki(1_900_000_000_000);
    let mut pdf = signed_sample(&pki);
    let at = pdf.windows(8).position(|w| w == b"10000.00").unwrap();
    pdf[at] = b'9';
    let r = verify_bytes(&pdf, &trusting(&pki));
    assert!(!r.verify_result);
    assert!(failed(&r.details[0]).starts_with(&["integrity"]));
    assert!(hint(&r.details[0], "integrity").contains("messageDigest 不一致"));
}

#[test]
fn replacing_the_page_content_stream_after_signing_is_flagged() {
    let pki = pki(1_900_000_000_000);
    let pdf = signed_sample(&pki);
    let content = "BT /F1 16 Tf 72 760 Td (Contract amount CNY 90000.00) Tj ET";
    let evil = append_update(
        &pdf,
        &[(
            4,
            format!(
                "<< /Length {} >>\nstream\n{content}\nendstream",
                content.len()
            ),
        )],
        8,
        1,
    );
    let r = verify_bytes(&evil, &trusting(&pki));
    assert!(!r.verify_result);
    let sig = &r.details[0];
    assert_eq!(failed(sig), vec!["coverage"], "{:?}", sig.flow_vo_list);
    assert!(
        hint(sig, "coverage").contains("页面内容流 4 0 被替换"),
        "{}",
        hint(sig, "coverage")
    );

    // The same attack through a new content object referenced from a redefined page.
    let evil = append_update(
        &pdf,
        &[
            (8, format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len())),
            (3, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 8 0 R /Annots [7 0 R] >>".into()),
        ],
        9,
        1,
    );
    let r = verify_bytes(&evil, &trusting(&pki));
    assert!(hint(&r.details[0], "coverage").contains("第 1 页 的 /Contents 被修改"));
}

#[test]
fn objects_appended_without_cross_reference_data_are_flagged() {
    // Readers that repair files take the last definition of object 4; the verifier looks
    // at the file the same way and flags it.
    let pki = pki(1_900_000_000_000);
    let mut evil = signed_sample(&pki);
    let content = "BT /F1 16 Tf 72 760 Td (Contract amount CNY 90000.00) Tj ET";
    evil.extend(
        format!(
            "4 0 obj\n<< /Length {} >>\nstream\n{content}\nendstream\nendobj\n%%EOF\n",
            content.len()
        )
        .as_bytes(),
    );
    let r = verify_bytes(&evil, &trusting(&pki));
    assert!(!r.verify_result);
    assert_eq!(failed(&r.details[0]), vec!["coverage"]);
    assert!(
        hint(&r.details[0], "coverage").contains("4 0"),
        "{}",
        hint(&r.details[0], "coverage")
    );

    // Appended bytes that do not even end a revision.
    let mut evil = signed_sample(&pki);
    evil.extend(b"4 0 obj\n<< >>\nendobj\n");
    let r = verify_bytes(&evil, &trusting(&pki));
    assert_eq!(failed(&r.details[0]), vec!["coverage"]);
}

#[test]
fn overlay_annotation_or_hidden_widget_after_signing_is_flagged() {
    let pki = pki(1_900_000_000_000);
    let pdf = signed_sample(&pki);
    let evil = append_update(
        &pdf,
        &[
            (8, "<< /Type /Annot /Subtype /FreeText /Rect [72 730 400 780] /Contents (CNY 90000.00) /DA (/Helv 16 Tf 0 g) >>".into()),
            (3, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R /Annots [7 0 R 8 0 R] >>".into()),
        ],
        9,
        1,
    );
    let r = verify_bytes(&evil, &trusting(&pki));
    assert_eq!(failed(&r.details[0]), vec!["coverage"]);
    assert!(hint(&r.details[0], "coverage").contains("FreeText"));
}

#[test]
fn rewriting_the_signature_dictionary_later_is_flagged() {
    let pki = pki(1_900_000_000_000);
    let pdf = signed_sample(&pki);
    // Copy the signed dictionary with a different /M: same ByteRange and /Contents.
    let text = String::from_utf8_lossy(&pdf).into_owned();
    let start = text.rfind("6 0 obj\n").unwrap() + "6 0 obj\n".len();
    let end = start + text[start..].find("\nendobj").unwrap();
    let forged = text[start..end].replace("D:20251122082640Z", "D:20201122082640Z");
    let evil = append_update(&pdf, &[(6, forged)], 8, 1);
    let r = verify_bytes(&evil, &trusting(&pki));
    assert!(!r.verify_result);
    assert!(
        hint(&r.details[0], "coverage").contains("签名字典"),
        "{}",
        hint(&r.details[0], "coverage")
    );
}

#[test]
fn metadata_update_and_a_later_signature_are_allowed() {
    let pki = pki(1_900_000_000_000);
    let pdf = signed_sample(&pki);
    let with_info = append_update_with_trailer(
        &pdf,
        &[(
            8,
            "<< /Producer (Hutong) /ModDate (D:20251123000000Z) >>".into(),
        )],
        9,
        1,
        " /Info 8 0 R",
    );
    let r = verify_bytes(&with_info, &trusting(&pki));
    assert!(r.verify_result, "{:?}", r.details[0].flow_vo_list);
    assert!(hint(&r.details[0], "coverage").starts_with("签名覆盖第 2 个修订版本"));

    let twice = sign_update(&with_info, &pki, 9, &[7, 10], &[7, 10], "Sig2");
    let r = verify_bytes(&twice, &trusting(&pki));
    assert_eq!(r.sign_count, 2);
    assert!(
        r.verify_result,
        "{:?}",
        r.details
            .iter()
            .map(|d| &d.flow_vo_list)
            .collect::<Vec<_>>()
    );
}

#[test]
fn certification_with_p1_forbids_even_metadata_updates() {
    let info = [(12, "<< /Producer (later edit) >>".to_string())];
    let approval = append_update_with_trailer(
        &data("generated/rsa-pkcs7-valid.pdf"),
        &info,
        13,
        1,
        " /Info 12 0 R",
    );
    let r = verify_bytes(&approval, &opts_with(GENERATED_ROOTS));
    assert!(r.verify_result, "{:?}", r.details[0].flow_vo_list);

    let certified = append_update_with_trailer(
        &data("generated/rsa-certified-p1.pdf"),
        &info,
        13,
        1,
        " /Info 12 0 R",
    );
    let r = verify_bytes(&certified, &opts_with(GENERATED_ROOTS));
    assert!(!r.verify_result);
    assert_eq!(failed(&r.details[0]), vec!["coverage"]);
    assert!(hint(&r.details[0], "coverage").contains("DocMDP P=1"));
}

#[test]
fn a_signature_not_covering_its_whole_revision_fails_coverage() {
    let pki = pki(1_900_000_000_000);
    // The second range stops before `%%EOF`: intact and verifying, but not the revision.
    let mut signing = new_field_signing(&pki, &Layout::plain(), 6, &[7], &[7], "Sig1");
    signing.tail = 6;
    let pdf = signing.sign(&data("generated/sm2-base-unsigned.pdf"));
    let r = verify_bytes(&pdf, &trusting(&pki));
    assert!(!r.verify_result);
    assert_eq!(failed(&r.details[0]), vec!["coverage"]);
    assert_eq!(
        hint(&r.details[0], "coverage"),
        "签名未覆盖整个文档修订版本"
    );
}

// ---------------------------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = b"%PDF-1.7\n".to_vec();
        bytes.extend(body);
        let _ = verify_document(&bytes, "r.pdf", &VerifyOptions::default(), &EmptyRegistry);
    }

    #[test]
    fn mutated_signed_pdfs_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<u32>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<u32>()),
    ) {
        let files = [
            "generated/sm2-cms-pkcs7oid-detached.pdf",
            "generated/sm2-ses-v4-seal.pdf",
            "pyhanko/pades-lta-dss-indirect-arrs-test.pdf",
            "rub-nds-pdf-attacker/replace/variant-1_replace-via-overlay/4_original-document-shadowed-signed-manipulated.pdf",
        ];
        let mut bytes = data(files[which]);
        for (pos, val) in edits {
            let len = bytes.len();
            bytes[pos as usize % len] = val;
        }
        if let Some(c) = cut {
            let len = bytes.len();
            bytes.truncate(c as usize % len);
        }
        let _ = verify_document(&bytes, "m.pdf", &VerifyOptions::default(), &EmptyRegistry);
    }
}

// Issue 12 point 1: a CMS SignerInfo whose SM2 value lacks the sign octet of r or s.
#[test]
fn cms_signature_without_sign_octet_verifies_with_a_note_and_stays_cryptographic() {
    let pki = pki(1_900_000_000_000);
    let base = data("generated/sm2-base-unsigned.pdf");
    let mut signing = new_field_signing(&pki, &Layout::plain(), 6, &[7], &[7], "Sig1");
    signing.quirky = true;
    let pdf = signing.sign(&base);
    let r = verify_bytes(&pdf, &trusting(&pki));
    assert!(r.verify_result, "{:?}", failed(&r.details[0]));
    let sig = &r.details[0];
    assert!(failed(sig).is_empty(), "{:?}", failed(sig));
    assert!(hint(sig, "signature").contains(LENIENT_INTEGER_HINT));
    // The same file with one signed byte changed fails: the lenient reading softens nothing.
    let mut tampered = pdf.clone();
    let at = tampered.windows(4).position(|w| w == b"/Pag").unwrap();
    tampered[at + 1] = b'Q';
    let r = verify_bytes(&tampered, &trusting(&pki));
    assert!(!r.verify_result);
    // A strict signature carries no such note.
    let r = verify_bytes(&signed_sample(&pki), &trusting(&pki));
    assert!(!hint(&r.details[0], "signature").contains(LENIENT_INTEGER_HINT));
}

// Issue 12 point 6: a broken cross-reference table is reported in our words, not lopdf's.
#[test]
fn a_broken_xref_is_reported_in_our_words() {
    let pki = pki(1_900_000_000_000);
    let pdf = signed_sample(&pki);
    let mut texts = Vec::new();
    // Every cross-reference keyword and offset destroyed, and the file cut after the first
    // revision's trailer keyword.
    let broken: Vec<u8> = String::from_utf8_lossy(&pdf)
        .replace("xref", "xXeX")
        .replace("startxref", "startXXXX")
        .into_bytes();
    let cut = pdf[..pdf.len() / 3].to_vec();
    for bytes in [
        broken,
        cut,
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\nstartxref\n999999\n%%EOF".to_vec(),
    ] {
        let r = verify_document(&bytes, "broken.pdf", &trusting(&pki), &EmptyRegistry).unwrap();
        if let Some(e) = &r.error {
            texts.push(e.clone());
        }
        for sig in &r.details {
            texts.extend(
                sig.flow_vo_list
                    .iter()
                    .filter(|f| f.status == 0)
                    .map(|f| f.hint.clone()),
            );
        }
        assert!(!r.verify_result);
    }
    assert!(!texts.is_empty());
    // The parser itself gave up on one of them: its error is ours.
    assert!(
        texts.iter().any(|t| t.contains("PDF 无法解析：文件结构")),
        "{texts:?}"
    );
    for t in &texts {
        let word = words::library_word(t, &[]);
        assert!(word.is_none(), "library text {word:?} in {t:?}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// Bounded "fuzzing" of the PDF entry point (cargo-fuzz is not available offline): a signed
    /// file with random bytes changed or cut never panics, and whatever the report says about
    /// a failure is our sentence, not a parser's English.
    #[test]
    fn mutated_signed_pdfs_get_our_errors(
        edits in proptest::collection::vec((0usize..1 << 20, proptest::num::u8::ANY), 1..12),
        cut in proptest::option::of(0usize..1 << 20),
    ) {
        static PDF: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
        let (pdf, root) = PDF.get_or_init(|| {
            let pki = pki(1_900_000_000_000);
            (signed_sample(&pki), pki.root_cert.clone())
        });
        let mut bytes = pdf.clone();
        for (at, b) in edits {
            let at = at % bytes.len();
            bytes[at] = b;
        }
        if let Some(c) = cut {
            bytes.truncate(c % bytes.len());
        }
        let opts = VerifyOptions { trust_anchors: vec![root.clone()], ..Default::default() };
        let r = match verify_document(&bytes, "fuzz.pdf", &opts, &EmptyRegistry) {
            Ok(r) => r,
            // A damaged header: not recognised as a PDF at all, said in Chinese.
            Err(e) => {
                proptest::prop_assert!(!e.to_string().is_ascii(), "{}", e);
                return Ok(());
            }
        };
        let texts = r.error.iter().cloned().chain(
            r.details.iter().flat_map(|s| s.flow_vo_list.iter().filter(|f| f.status == 0).map(|f| f.hint.clone())),
        );
        for t in texts {
            let word = words::library_word(&t, &[]);
            proptest::prop_assert!(word.is_none(), "library text {:?} in {:?}", word, t);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Issue 12 points 3 and 4: generated members of each attack family, and the updates real
// producers make that must not be flagged (rules: docs/verification-rules.md)
// ---------------------------------------------------------------------------------------------

fn by_field<'a>(r: &'a DocumentReport, name: &str) -> &'a SignatureReport {
    r.details
        .iter()
        .find(|s| s.location == name)
        .unwrap_or_else(|| panic!("no signature {name}"))
}

/// Signature `sig` of `pdf` fails `coverage`, and the hint contains every phrase (the object
/// and the revision, at least).
fn assert_caught(variant: &str, pdf: &[u8], pki: &Pki, sig: &str, phrases: &[&str]) {
    let r = verify_bytes(pdf, &trusting(pki));
    assert!(r.error.is_none(), "{variant}: {:?}", r.error);
    let s = by_field(&r, sig);
    assert!(
        failed(s).contains(&"coverage"),
        "{variant}: coverage passed: {}",
        hint(s, "coverage")
    );
    let h = hint(s, "coverage");
    for p in phrases {
        assert!(h.contains(p), "{variant}: {p:?} not in {h}");
    }
    assert!(!r.verify_result, "{variant}");
}

/// Every signature of `pdf` passes `coverage` (and, these being our own signatures, all steps).
/// Returns the `coverage` hints, which say what the later updates changed.
fn assert_accepted(variant: &str, pdf: &[u8], pki: &Pki, signatures: usize) -> String {
    let r = verify_bytes(pdf, &trusting(pki));
    assert!(r.error.is_none(), "{variant}: {:?}", r.error);
    assert_eq!(r.details.len(), signatures, "{variant}: signature count");
    let mut hints = String::new();
    for (i, s) in r.details.iter().enumerate() {
        assert!(
            !failed(s).contains(&"coverage"),
            "{variant} #{i}: {}",
            hint(s, "coverage")
        );
        assert!(
            hint(s, "coverage").starts_with("签名覆盖"),
            "{variant} #{i}"
        );
        hints.push_str(hint(s, "coverage"));
        hints.push('\n');
    }
    hints
}

/// Signature `sig` passes `coverage` (the others may fail other steps).
fn assert_coverage_passes(variant: &str, pdf: &[u8], pki: &Pki, sig: &str) -> String {
    let r = verify_bytes(pdf, &trusting(pki));
    let s = by_field(&r, sig);
    assert!(
        !failed(s).contains(&"coverage"),
        "{variant}: {}",
        hint(s, "coverage")
    );
    hint(s, "coverage").to_string()
}

/// An unsigned update adding annotation 8 (with appearance 9 when given) to the page of a
/// sample whose only annotation is widget 7.
fn add_annotation(pdf: &[u8], layout: &Layout, annot: &str, ap: Option<String>) -> Vec<u8> {
    let mut objects = vec![(3, layout.page(&[7, 8])), (8, annot.to_string())];
    objects.extend(ap.map(|a| (9, a)));
    append_update(pdf, &objects, 10, 1)
}

/// A white box hiding what lies under an annotation's rectangle, with new text on it.
fn overlay() -> String {
    form_xobject(
        "1 g 0 0 500 100 re f 0 g BT /Helv 16 Tf 10 60 Td (Contract amount CNY 90000.00) Tj ET",
    )
}

const EVIL_ANNOTATIONS: &[(&str, &str)] = &[
    (
        "FreeText",
        "<< /Type /Annot /Subtype /FreeText /Rect [72 750 400 780] /Contents (CNY 90000.00) /DA (/Helv 16 Tf 0 g) /F 4 >>",
    ),
    (
        "Stamp",
        "<< /Type /Annot /Subtype /Stamp /Rect [60 700 560 800] /F 4 /AP << /N 9 0 R >> >>",
    ),
    (
        "Square",
        "<< /Type /Annot /Subtype /Square /Rect [72 740 300 790] /IC [1 1 1] /C [1 1 1] /F 4 >>",
    ),
    (
        "Link",
        "<< /Subtype /Link /Rect [72 740 400 780] /A << /S /URI /URI (http://evil.example) >> /Border [0 0 0] >>",
    ),
    (
        "Ink",
        "<< /Type /Annot /Subtype /Ink /Rect [72 740 400 780] /InkList [[72 760 400 760]] /BS << /W 30 >> /C [1 1 1] /F 4 >>",
    ),
    (
        "Widget",
        "<< /Type /Annot /Subtype /Widget /FT /Tx /T (Evil) /V (CNY 90000.00) /Rect [72 740 400 780] /F 4 /AP << /N 9 0 R >> >>",
    ),
];

// Mainka et al. 2021, Evil Annotation Attack: annotations of several kinds, some drawing an
// opaque appearance over the signed text, added after a P=2 or P=1 certification (and, by
// this verifier's choice, after an approval signature); only P=3 permits them.
#[test]
fn evil_annotations_after_a_certification_fail_coverage_naming_object_and_revision() {
    let pki = pki(1_900_000_000_000);
    let (p2, layout2) = certified_sample(&pki, 2);
    for (kind, annot) in EVIL_ANNOTATIONS {
        let evil = add_annotation(&p2, &layout2, annot, Some(overlay()));
        assert_caught(
            &format!("P=2 {kind}"),
            &evil,
            &pki,
            "Sig1",
            &[kind, "对象 8 0", "第 3 个修订版本"],
        );
    }
    let (p1, layout1) = certified_sample(&pki, 1);
    for (kind, annot) in EVIL_ANNOTATIONS.iter().take(3) {
        let evil = add_annotation(&p1, &layout1, annot, Some(overlay()));
        assert_caught(
            &format!("P=1 {kind}"),
            &evil,
            &pki,
            "Sig1",
            &["DocMDP P=1", "第 3 个修订版本", "对象 8 0", kind],
        );
    }
    let approval = signed_sample(&pki);
    let evil = add_annotation(
        &approval,
        &Layout::plain(),
        EVIL_ANNOTATIONS[1].1,
        Some(overlay()),
    );
    assert_caught(
        "approval Stamp",
        &evil,
        &pki,
        "Sig1",
        &["Stamp", "对象 8 0", "EAA"],
    );

    // P=3 permits annotations (ISO 32000-1 Table 254) — but not new form fields.
    let (p3, layout3) = certified_sample(&pki, 3);
    for (kind, annot) in EVIL_ANNOTATIONS.iter().take(5) {
        let commented = add_annotation(&p3, &layout3, annot, Some(overlay()));
        assert_accepted(&format!("P=3 {kind}"), &commented, &pki, 1);
    }
    let reused = append_update(
        &p3,
        &[
            (3, layout3.page(&[7, 5])),
            (5, EVIL_ANNOTATIONS[0].1.to_string()),
        ],
        8,
        1,
    );
    assert_caught(
        "P=3 annotation in the font's number",
        &reused,
        &pki,
        "Sig1",
        &["对象 5 0", "第 3 个修订版本"],
    );
    let widget = add_annotation(&p3, &layout3, EVIL_ANNOTATIONS[5].1, Some(overlay()));
    assert_caught(
        "P=3 new text field",
        &widget,
        &pki,
        "Sig1",
        &["对象 8 0", "非签名"],
    );
}

/// An update adding signature field `Sig2` to the certified sample (signature 8 when
/// signed, widget 9, appearance 10 covering the signed text).
fn sneaky_objects(layout: &Layout, widget: &str) -> Vec<(u32, String)> {
    vec![
        (1, layout.catalog(&[7, 9])),
        (3, layout.page(&[7, 9])),
        (9, widget.to_string()),
        (10, overlay()),
    ]
}

// Mainka et al. 2021, Sneaky Signature Attack: after a P=2 certification a new signature
// field whose appearance covers page content, signed, unsigned, without /V, as a kid, with
// reversed rectangle, in an Acrobat-style object stream.
#[test]
fn sneaky_signatures_after_a_certification_fail_coverage() {
    let pki = pki(1_900_000_000_000);
    let (cert, layout) = certified_sample(&pki, 2);
    let rect = "60 700 560 800";

    let signed = Signing::new(
        &pki,
        8,
        sneaky_objects(&layout, &visible_sig_widget("Sig2", Some(8), rect, 10)),
        11,
    )
    .sign(&cert);
    assert_caught(
        "signed",
        &signed,
        &pki,
        "Sig1",
        &["对象 9 0", "第 3 个修订版本", "SSA"],
    );

    let mut packed = Signing::new(
        &pki,
        8,
        sneaky_objects(&layout, &visible_sig_widget("Sig2", Some(8), rect, 10)),
        11,
    );
    packed.xref = Xref::Stream;
    assert_caught(
        "signed, object stream",
        &packed.sign(&cert),
        &pki,
        "Sig1",
        &["对象 9 0", "第 3 个修订版本", "SSA"],
    );

    let mut objects = sneaky_objects(&layout, &visible_sig_widget("Sig2", Some(8), rect, 10));
    objects.push((8, "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /adbe.pkcs7.detached /ByteRange [0 0 0 0] /Contents <00> >>".into()));
    assert_caught(
        "unsigned value",
        &append_update(&cert, &objects, 11, 1),
        &pki,
        "Sig1",
        &["对象 9 0", "第 3 个修订版本", "SSA"],
    );

    let no_v = sneaky_objects(&layout, &visible_sig_widget("Sig2", None, rect, 10));
    assert_caught(
        "no /V",
        &append_update(&cert, &no_v, 11, 1),
        &pki,
        "Sig1",
        &["对象 9 0", "第 3 个修订版本", "SSA"],
    );

    let reversed = visible_sig_widget("Sig2", None, "560 800 60 700", 10).replace("/F 4", "/F 0");
    let objects = sneaky_objects(&layout, &reversed);
    assert_caught(
        "reversed rectangle",
        &append_update(&cert, &objects, 11, 1),
        &pki,
        "Sig1",
        &["对象 9 0", "SSA"],
    );

    let rollover = visible_sig_widget("Sig2", None, rect, 10)
        .replace("/AP << /N 10 0 R >>", "/AP << /R 10 0 R >>");
    let objects = sneaky_objects(&layout, &rollover);
    assert_caught(
        "rollover appearance only",
        &append_update(&cert, &objects, 11, 1),
        &pki,
        "Sig1",
        &["对象 9 0", "SSA"],
    );

    // Without DocMDP an unsigned new field that draws something is an overlay too.
    let approval = signed_sample(&pki);
    let objects = sneaky_objects(
        &Layout::plain(),
        &visible_sig_widget("Sig2", None, rect, 10),
    );
    assert_caught(
        "approval, unsigned visible field",
        &append_update(&approval, &objects, 11, 1),
        &pki,
        "Sig1",
        &["对象 9 0", "未签名但可见", "第 3 个修订版本"],
    );

    let kids = vec![
        (1, layout.catalog(&[7, 9])),
        (3, layout.page(&[7, 11])),
        (9, "<< /FT /Sig /T (Sig2) /Kids [11 0 R] >>".into()),
        (10, overlay()),
        (
            11,
            format!(
                "<< /Type /Annot /Subtype /Widget /Parent 9 0 R /Rect [{rect}] /F 4 /P 3 0 R /AP << /N 10 0 R >> >>"
            ),
        ),
    ];
    assert_caught(
        "kid widget",
        &append_update(&cert, &kids, 12, 1),
        &pki,
        "Sig1",
        &["对象 11 0", "第 3 个修订版本", "SSA"],
    );
}

// pyHanko `SigFieldCreationRule`: new signature fields that draw nothing are allowed after a
// certification; a pre-created empty field may be signed visibly; without DocMDP new fields
// may be visible.
#[test]
fn invisible_new_signature_fields_and_pre_created_ones_pass_after_a_certification() {
    let pki = pki(1_900_000_000_000);
    let (cert, layout) = certified_sample(&pki, 2);
    let rect = "60 700 560 800";
    let invisible = Signing::new(
        &pki,
        8,
        sneaky_objects(&layout, &invisible_sig_widget("Sig2", Some(8))),
        11,
    )
    .sign(&cert);
    let says = assert_accepted("zero rectangle", &invisible, &pki, 2);
    assert!(says.contains("新增签名域 Sig2"), "{says}");
    let hidden = visible_sig_widget("Sig2", Some(8), rect, 10).replace("/F 4", "/F 2");
    assert_accepted(
        "Hidden",
        &Signing::new(&pki, 8, sneaky_objects(&layout, &hidden), 11).sign(&cert),
        &pki,
        2,
    );
    let no_view = visible_sig_widget("Sig2", Some(8), rect, 10).replace("/F 4", "/F 36");
    assert_accepted(
        "NoView",
        &Signing::new(&pki, 8, sneaky_objects(&layout, &no_view), 11).sign(&cert),
        &pki,
        2,
    );
    let no_ap = visible_sig_widget("Sig2", Some(8), rect, 10).replace(" /AP << /N 10 0 R >>", "");
    assert_accepted(
        "no appearance",
        &Signing::new(&pki, 8, sneaky_objects(&layout, &no_ap), 11).sign(&cert),
        &pki,
        2,
    );

    // The certified form: its pre-created visible field `Approval` signed with a new look.
    let (form_cert, _) = form_document(&pki, Some(2));
    let fill = Signing::new(
        &pki,
        form::NEXT,
        vec![
            (
                form::APPROVAL,
                visible_sig_widget(
                    "Approval",
                    Some(form::NEXT),
                    "300 100 500 140",
                    form::NEXT + 1,
                ),
            ),
            (
                form::NEXT + 1,
                form_xobject("BT /Helv 10 Tf 4 15 Td (Signed by Zhang San) Tj ET"),
            ),
        ],
        form::NEXT + 2,
    )
    .sign(&form_cert);
    assert_accepted("pre-created field after P=2", &fill, &pki, 2);

    // No DocMDP: a second approval signature in a new visible field.
    let approval = signed_sample(&pki);
    let second = Signing::new(
        &pki,
        8,
        sneaky_objects(
            &Layout::plain(),
            &visible_sig_widget("Sig2", Some(8), rect, 10),
        ),
        11,
    )
    .sign(&approval);
    assert_accepted("approval, new visible field", &second, &pki, 2);
}

/// An unsigned update of the signed form document.
fn form_update(pdf: &[u8], objects: &[(u32, String)]) -> Vec<u8> {
    append_update(pdf, objects, form::NEXT + 4, 1)
}

fn text_widget(name: &str, value: &str, y: u32, ap: &str) -> String {
    format!(
        "<< /Type /Annot /Subtype /Widget /FT /Tx /T ({name}) /V ({value}) /DA (/Helv 12 Tf 0 g) /Rect [72 {y} 272 {}] /F 4 /P 3 0 R /AP {ap} >>",
        y + 20
    )
}

// pyHanko `_allow_appearance_update` and its reference-count check on shared appearance
// dictionaries: a form fill may replace the filled widget's own appearance, never one that
// the signed revision also reached from elsewhere.
#[test]
fn overwriting_a_shared_appearance_fails_coverage_naming_the_other_route() {
    use form::*;
    let pki = pki(1_900_000_000_000);
    let (signed, _) = form_document(&pki, None);
    let ap = |t: &str| form_xobject(&format!("BT /Helv 12 Tf 2 5 Td ({t}) Tj ET"));

    let shared_stream = form_update(
        &signed,
        &[
            (
                NAME,
                text_widget("Name", "Bob", 600, &format!("<< /N {NAME_AP} 0 R >>")),
            ),
            (NAME_AP, ap("Bob")),
        ],
    );
    assert_caught(
        "stream shared with another widget",
        &shared_stream,
        &pki,
        "Sig1",
        &["对象 21 0", "对象 29 0 的 /AP/N", "第 4 个修订版本"],
    );

    let shared_dict = form_update(
        &signed,
        &[
            (
                AMOUNT,
                text_widget("Amount", "90000.00", 570, &format!("{AMOUNT_AP_DICT} 0 R")),
            ),
            (AMOUNT_AP_DICT, format!("<< /N {NEXT} 0 R >>")),
            (NEXT, ap("90000.00")),
        ],
    );
    assert_caught(
        "appearance dictionary shared by reference",
        &shared_dict,
        &pki,
        "Sig1",
        &["对象 23 0", "对象 31 0 的 /AP", "第 4 个修订版本"],
    );

    let page_xobject = form_update(
        &signed,
        &[
            (
                STAMP,
                text_widget("Stamp", "void", 480, &format!("<< /N {LOGO} 0 R >>")),
            ),
            (LOGO, ap("VOID")),
        ],
    );
    assert_caught(
        "stream that is also a page XObject",
        &page_xobject,
        &pki,
        "Sig1",
        &[
            "对象 11 0",
            "对象 3 0 的 /Resources/XObject/Logo",
            "第 4 个修订版本",
        ],
    );

    let down_appearance = form_update(
        &signed,
        &[
            (
                AMOUNT,
                text_widget("Amount", "90000.00", 570, &format!("{AMOUNT_AP_DICT} 0 R")),
            ),
            (AMOUNT_AP, ap("90000.00")),
        ],
    );
    assert_caught(
        "stream also another widget's /D",
        &down_appearance,
        &pki,
        "Sig1",
        &["对象 25 0", "第 4 个修订版本"],
    );

    let signing_clobbers = Signing::new(
        &pki,
        NEXT,
        vec![
            (
                APPROVAL,
                visible_sig_widget("Approval", Some(NEXT), "300 100 500 140", APPROVAL_AP),
            ),
            (APPROVAL_AP, ap("Signed by Zhang San")),
        ],
        NEXT + 1,
    )
    .sign(&signed);
    assert_caught(
        "signing a field whose appearance another field shows",
        &signing_clobbers,
        &pki,
        "Sig1",
        &["对象 26 0", "对象 27 0 的 /AP/N", "第 4 个修订版本"],
    );

    let in_place_only = form_update(&signed, &[(NAME_AP, ap("Bob"))]);
    assert_caught(
        "in-place rewrite, field unchanged",
        &in_place_only,
        &pki,
        "Sig1",
        &["对象 21 0", "第 4 个修订版本"],
    );
}

// Page resources reached through a route a rule approves (a filled widget's appearance, the
// DSS, /Info, XMP, a new signature) are still page resources: overwriting them fails.
#[test]
fn overwriting_page_resources_through_an_approved_route_fails_coverage() {
    use form::*;
    let pki = pki(1_900_000_000_000);
    let (signed, layout) = form_document(&pki, None);
    let courier = "<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>".to_string();

    let via_appearance = form_update(
        &signed,
        &[
            (
                NAME,
                text_widget("Name", "Bob", 600, &format!("<< /N {NEXT} 0 R >>")),
            ),
            (NEXT, form_xobject("BT /Helv 12 Tf 2 5 Td (Bob) Tj ET")),
            (5, courier.clone()),
        ],
    );
    assert_caught(
        "font under a new appearance",
        &via_appearance,
        &pki,
        "Sig1",
        &["对象 5 0", "第 4 个修订版本"],
    );

    let xobject = form_update(
        &signed,
        &[
            (
                CITY,
                text_widget("City", "Shanghai", 450, &format!("<< /N {NEXT} 0 R >>")),
            ),
            (
                NEXT,
                stream(
                    "/Type /XObject /Subtype /Form /BBox [0 0 200 40] /Resources << /XObject << /L 11 0 R >> >>",
                    "/L Do",
                ),
            ),
            (LOGO, overlay()),
        ],
    );
    assert_caught(
        "XObject under a new appearance",
        &xobject,
        &pki,
        "Sig1",
        &[
            "对象 11 0",
            "对象 3 0 的 /Resources/XObject/Logo",
            "第 4 个修订版本",
        ],
    );

    let mut dss_layout = layout.clone();
    dss_layout
        .catalog_extra
        .push_str(&format!(" /DSS {NEXT} 0 R"));
    let mut all: Vec<u32> = FIELDS.to_vec();
    all.push(SIG1_WIDGET);
    let dss = form_update(
        &signed,
        &[
            (1, dss_layout.catalog(&all)),
            (NEXT, "<< /Type /DSS /Certs [5 0 R] >>".into()),
            (5, stream("", "not a font")),
        ],
    );
    assert_caught(
        "font in the DSS",
        &dss,
        &pki,
        "Sig1",
        &["对象 5 0", "第 4 个修订版本"],
    );

    let info = append(
        &signed,
        &[(5, "<< /Producer (Hutong) >>".into())],
        &[],
        NEXT,
        " /Info 5 0 R",
        Xref::Table,
    );
    assert_caught(
        "font as /Info",
        &info,
        &pki,
        "Sig1",
        &["对象 5 0", "第 4 个修订版本"],
    );

    let mut xmp_layout = layout.clone();
    xmp_layout
        .catalog_extra
        .push_str(&format!(" /Metadata {LOGO} 0 R"));
    let xmp = form_update(
        &signed,
        &[
            (1, xmp_layout.catalog(&all)),
            (
                LOGO,
                stream(
                    "/Type /Metadata /Subtype /XML",
                    "<x:xmpmeta xmlns:x='adobe:ns:meta/'/>",
                ),
            ),
        ],
    );
    assert_caught(
        "XObject as XMP",
        &xmp,
        &pki,
        "Sig1",
        &["对象 11 0", "第 4 个修订版本"],
    );

    let mut fields = all.clone();
    fields.push(NEXT);
    let sig_reuses_font = Signing::new(
        &pki,
        5,
        vec![
            (1, layout.catalog(&fields)),
            (3, layout.page(&fields)),
            (NEXT, invisible_sig_widget("Sig2", Some(5))),
        ],
        NEXT + 1,
    )
    .sign(&signed);
    assert_caught(
        "signature dictionary in the font's number",
        &sig_reuses_font,
        &pki,
        "Sig1",
        &["对象 5 0", "第 4 个修订版本"],
    );
}

// Shadow attacks (Mainka et al., NDSS 2021): hide, replace and hide-and-replace by a later
// update of page content, XObjects, fonts, resources or a hidden field's flags.
#[test]
fn shadow_attack_variants_fail_coverage() {
    use form::*;
    let pki = pki(1_900_000_000_000);
    let (signed, layout) = form_document(&pki, None);
    let mut all: Vec<u32> = FIELDS.to_vec();
    all.push(SIG1_WIDGET);

    let hide = form_update(&signed, &[(LOGO, overlay())]);
    assert_caught(
        "hide: XObject redefined",
        &hide,
        &pki,
        "Sig1",
        &["对象 11 0", "第 4 个修订版本"],
    );

    let replace = form_update(
        &signed,
        &[(
            LOGO_CONTENT,
            stream("", "BT /F1 16 Tf 72 700 Td (CNY 90000.00) Tj ET"),
        )],
    );
    assert_caught(
        "replace: content stream redefined",
        &replace,
        &pki,
        "Sig1",
        &["页面内容流 10 0 被替换", "第 4 个修订版本"],
    );

    let mut overlaid = layout.clone();
    overlaid.page_contents = format!("[4 0 R {LOGO_CONTENT} 0 R {NEXT} 0 R]");
    let hide_and_replace = form_update(
        &signed,
        &[
            (3, overlaid.page(&all)),
            (
                NEXT,
                stream(
                    "",
                    "1 g 60 700 500 100 re f 0 g BT /F1 16 Tf 72 760 Td (CNY 90000.00) Tj ET",
                ),
            ),
        ],
    );
    assert_caught(
        "hide-and-replace: content appended",
        &hide_and_replace,
        &pki,
        "Sig1",
        &["第 1 页 的 /Contents 被修改", "第 4 个修订版本"],
    );

    let font = form_update(
        &signed,
        &[(
            5,
            "<< /Type /Font /Subtype /Type1 /BaseFont /Symbol >>".into(),
        )],
    );
    assert_caught(
        "replace: font redefined",
        &font,
        &pki,
        "Sig1",
        &["对象 5 0", "第 4 个修订版本"],
    );

    let mut swapped = layout.clone();
    swapped.page_resources = format!("<< /Font << /F1 5 0 R >> /XObject << /Logo {NEXT} 0 R >> >>");
    let resources = form_update(&signed, &[(3, swapped.page(&all)), (NEXT, overlay())]);
    assert_caught(
        "hide: resources redirected",
        &resources,
        &pki,
        "Sig1",
        &["第 1 页 的 /Resources 被修改", "第 4 个修订版本"],
    );

    let approved = Signing::new(
        &pki,
        NEXT,
        vec![
            (
                APPROVAL,
                visible_sig_widget("Approval", Some(NEXT), "300 100 500 140", NEXT + 1),
            ),
            (NEXT + 1, overlay()),
        ],
        NEXT + 2,
    )
    .sign(&signed);
    let swapped_look = append_update(
        &approved,
        &[
            (
                APPROVAL,
                visible_sig_widget("Approval", Some(NEXT), "300 100 500 140", NEXT + 2),
            ),
            (NEXT + 2, overlay()),
        ],
        NEXT + 3,
        1,
    );
    assert_caught(
        "replace: a signed field's appearance swapped",
        &swapped_look,
        &pki,
        "Approval",
        &["已签名的签名域被改写", "对象 24 0", "第 5 个修订版本"],
    );

    // Replace via overlay: the value stays, the appearance shows something else — a new
    // stream, the exclusive one rewritten in place, or a missing one supplied.
    let new_look = form_update(
        &signed,
        &[
            (
                CITY,
                text_widget("City", "Beijing", 450, &format!("<< /N {NEXT} 0 R >>")),
            ),
            (NEXT, form_xobject("BT /Helv 12 Tf 2 5 Td (Shanghai) Tj ET")),
        ],
    );
    assert_caught(
        "replace: new appearance, same value",
        &new_look,
        &pki,
        "Sig1",
        &["/AP 被替换但域值未改变", "对象 35 0", "第 4 个修订版本"],
    );
    let rewritten = form_update(
        &signed,
        &[(
            CITY_AP,
            form_xobject("BT /Helv 12 Tf 2 5 Td (Shanghai) Tj ET"),
        )],
    );
    assert_caught(
        "replace: appearance rewritten in place",
        &rewritten,
        &pki,
        "Sig1",
        &["对象 36 0", "对象 35 0 的 /AP/N", "第 4 个修订版本"],
    );
    let supplied = form_update(
        &signed,
        &[(
            99,
            form_xobject("BT /Helv 12 Tf 2 5 Td (CNY 90000.00) Tj ET"),
        )],
    );
    assert_caught(
        "replace: missing appearance supplied",
        &supplied,
        &pki,
        "Sig1",
        &["对象 99 0", "第 4 个修订版本"],
    );

    // Hide-and-replace by cross-reference data alone: the update redirects the logo's
    // content stream to the hidden field's appearance already in the signed revision.
    let hidden_at = signed
        .windows(8)
        .rposition(|w| w == format!("{SHADOW_AP} 0 obj").as_bytes())
        .unwrap();
    let mut redirected = signed.clone();
    let xref_at = redirected.len();
    redirected.extend(
        format!(
            "xref\n{LOGO_CONTENT} 1\n{hidden_at:010} 00000 n \ntrailer\n<< /Size {NEXT} /Root 1 0 R /Prev {} >>\nstartxref\n{xref_at}\n%%EOF\n",
            startxref(&signed)
        )
        .as_bytes(),
    );
    assert_caught(
        "hide-and-replace: xref redirected",
        &redirected,
        &pki,
        "Sig1",
        &["10 0", "第 4 个修订版本"],
    );

    let unhide = form_update(
        &signed,
        &[(
            SHADOW,
            text_widget(
                "Shadow",
                "90000.00",
                570,
                &format!("<< /N {SHADOW_AP} 0 R >>"),
            ),
        )],
    );
    assert_caught(
        "hide-and-replace: hidden field shown",
        &unhide,
        &pki,
        "Sig1",
        &["/F 被修改", "对象 33 0", "第 4 个修订版本"],
    );
}

// Point 4: form fills that replace the filled widget's own appearance (a new stream, or the
// widget's exclusive stream in place), and malformed original appearances replaced.
#[test]
fn form_fills_replacing_their_own_appearance_pass() {
    use form::*;
    let pki = pki(1_900_000_000_000);
    let (signed, _) = form_document(&pki, None);
    let ap = |t: &str| form_xobject(&format!("BT /Helv 12 Tf 2 5 Td ({t}) Tj ET"));

    let new_stream = form_update(
        &signed,
        &[
            (
                NAME,
                text_widget("Name", "Bob", 600, &format!("<< /N {NEXT} 0 R >>")),
            ),
            (NEXT, ap("Bob")),
            (
                AMOUNT,
                text_widget(
                    "Amount",
                    "20000.00",
                    570,
                    &format!("<< /N {} 0 R >>", NEXT + 1),
                ),
            ),
            (NEXT + 1, ap("20000.00")),
        ],
    );
    let says = assert_accepted("new appearance streams", &new_stream, &pki, 1);
    assert!(says.contains("表单填写 Amount、表单填写 Name"), "{says}");

    let in_place = form_update(
        &signed,
        &[
            (
                CITY,
                text_widget("City", "Shanghai", 450, &format!("<< /N {CITY_AP} 0 R >>")),
            ),
            (CITY_AP, ap("Shanghai")),
        ],
    );
    assert_accepted("exclusive stream rewritten in place", &in_place, &pki, 1);

    let malformed = form_update(
        &signed,
        &[
            (
                NOTE,
                text_widget("Note", "checked", 420, &format!("<< /N {NEXT} 0 R >>")),
            ),
            (NEXT, ap("checked")),
            (
                MEMO,
                text_widget("Memo", "seen", 390, &format!("{MEMO_AP} 0 R")),
            ),
            (MEMO_AP, format!("<< /N {} 0 R >>", NEXT + 1)),
            (NEXT + 1, ap("seen")),
        ],
    );
    assert_accepted("malformed appearances replaced", &malformed, &pki, 1);
    let supplied = form_update(
        &signed,
        &[
            (NOTE, text_widget("Note", "late", 420, "<< /N 99 0 R >>")),
            (99, ap("late")),
        ],
    );
    assert_accepted(
        "missing appearance supplied with the value",
        &supplied,
        &pki,
        1,
    );

    // The same fill after a P=2 certification; P=1 forbids it.
    let (certified, _) = form_document(&pki, Some(2));
    let fill = form_update(
        &certified,
        &[
            (
                CITY,
                text_widget("City", "Shanghai", 450, &format!("<< /N {CITY_AP} 0 R >>")),
            ),
            (CITY_AP, ap("Shanghai")),
        ],
    );
    assert_accepted("fill after P=2", &fill, &pki, 1);
}

// Point 4: second, third and fourth approval signatures (pre-created fields, one of them with
// an appearance it shares and leaves alone, then a new visible field), Acrobat-style object
// streams and XMP updates, a hybrid-reference update, DSS and a document time-stamp.
#[test]
fn producers_multi_signature_updates_pass() {
    use form::*;
    let pki = pki(1_900_000_000_000);
    let (one, layout) = form_document(&pki, None);
    let two = Signing::new(
        &pki,
        NEXT,
        vec![
            (
                APPROVAL,
                visible_sig_widget("Approval", Some(NEXT), "300 100 500 140", NEXT + 1),
            ),
            (
                NEXT + 1,
                form_xobject("BT /Helv 10 Tf 4 15 Td (Zhang San) Tj ET"),
            ),
        ],
        NEXT + 2,
    )
    .sign(&one);
    let mut third = Signing::new(
        &pki,
        NEXT + 2,
        vec![(
            APPROVAL2,
            visible_sig_widget("Approval2", Some(NEXT + 2), "300 150 500 190", APPROVAL_AP),
        )],
        NEXT + 3,
    );
    third.xref = Xref::Stream;
    let three = third.sign(&two);
    let mut all: Vec<u32> = FIELDS.to_vec();
    all.extend([SIG1_WIDGET, NEXT + 4]);
    let mut fourth = Signing::new(
        &pki,
        NEXT + 5,
        vec![
            (1, layout.catalog(&all)),
            (3, layout.page(&all)),
            (
                NEXT + 4,
                visible_sig_widget("Sig4", Some(NEXT + 5), "72 100 272 140", NEXT + 6),
            ),
            (
                NEXT + 6,
                form_xobject("BT /Helv 10 Tf 4 15 Td (Li Si) Tj ET"),
            ),
        ],
        NEXT + 7,
    );
    fourth.xref = Xref::Hybrid;
    let four = fourth.sign(&three);
    assert_accepted("four approval signatures", &four, &pki, 4);

    // Acrobat: XMP metadata added and rewritten in object streams around a second signature.
    let signed = signed_sample(&pki);
    let mut xmp = Layout::plain();
    xmp.catalog_extra = " /Metadata 8 0 R".into();
    let meta = |t: &str| {
        stream(
            "/Type /Metadata /Subtype /XML",
            &format!("<x:xmpmeta xmlns:x='adobe:ns:meta/'><d>{t}</d></x:xmpmeta>"),
        )
    };
    let with_xmp = append(
        &signed,
        &[],
        &[(1, xmp.catalog(&[7])), (8, meta("one"))],
        9,
        "",
        Xref::Stream,
    );
    let mut second = Signing::new(
        &pki,
        11,
        vec![
            (1, xmp.catalog(&[7, 12])),
            (3, xmp.page(&[7, 12])),
            (
                12,
                visible_sig_widget("Signature2", Some(11), "72 100 272 140", 13),
            ),
            (13, form_xobject("BT /Helv 10 Tf 4 15 Td (Li Si) Tj ET")),
        ],
        14,
    );
    second.xref = Xref::Stream;
    let twice = second.sign(&with_xmp);
    // The hybrid section's stream lists the (unchanged) catalog; the XMP stream is plain.
    let rewritten = append(
        &twice,
        &[],
        &[(1, xmp.catalog(&[7, 12])), (8, meta("two"))],
        16,
        "",
        Xref::Hybrid,
    );
    let says = assert_accepted("object streams, XMP, hybrid", &rewritten, &pki, 2);
    assert!(says.contains("XMP 元数据、新增签名域 Signature2"), "{says}");
    assert!(
        says.contains("第 4 个修订版本；其后 1 个增量更新仅包含允许的修改：XMP 元数据"),
        "{says}"
    );

    // PAdES: a document time-stamp, then DSS with VRI, then the DSS rewritten.
    let ts = {
        let mut s = Signing::new(
            &pki,
            8,
            vec![
                (1, Layout::plain().catalog(&[7, 9])),
                (3, Layout::plain().page(&[7, 9])),
                (9, invisible_sig_widget("DocTS", Some(8))),
            ],
            10,
        );
        s.doc_timestamp = true;
        s.sign(&signed)
    };
    assert_coverage_passes("document time-stamp", &ts, &pki, "Sig1");
    let mut dss = Layout::plain();
    dss.catalog_extra = " /DSS 10 0 R".into();
    let cert = |n: &str| stream("", n);
    let with_dss = append_update(&ts, &[
        (1, dss.catalog(&[7, 9])),
        (10, "<< /Type /DSS /Certs [11 0 R] /VRI << /0123456789ABCDEF0123456789ABCDEF01234567 12 0 R >> >>".into()),
        (11, cert("certificate one")),
        (12, "<< /Cert [11 0 R] >>".into()),
    ], 13, 1);
    let again = append_update(&with_dss, &[
        (10, "<< /Type /DSS /Certs [11 0 R 13 0 R] /OCSPs [14 0 R] /VRI << /0123456789ABCDEF0123456789ABCDEF01234567 12 0 R >> >>".into()),
        (12, "<< /Cert [11 0 R 13 0 R] /OCSP [14 0 R] >>".into()),
        (13, cert("certificate two")),
        (14, cert("ocsp response")),
    ], 15, 1);
    let says = assert_coverage_passes("DSS after the time-stamp", &again, &pki, "Sig1");
    assert!(
        says.contains("DSS") && says.contains("新增签名域 DocTS"),
        "{says}"
    );
    assert_coverage_passes(
        "DSS after the time-stamp (time-stamp itself)",
        &again,
        &pki,
        "DocTS",
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// The diff analysis on damaged multi-revision files (a prepared form, its signature, a
    /// form fill and a second signature in an object stream) never panics.
    #[test]
    fn mutated_multi_revision_pdfs_never_panic(
        edits in proptest::collection::vec((any::<u32>(), any::<u8>()), 1..8),
        tail_only in any::<bool>(),
    ) {
        static PDF: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let pdf = PDF.get_or_init(|| {
            use form::*;
            let pki = pki(1_900_000_000_000);
            let (signed, _) = form_document(&pki, Some(2));
            let filled = form_update(&signed, &[
                (CITY, text_widget("City", "Shanghai", 450, &format!("<< /N {CITY_AP} 0 R >>"))),
                (CITY_AP, form_xobject("BT /Helv 12 Tf 2 5 Td (Shanghai) Tj ET")),
            ]);
            let mut s = Signing::new(
                &pki,
                NEXT + 4,
                vec![(APPROVAL, visible_sig_widget("Approval", Some(NEXT + 4), "300 100 500 140", APPROVAL_AP))],
                NEXT + 5,
            );
            s.xref = Xref::Stream;
            s.sign(&filled)
        });
        let mut bytes = pdf.clone();
        // Damage either anywhere or only the updates after the first signature.
        let from = if tail_only { bytes.len() / 2 } else { 0 };
        for (pos, val) in edits {
            let span = bytes.len() - from;
            bytes[from + pos as usize % span] = val;
        }
        let _ = verify_document(&bytes, "m.pdf", &VerifyOptions::default(), &EmptyRegistry);
    }
}

// pyHanko `FormUpdatingRule`: Acrobat rewrites the AcroForm's default resources (held by
// reference here) when it signs; a resources dictionary the page also uses stays protected,
// and NeedAppearances may not be switched on (viewers would redraw every field from /V).
#[test]
fn default_resources_rewritten_by_a_signer_pass_unless_the_page_shares_them() {
    let pki = pki(1_900_000_000_000);
    let base = data("generated/sm2-base-unsigned.pdf");
    let prepare = |page_uses_dr: bool| {
        let mut layout = Layout::plain();
        layout.dr = "8 0 R".into();
        if page_uses_dr {
            layout.page_resources = "8 0 R".into();
        }
        let prepared = append_update(
            &base,
            &[
                (1, layout.catalog(&[])),
                (3, layout.page(&[])),
                (8, "<< /Font << /Helv 5 0 R /F1 5 0 R >> >>".into()),
            ],
            9,
            1,
        );
        let signed = new_field_signing(&pki, &layout, 6, &[7], &[7], "Sig1").sign(&prepared);
        (signed, layout)
    };
    let zadb = (
        9,
        "<< /Type /Font /Subtype /Type1 /BaseFont /ZapfDingbats >>".to_string(),
    );
    let grown = (
        8,
        "<< /Font << /Helv 5 0 R /F1 5 0 R /ZaDb 9 0 R >> >>".to_string(),
    );

    let (signed, layout) = prepare(false);
    let second = Signing::new(
        &pki,
        10,
        vec![
            (1, layout.catalog(&[7, 11])),
            (3, layout.page(&[7, 11])),
            (11, invisible_sig_widget("Sig2", Some(10))),
            grown.clone(),
            zadb.clone(),
        ],
        12,
    )
    .sign(&signed);
    assert_accepted("DR rewritten by the second signer", &second, &pki, 2);

    let mut on = layout.clone();
    on.catalog_extra = String::new();
    let need = append_update(
        &signed,
        &[(
            1,
            on.catalog(&[7])
                .replace("/SigFlags 3", "/SigFlags 3 /NeedAppearances true"),
        )],
        9,
        1,
    );
    assert_caught(
        "NeedAppearances switched on",
        &need,
        &pki,
        "Sig1",
        &["NeedAppearances", "第 4 个修订版本"],
    );

    let (shared, _) = prepare(true);
    let evil = append_update(&shared, &[grown, zadb], 10, 1);
    assert_caught(
        "DR that is the page's resources",
        &evil,
        &pki,
        "Sig1",
        &["对象 8 0", "对象 3 0 的 /Resources", "第 4 个修订版本"],
    );
}

// Evil Annotation Attack on annotations the certified revision already had: modifying one
// (text, rectangle, flags) needs P=3 (ISO 32000-1 Table 254).
#[test]
fn modifying_a_certified_annotation_needs_p3() {
    let pki = pki(1_900_000_000_000);
    let note = "<< /Type /Annot /Subtype /FreeText /Rect [72 700 300 720] /Contents (Paid in full) /DA (/Helv 12 Tf 0 g) /F 4 >>";
    let base = data("generated/sm2-base-unsigned.pdf");
    let certified = |p: u8| {
        let layout = Layout::plain().certified_by(9);
        let prepared = append_update(&base, &[(3, layout.page(&[8])), (8, note.into())], 9, 1);
        let mut s = new_field_signing(&pki, &layout, 9, &[10], &[8, 10], "Sig1");
        s.docmdp = Some(p);
        s.sign(&prepared)
    };
    let edits = [
        (
            "text changed",
            note.replace("Paid in full", "Payment outstanding"),
        ),
        ("moved", note.replace("72 700 300 720", "72 760 300 780")),
        ("hidden", note.replace("/F 4", "/F 2")),
    ];
    let p2 = certified(2);
    for (what, body) in &edits {
        let evil = append_update(&p2, &[(8, body.clone())], 11, 1);
        assert_caught(
            &format!("P=2 {what}"),
            &evil,
            &pki,
            "Sig1",
            &["FreeText", "对象 8 0", "第 4 个修订版本"],
        );
    }
    let p3 = certified(3);
    for (what, body) in &edits {
        let edited = append_update(&p3, &[(8, body.clone())], 11, 1);
        assert_accepted(&format!("P=3 {what}"), &edited, &pki, 1);
    }
}

// Incremental saving attack after an Acrobat-style update: the page last defined inside an
// object stream, then redefined by a bare object appended without cross-reference data. A
// reader repairing the file takes the appended page; so does the rescanned view.
#[test]
fn an_object_appended_after_an_object_stream_update_is_still_flagged() {
    let pki = pki(1_900_000_000_000);
    let signed = signed_sample(&pki);
    let layout = Layout::plain();
    let packed = append(&signed, &[], &[(3, layout.page(&[7]))], 8, "", Xref::Stream);
    assert_accepted("page repacked unchanged", &packed, &pki, 1);
    let mut evil = packed.clone();
    let mut page = Layout::plain();
    page.page_contents = "8 0 R".into();
    evil.extend(
        format!(
            "3 0 obj\n{}\nendobj\n8 0 obj\n{}\nendobj\n%%EOF\n",
            page.page(&[7]),
            stream("", "BT /F1 16 Tf 72 760 Td (CNY 90000.00) Tj ET")
        )
        .as_bytes(),
    );
    assert_caught(
        "bare page after an object stream",
        &evil,
        &pki,
        "Sig1",
        &["第 1 页 的 /Contents 被修改"],
    );
}

/// The base document with annotation 8 (appearance 9) in the file but reached from nowhere,
/// signed (signature 10, widget 11; certified with `docmdp` when given), then an update that
/// only links 8 into the page's `/Annots`.
fn orphan_made_visible(pki: &Pki, annot: &str, docmdp: Option<u8>) -> Vec<u8> {
    let prepared = append_update(
        &data("generated/sm2-base-unsigned.pdf"),
        &[(8, annot.to_string()), (9, overlay())],
        10,
        1,
    );
    let layout = match docmdp {
        Some(_) => Layout::plain().certified_by(10),
        None => Layout::plain(),
    };
    let mut s = new_field_signing(pki, &layout, 10, &[11], &[11], "Sig1");
    s.docmdp = docmdp;
    s.data = docmdp.map(|_| 1);
    let signed = s.sign(&prepared);
    append_update(&signed, &[(3, layout.page(&[11, 8]))], 12, 1)
}

// An annotation or widget present but unreferenced in the signed file is not what was signed:
// linking it into a page later shows it (hidden-annotation variant of Mainka et al.'s EAA).
#[test]
fn an_unreferenced_annotation_linked_in_later_fails_coverage() {
    let pki = pki(1_900_000_000_000);
    let stamp = EVIL_ANNOTATIONS[1].1;
    let widget = EVIL_ANNOTATIONS[5].1;
    for (kind, annot) in [("Stamp", stamp), ("Widget", widget)] {
        for docmdp in [None, Some(2)] {
            assert_caught(
                &format!("orphan {kind}, DocMDP {docmdp:?}"),
                &orphan_made_visible(&pki, annot, docmdp),
                &pki,
                "Sig1",
                &["对象 8 0", kind],
            );
        }
    }
    // P=3 permits annotations (ISO 32000-1 Table 254), a formerly hidden one as well.
    let says = assert_coverage_passes(
        "orphan Stamp at P=3",
        &orphan_made_visible(&pki, stamp, Some(3)),
        &pki,
        "Sig1",
    );
    assert!(says.contains("Stamp"), "{says}");
    // Still no new form fields at P=3.
    assert_caught(
        "orphan Widget at P=3",
        &orphan_made_visible(&pki, widget, Some(3)),
        &pki,
        "Sig1",
        &["对象 8 0", "非签名"],
    );
}

/// A two-page document (pages 3 and 9) whose page tree's `/Kids` is `kids` (with array
/// object 8 `[3 0 R 9 0 R]` when it refers to it), signed (signature 11, widget 12 on page 3).
fn two_pages_signed(pki: &Pki, kids: &str, docmdp: Option<u8>) -> (Vec<u8>, Layout) {
    let layout = match docmdp {
        Some(_) => Layout::plain().certified_by(11),
        None => Layout::plain(),
    };
    let prepared = append_update(
        &data("generated/sm2-base-unsigned.pdf"),
        &[
            (2, format!("<< /Type /Pages /Kids {kids} /Count 2 >>")),
            (8, "[3 0 R 9 0 R]".into()),
            (9, layout.page(&[])),
        ],
        10,
        1,
    );
    let mut s = new_field_signing(pki, &layout, 11, &[12], &[12], "Sig1");
    s.docmdp = docmdp;
    s.data = docmdp.map(|_| 1);
    (s.sign(&prepared), layout)
}

// ISO 32000-1 §7.7.3.2: the page tree's /Kids is the page order. Swapping pages keeps the
// count and every member, so a set comparison of the list passed it.
#[test]
fn reordering_pages_or_annotations_after_signing_fails_coverage() {
    let pki = pki(1_900_000_000_000);
    for docmdp in [None, Some(2)] {
        let (signed, _) = two_pages_signed(&pki, "8 0 R", docmdp);
        let swapped = append_update(&signed, &[(8, "[9 0 R 3 0 R]".into())], 13, 1);
        assert_caught(
            &format!("indirect /Kids swapped, DocMDP {docmdp:?}"),
            &swapped,
            &pki,
            "Sig1",
            &["对象 8 0", "页面树"],
        );
        let (signed, _) = two_pages_signed(&pki, "[3 0 R 9 0 R]", docmdp);
        let swapped = append_update(
            &signed,
            &[(2, "<< /Type /Pages /Kids [9 0 R 3 0 R] /Count 2 >>".into())],
            13,
            1,
        );
        assert_caught(
            &format!("direct /Kids swapped, DocMDP {docmdp:?}"),
            &swapped,
            &pki,
            "Sig1",
            &["页面树对象 2 0"],
        );
    }
    // Annotations painted in /Annots order (§12.5.2): a swap changes which one is on top.
    let (form_signed, layout) = form_document(&pki, None);
    let mut order: Vec<u32> = form::FIELDS.to_vec();
    order.push(form::SIG1_WIDGET);
    order.reverse();
    assert_caught(
        "page /Annots reversed",
        &form_update(&form_signed, &[(3, layout.page(&order))]),
        &pki,
        "Sig1",
        &["第 1 页", "顺序"],
    );
    // Benign: the same lists with a signature field appended.
    order.reverse();
    let mut more = order.clone();
    more.push(form::NEXT + 1);
    let second =
        new_field_signing(&pki, &layout, form::NEXT, &more, &more, "Sig2").sign(&form_signed);
    assert_accepted("signature field appended", &second, &pki, 2);
}

// A new visible signature widget after an approval signature shows a signature only when its
// own field is signed by the signature of that update: not through a /Parent that is an
// already signed field, nor with a /V borrowed from an existing signature dictionary.
#[test]
fn a_new_signature_widget_with_a_borrowed_value_fails_coverage() {
    let pki = pki(1_900_000_000_000);
    let approval = signed_sample(&pki);
    let plain = Layout::plain();
    let rect = "0 0 595 842";
    let inherited = vec![
        (3, plain.page(&[7, 9])),
        (
            9,
            format!(
                "<< /Type /Annot /Subtype /Widget /FT /Sig /Parent 7 0 R /Rect [{rect}] /F 4 /P 3 0 R /AP << /N 10 0 R >> >>"
            ),
        ),
        (10, overlay()),
    ];
    assert_caught(
        "widget of the signed field Sig1",
        &append_update(&approval, &inherited, 11, 1),
        &pki,
        "Sig1",
        &["对象 9 0", "未签名但可见", "7 0"],
    );
    let borrowed = sneaky_objects(&plain, &visible_sig_widget("Sig2", Some(6), rect, 10));
    assert_caught(
        "visible field with Sig1's signature",
        &append_update(&approval, &borrowed, 11, 1),
        &pki,
        "Sig1",
        &["对象 9 0", "6 0"],
    );
    let borrowed = sneaky_objects(&plain, &invisible_sig_widget("Sig2", Some(6)));
    assert_caught(
        "invisible field with Sig1's signature",
        &append_update(&approval, &borrowed, 11, 1),
        &pki,
        "Sig1",
        &["对象 9 0", "6 0"],
    );
    let (cert, layout) = certified_sample(&pki, 2);
    let borrowed = sneaky_objects(&layout, &invisible_sig_widget("Sig2", Some(6)));
    assert_caught(
        "P=2, invisible field with Sig1's signature",
        &append_update(&cert, &borrowed, 11, 1),
        &pki,
        "Sig1",
        &["对象 9 0", "6 0"],
    );
    let mut unsigned = sneaky_objects(&plain, &visible_sig_widget("Sig2", Some(8), rect, 10));
    unsigned.push((8, "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /adbe.pkcs7.detached /ByteRange [0 0 0 0] /Contents <00> >>".into()));
    assert_caught(
        "approval, visible field with a value signing nothing",
        &append_update(&approval, &unsigned, 11, 1),
        &pki,
        "Sig1",
        &["对象 9 0", "ByteRange"],
    );
}

/// A P=3 certified page with `n` Square annotations (numbers from 100), then an update giving
/// each a new appearance whose `/Resources` is one shared new dictionary tree of `tree`
/// objects (numbers from 20000), and rewriting the page's font (so an overwrite stays open).
fn many_appearances_sharing_a_tree(pki: &Pki, n: u32, tree: u32) -> Vec<u8> {
    let annots: Vec<u32> = (100..100 + n).collect();
    let layout = Layout::plain();
    let mut objects = vec![(3, layout.page(&annots))];
    for a in &annots {
        objects.push((
            *a,
            "<< /Type /Annot /Subtype /Square /Rect [10 10 20 20] /F 4 >>".into(),
        ));
    }
    let sig = 100 + n;
    let prepared = append_update(&data("generated/sm2-base-unsigned.pdf"), &objects, sig, 1);
    let layout = layout.certified_by(sig);
    let mut all = annots.clone();
    all.push(sig + 1);
    let mut s = new_field_signing(pki, &layout, sig, &[sig + 1], &all, "Sig1");
    s.docmdp = Some(3);
    s.data = Some(1);
    let signed = s.sign(&prepared);
    let (t0, ap0) = (20_000, 20_000 + tree);
    let mut update = vec![(
        5,
        "<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>".to_string(),
    )];
    for k in 0..tree {
        let kid = |c: u32| {
            let i = 2 * k + c;
            if i < tree {
                format!(" /K{c} {} 0 R", t0 + i)
            } else {
                String::new()
            }
        };
        update.push((t0 + k, format!("<<{}{} >>", kid(1), kid(2))));
    }
    for (i, a) in annots.iter().enumerate() {
        let ap = ap0 + i as u32;
        update.push((
            *a,
            format!(
                "<< /Type /Annot /Subtype /Square /Rect [10 10 20 20] /F 4 /AP << /N {ap} 0 R >> >>"
            ),
        ));
        update.push((
            ap,
            stream(
                &format!("/Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources {t0} 0 R"),
                "0 0 10 10 re f",
            ),
        ));
    }
    append_update(&signed, &update, ap0 + n, 1)
}

// One route per appearance owner, each walking up to 10 000 objects, multiplied: 5 000
// appearances sharing a 10 000-object resource tree were 50 million steps. The routes now
// share one work budget, and the deadline is looked at inside the comparison.
#[test]
fn appearances_sharing_a_large_new_tree_stop_at_the_work_budget() {
    let pki = pki(1_900_000_000_000);
    let pdf = many_appearances_sharing_a_tree(&pki, 5_000, 10_000);
    let r = verify_bytes(&pdf, &trusting(&pki));
    assert!(r.error.is_none(), "{:?}", r.error);
    let s = by_field(&r, "Sig1");
    assert!(failed(s).contains(&"coverage"));
    assert!(
        hint(s, "coverage").contains("工作量上限"),
        "{}",
        hint(s, "coverage")
    );
    // A tiny time budget ends in the out-of-time report, wherever it runs out.
    let opts = VerifyOptions {
        time_budget: Some(Duration::from_millis(1)),
        ..trusting(&pki)
    };
    match verify_document(&pdf, "test.pdf", &opts, &EmptyRegistry) {
        Err(e) => assert!(e.to_string().contains("时间预算"), "{e}"),
        Ok(r) => {
            let said = match r.details.iter().find(|s| s.location == "Sig1") {
                Some(s) => hint(s, "coverage").to_string(),
                None => format!("{:?}", r.error),
            };
            assert!(said.contains("时间预算"), "{said}");
            assert!(!r.verify_result);
        }
    }
    // Small enough for the budget, the same update is judged: the font rewrite is named.
    let small = many_appearances_sharing_a_tree(&pki, 20, 50);
    assert_caught("20 appearances", &small, &pki, "Sig1", &["对象 5 0"]);
}
