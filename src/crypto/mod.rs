//! Cryptographic building blocks shared by every module: SM2/SM3/SM4 helpers, X.509 and CMS.
//!
//! Nothing here knows about HTTP, storage or documents; everything is a pure function
//! over bytes that returns a typed error.

pub mod certgen;
pub mod cms;
pub mod der;
pub mod sm;
pub mod sm4;
pub mod tsp;
pub mod x509;

pub use sm::{CryptoError, SM2_ID};

/// Equality of two secrets in time that depends on their length only.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
