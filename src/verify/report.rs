//! The verification report of SPEC §3.10 (表26–28) and the options every verifier takes.
//!
//! Owns the report's vocabulary (steps, format, signature type, algorithm names) so PDF and
//! OFD speak it identically; must not parse documents or read storage.

pub use super::Format;
use crate::crypto::x509::{HashAlg, SigFamily, SigScheme};
use serde::{Serialize, Serializer};
use std::fmt;

/// The eight verification steps, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Parse,
    Integrity,
    Signature,
    Certificate,
    Seal,
    Registry,
    Timestamp,
    Coverage,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Parse,
        Step::Integrity,
        Step::Signature,
        Step::Certificate,
        Step::Seal,
        Step::Registry,
        Step::Timestamp,
        Step::Coverage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Parse => "parse",
            Step::Integrity => "integrity",
            Step::Signature => "signature",
            Step::Certificate => "certificate",
            Step::Seal => "seal",
            Step::Registry => "registry",
            Step::Timestamp => "timestamp",
            Step::Coverage => "coverage",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of `flowVoList` (表28).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowStep {
    pub step: Step,
    pub hint: String,
    /// 1 passed, 0 failed (SPEC §3.10).
    pub status: u8,
    /// How a reader should weigh `status`: see [`Level`].
    pub level: Level,
}

/// What a step's outcome means for the verdict, beside the two-valued `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Passed (`status` 1).
    Pass,
    /// Failed and decisive: the signature is not valid (`status` 0).
    Fail,
    /// Failed but not decisive under this platform's options, e.g. a seal not on file here
    /// while `unregistered_is_failure` is off (`status` 0).
    Warn,
    /// Does not apply to this signature, e.g. no time-stamp or no seal in a plain digital
    /// signature (`status` 1: nothing failed).
    Na,
}

/// `signatureType`: an electronic seal (电子签章) or a digital signature (数字签名).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureType {
    #[default]
    Seal,
    Sign,
}

/// `algorithm`: one vocabulary for every format, documented in `docs/integration-guide.md`.
/// A verified (or at least resolved) scheme is `<key>with<digest>` (`SM2withSM3`,
/// `RSAwithSHA256`, `ECDSAwithSHA256`); when only the signer's key is known, the key alone
/// (`SM2`); what the platform does not implement is named as found (e.g. `Ed448`, an OID).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// Nothing could be read; serialised as the empty string.
    #[default]
    Unknown,
    Scheme(SigScheme),
    Key(SigFamily),
    Other(String),
}

impl Algorithm {
    /// The algorithm a signature AlgorithmIdentifier OID names on its own (SES `signatureAlg`,
    /// OFD `SignatureMethod`).
    pub fn from_signature_oid(oid: &str) -> Self {
        let oid = oid.trim();
        match crate::crypto::x509::resolve_scheme(oid, None, None) {
            Ok(s) => Algorithm::Scheme(s),
            Err(_) => Algorithm::Other(oid.to_string()),
        }
    }

    /// The key of a certificate, when no scheme was resolved.
    pub fn from_key(spki_der: &[u8]) -> Self {
        match crate::crypto::x509::key_family(spki_der) {
            Some(f) => Algorithm::Key(f),
            None => Algorithm::Other(crate::crypto::x509::key_type_name(spki_der)),
        }
    }

    pub fn is_unknown(&self) -> bool {
        *self == Algorithm::Unknown
    }
}

fn family_wire(f: SigFamily) -> &'static str {
    match f {
        SigFamily::Sm2 => "SM2",
        SigFamily::Rsa => "RSA",
        SigFamily::RsaPss => "RSAPSS",
        SigFamily::Ecdsa => "ECDSA",
    }
}

fn hash_wire(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Md5 => "MD5",
        HashAlg::Sha1 => "SHA1",
        HashAlg::Sha224 => "SHA224",
        HashAlg::Sha256 => "SHA256",
        HashAlg::Sha384 => "SHA384",
        HashAlg::Sha512 => "SHA512",
        HashAlg::Sm3 => "SM3",
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::Unknown => Ok(()),
            Algorithm::Scheme(s) => write!(f, "{}with{}", family_wire(s.family), hash_wire(s.hash)),
            Algorithm::Key(k) => f.write_str(family_wire(*k)),
            Algorithm::Other(name) => f.write_str(name),
        }
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The hint of a step that did not run because an earlier one failed.
pub const HINT_NOT_RUN: &str = "前序步骤失败，本步骤未执行";

