//! OFD verification (`verify::ofd`): the corpus of real producers' files with the outcomes of
//! `tests/data/ofd/PROVENANCE.md`, packages generated here with fresh keys (valid, double-signed
//! and tampered in every way a user cares about), ZIP limits, and robustness on garbage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

#[path = "support/words.rs"]
mod words;

use std::io::{Cursor, Write};
use std::time::{Duration, Instant};

use hutong::crypto::certgen::{CertSpec, issue_sm2, self_signed_sm2};
use hutong::crypto::sm::LENIENT_INTEGER_HINT;
use hutong::crypto::sm::{Sm2KeyPair, sm3};
use hutong::ses::{
    SealParams, SesSeal, SesSignature, build_seal_v1, build_seal_v4, kit, sign_v1, sign_v4,
};
use hutong::verify::ofd::verify_ofd;
use hutong::verify::report::EmptyRegistry;
use hutong::verify::{
    DocumentReport, Format, SignatureReport, SignatureType, Step, VerifyOptions, verify_document,
};

use base64::Engine;
use proptest::prelude::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// 2026-01-01 00:00:00 UTC.
const T0: i64 = 1_767_225_600_000;
const DAY: i64 = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Corpus

fn corpus_bytes(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/ofd/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn corpus(name: &str) -> DocumentReport {
    verify_document(
        &corpus_bytes(name),
        name,
        &VerifyOptions::default(),
        &EmptyRegistry,
    )
    .unwrap()
}

fn step(sig: &SignatureReport, step: Step) -> (bool, String) {
    sig.outcome(step)
        .map(|(p, h)| (p, h.to_string()))
        .unwrap_or_else(|| panic!("{} step {step:?} not recorded", sig.location))
}

fn assert_passes(sig: &SignatureReport, steps: &[Step]) {
    for &s in steps {
        let (ok, hint) = step(sig, s);
        assert!(ok, "{}: {s:?} should pass: {hint}", sig.location);
    }
}

fn assert_fails(sig: &SignatureReport, s: Step, needle: &str) {
    let (ok, hint) = step(sig, s);
    assert!(!ok, "{}: {s:?} should fail", sig.location);
    assert!(
        hint.contains(needle),
        "{}: {s:?} hint should mention {needle:?}: {hint}",
        sig.location
    );
}

/// Every step but `certificate` (no trust anchors) and `registry` (nothing on file) passes,
/// and `certificate` names the untrusted issuer.
fn assert_valid_but_untrusted(sig: &SignatureReport, issuer: &str) {
    assert_passes(
        sig,
        &[
            Step::Parse,
            Step::Integrity,
            Step::Signature,
            Step::Seal,
            Step::Timestamp,
            Step::Coverage,
        ],
    );
    assert_fails(sig, Step::Certificate, "证书链不受信任");
    assert_fails(sig, Step::Certificate, issuer);
    assert_eq!(step(sig, Step::Timestamp).1, "无时间戳");
}

#[test]
fn corpus_single_seals_verify_except_the_untrusted_certificate() {
    for (file, issuer, seal_name) in [
        ("gomain-1.ofd", "税务", ""),
        (
            "gomain-keyword2.ofd",
            "税务电子证书管理中心",
            "国家税务总局江苏省税务局",
        ),
        (
            "gomain-v4signed.ofd",
            "税务测试CA2",
            "测试全国统一发票监制章国家税务总局重庆市税务局",
        ),
        (
            "ofdrw-V4RideRight.ofd",
            "OFD Reader and WriterROOT",
            "OFD R&W 测试用印章",
        ),
        (
            "ofdrw-allprotected.ofd",
            "OFD Reader and WriterROOT",
            "OFD R&W 测试用印章",
        ),
    ] {
        let doc = corpus(file);
        assert!(doc.error.is_none(), "{file}: {:?}", doc.error);
        assert_eq!(doc.sign_count, 1, "{file}");
        let sig = &doc.details[0];
        assert_valid_but_untrusted(sig, issuer);
        assert!(
            sig.seal_name.contains(seal_name),
            "{file}: {}",
            sig.seal_name
        );
        assert_eq!(sig.signature_type, SignatureType::Seal);
        assert_eq!(sig.format, Format::Ofd);
        assert_eq!(sig.page, Some(1), "{file}");
        assert!(sig.position.is_some(), "{file}");
        assert!(!sig.sign_time.is_empty() && !sig.seal_pic_base64.is_empty());
        assert!(!sig.provider.is_empty() && !sig.cert_sn.is_empty());
        // Untrusted certificate: the document as a whole does not verify.
        assert!(!doc.verify_result, "{file}");
    }
}

#[test]
fn corpus_invoice_with_modified_document_xml_fails_integrity() {
    let doc = corpus("gomain-invoice-modified.ofd");
    let sig = &doc.details[0];
    assert_fails(sig, Step::Integrity, "Doc_0/Document.xml");
    assert_passes(sig, &[Step::Parse, Step::Signature, Step::Seal]);
    assert!(!doc.verify_result);
}

#[test]
fn corpus_two_seals_first_broken_by_the_second_rewriting_signatures_xml() {
    let doc = corpus("ofdrw-two-seals-h.ofd");
    assert_eq!(doc.sign_count, 2);
    let first = &doc.details[0];
    assert_fails(first, Step::Integrity, "Signatures.xml");
    assert_fails(
        first,
        Step::Coverage,
        "签署后被修改的文件: Doc_0/Signs/Signatures.xml",
    );
    assert_fails(first, Step::Coverage, "Sign_1/Signature.xml");
    assert_passes(first, &[Step::Parse, Step::Signature, Step::Seal]);
    assert_valid_but_untrusted(&doc.details[1], "OFD Reader and WriterROOT");
    assert!(!doc.verify_result);
}

#[test]
fn corpus_mixed_seal_and_cms_signature_both_fail_integrity() {
    let doc = corpus("oesplugin-mixed-modified.ofd");
    assert_eq!(doc.sign_count, 2);
    for sig in &doc.details {
        for f in ["OFD.xml", "Doc_0/Document.xml", "Page_0/Content.xml"] {
            assert_fails(sig, Step::Integrity, f);
        }
        // The signatures themselves are sound: only the package changed.
        assert_passes(sig, &[Step::Parse, Step::Signature]);
    }
    assert_eq!(doc.details[0].signature_type, SignatureType::Seal);
    assert_passes(&doc.details[0], &[Step::Seal]);
    assert_eq!(doc.details[1].signature_type, SignatureType::Sign);
    assert!(!doc.verify_result);
}

#[test]
fn corpus_cms_signatures_verify_except_the_untrusted_certificate() {
    let doc = corpus("gomain-p7-two-signs.ofd");
    assert_eq!(doc.sign_count, 2);
    for sig in &doc.details {
        assert_eq!(sig.signature_type, SignatureType::Sign);
        assert_valid_but_untrusted(sig, "YNCA_SM2");
        assert!(sig.sign_time_ms.is_some());
    }
}

/// The corpus file `name` with entry `entry` rewritten by `f`.
fn rezip(name: &str, entry: &str, f: impl Fn(String) -> String) -> Vec<u8> {
    let bytes = corpus_bytes(name);
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut files = Vec::new();
    for i in 0..zip.len() {
        let mut e = zip.by_index(i).unwrap();
        if e.is_dir() {
            continue;
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        let n = e.name().unwrap().to_string();
        if n == entry {
            data = f(String::from_utf8(data).unwrap()).into_bytes();
        }
        files.push((n, data));
    }
    zip_entries(files.iter().map(|(n, d)| (n.as_str(), d.as_slice())))
}

#[test]
fn cms_value_without_type_attribute_is_verified_as_a_digital_signature() {
    // `Type` is optional; without it the value is tried as SES, then as CMS.
    let bytes = rezip(
        "gomain-p7-two-signs.ofd",
        "Doc_0/Signs/Signatures.xml",
        |x| x.replace(r#" Type="Sign""#, ""),
    );
    let doc = verify(&bytes, &VerifyOptions::default());
    let first = &doc.details[0];
    assert_eq!(first.signature_type, SignatureType::Sign);
    assert_passes(first, &[Step::Parse, Step::Integrity, Step::Signature]);
    // The second signature protected Signatures.xml, which was just edited.
    assert_fails(
        &doc.details[1],
        Step::Integrity,
        "Doc_0/Signs/Signatures.xml",
    );
}

#[test]
fn corpus_bare_sm2_digital_signature_is_explained_not_passed() {
    // ofdrw's deprecated DigitalSignContainer: SignedValue.dat is a bare SM2 value and the
    // package carries no certificate, so nobody can say who signed.
    let doc = corpus("ofdrw-DigitalSign.ofd");
    let sig = &doc.details[0];
    assert_fails(sig, Step::Signature, "裸 SM2 签名值");
    assert_fails(sig, Step::Certificate, "未携带签名者证书");
    assert_fails(sig, Step::Integrity, "无法确认签名值覆盖 Signature.xml");
    assert_passes(sig, &[Step::Parse, Step::Coverage]);
    assert!(!doc.verify_result);
}

#[test]
fn corpus_checkmethod_401_2_is_sm3_with_signer_key_and_the_xml_was_rewritten() {
    // Established by analysis: CheckMethod 1.2.156.10197.1.401.2 is SM3(Z ‖ data) with the
    // signer's key; Seal.esl still matches, the five XML files were re-serialised seven months
    // after signing (ZIP mtimes 2020-08-22 vs 2020-01-25), and the signer signed dataHash
    // itself rather than TBS_Sign.
    let doc = corpus("vendor-checkmethod-401-2.ofd");
    let sig = &doc.details[0];
    let (ok, hint) = step(sig, Step::Integrity);
    assert!(!ok);
    for f in [
        "Doc_0/Document.xml",
        "Doc_0/Pages/Page_0/Content.xml",
        "Doc_0/Pages/Page_1/Content.xml",
        "Doc_0/PublicRes.xml",
        "OFD.xml",
    ] {
        assert!(hint.contains(&format!("文件 {f} 的校验值不符")), "{hint}");
    }
    assert!(
        !hint.contains("Seal.esl"),
        "Seal.esl matches SM3(Z‖data): {hint}"
    );
    assert!(hint.contains("1.2.156.10197.1.401.2"), "{hint}");
    assert_fails(sig, Step::Signature, "TBS_Sign");
    assert!(!doc.verify_result);
}

#[test]
fn corpus_deviations_from_the_provenance_rows_are_real_defects() {
    // gomain-draw_param_ref: the two template pages under TPLS/ (used by every page) are
    // referenced by no signature, so they can change without detection.
    let doc = corpus("gomain-draw_param_ref.ofd");
    let sig = &doc.details[0];
    assert_passes(
        sig,
        &[Step::Parse, Step::Integrity, Step::Signature, Step::Seal],
    );
    assert_fails(sig, Step::Coverage, "Doc_0/TPLS/TPL_0/Content.xml");
    assert_fails(sig, Step::Coverage, "Doc_0/TPLS/TPL_1/Content.xml");

    // ofdrw-SESV4SignDoc was signed on 2026-08-04 with a seal (and certificate) that expired
    // in 2022.
    let doc = corpus("ofdrw-SESV4SignDoc.ofd");
    let sig = &doc.details[0];
    assert_passes(
        sig,
        &[
            Step::Parse,
            Step::Integrity,
            Step::Signature,
            Step::Coverage,
        ],
    );
    assert_fails(sig, Step::Seal, "印章已过期");
    assert_fails(sig, Step::Certificate, "已过期");
}

// ---------------------------------------------------------------------------------------------
// Generated packages

struct Pki {
    root_cert: Vec<u8>,
    signer: Sm2KeyPair,
    signer_cert: Vec<u8>,
    seal_v4: Vec<u8>,
    seal_v1: Vec<u8>,
}

/// A marker inside the seal picture, so tests can find and flip its bytes.
const PICTURE: &[u8] = b"\x89PNG\r\n\x1a\nHUTONG-TEST-SEAL-PICTURE-0123456789";

fn pki() -> Pki {
    let root = Sm2KeyPair::generate();
    let spec = |cn: &str, ca: bool| CertSpec {
        common_name: cn.into(),
        organization: Some("互通测试".into()),
        not_before_ms: T0 - 365 * DAY,
        not_after_ms: T0 + 365 * DAY,
        is_ca: ca,
        serial: None,
    };
    let root_cert = self_signed_sm2(&spec("互通测试根 CA", true), &root).unwrap();
    let signer = Sm2KeyPair::generate();
    let signer_cert = issue_sm2(
        &spec("签章人", false),
        &signer.public_key(),
        &root_cert,
        &root,
    )
    .unwrap();
    let maker = Sm2KeyPair::generate();
    let maker_cert = issue_sm2(
        &spec("制章机构", false),
        &maker.public_key(),
        &root_cert,
        &root,
    )
    .unwrap();
    let params = SealParams {
        vid: "hutong-test".into(),
        es_id: "340000010000000017".into(),
        seal_type: 1,
        name: "互通测试单位公章".into(),
        cert_list: vec![signer_cert.clone()],
        cert_list_is_digest: false,
        cert_digest_type: String::new(),
        create_date_ms: T0 - 30 * DAY,
        valid_start_ms: T0 - 30 * DAY,
        valid_end_ms: T0 + 300 * DAY,
        picture_kind: "png".into(),
        picture_data: PICTURE.to_vec(),
        width_mm: 40,
        height_mm: 40,
        ext_datas: Vec::new(),
    };
    let seal_v4 = build_seal_v4(&params, &maker, &maker_cert).unwrap();
    let seal_v1 = build_seal_v1(&params, &maker, &maker_cert).unwrap();
    Pki {
        root_cert,
        signer,
        signer_cert,
        seal_v4,
        seal_v1,
    }
}

fn trusting(pki: &Pki) -> VerifyOptions {
    VerifyOptions {
        trust_anchors: vec![pki.root_cert.clone()],
        ..Default::default()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum SesKind {
    V4,
    V1,
}

/// How one signature is made.
#[derive(Clone)]
struct SignSpec {
    kind: SesKind,
    check_method: &'static str,
    hash: fn(&[u8]) -> Vec<u8>,
    /// A file left out of the References.
    skip_ref: Option<&'static str>,
    /// A file whose CheckValue is written wrong (and then signed).
    wrong_check_value: Option<&'static str>,
    /// Write BaseLoc/SignedValue/FileRef relative and elements without the `ofd:` prefix.
    relative_unprefixed: bool,
    /// Re-encode the signer's SM2 value without the sign octet of r or s (issue 12 point 1).
    quirky_value: bool,
}

impl Default for SignSpec {
    fn default() -> Self {
        Self {
            kind: SesKind::V4,
            check_method: "1.2.156.10197.1.401",
            hash: |d| sm3(d).to_vec(),
            skip_ref: None,
            wrong_check_value: None,
            relative_unprefixed: false,
            quirky_value: false,
        }
    }
}

/// A minimal OFD package: OFD.xml, Document.xml, one page, PublicRes.xml, then signatures.
#[derive(Clone)]
struct Ofd {
    files: Vec<(String, Vec<u8>)>,
    signatures: Vec<String>,
}

impl Ofd {
    fn new(page_text: &str) -> Self {
        let ofd = r#"<?xml version="1.0" encoding="UTF-8"?>
<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.1" DocType="OFD"><ofd:DocBody><ofd:DocInfo><ofd:DocID>0123456789abcdef</ofd:DocID></ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot><ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody></ofd:OFD>"#;
        let document = r#"<?xml version="1.0" encoding="UTF-8"?>
<ofd:Document xmlns:ofd="http://www.ofdspec.org/2016"><ofd:CommonData><ofd:MaxUnitID>10</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox></ofd:PageArea><ofd:PublicRes>PublicRes.xml</ofd:PublicRes></ofd:CommonData><ofd:Pages><ofd:Page ID="7" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages></ofd:Document>"#;
        let page = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<ofd:Page xmlns:ofd="http://www.ofdspec.org/2016"><ofd:Content><ofd:Layer ID="2"><ofd:TextObject ID="3" Boundary="10 10 190 10" Font="4" Size="5"><ofd:TextCode X="0" Y="5">{page_text}</ofd:TextCode></ofd:TextObject></ofd:Layer></ofd:Content></ofd:Page>"#
        );
        let res = r#"<?xml version="1.0" encoding="UTF-8"?>
<ofd:Res xmlns:ofd="http://www.ofdspec.org/2016" BaseLoc="Res"><ofd:Fonts><ofd:Font ID="4" FontName="宋体"/></ofd:Fonts></ofd:Res>"#;
        Self {
            files: vec![
                ("OFD.xml".into(), ofd.into()),
                ("Doc_0/Document.xml".into(), document.into()),
                ("Doc_0/Pages/Page_0/Content.xml".into(), page.into_bytes()),
                ("Doc_0/PublicRes.xml".into(), res.into()),
            ],
            signatures: Vec::new(),
        }
    }

    fn get(&self, name: &str) -> Option<&Vec<u8>> {
        self.files.iter().find(|(n, _)| n == name).map(|(_, d)| d)
    }

    fn put(&mut self, name: &str, data: Vec<u8>) {
        match self.files.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = data,
            None => self.files.push((name.to_string(), data)),
        }
    }

    fn edit(&mut self, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let slot = self
            .files
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}"));
        f(&mut slot.1);
    }

    /// Adds a seal signature over every current file except the signature list.
    fn sign(&mut self, pki: &Pki, spec: &SignSpec) -> &mut Self {
        let n = self.signatures.len();
        let dir = format!("Doc_0/Signs/Sign_{n}");
        let (p, abs) = if spec.relative_unprefixed {
            ("", "")
        } else {
            ("ofd:", "/")
        };
        let mut refs = String::new();
        for (name, data) in &self.files {
            if name.ends_with("Signatures.xml") || Some(name.as_str()) == spec.skip_ref {
                continue;
            }
            let mut value = (spec.hash)(data);
            if Some(name.as_str()) == spec.wrong_check_value
                && let Some(b) = value.first_mut()
            {
                *b ^= 1;
            }
            // Relative FileRefs are relative to the signature's folder.
            let file_ref = if spec.relative_unprefixed {
                format!("../../../{name}")
            } else {
                format!("/{name}")
            };
            refs.push_str(&format!(
                r#"<{p}Reference FileRef="{file_ref}"><{p}CheckValue>{}</{p}CheckValue></{p}Reference>"#,
                B64.encode(value)
            ));
        }
        let ns = if spec.relative_unprefixed {
            r#"xmlns="http://www.ofdspec.org/2016""#
        } else {
            r#"xmlns:ofd="http://www.ofdspec.org/2016""#
        };
        let value_loc = if spec.relative_unprefixed {
            "SignedValue.dat".to_string()
        } else {
            format!("/{dir}/SignedValue.dat")
        };
        let sig_xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<{p}Signature {ns}><{p}SignedInfo><{p}Provider ProviderName="hutong-test" Company="互通" Version="1.0"/><{p}SignatureMethod>1.2.156.10197.1.501</{p}SignatureMethod><{p}SignatureDateTime>20260101080000Z</{p}SignatureDateTime><{p}References CheckMethod="{}">{refs}</{p}References><{p}StampAnnot ID="9" PageRef="7" Boundary="100 200 40 40"/></{p}SignedInfo><{p}SignedValue>{value_loc}</{p}SignedValue></{p}Signature>"#,
            spec.check_method
        );
        let hash = sm3(sig_xml.as_bytes());
        let mut time = T0 + 8 * 3_600_000;
        let value = loop {
            let value = match spec.kind {
                SesKind::V4 => sign_v4(
                    &pki.seal_v4,
                    &pki.signer,
                    &pki.signer_cert,
                    &hash,
                    &format!("{abs}{dir}/Signature.xml"),
                    time,
                ),
                SesKind::V1 => sign_v1(
                    &pki.seal_v1,
                    &pki.signer,
                    &pki.signer_cert,
                    &hash,
                    &format!("{abs}{dir}/Signature.xml"),
                    time,
                ),
            }
            .unwrap();
            if !spec.quirky_value {
                break value;
            }
            // Three signatures in four have r or s with the high bit set; another second of
            // signing time gives another signature.
            let sig = SesSignature::decode(&value).unwrap();
            if let Some(q) = kit::without_sign_octets(&sig.signature_value) {
                break kit::replace_value(&value, &sig.signature_value, &q).unwrap();
            }
            time += 1000;
        };
        self.put(&format!("{dir}/Signature.xml"), sig_xml.into_bytes());
        self.put(&format!("{dir}/SignedValue.dat"), value);
        let base_loc = if spec.relative_unprefixed {
            format!("Sign_{n}/Signature.xml")
        } else {
            format!("/{dir}/Signature.xml")
        };
        self.signatures.push(base_loc);
        let entries: String = self
            .signatures
            .iter()
            .enumerate()
            .map(|(i, loc)| {
                format!(
                    r#"<{p}Signature ID="{}" Type="Seal" BaseLoc="{loc}"/>"#,
                    i + 1
                )
            })
            .collect();
        let list = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<{p}Signatures {ns}><{p}MaxSignId>{}</{p}MaxSignId>{entries}</{p}Signatures>"#,
            self.signatures.len()
        );
        self.put("Doc_0/Signs/Signatures.xml", list.into_bytes());
        self
    }

    fn zip(&self) -> Vec<u8> {
        zip_entries(self.files.iter().map(|(n, d)| (n.as_str(), d.as_slice())))
    }
}

