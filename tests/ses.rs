//! GB/T 38540 v4 and GM/T 0031 v1 seals and signatures: real producers' files from the corpus
//! (tests/data/ofd, see PROVENANCE.md) and round trips through the encoders with keys and
//! certificates generated at test time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

#[path = "support/words.rs"]
mod words;

use hutong::crypto::certgen::{CertSpec, issue_sm2, self_signed_sm2};
use hutong::crypto::sm::{Sm2KeyPair, parse_sm2_signature, sm3};
use hutong::ses::asn1;
use hutong::ses::{
    ExtData, MAX_CERTS, SealParams, SesError, SesSeal, SesSignature, SesVersion, build_seal_v1,
    build_seal_v4, sign_v1, sign_v4,
};
use proptest::prelude::*;
use std::sync::OnceLock;

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/ofd/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// 2026-11-23 00:00:00 UTC.
const NOW: i64 = 1_795_392_000_000;
const DAY: i64 = 86_400_000;

struct Pki {
    maker: Sm2KeyPair,
    maker_cert: Vec<u8>,
    signer: Sm2KeyPair,
    signer_cert: Vec<u8>,
}

/// One CA issuing a maker and a signer certificate, shared by the tests of this file.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let spec = |cn: &str, is_ca| CertSpec {
            common_name: cn.into(),
            organization: Some("互通测试".into()),
            not_before_ms: NOW - 365 * DAY,
            not_after_ms: NOW + 365 * DAY,
            is_ca,
            serial: None,
        };
        let ca = Sm2KeyPair::generate();
        let ca_cert = self_signed_sm2(&spec("测试 CA", true), &ca).unwrap();
        let maker = Sm2KeyPair::generate();
        let maker_cert =
            issue_sm2(&spec("制章者", false), &maker.public_key(), &ca_cert, &ca).unwrap();
        let signer = Sm2KeyPair::generate();
        let signer_cert =
            issue_sm2(&spec("签章人", false), &signer.public_key(), &ca_cert, &ca).unwrap();
        Pki {
            maker,
            maker_cert,
            signer,
            signer_cert,
        }
    })
}

fn params() -> SealParams {
    SealParams {
        vid: "HUTONG".into(),
        es_id: "34000005000000001X".into(),
        seal_type: 2,
        name: "某某市数据资源局（测试专用章）".into(),
        cert_list: vec![pki().signer_cert.clone()],
        cert_list_is_digest: false,
        cert_digest_type: "SM3".into(),
        create_date_ms: NOW - DAY,
        valid_start_ms: NOW - DAY,
        valid_end_ms: NOW + 3 * 365 * DAY,
        picture_kind: "png".into(),
        picture_data: b"\x89PNG\r\n\x1a\n not really a picture".to_vec(),
        width_mm: 42,
        height_mm: 40,
        ext_datas: vec![ExtData {
            oid: "1.2.156.10197.6.7.2.2.1".into(),
            critical: false,
            value: b"2.1".to_vec(),
        }],
    }
}

fn assert_fields(seal: &SesSeal, p: &SealParams) {
    assert_eq!(seal.vid, p.vid);
    assert_eq!(seal.es_id, p.es_id);
    assert_eq!(seal.seal_type, p.seal_type);
    assert_eq!(seal.name, p.name);
    assert_eq!(seal.cert_list, p.cert_list);
    assert_eq!(seal.cert_list_is_digest, p.cert_list_is_digest);
    // Both encodings carry whole seconds.
    assert_eq!(
        seal.create_date_ms,
        p.create_date_ms.div_euclid(1000) * 1000
    );
    assert_eq!(
        seal.valid_start_ms,
        p.valid_start_ms.div_euclid(1000) * 1000
    );
    assert_eq!(seal.valid_end_ms, p.valid_end_ms.div_euclid(1000) * 1000);
    assert_eq!(seal.picture.kind, p.picture_kind.to_ascii_lowercase());
    assert_eq!(seal.picture.data, p.picture_data);
    assert_eq!(seal.picture.width_mm, p.width_mm as f64);
    assert_eq!(seal.picture.height_mm, p.height_mm as f64);
    assert_eq!(seal.ext_datas, p.ext_datas);
    assert_eq!(seal.maker_cert_der, pki().maker_cert);
    assert_eq!(seal.signature_alg, "1.2.156.10197.1.501");
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at] ^= 0x01;
    v
}