/// The hint of the `registry` step for a seal that is not on file here.
pub const HINT_NOT_REGISTERED: &str = "未在本平台备案";

/// What identifies the seal of a signature in the registry; filled by the format verifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealIdentity {
    /// `esID` of the embedded seal.
    pub es_id: Option<String>,
    /// SM3 of the embedded `SES_Seal` DER.
    pub seal_digest: Option<[u8; 32]>,
    /// Serial number (lower-case hex) of the signer certificate.
    pub signer_cert_sn: Option<String>,
}

/// A seal found in the registry, as the `registry` step reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryHit {
    pub seal_code: String,
    /// Whether the seal was enabled (not revoked or disabled) at the signing time.
    pub usable_at_signing: bool,
    /// Human-readable state at signing time, e.g. "启用", "停用", "注销".
    pub state_label: String,
}

/// The hint of the `registry` step when the registry could not be read: the seal may well be
/// on file, so the step fails rather than claiming it is not.
pub const HINT_REGISTRY_UNAVAILABLE: &str = "登记库暂时不可用";

/// The registry could not be read; the implementation logged why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryUnavailable;

/// The platform's seal registry as the verifier sees it.
pub trait SealRegistry {
    /// `Ok(None)` only when the seal is certainly not on file.
    fn lookup(
        &self,
        seal: &SealIdentity,
        sign_time_ms: Option<i64>,
    ) -> Result<Option<RegistryHit>, RegistryUnavailable>;
}

/// A registry with nothing on file (the CLI without a data directory, tests).
pub struct EmptyRegistry;

impl SealRegistry for EmptyRegistry {
    fn lookup(
        &self,
        _: &SealIdentity,
        _: Option<i64>,
    ) -> Result<Option<RegistryHit>, RegistryUnavailable> {
        Ok(None)
    }
}

/// Verification policy and limits.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// DER certificates of the trust anchors configured in the console.
    pub trust_anchors: Vec<Vec<u8>>,
    /// Whether a seal not on file makes `verifyResult` false.
    pub unregistered_is_failure: bool,
    /// Whether MD5/SHA-1 digests are accepted (reported as weak either way).
    pub allow_weak_hashes: bool,
    /// Maximum size of an uploaded document.
    pub max_file_size: usize,
    /// ZIP limits for OFD packages.
    pub max_zip_entries: usize,
    pub max_inflated_total: u64,
    pub max_inflated_entry: u64,
    /// Maximum XML nesting depth.
    pub max_xml_depth: usize,
    /// Maximum number of PDF objects.
    pub max_pdf_objects: usize,
    /// Hard cap on the memory one PDF verification may plan for (at most 4 × the file below
    /// it; issue 12 point 5).
    pub max_memory_bytes: u64,
    /// Time budget of the whole verification; `None` is unbounded.
    pub time_budget: Option<std::time::Duration>,
    /// When [`Self::time_budget`] runs out; set by [`crate::verify::verify_document`].
    pub deadline: Option<std::time::Instant>,
}

impl VerifyOptions {
    /// Whether the time budget has run out; checked between steps and signatures, since the
    /// verification is CPU work on a blocking thread that nothing else can interrupt.
    pub fn out_of_time(&self) -> bool {
        self.deadline
            .is_some_and(|d| std::time::Instant::now() >= d)
    }

    /// Time left of the budget, `None` when unbounded.
    pub fn time_left(&self) -> Option<std::time::Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(std::time::Instant::now()))
    }

    /// The budget in milliseconds, for hints.
    pub fn budget_ms(&self) -> u128 {
        self.time_budget.map_or(0, |b| b.as_millis())
    }

    /// The hint of a step the time budget did not leave room for.
    pub fn out_of_time_hint(&self, step: &str) -> String {
        format!(
            "验证超出时间预算（{} 毫秒），“{step}”未完成，结果不可信",
            self.budget_ms()
        )
    }
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            trust_anchors: Vec::new(),
            unregistered_is_failure: false,
            allow_weak_hashes: false,
            max_file_size: 100 * 1024 * 1024,
            max_zip_entries: 10_000,
            max_inflated_total: 512 * 1024 * 1024,
            max_inflated_entry: 200 * 1024 * 1024,
            max_xml_depth: 64,
            max_pdf_objects: 1_000_000,
            max_memory_bytes: 1024 * 1024 * 1024,
            time_budget: None,
            deadline: None,
        }
    }
}

