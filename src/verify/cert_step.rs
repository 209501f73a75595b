//! The `certificate` step shared by PDF and OFD: signer certificate validity at signing time
//! and its chain to the configured trust anchors.

use super::{SignatureReport, Step, VerifyOptions};
use crate::crypto::tsp;
use crate::crypto::x509::{self, CertInfo, ChainError};
use crate::time::{format_time_ms, now_ms};

/// Fills the certificate fields of `report` and records the `certificate` step.
///
/// Validity is judged at `sign_time_ms` (the trusted time-stamp or the signed signing time);
/// without any signing time it is judged now, which is the stricter choice.
pub fn check_certificate(
    report: &mut SignatureReport,
    signer_cert_der: &[u8],
    extra_certs: &[Vec<u8>],
    sign_time_ms: Option<i64>,
    opts: &VerifyOptions,
) {
    let cert = match CertInfo::parse(signer_cert_der) {
        Ok(c) => c,
        Err(e) => {
            report.fail(Step::Certificate, format!("签名者证书无法解析: {e}"));
            return;
        }
    };
    fill_cert_fields(report, &cert);
    let at = sign_time_ms.unwrap_or_else(now_ms);
    if at < cert.not_before_ms {
        report.fail(
            Step::Certificate,
            format!(
                "签署时证书尚未生效（生效时间 {}）",
                format_time_ms(cert.not_before_ms)
            ),
        );
        return;
    }
    if at > cert.not_after_ms {
        report.fail(
            Step::Certificate,
            format!(
                "签署时证书已过期（失效时间 {}）",
                format_time_ms(cert.not_after_ms)
            ),
        );
        return;
    }
    if let Some(ku) = cert.key_usage
        && ku & (x509::KU_DIGITAL_SIGNATURE | x509::KU_NON_REPUDIATION) == 0
    {
        report.fail(Step::Certificate, "证书密钥用法不允许数字签名");
        return;
    }
    match x509::build_chain(&cert, extra_certs, &opts.trust_anchors, Some(at)) {
        Ok(chain) => report.pass(
            Step::Certificate,
            format!("证书有效，链至受信任根 {}", chain.anchor.subject),
        ),
        Err(ChainError::Untrusted { issuer }) => report.fail(
            Step::Certificate,
            format!("证书链不受信任，签发者 {issuer}"),
        ),
        Err(e) => report.fail(Step::Certificate, e.to_string()),
    }
}

/// Dates a signature and records the `timestamp` step. The time the signer claims in signed
/// data (`claimed_ms`) is used unless a time-stamp token over the signature value verifies and
/// its TSA is trusted ([`check_tsa`]); then the token's time replaces it.
pub fn date_signature(
    report: &mut SignatureReport,
    claimed_ms: Option<i64>,
    token: Option<&[u8]>,
    signature_value: &[u8],
    opts: &VerifyOptions,
) {
    let set = |report: &mut SignatureReport, ms: i64| {
        report.sign_time_ms = Some(ms);
        report.sign_time = format_time_ms(ms);
    };
    if let Some(ms) = claimed_ms {
        set(report, ms);
    }
    let Some(token) = token else {
        report.not_applicable(Step::Timestamp, "无时间戳");
        return;
    };
    match tsp::verify_timestamp_token(token, signature_value) {
        Ok(ts) => {
            if check_tsa(report, &ts, opts) {
                set(report, ts.gen_time_ms);
            }
        }
        Err(e) => report.fail(Step::Timestamp, e.to_string()),
    }
}

/// Records whether the authority behind a verified time-stamp may be believed: its certificate
/// was valid at the stamped time, is meant for time-stamping (extKeyUsage id-kp-timeStamping,
/// so no ordinary signing certificate can vouch for a time) and chains to a trust anchor.
pub fn check_tsa(
    report: &mut SignatureReport,
    ts: &tsp::TimestampInfo,
    opts: &VerifyOptions,
) -> bool {
    let when = format_time_ms(ts.gen_time_ms);
    let tsa = match CertInfo::parse(&ts.tsa_cert_der) {
        Ok(c) => c,
        Err(e) => {
            report.fail(Step::Timestamp, format!("时间戳服务器证书无法解析: {e}"));
            return false;
        }
    };
    if !tsa.is_valid_at(ts.gen_time_ms) {
        report.fail(
            Step::Timestamp,
            format!("时间戳服务器证书在 {when} 不在有效期内"),
        );
        return false;
    }
    let for_time_stamping = tsa
        .ext_key_usage
        .as_ref()
        .is_some_and(|purposes| purposes.iter().any(|p| p == x509::EKU_TIME_STAMPING));
    if !for_time_stamping {
        report.fail(
            Step::Timestamp,
            format!(
                "时间戳（{when}）的签发证书 {} 未声明时间戳用途（extKeyUsage timeStamping），不能作为可信时间",
                tsa.subject_cn()
            ),
        );
        return false;
    }
    match x509::build_chain(&tsa, &ts.certs, &opts.trust_anchors, Some(ts.gen_time_ms)) {
        Ok(_) => {
            report.pass(
                Step::Timestamp,
                format!(
                    "时间戳有效，时间 {when}（{}），{} 签发",
                    ts.hash_algorithm,
                    tsa.subject_cn()
                ),
            );
            true
        }
        Err(x509::ChainError::Untrusted { issuer }) => {
            report.fail(
                Step::Timestamp,
                format!("时间戳（{when}）签名正确，但时间戳服务器证书不受信任，签发者 {issuer}"),
            );
            false
        }
        Err(e) => {
            report.fail(Step::Timestamp, format!("时间戳服务器证书链无效: {e}"));
            false
        }
    }
}