fn zip_entries<'a>(entries: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn verify(bytes: &[u8], opts: &VerifyOptions) -> DocumentReport {
    verify_document(bytes, "test.ofd", opts, &EmptyRegistry).unwrap()
}

const ALL_BUT_REGISTRY: [Step; 7] = [
    Step::Parse,
    Step::Integrity,
    Step::Signature,
    Step::Certificate,
    Step::Seal,
    Step::Timestamp,
    Step::Coverage,
];

#[test]
fn generated_single_seal_verifies() {
    let pki = pki();
    let mut ofd = Ofd::new("合同正文");
    ofd.sign(&pki, &SignSpec::default());
    let doc = verify(&ofd.zip(), &trusting(&pki));
    assert!(doc.error.is_none(), "{:?}", doc.error);
    assert_eq!(doc.sign_count, 1);
    let sig = &doc.details[0];
    assert_passes(sig, &ALL_BUT_REGISTRY);
    assert_fails(sig, Step::Registry, "未在本平台备案");
    assert!(
        doc.verify_result,
        "registry miss alone does not fail the document"
    );
    assert_eq!(sig.seal_name, "互通测试单位公章");
    assert_eq!(sig.seal_code, "340000010000000017");
    assert_eq!(sig.seal_type, "01");
    assert_eq!(sig.provider, "hutong-test");
    // The one vocabulary of docs/integration-guide.md, the same word PDF reports.
    assert_eq!(sig.algorithm.to_string(), "SM2withSM3");
    assert_eq!(sig.sign_time, "2026-01-01 16:00:00");
    assert_eq!(sig.page, Some(1));
    assert_eq!(sig.position, Some([100.0, 200.0, 40.0, 40.0]));
    assert_eq!(B64.decode(&sig.seal_pic_base64).unwrap(), PICTURE);
    assert_eq!(sig.location, "Doc_0/Signs/Sign_0/Signature.xml");
    assert_eq!(
        sig.seal_identity.es_id.as_deref(),
        Some("340000010000000017")
    );
    assert_eq!(sig.seal_identity.seal_digest, Some(sm3(&pki.seal_v4)));
    assert!(sig.seal_identity.signer_cert_sn.is_some());

    // The same document without trust anchors fails only at `certificate`.
    let doc = verify(&ofd.zip(), &VerifyOptions::default());
    assert_fails(&doc.details[0], Step::Certificate, "互通测试根 CA");
    assert!(!doc.verify_result);
}

