//! The platform's rules, free of HTTP: onboarding state machine, accounts, and (with their
//! issues) seal lifecycle, seal codes, signIds, quotas.

pub mod accounts;
pub mod codes;
pub mod onboarding;
pub mod systems;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
