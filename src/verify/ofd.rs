//! OFD signatures (GB/T 33190-2016).

use super::{DocumentError, SignatureReport, VerifyOptions};

/// Verifies every signature of an OFD package.
pub fn verify_ofd(
    _bytes: &[u8],
    _opts: &VerifyOptions,
) -> Result<Vec<SignatureReport>, DocumentError> {
    Err(DocumentError::Malformed("OFD 验证尚未实现".into()))
}
