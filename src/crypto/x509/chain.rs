//! Certification path building from a leaf to a trust anchor: bounded search over the
//! candidates a document carries, validity at the signing time, CA and key-usage constraints.
//!
//! Must not parse DER itself or verify document signatures.

use super::MAX_PATH_LEN;
use super::cert::{CertInfo, KU_KEY_CERT_SIGN};

/// Most signature checks one chain search may spend.
const MAX_CHAIN_WORK: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("证书无法解析: {0}")]
    Parse(String),
    #[error("证书链不受信任，签发者 {issuer}")]
    Untrusted { issuer: String },
    #[error("中间证书 {subject} 在签署时不在有效期内")]
    IntermediateExpired { subject: String },
    #[error("受信任根证书 {subject} 在签署时不在有效期内")]
    AnchorExpired { subject: String },
    #[error("证书 {subject} 不是 CA 证书（basicConstraints/keyUsage）")]
    NotCa { subject: String },
    #[error("证书链超过 {MAX_PATH_LEN} 级")]
    TooLong,
}

/// The outcome of a successful chain search.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Leaf first, then intermediates; the anchor last.
    pub path: Vec<CertInfo>,
    pub anchor: CertInfo,
}

/// Builds a path from `leaf` through `extra` to one of `anchors` (DER), checking signatures,
/// CA constraints and (when `at_ms` is given) intermediate validity at that time.
pub fn build_chain(
    leaf: &CertInfo,
    extra: &[Vec<u8>],
    anchors: &[Vec<u8>],
    at_ms: Option<i64>,
) -> Result<Chain, ChainError> {
    let anchors: Vec<CertInfo> = anchors
        .iter()
        .filter_map(|a| CertInfo::parse(a).ok())
        .collect();
    let pool: Vec<CertInfo> = extra
        .iter()
        .take(64)
        .filter_map(|c| CertInfo::parse(c).ok())
        .filter(|c| c.der != leaf.der)
        .collect();
    let mut work = 0usize;
    let mut path = vec![leaf.clone()];
    let mut last_error: Option<ChainError> = None;
    if let Some(anchor) = search(
        &mut path,
        &pool,
        &anchors,
        at_ms,
        &mut work,
        &mut last_error,
    ) {
        return Ok(Chain { path, anchor });
    }
    Err(last_error.unwrap_or_else(|| ChainError::Untrusted {
        issuer: leaf.issuer.clone(),
    }))
}

fn search(
    path: &mut Vec<CertInfo>,
    pool: &[CertInfo],
    anchors: &[CertInfo],
    at_ms: Option<i64>,
    work: &mut usize,
    last_error: &mut Option<ChainError>,
) -> Option<CertInfo> {
    let current = path.last()?.clone();
    // The certificate itself may be a configured anchor.
    if let Some(a) = anchors.iter().find(|a| a.der == current.der) {
        return Some(a.clone());
    }
    for anchor in anchors
        .iter()
        .filter(|a| a.subject_der == current.issuer_der || a.subject == current.issuer)
    {
        if *work >= MAX_CHAIN_WORK {
            return None;
        }
        *work += 1;
        if current.verify_signed_by(&anchor.spki_der).is_ok() {
            // A root is trusted only within its own validity period.
            if let Some(t) = at_ms
                && !anchor.is_valid_at(t)
            {
                *last_error = Some(ChainError::AnchorExpired {
                    subject: anchor.subject.clone(),
                });
                continue;
            }
            return Some(anchor.clone());
        }
    }
    if path.len() >= MAX_PATH_LEN {
        *last_error = Some(ChainError::TooLong);
        return None;
    }
    if current.is_self_issued() {
        return None;
    }
    for cand in pool
        .iter()
        .filter(|c| c.subject_der == current.issuer_der || c.subject == current.issuer)
    {
        if path.iter().any(|p| p.der == cand.der) {
            continue;
        }
        if *work >= MAX_CHAIN_WORK {
            return None;
        }
        *work += 1;
        if current.verify_signed_by(&cand.spki_der).is_err() {
            continue;
        }
        let is_ca = matches!(cand.basic_constraints, Some((true, _)))
            && cand.key_usage.is_none_or(|ku| ku & KU_KEY_CERT_SIGN != 0);
        if !is_ca {
            *last_error = Some(ChainError::NotCa {
                subject: cand.subject.clone(),
            });
            continue;
        }
        if let Some((_, Some(max))) = cand.basic_constraints {
            // Intermediates below this CA (excluding the leaf) may not exceed pathLen.
            let below = path.len().saturating_sub(1);
            if below > max as usize {
                *last_error = Some(ChainError::NotCa {
                    subject: cand.subject.clone(),
                });
                continue;
            }
        }
        if let Some(t) = at_ms
            && !cand.is_valid_at(t)
        {
            *last_error = Some(ChainError::IntermediateExpired {
                subject: cand.subject.clone(),
            });
            continue;
        }
        path.push(cand.clone());
        if let Some(anchor) = search(path, pool, anchors, at_ms, work, last_error) {
            return Some(anchor);
        }
        path.pop();
    }
    None
}