/// `certIssuer`, `certOwner`, `certSn`, `certValidStart`, `certValidEnd`.
pub fn fill_cert_fields(report: &mut SignatureReport, cert: &CertInfo) {
    report.cert_issuer = cert.issuer.clone();
    report.cert_owner = cert.subject.clone();
    report.cert_sn = cert.serial_hex.clone();
    report.cert_valid_start = format_time_ms(cert.not_before_ms);
    report.cert_valid_end = format_time_ms(cert.not_after_ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::certgen::{CertSpec, issue_sm2, self_signed_sm2};
    use crate::crypto::sm::Sm2KeyPair;
    use crate::verify::{Format, SignatureType};

    fn spec(cn: &str, is_ca: bool, not_after_ms: i64) -> CertSpec {
        CertSpec {
            common_name: cn.into(),
            organization: None,
            not_before_ms: 1_600_000_000_000,
            not_after_ms,
            is_ca,
            serial: None,
        }
    }

    /// A certificate for a fresh key, issued under `issuer`.
    fn issue(spec: CertSpec, issuer: &(Vec<u8>, Sm2KeyPair)) -> (Vec<u8>, Sm2KeyPair) {
        let key = Sm2KeyPair::generate();
        let cert = issue_sm2(&spec, &key.public_key(), &issuer.0, &issuer.1).unwrap();
        (cert, key)
    }

    fn root(not_after: i64) -> (Vec<u8>, Sm2KeyPair) {
        let key = Sm2KeyPair::generate();
        (
            self_signed_sm2(&spec("Root", true, not_after), &key).unwrap(),
            key,
        )
    }

    /// root → intermediate → leaf.
    fn chain(leaf_not_after: i64) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let root = root(2_000_000_000_000);
        let mid = issue(spec("Mid", true, 2_000_000_000_000), &root);
        let leaf = issue(spec("Leaf", false, leaf_not_after), &mid);
        (root.0, mid.0, leaf.0)
    }

    fn opts(anchors: Vec<Vec<u8>>) -> VerifyOptions {
        VerifyOptions {
            trust_anchors: anchors,
            ..Default::default()
        }
    }

    #[test]
    fn chain_through_an_intermediate_to_the_anchor() {
        let (root, mid, leaf) = chain(1_900_000_000_000);
        let mut r = SignatureReport::new(Format::Pdf, SignatureType::Sign);
        check_certificate(
            &mut r,
            &leaf,
            std::slice::from_ref(&mid),
            Some(1_700_000_000_000),
            &opts(vec![root.clone()]),
        );
        assert_eq!(
            r.outcome(Step::Certificate),
            Some((true, "证书有效，链至受信任根 CN=Root"))
        );
        assert_eq!(r.cert_owner, "CN=Leaf");
        assert_eq!(r.cert_issuer, "CN=Mid");

        // Without the intermediate the path cannot be built.
        let mut r = SignatureReport::new(Format::Pdf, SignatureType::Sign);
        check_certificate(
            &mut r,
            &leaf,
            &[],
            Some(1_700_000_000_000),
            &opts(vec![root]),
        );
        assert_eq!(
            r.outcome(Step::Certificate),
            Some((false, "证书链不受信任，签发者 CN=Mid"))
        );
    }

    #[test]
    fn an_anchor_outside_its_validity_at_signing_time_is_not_trusted() {
        let root_pair = root(1_650_000_000_000);
        let (leaf, _) = issue(spec("Leaf", false, 1_900_000_000_000), &root_pair);
        let root = root_pair.0;
        let mut r = SignatureReport::new(Format::Pdf, SignatureType::Sign);
        check_certificate(
            &mut r,
            &leaf,
            &[],
            Some(1_700_000_000_000),
            &opts(vec![root.clone()]),
        );
        assert_eq!(
            r.outcome(Step::Certificate),
            Some((false, "受信任根证书 CN=Root 在签署时不在有效期内"))
        );
        let mut r = SignatureReport::new(Format::Pdf, SignatureType::Sign);
        check_certificate(
            &mut r,
            &leaf,
            &[],
            Some(1_620_000_000_000),
            &opts(vec![root]),
        );
        assert_eq!(r.outcome(Step::Certificate).map(|o| o.0), Some(true));
    }

    #[test]
    fn a_time_stamp_by_a_certificate_not_meant_for_time_stamping_dates_nothing() {
        // A trusted signing certificate (no timeStamping purpose) signed a "time-stamp".
        let (root, mid, leaf) = chain(1_900_000_000_000);
        let ts = tsp::TimestampInfo {
            gen_time_ms: 1_700_000_000_000,
            tsa_cert_der: leaf,
            certs: vec![mid],
            hash_algorithm: "SM3".into(),
            tsa_scheme: crate::crypto::x509::SigScheme {
                family: crate::crypto::x509::SigFamily::Sm2,
                hash: crate::crypto::x509::HashAlg::Sm3,
            },
        };
        let mut r = SignatureReport::new(Format::Ofd, SignatureType::Seal);
        assert!(!check_tsa(&mut r, &ts, &opts(vec![root])));
        let (passed, hint) = r.outcome(Step::Timestamp).unwrap();
        assert!(!passed);
        assert!(hint.contains("未声明时间戳用途"), "{hint}");
    }

    #[test]
    fn a_leaf_cannot_act_as_an_intermediate() {
        let (root, _, _) = chain(1_900_000_000_000);
        let root_key = Sm2KeyPair::generate();
        let fake_root = self_signed_sm2(&spec("Root", true, 2_000_000_000_000), &root_key).unwrap();
        let not_ca_key = Sm2KeyPair::generate();
        let not_ca = issue_sm2(
            &spec("NotCA", false, 2_000_000_000_000),
            &not_ca_key.public_key(),
            &fake_root,
            &root_key,
        )
        .unwrap();
        let leaf_key = Sm2KeyPair::generate();
        let leaf = issue_sm2(
            &spec("Leaf", false, 1_900_000_000_000),
            &leaf_key.public_key(),
            &not_ca,
            &not_ca_key,
        )
        .unwrap();
        let mut r = SignatureReport::new(Format::Pdf, SignatureType::Sign);
        check_certificate(
            &mut r,
            &leaf,
            &[not_ca],
            Some(1_700_000_000_000),
            &opts(vec![fake_root, root]),
        );
        let (passed, hint) = r.outcome(Step::Certificate).unwrap();
        assert!(!passed);
        assert!(hint.contains("不是 CA 证书"), "{hint}");
    }

    #[test]
    fn validity_is_judged_at_signing_time() {
        let (root, mid, leaf) = chain(1_700_000_000_000);
        let o = opts(vec![root]);
        let mut r = SignatureReport::new(Format::Pdf, SignatureType::Sign);
        check_certificate(
            &mut r,
            &leaf,
            std::slice::from_ref(&mid),
            Some(1_650_000_000_000),
            &o,
        );
        assert!(r.passed(Step::Certificate));
        let mut r = SignatureReport::new(Format::Pdf, SignatureType::Sign);
        check_certificate(
            &mut r,
            &leaf,
            std::slice::from_ref(&mid),
            Some(1_800_000_000_000),
            &o,
        );
        assert!(
            r.outcome(Step::Certificate)
                .unwrap()
                .1
                .starts_with("签署时证书已过期")
        );
        let mut r = SignatureReport::new(Format::Pdf, SignatureType::Sign);
        check_certificate(&mut r, &leaf, &[mid], Some(1_500_000_000_000), &o);
        assert!(
            r.outcome(Step::Certificate)
                .unwrap()
                .1
                .starts_with("签署时证书尚未生效")
        );
    }

    #[test]
    fn garbage_certificate_fails_the_step() {
        let mut r = SignatureReport::new(Format::Pdf, SignatureType::Sign);
        check_certificate(&mut r, b"\x30\x01", &[], None, &VerifyOptions::default());
        assert!(
            r.outcome(Step::Certificate)
                .unwrap()
                .1
                .starts_with("签名者证书无法解析")
        );
    }
}