/// One signature's entry in `details` (表27 plus the SPEC's extensions).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureReport {
    pub seal_type: String,
    pub sign_time: String,
    pub provider: String,
    pub cert_issuer: String,
    pub cert_owner: String,
    pub cert_sn: String,
    pub cert_valid_start: String,
    pub cert_valid_end: String,
    pub seal_pic_base64: String,
    pub seal_code: String,
    pub flow_vo_list: Vec<FlowStep>,
    pub format: Format,
    pub signature_type: SignatureType,
    pub algorithm: Algorithm,
    pub seal_name: String,
    pub registry_state: String,
    /// Where the signature sits: OFD `Signature.xml` path or PDF field name.
    pub location: String,
    /// Stamp page (1-based) and position `[x, y, w, h]` in mm, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<[f64; 4]>,
    /// Signing time in UTC milliseconds (used for certificate, seal and registry checks).
    #[serde(skip)]
    pub sign_time_ms: Option<i64>,
    #[serde(skip)]
    pub seal_identity: SealIdentity,
    #[serde(skip)]
    steps: Vec<(Step, bool, String)>,
    /// Steps recorded as not applicable (passed, shown as such).
    #[serde(skip)]
    not_applicable: Vec<Step>,
}

impl SignatureReport {
    pub fn new(format: Format, signature_type: SignatureType) -> Self {
        Self {
            format,
            signature_type,
            ..Self::default()
        }
    }

    /// Records a step's outcome; a later record of the same step replaces the earlier one.
    pub fn record(&mut self, step: Step, passed: bool, hint: impl Into<String>) {
        let hint = hint.into();
        if let Some(slot) = self.steps.iter_mut().find(|(s, _, _)| *s == step) {
            *slot = (step, passed, hint);
        } else {
            self.steps.push((step, passed, hint));
        }
    }

    pub fn pass(&mut self, step: Step, hint: impl Into<String>) {
        self.record(step, true, hint);
    }

    pub fn fail(&mut self, step: Step, hint: impl Into<String>) {
        self.record(step, false, hint);
        self.not_applicable.retain(|s| *s != step);
    }

    /// A step with nothing to check for this signature (it counts as passed).
    pub fn not_applicable(&mut self, step: Step, hint: impl Into<String>) {
        self.record(step, true, hint);
        if !self.not_applicable.contains(&step) {
            self.not_applicable.push(step);
        }
    }

    /// The outcome of a step, if it was recorded.
    pub fn outcome(&self, step: Step) -> Option<(bool, &str)> {
        self.steps
            .iter()
            .find(|(s, _, _)| *s == step)
            .map(|(_, p, h)| (*p, h.as_str()))
    }

    pub fn passed(&self, step: Step) -> bool {
        matches!(self.outcome(step), Some((true, _)))
    }

    /// Fills `flowVoList` in step order; a step never recorded is failed.
    pub fn finish(&mut self, opts: &VerifyOptions) {
        let mut flow = Vec::with_capacity(Step::ALL.len());
        for step in Step::ALL {
            let (passed, hint) = match self.outcome(step) {
                Some((p, h)) => (p, h.to_string()),
                None => (false, HINT_NOT_RUN.to_string()),
            };
            let level = self.level(step, opts);
            flow.push(FlowStep {
                step,
                hint,
                status: u8::from(passed),
                level,
            });
        }
        self.flow_vo_list = flow;
    }

    /// How `step`'s outcome weighs under `opts`.
    pub fn level(&self, step: Step, opts: &VerifyOptions) -> Level {
        match self.outcome(step) {
            Some((true, _)) if self.not_applicable.contains(&step) => Level::Na,
            Some((true, _)) => Level::Pass,
            Some((false, hint))
                if step == Step::Registry
                    && !opts.unregistered_is_failure
                    && hint == HINT_NOT_REGISTERED =>
            {
                Level::Warn
            }
            _ => Level::Fail,
        }
    }

