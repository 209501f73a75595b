//! The platform's rules, free of HTTP: onboarding state machine, accounts, and (with their
//! issues) seal lifecycle, seal codes, signIds, quotas.

pub mod accounts;
pub mod audit;
pub mod audit_event;
pub mod cloud;
pub mod codes;
pub mod documents;
pub mod metering;
pub mod onboarding;
pub mod seals;
pub mod second_factor;
pub mod systems;
pub mod tenants;
#[cfg(test)]
mod testkit;
pub mod ukey;
pub mod vocab;

use crate::interop::InteropError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The caller may not act on this object (`20008`).
    #[error("{0}")]
    Forbidden(String),
    /// Seal data unparseable, its maker signature failing, or inconsistent (`30003`).
    #[error("{0}")]
    SealInvalid(String),
    /// The same seal filed twice (`30004`).
    #[error("{0}")]
    Duplicate(String),
    /// signId unknown, expired, used, or bound elsewhere (`30005`).
    #[error("{0}")]
    SignId(String),
    /// The caller's usage quota is exhausted, expired or not yet valid (`20007`).
    #[error("{0}")]
    Quota(String),
    /// A platform authId unknown, expired, not the caller's or not for this seal (`30006`).
    #[error("{0}")]
    AuthId(String),
    /// The signer's intention is not confirmed yet, or the authCode does not match (`30007`).
    #[error("{0}")]
    NotConfirmed(String),
    /// The home system answered, but not with what the platform can vouch for (`40003`).
    #[error("{0}")]
    HomeAnswer(String),
    /// The routed call itself failed: unreachable, refused, timed out, degraded
    /// (`40001`/`40002`/`40003`, as [`InteropError::code`] says).
    #[error(transparent)]
    Interop(#[from] InteropError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            // Not a fault: the tenant was destroyed on purpose, and whoever asks is told so.
            StoreError::TenantDestroyed(_) => DomainError::Conflict(e.to_string()),
            other => DomainError::Store(other),
        }
    }
}

impl DomainError {
    /// The SPEC §2 code of this refusal: the one decision the API answers with and the console
    /// renders through.
    pub fn code(&self) -> crate::protocol::Code {
        use crate::protocol::Code;
        match self {
            DomainError::Invalid(_) => Code::InvalidParameter,
            DomainError::NotFound(_) => Code::SealNotFound,
            DomainError::Conflict(_) => Code::SealState,
            DomainError::Forbidden(_) => Code::Forbidden,
            DomainError::SealInvalid(_) => Code::SealInvalid,
            DomainError::Duplicate(_) => Code::DuplicateFiling,
            DomainError::SignId(_) => Code::SignId,
            DomainError::Quota(_) => Code::QuotaExhausted,
            DomainError::AuthId(_) => Code::AuthId,
            DomainError::NotConfirmed(_) => Code::AuthIncomplete,
            DomainError::HomeAnswer(_) => Code::HomeBadAnswer,
            DomainError::Interop(e) => e.code(),
            DomainError::Store(_) => Code::Internal,
        }
    }
}