#[test]
fn generated_v1_seal_relative_paths_and_unprefixed_xml_verify() {
    let pki = pki();
    let mut ofd = Ofd::new("v1");
    ofd.sign(
        &pki,
        &SignSpec {
            kind: SesKind::V1,
            relative_unprefixed: true,
            ..Default::default()
        },
    );
    let doc = verify(&ofd.zip(), &trusting(&pki));
    let sig = &doc.details[0];
    assert_passes(sig, &ALL_BUT_REGISTRY);
    assert!(step(sig, Step::Seal).1.contains("GM/T 0031"));
}

#[test]
fn generated_double_seal_both_verify() {
    let pki = pki();
    let mut ofd = Ofd::new("两枚印章");
    ofd.sign(&pki, &SignSpec::default());
    ofd.sign(&pki, &SignSpec::default());
    let doc = verify(&ofd.zip(), &trusting(&pki));
    assert_eq!(doc.sign_count, 2);
    for sig in &doc.details {
        assert_passes(sig, &ALL_BUT_REGISTRY);
    }
    // The second signature protects the first one's files.
    let second = std::str::from_utf8(ofd.get("Doc_0/Signs/Sign_1/Signature.xml").unwrap())
        .unwrap()
        .to_string();
    assert!(second.contains("/Doc_0/Signs/Sign_0/SignedValue.dat"));
    assert!(
        step(&doc.details[0], Step::Coverage)
            .1
            .contains("其后 1 个签名")
    );
    assert!(doc.verify_result);
}

