//! PDF signature verification against the corpus expectations (tests/data/pdf/PROVENANCE.md)
//! and against tampering made here: incremental updates after signing, changed signed bytes,
//! rewritten signature dictionaries, and random or mutated input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

#[path = "support/words.rs"]
mod words;

use std::path::Path;
use std::time::{Duration, Instant};

use hutong::crypto::certgen::{CertSpec, issue_sm2, self_signed_sm2};
use hutong::crypto::cms::{parse_signed_data, sign_detached_sm2};
use hutong::crypto::sm::LENIENT_INTEGER_HINT;
use hutong::crypto::sm::{Sm2KeyPair, pem_decode};
use hutong::ses::kit;
use hutong::verify::report::{DocumentReport, EmptyRegistry, SignatureReport};
use hutong::verify::{Format, SignatureType, Step, VerifyOptions, verify_document};
use proptest::prelude::*;

fn data(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/pdf")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

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

/// Appends an incremental update (classic xref section) defining `objects`.
fn append_update(base: &[u8], objects: &[(u32, String)], size: u32, root: u32) -> Vec<u8> {
    append_update_with_trailer(base, objects, size, root, "")
}

/// [`append_update`] with extra trailer entries (e.g. `/Info 8 0 R`).
fn append_update_with_trailer(
    base: &[u8],
    objects: &[(u32, String)],
    size: u32,
    root: u32,
    extra: &str,
) -> Vec<u8> {
    let text = String::from_utf8_lossy(base);
    let prev: usize = text
        .rsplit("startxref")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("startxref");
    let mut out = base.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let mut offsets = Vec::new();
    for (num, body) in objects {
        offsets.push((*num, out.len()));
        out.extend(format!("{num} 0 obj\n{body}\nendobj\n").as_bytes());
    }
    let xref_at = out.len();
    out.extend(b"xref\n");
    for (num, off) in &offsets {
        out.extend(format!("{num} 1\n{off:010} 00000 n \n").as_bytes());
    }
    out.extend(format!("trailer\n<< /Size {size} /Root {root} 0 R{extra} /Prev {prev} >>\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    out
}

struct Pki {
    root_cert: Vec<u8>,
    leaf_key: Sm2KeyPair,
    leaf_cert: Vec<u8>,
}

const SIGN_TIME: i64 = 1_763_800_000_000; // 2025-11-22

fn pki(leaf_not_after_ms: i64) -> Pki {
    let root_key = Sm2KeyPair::generate();
    let root_spec = CertSpec {
        common_name: "测试根 CA".into(),
        organization: Some("Hutong Test".into()),
        not_before_ms: 1_600_000_000_000,
        not_after_ms: 2_000_000_000_000,
        is_ca: true,
        serial: None,
    };
    let root_cert = self_signed_sm2(&root_spec, &root_key).unwrap();
    let leaf_key = Sm2KeyPair::generate();
    let leaf_spec = CertSpec {
        common_name: "张三".into(),
        organization: Some("某某有限公司".into()),
        not_before_ms: 1_650_000_000_000,
        not_after_ms: leaf_not_after_ms,
        is_ca: false,
        serial: Some(vec![0x0a, 0xbc]),
    };
    let leaf_cert = issue_sm2(&leaf_spec, &leaf_key.public_key(), &root_cert, &root_key).unwrap();
    Pki {
        root_cert,
        leaf_key,
        leaf_cert,
    }
}

const CONTENTS_HEX_LEN: usize = 8192;

/// Signs `generated/sm2-base-unsigned.pdf` (objects 1–5; catalog 1, page 3) in an
/// incremental update with field `name`: a GB/T 35275 CMS over the standard byte ranges.
/// `first_obj` numbers the new objects; `fields` are the AcroForm fields after this update.
fn sign_update(
    base: &[u8],
    pki: &Pki,
    first_obj: u32,
    fields: &[u32],
    annots: &[u32],
    name: &str,
) -> Vec<u8> {
    sign_update_excluding(base, pki, first_obj, fields, annots, name, 0)
}

/// [`sign_update`] leaving the last `tail` bytes of the revision outside the second range.
fn sign_update_excluding(
    base: &[u8],
    pki: &Pki,
    first_obj: u32,
    fields: &[u32],
    annots: &[u32],
    name: &str,
    tail: usize,
) -> Vec<u8> {
    sign_update_cms(base, pki, first_obj, fields, annots, name, tail, false)
}

/// A CMS over `parts` whose SM2 SignerInfo signature lacks the sign octet of r or s (issue 12
/// point 1: one vendor's encoding); the signing time moves by seconds until r or s has its high
/// bit set.
fn quirky_cms(parts: &[&[u8]], pki: &Pki) -> Vec<u8> {
    for second in 0..64 {
        let t = SIGN_TIME + second * 1000;
        let cms = sign_detached_sm2(parts, &pki.leaf_key, &pki.leaf_cert, t, true).unwrap();
        let value = parse_signed_data(&cms).unwrap().signer.signature;
        if let Some(q) = kit::without_sign_octets(&value) {
            return kit::replace_value(&cms, &value, &q).unwrap();
        }
    }
    panic!("64 signatures without a high bit in r or s");
}

#[allow(clippy::too_many_arguments)]
fn sign_update_cms(
    base: &[u8],
    pki: &Pki,
    first_obj: u32,
    fields: &[u32],
    annots: &[u32],
    name: &str,
    tail: usize,
    quirky: bool,
) -> Vec<u8> {
    let sig = first_obj;
    let widget = first_obj + 1;
    let placeholder = "0".repeat(CONTENTS_HEX_LEN);
    let fields_s: String = fields.iter().map(|f| format!("{f} 0 R ")).collect();
    let annots_s: String = annots.iter().map(|f| format!("{f} 0 R ")).collect();
    let objects = vec![
        (
            1,
            format!(
                "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [{fields_s}] /SigFlags 3 >> >>"
            ),
        ),
        (
            3,
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R /Annots [{annots_s}] >>"
            ),
        ),
        (
            sig,
            format!(
                "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /adbe.pkcs7.detached /M (D:20251122082640Z) /ByteRange [0 0000000000 0000000000 0000000000] /Contents <{placeholder}> >>"
            ),
        ),
        (
            widget,
            format!(
                "<< /Type /Annot /Subtype /Widget /FT /Sig /T ({name}) /V {sig} 0 R /Rect [0 0 0 0] /F 132 /P 3 0 R >>"
            ),
        ),
    ];
    let mut pdf = append_update(base, &objects, widget + 1, 1);
    let find = |hay: &[u8], needle: &[u8]| {
        hay.windows(needle.len())
            .rposition(|w| w == needle)
            .unwrap()
    };
    let lt = find(&pdf, format!("<{placeholder}>").as_bytes());
    let gt = lt + CONTENTS_HEX_LEN + 2;
    let covered_end = pdf.len() - tail;
    let br = format!("[0 {lt:010} {gt:010} {:010}]", covered_end - gt);
    let br_at = find(&pdf, b"[0 0000000000 0000000000 0000000000]");
    pdf[br_at..br_at + br.len()].copy_from_slice(br.as_bytes());
    let parts = [&pdf[..lt], &pdf[gt..covered_end]];
    let cms = if quirky {
        quirky_cms(&parts, pki)
    } else {
        sign_detached_sm2(&parts, &pki.leaf_key, &pki.leaf_cert, SIGN_TIME, true).unwrap()
    };
    let hexed = hex::encode(&cms);
    assert!(hexed.len() <= CONTENTS_HEX_LEN);
    pdf[lt + 1..lt + 1 + hexed.len()].copy_from_slice(hexed.as_bytes());
    pdf
}

fn signed_sample(pki: &Pki) -> Vec<u8> {
    sign_update(
        &data("generated/sm2-base-unsigned.pdf"),
        pki,
        6,
        &[7],
        &[7],
        "Sig1",
    )
}

fn trusting(pki: &Pki) -> VerifyOptions {
    VerifyOptions {
        trust_anchors: vec![pki.root_cert.clone()],
        ..Default::default()
    }
}

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
    let pdf = sign_update_excluding(
        &data("generated/sm2-base-unsigned.pdf"),
        &pki,
        6,
        &[7],
        &[7],
        "Sig1",
        6,
    );
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
    let pdf = sign_update_cms(&base, &pki, 6, &[7], &[7], "Sig1", 0, true);
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