    /// Whether this signature counts as verified under `opts`: no step fails decisively.
    pub fn is_valid(&self, opts: &VerifyOptions) -> bool {
        Step::ALL
            .iter()
            .all(|&step| self.level(step, opts) != Level::Fail)
    }

    /// Applies the `registry` step from the platform's registry.
    pub fn apply_registry(&mut self, registry: &dyn SealRegistry) {
        if self.seal_identity == SealIdentity::default() {
            self.fail(Step::Registry, HINT_NOT_REGISTERED);
            self.registry_state = "未备案".into();
            return;
        }
        match registry.lookup(&self.seal_identity, self.sign_time_ms) {
            Err(RegistryUnavailable) => {
                self.fail(Step::Registry, HINT_REGISTRY_UNAVAILABLE);
                self.registry_state = "未知".into();
            }
            Ok(None) => {
                self.fail(Step::Registry, HINT_NOT_REGISTERED);
                self.registry_state = "未备案".into();
            }
            Ok(Some(hit)) => {
                self.seal_code = hit.seal_code.clone();
                self.registry_state = hit.state_label.clone();
                if hit.usable_at_signing {
                    self.pass(
                        Step::Registry,
                        format!("已备案，印章编码 {}", hit.seal_code),
                    );
                } else {
                    self.fail(
                        Step::Registry,
                        format!(
                            "签署时印章状态为{}，印章编码 {}",
                            hit.state_label, hit.seal_code
                        ),
                    );
                }
            }
        }
    }
}