#[test]
fn tampered_page_byte_fails_integrity_naming_the_page() {
    let pki = pki();
    let mut ofd = Ofd::new("金额：100 元");
    ofd.sign(&pki, &SignSpec::default());
    ofd.edit("Doc_0/Pages/Page_0/Content.xml", |d| {
        let i = d.windows(3).position(|w| w == b"100").unwrap();
        d[i] = b'9';
    });
    let doc = verify(&ofd.zip(), &trusting(&pki));
    let sig = &doc.details[0];
    assert_fails(sig, Step::Integrity, "Doc_0/Pages/Page_0/Content.xml");
    assert_fails(sig, Step::Coverage, "签署后被修改");
    assert_passes(
        sig,
        &[Step::Parse, Step::Signature, Step::Certificate, Step::Seal],
    );
    assert!(!doc.verify_result);
}

#[test]
fn tampered_signature_xml_byte_fails_integrity_through_the_data_hash() {
    let pki = pki();
    let mut ofd = Ofd::new("正文");
    ofd.sign(&pki, &SignSpec::default());
    // Move the stamp: the References still match, only the signed description changed.
    ofd.edit("Doc_0/Signs/Sign_0/Signature.xml", |d| {
        let i = d.windows(9).position(|w| w == b"100 200 4").unwrap();
        d[i] = b'5';
    });
    let doc = verify(&ofd.zip(), &trusting(&pki));
    let sig = &doc.details[0];
    assert_fails(sig, Step::Integrity, "dataHash");
    assert_passes(sig, &[Step::Parse, Step::Signature, Step::Seal]);
    assert!(!doc.verify_result);
}

#[test]
fn tampered_seal_picture_fails_the_seal_step() {
    let pki = pki();
    let mut ofd = Ofd::new("正文");
    ofd.sign(&pki, &SignSpec::default());
    ofd.edit("Doc_0/Signs/Sign_0/SignedValue.dat", |d| {
        let i = d.windows(PICTURE.len()).position(|w| w == PICTURE).unwrap();
        d[i + 12] ^= 0x20;
    });
    let doc = verify(&ofd.zip(), &trusting(&pki));
    let sig = &doc.details[0];
    assert_fails(sig, Step::Seal, "制章者签名验证失败");
    // The seal is part of TBS_Sign, so the signer's signature breaks as well.
    assert_fails(sig, Step::Signature, "签名验证失败");
    assert!(!doc.verify_result);
}

