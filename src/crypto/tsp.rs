//! Time-stamp tokens (RFC 3161 / GB/T 20520).
//!
//! A token is a SignedData whose eContent is a DER `TSTInfo`; the TSA signs it like any CMS
//! signer. The caller checks the TSA certificate chain with [`crate::crypto::x509`].

use super::cms::{self, CmsError};
use super::der::{self, DerError};
use super::x509::HashAlg;

/// `id-ct-TSTInfo`.
pub const OID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TspError {
    #[error("时间戳令牌无法解析: {0}")]
    Parse(String),
    #[error("时间戳令牌签名无效: {0}")]
    Signature(CmsError),
    #[error("时间戳不是对本签名值签发的（messageImprint 不一致）")]
    ImprintMismatch,
    #[error("时间戳摘要算法 {0} 不受支持")]
    UnsupportedHash(String),
}

/// What a verified token attests.
#[derive(Debug, Clone)]
pub struct TimestampInfo {
    pub gen_time_ms: i64,
    pub tsa_cert_der: Vec<u8>,
    pub certs: Vec<Vec<u8>>,
    pub hash_algorithm: String,
    /// How the TSA signed the token.
    pub tsa_scheme: super::x509::SigScheme,
}

/// Verifies an RFC 3161 TimeStampToken over `imprint_input` (for a signature time-stamp:
/// the SignerInfo signature octets; for a document time-stamp: the signed byte ranges).
pub fn verify_timestamp_token(
    token_der: &[u8],
    imprint_input: &[u8],
) -> Result<TimestampInfo, TspError> {
    verify_timestamp_token_parts(token_der, &[imprint_input])
}

/// [`verify_timestamp_token`] over the concatenation of `parts`.
pub fn verify_timestamp_token_parts(
    token_der: &[u8],
    parts: &[&[u8]],
) -> Result<TimestampInfo, TspError> {
    let sd = cms::parse_signed_data(token_der).map_err(|e| TspError::Parse(e.to_string()))?;
    if sd.econtent_type != OID_TST_INFO {
        return Err(TspError::Parse(format!(
            "eContentType {} 不是 TSTInfo",
            sd.econtent_type
        )));
    }
    let tst = sd
        .econtent
        .as_deref()
        .ok_or_else(|| TspError::Parse("缺少 TSTInfo".into()))?;
    // TSA tokens are signed with SHA-1 by some older services; the token's own hash is
    // reported, and the imprint check below is what binds it to the document.
    let verified = sd.verify_over(tst, true).map_err(TspError::Signature)?;
    let (gen_time_ms, imprint_hash, imprint) = parse_tst_info(tst)?;
    let hash = HashAlg::from_oid(&imprint_hash).ok_or(TspError::UnsupportedHash(imprint_hash))?;
    if hash.digest_parts(parts) != imprint {
        return Err(TspError::ImprintMismatch);
    }
    Ok(TimestampInfo {
        gen_time_ms,
        tsa_scheme: verified.scheme,
        tsa_cert_der: verified.signer_cert_der,
        certs: verified.certs,
        hash_algorithm: hash.name().to_string(),
    })
}

/// (genTime ms, messageImprint hash OID, hashed message) of a DER TSTInfo.
fn parse_tst_info(der: &[u8]) -> Result<(i64, String, Vec<u8>), TspError> {
    let p = |e: DerError| TspError::Parse(e.to_string());
    let (seq, _) = der::read_ber(der).map_err(p)?;
    let fields = seq.children().map_err(p)?;
    // version, policy, messageImprint, serialNumber, genTime, ...
    let imprint = fields
        .get(2)
        .ok_or_else(|| TspError::Parse("缺少 messageImprint".into()))?;
    let gen_time = fields
        .get(4)
        .ok_or_else(|| TspError::Parse("缺少 genTime".into()))?;
    let imp = imprint.children().map_err(p)?;
    let alg = imp
        .first()
        .ok_or_else(|| TspError::Parse("messageImprint 缺少算法".into()))?;
    let alg_oid = der::oid_string(
        alg.children()
            .map_err(p)?
            .first()
            .ok_or_else(|| TspError::Parse("messageImprint 算法为空".into()))?,
    )
    .map_err(p)?;
    let hashed = der::octet_string(
        imp.get(1)
            .ok_or_else(|| TspError::Parse("messageImprint 缺少摘要".into()))?,
    )
    .map_err(p)?;
    let gen_time_ms = der::time_ms(gen_time).map_err(p)?;
    Ok((gen_time_ms, alg_oid, hashed))
}
