//! Document verification with the platform's trust anchors and seal registry (SPEC §3.10).
//! The API, the CLI (through the running server when there is one) and the console all call
//! [`verify`], so they give the same report.

use super::DomainError;
use super::audit;
use super::audit_event::{Action, Actor};
use crate::config::Config;
use crate::crypto::x509;
use crate::domain::vocab::SealState;
use crate::store::seals as tree;
use crate::store::{Store, StoreError};
use crate::verify::report::{RegistryHit, RegistryUnavailable, SealIdentity, SealRegistry};
use crate::verify::{self, DocumentError, DocumentReport, VerifyOptions};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why a document could not be verified: the document itself, or the platform's own storage
/// (an internal fault, never reported as a document format error).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// The trust anchors could not be read; the detail is logged where it happened.
    #[error("平台内部错误，详情已记入服务日志")]
    Store(StoreError),
    /// As many verifications as configured are running; the upload is refused, not queued,
    /// so a burst of hostile files cannot pile up memory (issue 12 point 5).
    #[error("文档验真繁忙：同时进行的验证已达上限 {0} 个，请稍后重试")]
    Busy(usize),
}

impl VerifyError {
    /// The SPEC §2 code: a document that cannot be read is `10004` (or `10003` when too
    /// large); a storage fault is internal, whatever document was being read.
    pub fn code(&self) -> crate::protocol::Code {
        use crate::protocol::Code;
        match self {
            VerifyError::Document(DocumentError::TooLarge(_)) => Code::TooLarge,
            VerifyError::Document(_) => Code::UnsupportedFormat,
            VerifyError::Busy(_) => Code::RateLimited,
            VerifyError::Store(_) => Code::Internal,
        }
    }
}

/// The registry as the verifier sees it: a seal found by `esID`, seal digest or signer
/// certificate serial, with its state at the signing time.
pub struct StoreRegistry<'a>(pub &'a Store);

impl StoreRegistry<'_> {
    fn find(&self, seal: &SealIdentity) -> Result<Option<String>, StoreError> {
        let keys = [
            seal.seal_digest.map(|d| tree::key_digest(&hex::encode(d))),
            seal.es_id.as_deref().map(tree::key_es_id),
            seal.signer_cert_sn.as_deref().map(tree::key_cert_sn),
        ];
        for k in keys.into_iter().flatten() {
            if let Some(code) = self.0.seal_by_index(&k)? {
                return Ok(Some(code));
            }
        }
        Ok(None)
    }

    fn hit(
        &self,
        seal: &SealIdentity,
        sign_time_ms: Option<i64>,
    ) -> Result<Option<RegistryHit>, StoreError> {
        let Some(code) = self.find(seal)? else {
            return Ok(None);
        };
        let Some(rec) = self.0.get_seal(&code)? else {
            return Ok(None);
        };
        // Without a trustworthy signing time, judge by the state now.
        let state = match sign_time_ms {
            Some(t) => rec.state_at(t).unwrap_or(rec.state),
            None => rec.state,
        };
        Ok(Some(RegistryHit {
            seal_code: rec.seal_code,
            usable_at_signing: state == SealState::Enabled,
            state_label: state.label().to_string(),
        }))
    }
}

impl SealRegistry for StoreRegistry<'_> {
    fn lookup(
        &self,
        seal: &SealIdentity,
        sign_time_ms: Option<i64>,
    ) -> Result<Option<RegistryHit>, RegistryUnavailable> {
        self.hit(seal, sign_time_ms).map_err(|e| {
            tracing::error!(error = %e, "seal registry unreadable during verification");
            RegistryUnavailable
        })
    }
}

/// Verification options from the configuration and the console-managed trust anchors.
pub fn options(store: &Store, config: &Config) -> Result<VerifyOptions, DomainError> {
    Ok(VerifyOptions {
        trust_anchors: store
            .trust_anchors()?
            .into_iter()
            .map(|(_, der)| der)
            .collect(),
        unregistered_is_failure: config.verify.unregistered_is_failure,
        allow_weak_hashes: config.api.allow_legacy_hashes,
        max_file_size: config.api.max_file_bytes,
        max_memory_bytes: config.verify.max_memory_mib.saturating_mul(1024 * 1024),
        time_budget: (config.verify.time_budget_ms > 0)
            .then(|| std::time::Duration::from_millis(config.verify.time_budget_ms)),
        ..VerifyOptions::default()
    })
}