#[test]
fn removed_reference_fails_coverage_naming_the_file() {
    let pki = pki();
    let mut ofd = Ofd::new("正文");
    ofd.sign(
        &pki,
        &SignSpec {
            skip_ref: Some("Doc_0/PublicRes.xml"),
            ..Default::default()
        },
    );
    let doc = verify(&ofd.zip(), &trusting(&pki));
    let sig = &doc.details[0];
    assert_fails(
        sig,
        Step::Coverage,
        "未受任何签名保护的文件: Doc_0/PublicRes.xml",
    );
    assert_passes(
        sig,
        &[Step::Parse, Step::Integrity, Step::Signature, Step::Seal],
    );
    assert!(!doc.verify_result);
}

#[test]
fn added_file_fails_coverage_naming_the_file() {
    let pki = pki();
    let mut ofd = Ofd::new("正文");
    ofd.sign(&pki, &SignSpec::default());
    ofd.put(
        "Doc_0/Res/extra.png",
        b"\x89PNG added after signing".to_vec(),
    );
    let doc = verify(&ofd.zip(), &trusting(&pki));
    let sig = &doc.details[0];
    assert_fails(sig, Step::Coverage, "Doc_0/Res/extra.png");
    assert_passes(
        sig,
        &[Step::Parse, Step::Integrity, Step::Signature, Step::Seal],
    );
    assert!(!doc.verify_result);
}

#[test]
fn a_signature_cannot_exempt_a_content_file_by_naming_it_as_its_seal() {
    let pki = pki();
    let mut ofd = Ofd::new("正文");
    ofd.sign(&pki, &SignSpec::default());
    ofd.sign(&pki, &SignSpec::default());
    ofd.put("Doc_0/Res/evil.png", b"added later".to_vec());
    ofd.edit("Doc_0/Signs/Sign_1/Signature.xml", |d| {
        let text = String::from_utf8(d.clone()).unwrap().replace(
            "</ofd:SignedInfo>",
            "<ofd:Seal><ofd:BaseLoc>/Doc_0/Res/evil.png</ofd:BaseLoc></ofd:Seal></ofd:SignedInfo>",
        );
        *d = text.into_bytes();
    });
    let doc = verify(&ofd.zip(), &trusting(&pki));
    assert_fails(&doc.details[0], Step::Coverage, "Doc_0/Res/evil.png");
    assert_fails(&doc.details[1], Step::Integrity, "dataHash");
    assert!(!doc.verify_result);
}

#[test]
fn changed_check_value_fails_integrity() {
    let pki = pki();
    let mut ofd = Ofd::new("正文");
    ofd.sign(
        &pki,
        &SignSpec {
            wrong_check_value: Some("Doc_0/Document.xml"),
            ..Default::default()
        },
    );
    let doc = verify(&ofd.zip(), &trusting(&pki));
    let sig = &doc.details[0];
    assert_fails(sig, Step::Integrity, "文件 Doc_0/Document.xml 的校验值不符");
    assert_passes(sig, &[Step::Parse, Step::Signature, Step::Seal]);
}

#[test]
fn deleted_referenced_file_fails_integrity_naming_it() {
    let pki = pki();
    let mut ofd = Ofd::new("正文");
    ofd.sign(&pki, &SignSpec::default());
    ofd.files.retain(|(n, _)| n != "Doc_0/PublicRes.xml");
    let doc = verify(&ofd.zip(), &trusting(&pki));
    assert_fails(
        &doc.details[0],
        Step::Integrity,
        "被引用的文件 Doc_0/PublicRes.xml 不存在",
    );
}

#[test]
fn weak_check_method_fails_unless_allowed_and_sha256_is_accepted() {
    let pki = pki();
    let mut ofd = Ofd::new("正文");
    ofd.sign(
        &pki,
        &SignSpec {
            check_method: "MD5",
            hash: |d| <md5::Md5 as md5::Digest>::digest(d).to_vec(),
            ..Default::default()
        },
    );
    let strict = verify(&ofd.zip(), &trusting(&pki));
    assert_fails(&strict.details[0], Step::Integrity, "强度不足");
    let lenient = VerifyOptions {
        allow_weak_hashes: true,
        ..trusting(&pki)
    };
    let doc = verify(&ofd.zip(), &lenient);
    let (ok, hint) = step(&doc.details[0], Step::Integrity);
    assert!(ok && hint.contains("MD5"), "{hint}");

    let mut ofd = Ofd::new("正文");
    ofd.sign(
        &pki,
        &SignSpec {
            check_method: "2.16.840.1.101.3.4.2.1",
            hash: |d| <sha2::Sha256 as sha2::Digest>::digest(d).to_vec(),
            ..Default::default()
        },
    );
    let doc = verify(&ofd.zip(), &trusting(&pki));
    assert_passes(&doc.details[0], &[Step::Integrity]);
}

#[test]
fn unknown_check_method_fails_integrity_and_says_so() {
    let pki = pki();
    let mut ofd = Ofd::new("正文");
    ofd.sign(
        &pki,
        &SignSpec {
            check_method: "1.2.3.4",
            ..Default::default()
        },
    );
    let doc = verify(&ofd.zip(), &trusting(&pki));
    assert_fails(
        &doc.details[0],
        Step::Integrity,
        "不支持的 CheckMethod: 1.2.3.4",
    );
}

#[test]
fn broken_signature_xml_fails_parse_for_that_signature_only() {
    let pki = pki();
    let mut ofd = Ofd::new("正文");
    ofd.sign(&pki, &SignSpec::default());
    ofd.sign(&pki, &SignSpec::default());
    ofd.put(
        "Doc_0/Signs/Sign_0/Signature.xml",
        b"<ofd:Signature><unclosed></ofd:Signature>".to_vec(),
    );
    let doc = verify(&ofd.zip(), &trusting(&pki));
    assert_eq!(doc.sign_count, 2);
    let first = &doc.details[0];
    assert_fails(first, Step::Parse, "Sign_0/Signature.xml");
    // Later steps are reported failed with the reason, never silently passed.
    for f in first
        .flow_vo_list
        .iter()
        .filter(|f| f.step != Step::Parse && f.step != Step::Registry)
    {
        assert_eq!(f.status, 0, "{}", f.step);
        assert!(f.hint.contains("前序步骤失败"), "{}: {}", f.step, f.hint);
    }
    // The second still verifies its own content (it covers the first's original bytes, which
    // changed, so integrity fails there: that change happened after it signed).
    assert_fails(&doc.details[1], Step::Integrity, "Sign_0/Signature.xml");
}