fn position_of(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

// ---------------------------------------------------------------------------------------------
// Corpus

#[test]
fn corpus_v4_seal_parses_and_maker_signature_verifies() {
    let der = data("seal-UserV4.esl");
    let seal = SesSeal::decode(&der).unwrap();
    assert_eq!(seal.version, SesVersion::V4);
    assert_eq!(seal.header_version, 4);
    assert_eq!(seal.vid, "OFDR&WTest");
    assert_eq!(seal.es_id, "51f044b76510434e9bc67a1185c2fba5");
    assert_eq!(seal.seal_type, 3);
    assert_eq!(seal.name, "OFD R&W 测试用印章");
    assert_eq!(seal.cert_list.len(), 1);
    assert!(!seal.cert_list_is_digest);
    assert_eq!(seal.picture.kind, "png");
    assert!(seal.picture.data.starts_with(b"\x89PNG"));
    assert_eq!(
        (seal.picture.width_mm, seal.picture.height_mm),
        (40.0, 40.0)
    );
    // 2020-04-22 02:09:00Z .. 2022-04-22 02:09:00Z
    assert_eq!(seal.valid_start_ms, 1_587_521_340_000);
    assert_eq!(seal.valid_end_ms, 1_650_593_340_000);
    assert_eq!(seal.der, der);
    assert_eq!(seal.digest(), sm3(&der));
    // v4: the maker signs SES_SealInfo, the first element of the seal.
    let (top, _) = asn1::read_tlv(&der).unwrap();
    let info = top.reader().required().unwrap();
    assert_eq!(seal.signed_bytes, info.raw);
    seal.verify_maker().unwrap();
}

#[test]
fn corpus_v1_seal_parses_and_maker_signature_verifies() {
    let der = data("seal-UserV1.esl");
    let seal = SesSeal::decode(&der).unwrap();
    assert_eq!(seal.version, SesVersion::V1);
    assert_eq!(seal.header_version, 1);
    assert_eq!(seal.es_id, "40C8CDD24DEF43388B86E62CCE1D6832");
    assert_eq!(seal.name, "OFDRW测试用印章");
    assert_eq!(seal.seal_type, 1);
    assert_eq!(seal.cert_list.len(), 1);
    assert_eq!(seal.picture.kind, "png");
    // UTCTime 200422021807Z
    assert_eq!(seal.create_date_ms, 1_587_521_887_000);
    // v1: SEQUENCE{esealInfo, cert, signatureAlgorithm}, not esealInfo alone.
    let (top, _) = asn1::read_tlv(&der).unwrap();
    let info = top.reader().required().unwrap();
    assert_ne!(seal.signed_bytes, info.raw);
    assert_eq!(seal.signed_bytes.first(), Some(&0x30));
    seal.verify_maker().unwrap();
}

#[test]
fn tampering_with_a_corpus_seal_breaks_the_maker_signature() {
    for file in ["seal-UserV4.esl", "seal-UserV1.esl"] {
        let der = data(file);
        let seal = SesSeal::decode(&der).unwrap();
        // One bit in the middle of the picture.
        let pic_at = position_of(&der, &seal.picture.data) + seal.picture.data.len() / 2;
        let bad = SesSeal::decode(&flip(&der, pic_at)).unwrap();
        assert_eq!(bad.verify_maker(), Err(SesError::MakerSignature), "{file}");
        // One bit of the signature value (the last bytes of the seal are s).
        let bad = SesSeal::decode(&flip(&der, der.len() - 3)).unwrap();
        assert_eq!(bad.verify_maker(), Err(SesError::MakerSignature), "{file}");
        // One bit of esID.
        let id_at = position_of(&der, seal.es_id.as_bytes());
        let bad = SesSeal::decode(&flip(&der, id_at)).unwrap();
        assert_ne!(bad.es_id, seal.es_id);
        assert_eq!(bad.verify_maker(), Err(SesError::MakerSignature), "{file}");
    }
}

#[test]
fn corpus_v4_signature_from_an_ofd_verifies() {
    let der = data("gomain-1.SignedValue.dat");
    let sig = SesSignature::decode(&der).unwrap();
    assert_eq!(sig.version, SesVersion::V4);
    assert_eq!(sig.tbs_version, 4);
    assert_eq!(sig.property_info, "/Doc_0/Signs/Sign_0/Signature.xml");
    // 20200723130907Z
    assert_eq!(sig.time_ms, Some(1_595_509_747_000));
    assert_eq!(sig.data_hash.len(), 32);
    assert!(sig.timestamp.is_none());
    assert_eq!(sig.seal.vid, "GOMAIN");
    assert_eq!(sig.seal.es_id, "33010600000001");
    assert_eq!(sig.seal.name, "国家税务总局浙江省税务局");
    assert_eq!(sig.seal.picture.kind, "ofd");
    assert_eq!(
        (sig.seal.picture.width_mm, sig.seal.picture.height_mm),
        (30.0, 20.0)
    );
    // gomain writes the seal's extDatas without the [0] tag.
    assert_eq!(sig.seal.ext_datas.len(), 1);
    assert_eq!(sig.seal.ext_datas[0].oid, "1.2.156.10197.6.7.2.2.1");
    // The signer's certificate is the one the seal lists.
    assert_eq!(sig.seal.cert_list, vec![sig.cert_der.clone()]);
    sig.verify_signature().unwrap();
    sig.seal.verify_maker().unwrap();
    sig.seal.check_validity_at(sig.time_ms.unwrap()).unwrap();
    // Flipping a bit of dataHash (inside TBS_Sign) breaks the signer's signature only.
    let at = position_of(&der, &sig.data_hash);
    let bad = SesSignature::decode(&flip(&der, at)).unwrap();
    assert_eq!(bad.verify_signature(), Err(SesError::SignerSignature));
    bad.seal.verify_maker().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn v4_seal_round_trip() {
    let p = params();
    let der = build_seal_v4(&p, &pki().maker, &pki().maker_cert).unwrap();
    let seal = SesSeal::decode(&der).unwrap();
    assert_eq!(seal.version, SesVersion::V4);
    assert_eq!(seal.header_version, 4);
    assert_fields(&seal, &p);
    seal.verify_maker().unwrap();
    assert_eq!(seal.der, der);
}

#[test]
fn v1_seal_round_trip() {
    let p = params();
    let der = build_seal_v1(&p, &pki().maker, &pki().maker_cert).unwrap();
    let seal = SesSeal::decode(&der).unwrap();
    assert_eq!(seal.version, SesVersion::V1);
    assert_eq!(seal.header_version, 1);
    assert_fields(&seal, &p);
    seal.verify_maker().unwrap();
}

#[test]
fn v4_seal_with_a_certificate_digest_list() {
    let mut p = params();
    p.cert_list = vec![sm3(&pki().signer_cert).to_vec()];
    p.cert_list_is_digest = true;
    let der = build_seal_v4(&p, &pki().maker, &pki().maker_cert).unwrap();
    let seal = SesSeal::decode(&der).unwrap();
    assert!(seal.cert_list_is_digest);
    assert_eq!(seal.cert_digest_types, vec!["SM3".to_string()]);
    assert_fields(&seal, &p);
    seal.verify_maker().unwrap();
    // GM/T 0031 has no digest lists.
    assert!(build_seal_v1(&p, &pki().maker, &pki().maker_cert).is_err());
}

#[test]
fn a_seal_signed_by_another_key_fails_maker_verification() {
    let other = Sm2KeyPair::generate();
    for der in [
        build_seal_v4(&params(), &other, &pki().maker_cert).unwrap(),
        build_seal_v1(&params(), &other, &pki().maker_cert).unwrap(),
    ] {
        let seal = SesSeal::decode(&der).unwrap();
        assert_eq!(seal.verify_maker(), Err(SesError::MakerSignature));
    }
}

#[test]
fn raw_64_byte_signature_values_are_accepted() {
    let der = build_seal_v4(&params(), &pki().maker, &pki().maker_cert).unwrap();
    let seal = SesSeal::decode(&der).unwrap();
    let raw = parse_sm2_signature(&seal.signature_value)
        .unwrap()
        .to_bytes();
    assert_eq!(raw.len(), 64);
    let rebuilt = asn1::sequence(&[
        &seal.signed_bytes,
        &asn1::tlv(asn1::tag::OCTET_STRING, &seal.maker_cert_der),
        &asn1::oid(&seal.signature_alg).unwrap(),
        &asn1::bit_string(&raw),
    ]);
    let again = SesSeal::decode(&rebuilt).unwrap();
    assert_eq!(again.signature_value.len(), 64);
    again.verify_maker().unwrap();
}

#[test]
fn algorithm_identifier_sequences_are_accepted_for_the_algorithm() {
    let der = build_seal_v4(&params(), &pki().maker, &pki().maker_cert).unwrap();
    let seal = SesSeal::decode(&der).unwrap();
    let alg = asn1::sequence(&[
        &asn1::oid(&seal.signature_alg).unwrap(),
        &asn1::tlv(0x05, &[]),
    ]);
    let rebuilt = asn1::sequence(&[
        &seal.signed_bytes,
        &asn1::tlv(asn1::tag::OCTET_STRING, &seal.maker_cert_der),
        &alg,
        &asn1::bit_string(&seal.signature_value),
    ]);
    let again = SesSeal::decode(&rebuilt).unwrap();
    assert_eq!(again.signature_alg, "1.2.156.10197.1.501");
    again.verify_maker().unwrap();
}

#[test]
fn v4_signature_round_trip() {
    let k = pki();
    let seal = build_seal_v4(&params(), &k.maker, &k.maker_cert).unwrap();
    let hash = sm3(b"Signature.xml bytes");
    let t = NOW + 1234; // milliseconds are dropped by GeneralizedTime
    let der = sign_v4(
        &seal,
        &k.signer,
        &k.signer_cert,
        &hash,
        "/Doc_0/Signs/Sign_0/Signature.xml",
        t,
    )
    .unwrap();
    let sig = SesSignature::decode(&der).unwrap();
    assert_eq!(sig.version, SesVersion::V4);
    assert_eq!(sig.seal.der, seal);
    assert_eq!(sig.time_ms, Some(NOW + 1000));
    assert_eq!(sig.data_hash, hash);
    assert_eq!(sig.property_info, "/Doc_0/Signs/Sign_0/Signature.xml");
    assert_eq!(sig.cert_der, k.signer_cert);
    sig.verify_signature().unwrap();
    sig.seal.verify_maker().unwrap();
    // The signature is over TBS_Sign, which embeds the seal: a changed seal breaks it.
    let pic_at = position_of(&der, &sig.seal.picture.data);
    let bad = SesSignature::decode(&flip(&der, pic_at)).unwrap();
    assert_eq!(bad.verify_signature(), Err(SesError::SignerSignature));
    assert_eq!(bad.seal.verify_maker(), Err(SesError::MakerSignature));
    // A v1 seal cannot go into a v4 signature.
    let v1 = build_seal_v1(&params(), &k.maker, &k.maker_cert).unwrap();
    assert!(sign_v4(&v1, &k.signer, &k.signer_cert, &hash, "x", t).is_err());
}

#[test]
fn v1_signature_round_trip() {
    let k = pki();
    let seal = build_seal_v1(&params(), &k.maker, &k.maker_cert).unwrap();
    let hash = sm3(b"document");
    let der = sign_v1(&seal, &k.signer, &k.signer_cert, &hash, "doc.ofd", NOW).unwrap();
    let sig = SesSignature::decode(&der).unwrap();
    assert_eq!(sig.version, SesVersion::V1);
    assert_eq!(sig.tbs_version, 1);
    assert_eq!(sig.time_ms, Some(NOW));
    assert_eq!(sig.data_hash, hash);
    assert_eq!(sig.cert_der, k.signer_cert);
    sig.verify_signature().unwrap();
    sig.seal.verify_maker().unwrap();
    // The v1 signer certificate and algorithm sit inside TBS_Sign, so they are signed too.
    let (top, _) = asn1::read_tlv(&der).unwrap();
    assert_eq!(sig.signed_bytes, top.reader().required().unwrap().raw);
    let bad = SesSignature::decode(&flip(&der, der.len() - 2)).unwrap();
    assert_eq!(bad.verify_signature(), Err(SesError::SignerSignature));
}

/// iOFD (dms360) writes GM/T 0031 signatures whose SM2 digest is `dataHash` itself, leaving the
/// seal and time unsigned (vendor-checkmethod-401-2.ofd in the corpus): refused, and said so.
#[test]
fn a_signature_over_data_hash_only_is_refused_with_its_reason() {
    let k = pki();
    let seal = build_seal_v1(&params(), &k.maker, &k.maker_cert).unwrap();
    let hash = sm3(b"document");
    let der = sign_v1(&seal, &k.signer, &k.signer_cert, &hash, "doc.ofd", NOW).unwrap();
    let sig = SesSignature::decode(&der).unwrap();
    let weak = k.signer.sign_prehashed(&hash);
    let rebuilt = asn1::sequence(&[&sig.signed_bytes, &asn1::bit_string(&weak)]);
    let bad = SesSignature::decode(&rebuilt).unwrap();
    let err = bad.verify_signature().unwrap_err();
    assert_eq!(err, SesError::SignerSignsDataHashOnly);
    assert!(err.to_string().contains("原文杂凑值"), "{err}");
}

/// oesplugin writes `extDatas` as `[0]` in TBS_Sign; the standard's `timeStamp` is `[0]` too.
#[test]
fn v4_signature_with_ext_datas_and_timestamp_decodes() {
    let k = pki();
    let seal = build_seal_v4(&params(), &k.maker, &k.maker_cert).unwrap();
    let ext = asn1::sequence(&[&asn1::sequence(&[
        &asn1::oid("2.5.29.99").unwrap(),
        &asn1::tlv(asn1::tag::BOOLEAN, &[0xff]),
        &asn1::tlv(asn1::tag::OCTET_STRING, b"v"),
    ])]);
    let tbs = asn1::sequence(&[
        &asn1::integer(4),
        &seal,
        &asn1::time(NOW, true).unwrap(),
        &asn1::bit_string(&[7; 32]),
        &asn1::tlv(asn1::tag::IA5_STRING, b"p"),
        &asn1::tlv(asn1::tag::CONTEXT_0, &ext),
    ]);
    let value = k.signer.sign(&tbs);
    let token = asn1::sequence(&[&asn1::integer(3)]);
    let der = asn1::sequence(&[
        &tbs,
        &asn1::tlv(asn1::tag::OCTET_STRING, &k.signer_cert),
        &asn1::oid("1.2.156.10197.1.501").unwrap(),
        &asn1::bit_string(&value),
        &asn1::tlv(asn1::tag::CONTEXT_0, &asn1::bit_string(&token)),
    ]);
    let sig = SesSignature::decode(&der).unwrap();
    assert_eq!(sig.ext_datas.len(), 1);
    assert_eq!(sig.ext_datas[0].oid, "2.5.29.99");
    assert!(sig.ext_datas[0].critical);
    assert_eq!(sig.timestamp.as_deref(), Some(&token[..]));
    assert_eq!(sig.signed_bytes, tbs);
    sig.verify_signature().unwrap();
}

/// GM/T 0031 producers vary the types in TBS_Sign: UTCTime or OCTET STRING time, OCTET STRING
/// dataHash, UTF8String propertyInfo. All decode, and the signature still covers TBS_Sign.
#[test]
fn v1_signature_type_variants_decode_and_verify() {
    let k = pki();
    let seal = build_seal_v1(&params(), &k.maker, &k.maker_cert).unwrap();
    let times = [
        asn1::time(NOW, false).unwrap(),
        asn1::time(NOW, true).unwrap(),
        asn1::tlv(asn1::tag::OCTET_STRING, b"2026-11-23 00:00:00"),
        asn1::bit_string(b"2026-11-23T08:00:00+08:00"),
    ];
    for time in times {
        let tbs = asn1::sequence(&[
            &asn1::integer(1),
            &seal,
            &time,
            &asn1::tlv(asn1::tag::OCTET_STRING, &[9; 32]),
            &asn1::tlv(asn1::tag::UTF8_STRING, "属性".as_bytes()),
            &asn1::tlv(asn1::tag::OCTET_STRING, &k.signer_cert),
            &asn1::oid("1.2.156.10197.1.501").unwrap(),
        ]);
        let der = asn1::sequence(&[&tbs, &asn1::bit_string(&k.signer.sign(&tbs))]);
        let sig = SesSignature::decode(&der).unwrap();
        assert_eq!(sig.version, SesVersion::V1);
        assert_eq!(sig.time_ms, Some(NOW), "{}", sig.time_raw);
        assert_eq!(sig.data_hash, [9; 32]);
        assert_eq!(sig.property_info, "属性");
        sig.verify_signature().unwrap();
    }
    // A time-stamp token in timeInfo is kept (as hex) without inventing a time.
    let tbs = asn1::sequence(&[
        &asn1::integer(1),
        &seal,
        &asn1::bit_string(&asn1::sequence(&[&asn1::integer(1)])),
        &asn1::bit_string(&[9; 32]),
        &asn1::tlv(asn1::tag::IA5_STRING, b"p"),
        &asn1::tlv(asn1::tag::OCTET_STRING, &k.signer_cert),
        &asn1::oid("1.2.156.10197.1.501").unwrap(),
    ]);
    let der = asn1::sequence(&[&tbs, &asn1::bit_string(&k.signer.sign(&tbs))]);
    let sig = SesSignature::decode(&der).unwrap();
    assert_eq!(sig.time_ms, None);
    assert_eq!(sig.time_raw, "3003020101");
}

#[test]
fn a_signature_by_the_wrong_signer_fails() {
    let k = pki();
    let seal = build_seal_v4(&params(), &k.maker, &k.maker_cert).unwrap();
    let other = Sm2KeyPair::generate();
    let der = sign_v4(&seal, &other, &k.signer_cert, &[1; 32], "p", NOW).unwrap();
    let sig = SesSignature::decode(&der).unwrap();
    assert_eq!(sig.verify_signature(), Err(SesError::SignerSignature));
}

/// A structurally complete certificate around `spki` (its own signature is irrelevant here: the
/// `certificate` step judges certificates, the seal only needs the key).
fn certificate_around(spki: &[u8]) -> Vec<u8> {
    use asn1::tag::*;
    let alg = asn1::sequence(&[&asn1::oid("1.2.840.113549.1.1.11").unwrap()]);
    let empty = asn1::tlv(SEQUENCE, &[]);
    let tbs = asn1::sequence(&[
        &asn1::tlv(CONTEXT_0, &asn1::integer(2)),
        &asn1::integer(7),
        &alg,
        &empty,
        &empty,
        &empty,
        spki,
    ]);
    asn1::sequence(&[&tbs, &alg, &asn1::bit_string(&[0; 8])])
}

#[test]
fn rsa_sha256_maker_signatures_verify() {
    use rsa::pkcs8::EncodePublicKey;
    use signature::{SignatureEncoding, Signer};
    let key = rsa::PrivateKey::new(&mut rand::rng(), 2048).unwrap();
    let spki = key.to_public_key().to_public_key_der().unwrap();
    let cert = certificate_around(spki.as_bytes());
    let sm2_seal = build_seal_v4(&params(), &pki().maker, &pki().maker_cert).unwrap();
    let info = SesSeal::decode(&sm2_seal).unwrap().signed_bytes;
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
    let sig = signer.sign(&info).to_vec();
    let der = asn1::sequence(&[
        &info,
        &asn1::tlv(asn1::tag::OCTET_STRING, &cert),
        &asn1::oid("1.2.840.113549.1.1.11").unwrap(),
        &asn1::bit_string(&sig),
    ]);
    let seal = SesSeal::decode(&der).unwrap();
    assert_eq!(seal.signature_alg, "1.2.840.113549.1.1.11");
    seal.verify_maker().unwrap();
    let pic_at = position_of(&der, &seal.picture.data);
    let bad = SesSeal::decode(&flip(&der, pic_at)).unwrap();
    assert_eq!(bad.verify_maker(), Err(SesError::MakerSignature));
    // An RSA key under the SM2 algorithm is a certificate problem, not a signature mismatch.
    let as_sm2 = asn1::sequence(&[
        &info,
        &asn1::tlv(asn1::tag::OCTET_STRING, &cert),
        &asn1::oid("1.2.156.10197.1.501").unwrap(),
        &asn1::bit_string(&sig),
    ]);
    let err = SesSeal::decode(&as_sm2)
        .unwrap()
        .verify_maker()
        .unwrap_err();
    assert!(matches!(err, SesError::MakerCert(_)), "{err}");
    // An algorithm nobody implements is named.
    let unknown = asn1::sequence(&[
        &info,
        &asn1::tlv(asn1::tag::OCTET_STRING, &cert),
        &asn1::oid("1.2.3.4").unwrap(),
        &asn1::bit_string(&sig),
    ]);
    assert_eq!(
        SesSeal::decode(&unknown).unwrap().verify_maker(),
        Err(SesError::UnsupportedAlgorithm("1.2.3.4".into()))
    );
}

#[test]
fn validity_period_is_checked_at_the_given_time() {
    let p = params();
    let seal =
        SesSeal::decode(&build_seal_v4(&p, &pki().maker, &pki().maker_cert).unwrap()).unwrap();
    seal.check_validity_at(NOW).unwrap();
    seal.check_validity_at(seal.valid_start_ms).unwrap();
    seal.check_validity_at(seal.valid_end_ms).unwrap();
    assert!(matches!(
        seal.check_validity_at(seal.valid_start_ms - 1),
        Err(SesError::NotYetValid(_))
    ));
    let err = seal.check_validity_at(seal.valid_end_ms + 1).unwrap_err();
    assert!(matches!(err, SesError::Expired(_)));
    assert!(err.to_string().contains("过期"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Limits and malformed input

#[test]
fn oversized_input_is_rejected_before_parsing() {
    let mut big = asn1::tlv(asn1::tag::OCTET_STRING, &vec![0u8; 10 * 1024 * 1024]);
    big = asn1::tlv(asn1::tag::SEQUENCE, &big);
    assert_eq!(
        SesSeal::decode(&big),
        Err(SesError::TooLarge(10 * 1024 * 1024))
    );
    assert_eq!(
        SesSignature::decode(&big).unwrap_err(),
        SesError::TooLarge(10 * 1024 * 1024)
    );
}

/// PDF `/Contents` carry the SES value zero-padded to the reserved size.
#[test]
fn zero_padding_is_dropped_but_other_trailing_bytes_are_refused() {
    let der = data("gomain-1.SignedValue.dat");
    let mut padded = der.clone();
    padded.extend([0u8; 300]);
    let sig = SesSignature::decode(&padded).unwrap();
    assert_eq!(sig.der, der);
    sig.verify_signature().unwrap();
    let mut junk = der.clone();
    junk.extend([0, 1]);
    assert!(matches!(SesSignature::decode(&junk), Err(SesError::Der(_))));
}

#[test]
fn deep_nesting_is_rejected() {
    let mut v = asn1::integer(1);
    for _ in 0..40 {
        v = asn1::tlv(asn1::tag::SEQUENCE, &v);
    }
    let err = SesSeal::decode(&v).unwrap_err();
    assert!(
        matches!(err, SesError::Der(ref m) if m.contains("32")),
        "{err}"
    );
}

/// A v4 seal with `n` entries in its certificate list (maker signature irrelevant).
fn seal_with_cert_count(n: usize) -> Vec<u8> {
    let p = params();
    let der = build_seal_v4(&p, &pki().maker, &pki().maker_cert).unwrap();
    let seal = SesSeal::decode(&der).unwrap();
    let one = asn1::tlv(asn1::tag::OCTET_STRING, b"cert");
    let list = asn1::tlv(asn1::tag::SEQUENCE, &one.repeat(n));
    let property = asn1::sequence(&[
        &asn1::integer(1),
        &asn1::tlv(asn1::tag::UTF8_STRING, "n".as_bytes()),
        &asn1::integer(1),
        &list,
        &asn1::time(NOW, true).unwrap(),
        &asn1::time(NOW, true).unwrap(),
        &asn1::time(NOW + DAY, true).unwrap(),
    ]);
    let (info, _) = asn1::read_tlv(&seal.signed_bytes).unwrap();
    let mut r = info.reader();
    let header = r.required().unwrap();
    let es_id = r.required().unwrap();
    let _old_property = r.required().unwrap();
    let picture = r.required().unwrap();
    let info = asn1::sequence(&[header.raw, es_id.raw, &property, picture.raw]);
    asn1::sequence(&[
        &info,
        &asn1::tlv(asn1::tag::OCTET_STRING, &seal.maker_cert_der),
        &asn1::oid(&seal.signature_alg).unwrap(),
        &asn1::bit_string(&seal.signature_value),
    ])
}

#[test]
fn certificate_lists_are_bounded() {
    let ok = SesSeal::decode(&seal_with_cert_count(MAX_CERTS)).unwrap();
    assert_eq!(ok.cert_list.len(), MAX_CERTS);
    assert_eq!(
        SesSeal::decode(&seal_with_cert_count(MAX_CERTS + 1)),
        Err(SesError::TooManyCerts(MAX_CERTS))
    );
    let mut p = params();
    p.cert_list = vec![vec![1]; MAX_CERTS + 1];
    assert!(build_seal_v4(&p, &pki().maker, &pki().maker_cert).is_err());
}

#[test]
fn errors_name_the_broken_field() {
    // esID as an INTEGER instead of a string.
    let der = build_seal_v4(&params(), &pki().maker, &pki().maker_cert).unwrap();
    let seal = SesSeal::decode(&der).unwrap();
    let es_id = asn1::tlv(asn1::tag::IA5_STRING, seal.es_id.as_bytes());
    let at = position_of(&der, &es_id);
    let mut bad = der.clone();
    bad[at] = asn1::tag::INTEGER;
    let err = SesSeal::decode(&bad).unwrap_err();
    assert!(
        err.to_string().starts_with("印章 esID 字段格式错误"),
        "{err}"
    );
    // A header that is not "ES".
    let at = position_of(&der, b"\x16\x02ES");
    let mut bad = der.clone();
    bad[at + 2] = b'X';
    let err = SesSeal::decode(&bad).unwrap_err();
    assert!(err.to_string().contains("header.ID"), "{err}");
    // A v5-style header version is refused by number.
    let mut bad = der.clone();
    let at = position_of(&der, b"\x02\x01\x04\x16");
    bad[at + 2] = 5;
    assert_eq!(SesSeal::decode(&bad), Err(SesError::UnsupportedVersion(5)));
    // Garbage and truncations.
    assert!(SesSeal::decode(b"").is_err());
    assert!(SesSeal::decode(&der[..der.len() - 1]).is_err());
    assert!(SesSignature::decode(&der).is_err());
}

// ---------------------------------------------------------------------------------------------
// Properties

fn ascii() -> impl Strategy<Value = String> {
    "[ -~]{0,40}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn build_then_decode_gives_back_the_fields(
        vid in ascii(),
        es_id in ascii(),
        name in "\\PC{0,30}",
        seal_type in -5i64..1000,
        kind in "(png|jpg|gif|bmp|ofd|svg|PNG)",
        picture in proptest::collection::vec(any::<u8>(), 1..300),
        width in 1i64..200,
        height in 1i64..200,
        start_days in 0i64..3650,
        len_days in 0i64..3650,
        v1 in any::<bool>(),
        certs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4),
    ) {
        let start = 1_000_000_000_000 + start_days * DAY;
        let p = SealParams {
            vid, es_id, seal_type, name,
            cert_list: certs,
            cert_list_is_digest: false,
            cert_digest_type: String::new(),
            create_date_ms: start,
            valid_start_ms: start,
            valid_end_ms: start + len_days * DAY,
            picture_kind: kind,
            picture_data: picture,
            width_mm: width,
            height_mm: height,
            ext_datas: Vec::new(),
        };
        let der = if v1 {
            build_seal_v1(&p, &pki().maker, &pki().maker_cert).unwrap()
        } else {
            build_seal_v4(&p, &pki().maker, &pki().maker_cert).unwrap()
        };
        let seal = SesSeal::decode(&der).unwrap();
        prop_assert_eq!(seal.version, if v1 { SesVersion::V1 } else { SesVersion::V4 });
        assert_fields(&seal, &p);
        prop_assert!(seal.verify_maker().is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = SesSeal::decode(&bytes);
        let _ = SesSignature::decode(&bytes);
        let mut wrapped = asn1::tlv(asn1::tag::SEQUENCE, &bytes);
        let _ = SesSeal::decode(&wrapped);
        wrapped = asn1::tlv(asn1::tag::SEQUENCE, &wrapped);
        let _ = SesSignature::decode(&wrapped);
    }

    #[test]
    fn mutated_seals_never_panic_and_never_verify_when_signed_bytes_change(
        seed in any::<u64>(),
        v1 in any::<bool>(),
        mutations in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let base = seeded_signature(seed % 4, v1);
        let mut der = base.clone();
        for (at, x) in &mutations {
            let i = at % der.len();
            der[i] ^= x | 1;
        }
        if let Ok(sig) = SesSignature::decode(&der) {
            let original = SesSignature::decode(&base).unwrap();
            if sig.signed_bytes != original.signed_bytes {
                prop_assert!(sig.verify_signature().is_err());
            }
            if sig.seal.signed_bytes != original.seal.signed_bytes {
                prop_assert!(sig.seal.verify_maker().is_err());
            }
        }
        let _ = SesSeal::decode(&der);
    }
}

/// A few fixed signatures (cached: SM2 signing in every proptest case would dominate).
fn seeded_signature(i: u64, v1: bool) -> Vec<u8> {
    static CACHE: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    let all = CACHE.get_or_init(|| {
        let k = pki();
        (0..4)
            .map(|n| {
                let mut p = params();
                p.seal_type = n;
                let s4 = build_seal_v4(&p, &k.maker, &k.maker_cert).unwrap();
                let s1 = build_seal_v1(&p, &k.maker, &k.maker_cert).unwrap();
                (
                    sign_v4(&s4, &k.signer, &k.signer_cert, &[n as u8; 32], "p", NOW).unwrap(),
                    sign_v1(&s1, &k.signer, &k.signer_cert, &[n as u8; 32], "p", NOW).unwrap(),
                )
            })
            .collect()
    });
    let (v4, v1s) = &all[i as usize % all.len()];
    if v1 { v1s.clone() } else { v4.clone() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Bounded "fuzzing" of the SES DER entry point: a v4 or v1 `SES_Signature` with random
    /// bytes changed, inserted or cut decodes or fails with our Chinese error, never panics,
    /// and whatever decodes can be verified without panicking.
    #[test]
    fn mutated_ses_signatures_decode_or_fail_in_our_words(
        v1 in any::<bool>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        static DERS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
        let (d4, d1) = DERS.get_or_init(|| {
            let k = pki();
            let hash = sm3(b"fuzz");
            let s4 = build_seal_v4(&params(), &k.maker, &k.maker_cert).unwrap();
            let s1 = build_seal_v1(&params(), &k.maker, &k.maker_cert).unwrap();
            (
                sign_v4(&s4, &k.signer, &k.signer_cert, &hash, "x", NOW).unwrap(),
                sign_v1(&s1, &k.signer, &k.signer_cert, &hash, "x", NOW).unwrap(),
            )
        });
        let mut der = if v1 { d1.clone() } else { d4.clone() };
        for (at, b, op) in edits {
            let at = at.index(der.len() + 1);
            match op {
                0 if at < der.len() => der[at] = b,
                1 => der.insert(at, b),
                _ => der.truncate(at),
            }
        }
        match SesSignature::decode(&der) {
            Ok(sig) => {
                let _ = sig.verify_signature();
                let _ = sig.seal.verify_maker();
            }
            Err(e) => {
                let text = e.to_string();
                prop_assert!(!text.is_ascii(), "{}", text);
                let word = words::library_word(&text, &[]);
                prop_assert!(word.is_none(), "library text {:?} in {:?}", word, text);
            }
        }
    }
}