/// The response `data` of `document/verify` (表26).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentReport {
    pub file_name: String,
    pub file_size: u64,
    pub sign_count: usize,
    pub verify_result: bool,
    pub details: Vec<SignatureReport>,
    pub format: Format,
    /// Set when the document as a whole could not be read; no signature was examined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DocumentReport {
    /// Completes every signature's flow and computes `verifyResult`.
    pub fn finalize(&mut self, registry: &dyn SealRegistry, opts: &VerifyOptions) {
        for sig in &mut self.details {
            if sig.outcome(Step::Registry).is_none() {
                sig.apply_registry(registry);
            }
            sig.finish(opts);
        }
        self.sign_count = self.details.len();
        self.verify_result = self.error.is_none()
            && !self.details.is_empty()
            && self.details.iter().all(|d| d.is_valid(opts));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_passed() -> SignatureReport {
        let mut r = SignatureReport::new(Format::Ofd, SignatureType::Seal);
        for s in Step::ALL {
            r.pass(s, "ok");
        }
        r
    }

    #[test]
    fn flow_lists_every_step_in_order_and_missing_ones_fail() {
        let mut r = SignatureReport::new(Format::Pdf, SignatureType::Sign);
        r.pass(Step::Coverage, "ok");
        r.fail(Step::Parse, "bad");
        r.finish(&VerifyOptions::default());
        let names: Vec<_> = r.flow_vo_list.iter().map(|f| f.step).collect();
        assert_eq!(names, Step::ALL.to_vec());
        // On the wire the steps keep their lower-case names.
        let wire = serde_json::to_value(&r.flow_vo_list).unwrap();
        let wire: Vec<_> = wire
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["step"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(wire, Step::ALL.map(|s| s.name().to_string()).to_vec());
        assert_eq!(r.flow_vo_list[0].status, 0);
        assert_eq!(r.flow_vo_list[1].status, 0);
        assert_eq!(r.flow_vo_list[7].status, 1);
    }

    #[test]
    fn unregistered_seal_only_fails_when_configured() {
        let mut doc = DocumentReport {
            details: vec![all_passed()],
            ..Default::default()
        };
        doc.details[0]
            .steps
            .retain(|(s, _, _)| *s != Step::Registry);
        doc.details[0].seal_identity.es_id = Some("x".into());
        let lenient = VerifyOptions::default();
        doc.finalize(&EmptyRegistry, &lenient);
        assert!(doc.verify_result);
        let strict = VerifyOptions {
            unregistered_is_failure: true,
            ..Default::default()
        };
        doc.finalize(&EmptyRegistry, &strict);
        assert!(!doc.verify_result);
    }

    #[test]
    fn levels_tell_decisive_failures_from_notices_and_steps_that_do_not_apply() {
        let mut r = all_passed();
        r.not_applicable(Step::Timestamp, "无时间戳");
        r.fail(Step::Registry, HINT_NOT_REGISTERED);
        let lenient = VerifyOptions::default();
        r.finish(&lenient);
        let level = |r: &SignatureReport, s: Step| r.flow_vo_list[s as usize].level;
        assert_eq!(level(&r, Step::Parse), Level::Pass);
        assert_eq!(level(&r, Step::Timestamp), Level::Na);
        assert_eq!(r.flow_vo_list[Step::Timestamp as usize].status, 1);
        assert_eq!(level(&r, Step::Registry), Level::Warn);
        assert_eq!(r.flow_vo_list[Step::Registry as usize].status, 0);
        assert!(r.is_valid(&lenient));
        let wire = serde_json::to_value(&r.flow_vo_list).unwrap();
        assert_eq!(wire[6]["level"], "na");
        assert_eq!(wire[5]["level"], "warn");
        assert_eq!(wire[0]["level"], "pass");
        // Configured strict, the same miss decides the verdict.
        let strict = VerifyOptions {
            unregistered_is_failure: true,
            ..Default::default()
        };
        r.finish(&strict);
        assert_eq!(level(&r, Step::Registry), Level::Fail);
        assert!(!r.is_valid(&strict));
        // A later failure of a step recorded as not applicable is a failure.
        r.fail(Step::Timestamp, "时间戳无效");
        r.finish(&lenient);
        assert_eq!(level(&r, Step::Timestamp), Level::Fail);
        // Any other registry failure (revoked at signing) fails whatever the option.
        r.fail(Step::Registry, "签署时印章状态为已撤销，印章编码 1");
        r.finish(&lenient);
        assert_eq!(level(&r, Step::Registry), Level::Fail);
    }

    struct BrokenRegistry;

    impl SealRegistry for BrokenRegistry {
        fn lookup(
            &self,
            _: &SealIdentity,
            _: Option<i64>,
        ) -> Result<Option<RegistryHit>, RegistryUnavailable> {
            Err(RegistryUnavailable)
        }
    }

    #[test]
    fn an_unreadable_registry_fails_the_step_instead_of_calling_the_seal_unregistered() {
        let mut doc = DocumentReport {
            details: vec![all_passed()],
            ..Default::default()
        };
        doc.details[0]
            .steps
            .retain(|(s, _, _)| *s != Step::Registry);
        doc.details[0].seal_identity.es_id = Some("x".into());
        // Even where an unregistered seal would be tolerated, an unknown answer is not.
        doc.finalize(&BrokenRegistry, &VerifyOptions::default());
        assert!(!doc.verify_result);
        assert_eq!(
            doc.details[0].outcome(Step::Registry),
            Some((false, HINT_REGISTRY_UNAVAILABLE))
        );
    }

    #[test]
    fn one_algorithm_vocabulary_whatever_the_source() {
        let name = |a: Algorithm| serde_json::to_value(a).unwrap();
        // SES signatureAlg, OFD SignatureMethod: the same OID, the same word.
        assert_eq!(
            name(Algorithm::from_signature_oid("1.2.156.10197.1.501")),
            "SM2withSM3"
        );
        assert_eq!(
            name(Algorithm::from_signature_oid("1.2.840.113549.1.1.11")),
            "RSAwithSHA256"
        );
        assert_eq!(
            name(Algorithm::from_signature_oid(" 1.2.840.10045.4.3.2 ")),
            "ECDSAwithSHA256"
        );
        // A CMS verification's scheme.
        assert_eq!(
            name(Algorithm::Scheme(SigScheme {
                family: SigFamily::RsaPss,
                hash: HashAlg::Sha384
            })),
            "RSAPSSwithSHA384"
        );
        assert_eq!(name(Algorithm::Key(SigFamily::Sm2)), "SM2");
        assert_eq!(
            name(Algorithm::from_signature_oid("1.3.101.113")),
            "1.3.101.113"
        );
        assert_eq!(name(Algorithm::Unknown), "");
        let r = SignatureReport::new(Format::Ofd, SignatureType::Sign);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            (v["format"].as_str(), v["signatureType"].as_str()),
            (Some("OFD"), Some("sign"))
        );
    }

    #[test]
    fn no_signature_is_never_a_valid_document() {
        let mut doc = DocumentReport::default();
        doc.finalize(&EmptyRegistry, &VerifyOptions::default());
        assert!(!doc.verify_result);
    }
}