#[test]
fn unsigned_ofd_has_no_signature_and_does_not_verify() {
    let mut ofd = Ofd::new("无签章");
    // Declared but missing: the signatures were stripped, which must not look unsigned.
    let doc = verify(&ofd.zip(), &VerifyOptions::default());
    assert!(
        doc.error
            .as_deref()
            .is_some_and(|e| e.contains("Doc_0/Signs/Signatures.xml")),
        "{:?}",
        doc.error
    );
    assert!(!doc.verify_result);

    ofd.edit("OFD.xml", |d| {
        let text = String::from_utf8(d.clone()).unwrap();
        *d = text
            .replace(
                "<ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures>",
                "",
            )
            .into_bytes();
    });
    let doc = verify(&ofd.zip(), &VerifyOptions::default());
    assert!(doc.error.is_none(), "{:?}", doc.error);
    assert_eq!(doc.sign_count, 0);
    assert!(!doc.verify_result);
}

// ---------------------------------------------------------------------------------------------
// Package limits

fn package_error(bytes: &[u8], opts: &VerifyOptions) -> String {
    match verify_ofd(bytes, opts) {
        Err(e) => e.to_string(),
        Ok(r) => panic!("expected a package error, got {} reports", r.len()),
    }
}

#[test]
fn unsafe_entry_names_are_refused() {
    for bad in ["../evil.xml", "/abs/OFD.xml", "Doc_0\\x.xml", "a/../../b"] {
        let bytes =
            zip_entries([("OFD.xml", b"<OFD/>".as_slice()), (bad, b"x".as_slice())].into_iter());
        let err = package_error(&bytes, &VerifyOptions::default());
        assert!(err.contains("条目名不安全"), "{bad}: {err}");
    }
}

#[test]
fn duplicate_entry_names_are_refused() {
    // ZipWriter refuses duplicates, so splice a second central entry by hand: write two
    // files whose names differ in one byte, then make them equal.
    let mut bytes = zip_entries(
        [
            ("OFD.xml", b"<OFD/>".as_slice()),
            ("OFD.xmm", b"<X/>".as_slice()),
        ]
        .into_iter(),
    );
    let mut i = 0;
    while let Some(p) = bytes[i..].windows(7).position(|w| w == b"OFD.xmm") {
        bytes[i + p + 6] = b'l';
        i += p + 7;
    }
    let err = package_error(&bytes, &VerifyOptions::default());
    assert!(err.contains("重复"), "{err}");
}

#[test]
fn zip_bombs_and_size_limits_are_refused() {
    let zeros = vec![0u8; 4 * 1024 * 1024];
    let bomb = zip_entries(
        [
            ("OFD.xml", b"<OFD/>".as_slice()),
            ("big.bin", zeros.as_slice()),
        ]
        .into_iter(),
    );
    let err = package_error(&bomb, &VerifyOptions::default());
    assert!(err.contains("压缩比"), "{err}");

    let text: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let pkg = zip_entries(
        [
            ("OFD.xml", b"<OFD/>".as_slice()),
            ("a.bin", text.as_slice()),
        ]
        .into_iter(),
    );
    let small_entry = VerifyOptions {
        max_inflated_entry: 100_000,
        ..Default::default()
    };
    assert!(package_error(&pkg, &small_entry).contains("单文件上限"));
    let small_total = VerifyOptions {
        max_inflated_total: 100_000,
        ..Default::default()
    };
    assert!(package_error(&pkg, &small_total).contains("总量"));
    let few_entries = VerifyOptions {
        max_zip_entries: 1,
        ..Default::default()
    };
    assert!(package_error(&pkg, &few_entries).contains("条目数"));
}

#[test]
fn deep_xml_is_refused() {
    let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
    let bytes = zip_entries([("OFD.xml", deep.as_bytes())].into_iter());
    let err = package_error(&bytes, &VerifyOptions::default());
    assert!(err.contains("嵌套层数"), "{err}");
}

#[test]
fn missing_ofd_xml_is_a_document_error() {
    let bytes = zip_entries([("x.txt", b"hello".as_slice())].into_iter());
    assert!(package_error(&bytes, &VerifyOptions::default()).contains("OFD.xml"));
}

// ---------------------------------------------------------------------------------------------
// Robustness

/// Hostile input must end, not hang; the bound is generous for a loaded debug build.
fn quick(bytes: &[u8]) {
    let start = Instant::now();
    let _ = verify_ofd(bytes, &VerifyOptions::default());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        quick(&bytes);
        let mut zipped = b"PK\x03\x04".to_vec();
        zipped.extend_from_slice(&bytes);
        quick(&zipped);
    }

    #[test]
    fn mutated_corpus_never_panics(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = corpus_bytes("gomain-invoice-modified.ofd");
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= v | 1;
        }
        quick(&bytes);
        bytes.truncate(cut.index(bytes.len()));
        quick(&bytes);
    }
}