/// Verifications running in this process: one appliance, one limit, whichever door (API,
/// console, control socket) the document came through.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// One of the [`VerifyConfig::concurrency_limit`](crate::config::VerifyConfig) places;
/// freed when dropped.
struct Running;

impl Running {
    fn enter(limit: usize) -> Result<Self, VerifyError> {
        RUNNING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .map(|_| Running)
            .map_err(|_| VerifyError::Busy(limit))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Files from which on the allocator is asked to return freed memory after verifying.
const TRIM_FROM_BYTES: usize = 1024 * 1024;

/// Verifies `bytes` under the configured limits: a place among the concurrent
/// verifications, the time budget, and the memory plan the verifier enforces.
pub fn verify(
    store: &Store,
    config: &Config,
    bytes: &[u8],
    file_name: &str,
) -> Result<DocumentReport, VerifyError> {
    verify_upload(store, config, bytes.to_vec(), file_name)
}

/// [`verify`] of an upload, which is freed before the report goes back, so that nothing of
/// a large file stays resident while the answer is written.
pub fn verify_upload(
    store: &Store,
    config: &Config,
    bytes: Vec<u8>,
    file_name: &str,
) -> Result<DocumentReport, VerifyError> {
    let len = bytes.len();
    let file = std::sync::Arc::new(bytes);
    let report = verify_placed(store, config, &file, file_name);
    drop(file);
    release_after(len);
    report
}

fn verify_placed(
    store: &Store,
    config: &Config,
    file: &verify::pdf::Shared,
    file_name: &str,
) -> Result<DocumentReport, VerifyError> {
    let _place = Running::enter(config.verify.concurrency_limit())?;
    verify_bytes(store, config, file, file_name)
}

/// Returns freed memory to the system after a large file; small ones are not worth the call.
fn release_after(len: usize) {
    if len >= TRIM_FROM_BYTES {
        crate::hardening::release_freed_memory();
    }
}

fn verify_bytes(
    store: &Store,
    config: &Config,
    file: &verify::pdf::Shared,
    file_name: &str,
) -> Result<DocumentReport, VerifyError> {
    let opts = options(store, config).map_err(|e| {
        tracing::error!(error = %e, "trust anchors unreadable during verification");
        match e {
            DomainError::Store(s) => VerifyError::Store(s),
            other => VerifyError::Store(StoreError::Corrupt(other.to_string())),
        }
    })?;
    Ok(verify::verify_document_shared(
        file,
        file_name,
        &opts,
        &StoreRegistry(store),
    )?)
}

/// Adds a CA certificate (PEM or DER) as a trust anchor; returns its id and subject.
/// Recorded as `trust.add` (a refused certificate names the SM3 of what was offered).
pub fn add_trust_anchor(
    store: &Store,
    bytes: &[u8],
    actor: &Actor,
) -> Result<(String, String), DomainError> {
    let offered = crate::crypto::sm::sm3_hex(bytes);
    insert_trust_anchor(store, bytes, actor)
        .map_err(|e| audit::failed(store, actor, Action::TrustAdd, &offered, e))
}

fn insert_trust_anchor(
    store: &Store,
    bytes: &[u8],
    actor: &Actor,
) -> Result<(String, String), DomainError> {
    let der = match std::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => {
            crate::crypto::sm::pem_decode(text)
                .map_err(|e| DomainError::Invalid(format!("证书 PEM 无效: {e}")))?
                .1
        }
        _ => bytes.to_vec(),
    };
    let info = x509::CertInfo::parse(&der)
        .map_err(|e| DomainError::Invalid(format!("不是有效的 X.509 证书: {e}")))?;
    let id = crate::crypto::sm::sm3_hex(&der);
    let entry = audit::entry(actor, Action::TrustAdd, &id, info.subject.clone());
    store.add_trust_anchor(&der, &entry)?;
    Ok((id, info.subject))
}

/// Removes a trust anchor; an unknown id is an error. Recorded as `trust.remove`.
pub fn remove_trust_anchor(store: &Store, id: &str, actor: &Actor) -> Result<(), DomainError> {
    let entry = audit::entry(actor, Action::TrustRemove, id, "");
    let res = match store.remove_trust_anchor(id, &entry) {
        Ok(true) => Ok(()),
        Ok(false) => Err(DomainError::NotFound(format!("信任锚 {id} 不存在"))),
        Err(e) => Err(e.into()),
    };
    res.map_err(|e| audit::failed(store, actor, Action::TrustRemove, id, e))
}
