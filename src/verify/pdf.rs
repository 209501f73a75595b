//! PDF signatures (ISO 32000, GM/T 0112-2021).

use super::{DocumentError, SignatureReport, VerifyOptions};

/// Verifies every signature field of a PDF.
pub fn verify_pdf(
    _bytes: &[u8],
    _opts: &VerifyOptions,
) -> Result<Vec<SignatureReport>, DocumentError> {
    Err(DocumentError::Malformed("PDF 验证尚未实现".into()))
}