/// Every entry's content mutated in turn (inflated, then re-zipped) still yields a report.
#[test]
fn mutated_entries_never_panic() {
    let pki = pki();
    let mut ofd = Ofd::new("正文");
    ofd.sign(&pki, &SignSpec::default());
    for idx in 0..ofd.files.len() {
        for pos in [0usize, 1, 7, 40, 200] {
            let mut m = ofd.clone();
            let data = &mut m.files[idx].1;
            let at = pos.min(data.len().saturating_sub(1));
            if let Some(b) = data.get_mut(at) {
                *b ^= 0x5a;
            }
            let start = Instant::now();
            let _ = verify_ofd(&m.zip(), &trusting(&pki));
            assert!(start.elapsed() < Duration::from_secs(10));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Issue 12 point 1: SM2 values whose 32-byte r or s lacks the sign octet (one vendor's quirk)

/// A PKI whose v4 and v1 seals carry a maker signature re-encoded without the sign octet.
fn pki_with_quirky_seals() -> Pki {
    loop {
        let mut pki = pki();
        let v4 = SesSeal::decode(&pki.seal_v4).unwrap();
        let v1 = SesSeal::decode(&pki.seal_v1).unwrap();
        if let (Some(q4), Some(q1)) = (
            kit::without_sign_octets(&v4.signature_value),
            kit::without_sign_octets(&v1.signature_value),
        ) {
            pki.seal_v4 = kit::replace_value(&pki.seal_v4, &v4.signature_value, &q4).unwrap();
            pki.seal_v1 = kit::replace_value(&pki.seal_v1, &v1.signature_value, &q1).unwrap();
            return pki;
        }
    }
}

#[test]
fn seal_maker_signature_without_sign_octet_verifies_with_a_note() {
    let pki = pki_with_quirky_seals();
    for kind in [SesKind::V4, SesKind::V1] {
        let mut ofd = Ofd::new("厂商印章");
        ofd.sign(
            &pki,
            &SignSpec {
                kind,
                ..Default::default()
            },
        );
        let doc = verify(&ofd.zip(), &trusting(&pki));
        let sig = &doc.details[0];
        assert_passes(sig, &ALL_BUT_REGISTRY);
        let (_, seal_hint) = step(sig, Step::Seal);
        assert!(seal_hint.contains(LENIENT_INTEGER_HINT), "{seal_hint}");
        let (_, sig_hint) = step(sig, Step::Signature);
        assert!(!sig_hint.contains(LENIENT_INTEGER_HINT), "{sig_hint}");
    }
}

#[test]
fn signer_signature_without_sign_octet_verifies_with_a_note() {
    let pki = pki();
    for kind in [SesKind::V4, SesKind::V1] {
        let mut ofd = Ofd::new("厂商签章");
        ofd.sign(
            &pki,
            &SignSpec {
                kind,
                quirky_value: true,
                ..Default::default()
            },
        );
        let doc = verify(&ofd.zip(), &trusting(&pki));
        let sig = &doc.details[0];
        assert_passes(sig, &ALL_BUT_REGISTRY);
        let (_, hint) = step(sig, Step::Signature);
        assert!(hint.contains(LENIENT_INTEGER_HINT), "{hint}");
        assert!(!step(sig, Step::Seal).1.contains(LENIENT_INTEGER_HINT));
    }
}

#[test]
fn a_changed_value_without_sign_octet_still_fails_the_cryptography() {
    let pki = pki_with_quirky_seals();
    let seal = SesSeal::decode(&pki.seal_v4).unwrap();
    // Flip the last byte of s: still well-formed, no longer the maker's signature.
    let mut value = seal.signature_value.clone();
    *value.last_mut().unwrap() ^= 1;
    let bad = Pki {
        seal_v4: kit::replace_value(&pki.seal_v4, &seal.signature_value, &value).unwrap(),
        ..pki
    };
    let mut ofd = Ofd::new("篡改的印章");
    ofd.sign(&bad, &SignSpec::default());
    let doc = verify(&ofd.zip(), &trusting(&bad));
    assert_fails(&doc.details[0], Step::Seal, "制章者签名");
    assert!(!doc.verify_result);
}

#[test]
fn a_signer_value_with_two_leading_zeros_stays_a_failure() {
    let pki = pki();
    let mut ofd = Ofd::new("不规范签名");
    ofd.sign(&pki, &SignSpec::default());
    let loc = "Doc_0/Signs/Sign_0/SignedValue.dat";
    let der = ofd.get(loc).unwrap().clone();
    let sig = SesSignature::decode(&der).unwrap();
    let raw = hutong::crypto::sm::parse_sm2_signature(&sig.signature_value)
        .unwrap()
        .to_bytes();
    let int = |v: &[u8]| [&[0x02, 34, 0, 0][..], v].concat();
    let body = [int(&raw[..32]), int(&raw[32..])].concat();
    let value = [&[0x30, body.len() as u8][..], &body].concat();
    ofd.put(
        loc,
        kit::replace_value(&der, &sig.signature_value, &value).unwrap(),
    );
    let doc = verify(&ofd.zip(), &trusting(&pki));
    assert_fails(&doc.details[0], Step::Signature, "签章者签名");
    assert!(!doc.verify_result);
}

// ---------------------------------------------------------------------------------------------
// Issue 12 point 2: OFD.xml outside the references (most producers), judged by what it points to

fn signed_without_entry_file(pki: &Pki) -> Ofd {
    let mut ofd = Ofd::new("入口文件未签");
    ofd.sign(
        pki,
        &SignSpec {
            skip_ref: Some("OFD.xml"),
            ..Default::default()
        },
    );
    ofd
}

#[test]
fn unreferenced_ofd_xml_passes_coverage_with_a_note() {
    let pki = pki();
    let ofd = signed_without_entry_file(&pki);
    let doc = verify(&ofd.zip(), &trusting(&pki));
    let sig = &doc.details[0];
    assert_passes(sig, &ALL_BUT_REGISTRY);
    let (_, hint) = step(sig, Step::Coverage);
    assert!(hint.contains("OFD.xml 未列入签名引用"), "{hint}");
    assert!(hint.contains("Doc_0/Document.xml"), "{hint}");
    // A signature that does list OFD.xml gets no such note.
    let mut full = Ofd::new("入口文件已签");
    full.sign(&pki, &SignSpec::default());
    let doc = verify(&full.zip(), &trusting(&pki));
    assert!(
        !step(&doc.details[0], Step::Coverage)
            .1
            .contains("未列入签名引用")
    );
}

/// An unsigned second document: its own Document.xml and page.
fn add_unsigned_document(ofd: &mut Ofd) {
    let document = String::from_utf8(ofd.get("Doc_0/Document.xml").unwrap().clone()).unwrap();
    let page = String::from_utf8(ofd.get("Doc_0/Pages/Page_0/Content.xml").unwrap().clone())
        .unwrap()
        .replace("入口文件未签", "伪造的正文");
    ofd.put("Doc_1/Document.xml", document.into_bytes());
    ofd.put("Doc_1/Pages/Page_0/Content.xml", page.into_bytes());
    ofd.put(
        "Doc_1/PublicRes.xml",
        ofd.get("Doc_0/PublicRes.xml").unwrap().clone(),
    );
}

fn edit_entry_file(ofd: &mut Ofd, f: impl FnOnce(String) -> String) {
    ofd.edit("OFD.xml", |d| {
        *d = f(String::from_utf8(d.clone()).unwrap()).into_bytes();
    });
}

#[test]
fn a_second_doc_body_fails_coverage() {
    let pki = pki();
    const BODY: &str = "<ofd:DocBody><ofd:DocInfo><ofd:DocID>0123456789abcdef</ofd:DocID></ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot><ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody>";
    // Before the signed body (viewers open the first) and after it; the same signed document
    // or a new unsigned one.
    let cases: [(bool, Option<&str>); 3] = [
        (true, None),
        (false, None),
        (
            true,
            Some(
                "<ofd:DocBody><ofd:DocInfo><ofd:DocID>ff</ofd:DocID></ofd:DocInfo><ofd:DocRoot>Doc_1/Document.xml</ofd:DocRoot></ofd:DocBody>",
            ),
        ),
    ];
    for (before, extra) in cases {
        let mut ofd = signed_without_entry_file(&pki);
        if extra.is_some() {
            add_unsigned_document(&mut ofd);
        }
        let extra = extra.unwrap_or(BODY);
        edit_entry_file(&mut ofd, |x| {
            if before {
                x.replacen("<ofd:DocBody>", &format!("{extra}<ofd:DocBody>"), 1)
            } else {
                x.replace("</ofd:OFD>", &format!("{extra}</ofd:OFD>"))
            }
        });
        let doc = verify(&ofd.zip(), &trusting(&pki));
        assert!(!doc.verify_result);
        assert_fails(&doc.details[0], Step::Coverage, "2 个 DocBody");
    }
}

#[test]
fn doc_root_redirected_to_an_unsigned_document_fails_coverage() {
    let pki = pki();
    let mut ofd = signed_without_entry_file(&pki);
    add_unsigned_document(&mut ofd);
    edit_entry_file(&mut ofd, |x| {
        x.replace("<ofd:DocRoot>Doc_0/", "<ofd:DocRoot>Doc_1/")
    });
    let doc = verify(&ofd.zip(), &trusting(&pki));
    assert!(!doc.verify_result);
    assert_fails(&doc.details[0], Step::Coverage, "Doc_1/Document.xml");
    assert_fails(&doc.details[0], Step::Coverage, "未签名的文档");
}

#[test]
fn files_a_page_shows_stay_a_failure_when_unsigned_even_with_the_entry_file_note() {
    let pki = pki();
    for (name, data) in [
        ("Doc_0/Res/stamp.png", &b"\x89PNG\r\n\x1a\nnot signed"[..]),
        (
            "Doc_0/Annots/Page_0/Annotation.xml",
            br#"<ofd:PageAnnot xmlns:ofd="http://www.ofdspec.org/2016"><ofd:Annot ID="20" Type="Stamp"/></ofd:PageAnnot>"#,
        ),
        (
            "Doc_0/Tpls/Tpl_0/Content.xml",
            br#"<ofd:Page xmlns:ofd="http://www.ofdspec.org/2016"><ofd:Content/></ofd:Page>"#,
        ),
        ("Doc_0/Attachs/invoice.xml", b"<Invoice/>"),
    ] {
        let mut ofd = signed_without_entry_file(&pki);
        ofd.put(name, data.to_vec());
        let doc = verify(&ofd.zip(), &trusting(&pki));
        assert!(!doc.verify_result, "{name}");
        assert_fails(&doc.details[0], Step::Coverage, name);
    }
    // A changed page is caught by its reference.
    let mut ofd = signed_without_entry_file(&pki);
    ofd.edit("Doc_0/Pages/Page_0/Content.xml", |d| {
        d.extend_from_slice(b" ")
    });
    let doc = verify(&ofd.zip(), &trusting(&pki));
    assert_fails(&doc.details[0], Step::Integrity, "Content.xml");
}

// ---------------------------------------------------------------------------------------------
// Issue 12 point 6: parser errors in a report are our Chinese sentences naming the file

/// No library English in `text`: once the package's file names are taken out, no bare lower-case
/// word of four letters or more is left (the zip and XML libraries write lower-case English).
fn assert_ours(text: &str, names: &[&str]) {
    let word = words::library_word(text, names);
    assert!(word.is_none(), "library text {word:?} in {text:?}");
    assert!(!text.is_ascii(), "not a Chinese sentence: {text:?}");
}

/// `zip` with the declared uncompressed size of `entry` (local and central headers) set to
/// `size`.
fn declare_size(zip: &[u8], entry: &str, size: u32) -> Vec<u8> {
    let mut out = zip.to_vec();
    let name = entry.as_bytes();
    let mut at = 0;
    while let Some(i) = out[at..]
        .windows(4)
        .position(|w| w == b"PK\x03\x04" || w == b"PK\x01\x02")
    {
        let h = at + i;
        let central = out[h + 2] == 1;
        let (name_len_at, name_at, size_at) = if central {
            (h + 28, h + 46, h + 24)
        } else {
            (h + 26, h + 30, h + 22)
        };
        let n = u16::from_le_bytes([out[name_len_at], out[name_len_at + 1]]) as usize;
        if out.get(name_at..name_at + n) == Some(name) {
            out[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
        }
        at = h + 4;
    }
    out
}

#[test]
fn a_zip_entry_larger_than_declared_is_reported_in_our_words_naming_it() {
    let pki = pki();
    let mut ofd = Ofd::new("声明大小不符");
    ofd.sign(&pki, &SignSpec::default());
    let entry = "Doc_0/Pages/Page_0/Content.xml";
    let bad = declare_size(&ofd.zip(), entry, 10);
    let doc = verify_document(&bad, "test.ofd", &trusting(&pki), &EmptyRegistry).unwrap();
    let error = doc.error.clone().unwrap_or_default();
    assert!(error.contains(entry), "{error}");
    assert_ours(&error, &[entry]);
    assert!(!doc.verify_result);
}

#[test]
fn truncated_xml_is_reported_in_our_words_naming_the_file() {
    let pki = pki();
    let mut ofd = Ofd::new("截断的 XML");
    ofd.sign(&pki, &SignSpec::default());
    // A signature's own file: that signature fails `parse`, naming it.
    let sig_xml = "Doc_0/Signs/Sign_0/Signature.xml";
    let mut cut = ofd.clone();
    cut.edit(sig_xml, |d| d.truncate(d.len() / 2));
    let doc = verify(&cut.zip(), &trusting(&pki));
    let (passed, hint) = step(&doc.details[0], Step::Parse);
    assert!(!passed);
    assert!(hint.contains(sig_xml), "{hint}");
    assert_ours(&hint, &[sig_xml]);
    // The entry file: the whole document fails, naming it.
    let mut cut = ofd.clone();
    cut.edit("OFD.xml", |d| d.truncate(d.len() - 20));
    let doc = verify_document(&cut.zip(), "test.ofd", &trusting(&pki), &EmptyRegistry).unwrap();
    let error = doc.error.clone().unwrap_or_default();
    assert!(error.contains("OFD.xml"), "{error}");
    assert_ours(&error, &["OFD.xml"]);
    // Garbage that is not a ZIP at all.
    let doc = verify_document(
        b"PK\x03\x04garbage",
        "x.ofd",
        &trusting(&pki),
        &EmptyRegistry,
    )
    .unwrap();
    assert_ours(&doc.error.clone().unwrap_or_default(), &[]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Bounded "fuzzing" of the OFD entry point below the ZIP layer: any entry of a signed
    /// package with random bytes changed or cut never panics and gets our sentences.
    #[test]
    fn mutated_package_entries_get_our_errors(
        entry in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        static SIGNED: std::sync::OnceLock<(Ofd, Vec<u8>)> = std::sync::OnceLock::new();
        let (ofd, root) = SIGNED.get_or_init(|| {
            let pki = pki();
            let mut ofd = Ofd::new("模糊测试");
            ofd.sign(&pki, &SignSpec::default());
            (ofd, pki.root_cert.clone())
        });
        let mut m = ofd.clone();
        let data = &mut m.files[entry.index(ofd.files.len())].1;
        for (at, b) in edits {
            let at = at.index(data.len());
            data[at] = b;
        }
        if let Some(c) = cut {
            data.truncate(c.index(data.len()));
        }
        let opts = VerifyOptions { trust_anchors: vec![root.clone()], ..Default::default() };
        let doc = verify_document(&m.zip(), "fuzz.ofd", &opts, &EmptyRegistry).unwrap();
        let names: Vec<&str> = ofd.files.iter().map(|(n, _)| n.as_str()).collect();
        for t in doc.error.iter().cloned().chain(doc.details.iter().flat_map(|s| {
            s.flow_vo_list.iter().filter(|f| f.status == 0).map(|f| f.hint.clone())
        })) {
            let word = words::library_word(&t, &names);
            prop_assert!(word.is_none(), "library text {:?} in {:?}", word, t);
        }
    }
}
