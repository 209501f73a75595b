//! Electronic seals and seal signatures: GB/T 38540-2020 (v4) and GM/T 0031-2014 (v1).
//!
//! Owns the DER decoding of `SES_Seal` / `SESeal` and `SES_Signature` (both versions), the
//! cryptographic checks that belong to the structures themselves (maker signature, signer
//! signature, seal validity period) and encoders used by tests and the member simulator.
//! It must not judge certificates against trust anchors or look anything up: that is the job of
//! `verify` and `domain`.
//!
//! Decoding is tolerant of the variations real producers emit (UTCTime vs GeneralizedTime,
//! `[0]`-tagged or bare `extDatas`, OCTET STRING where BIT STRING is specified, string types
//! used interchangeably, upper-case picture types) and strict on everything the cryptography
//! covers: signed bytes are always the exact byte ranges found in the input.

pub mod asn1;
pub mod bmp;
mod build;
pub mod kit;
pub mod picture;
mod seal;
mod signature;

pub use build::{SealParams, build_seal_v1, build_seal_v4, sign_v1, sign_v4};

/// Largest SES structure accepted (seal pictures are the bulk).
pub const MAX_SES_LEN: usize = 10 * 1024 * 1024;
/// Deepest DER nesting accepted.
pub const MAX_DER_DEPTH: usize = 32;
/// Most entries accepted in a seal's certificate list.
pub const MAX_CERTS: usize = 64;

/// SM2 signature with SM3.
pub const OID_SM2_WITH_SM3: &str = "1.2.156.10197.1.501";
/// `sha256WithRSAEncryption`, which a few vendors use for seals.
pub const OID_SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";

/// Which standard a structure follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SesVersion {
    /// GM/T 0031-2014 (header version 1–3).
    V1,
    /// GB/T 38540-2020 (header version 4).
    V4,
}

impl SesVersion {
    pub fn label(self) -> &'static str {
        match self {
            SesVersion::V1 => "GM/T 0031 v1",
            SesVersion::V4 => "GB/T 38540 v4",
        }
    }
}

/// The seal picture (`SES_ESPictrueInfo`).
#[derive(Debug, Clone, PartialEq)]
pub struct SealPicture {
    /// Image type, lower-cased: "png", "jpg", "gif", "bmp", "ofd", "svg"… as the producer wrote it.
    pub kind: String,
    pub data: Vec<u8>,
    /// Display size in millimetres.
    pub width_mm: f64,
    pub height_mm: f64,
}

impl SealPicture {
    /// The picture's format from its bytes (whatever `kind` claims).
    pub fn format(&self) -> Option<picture::PictureFormat> {
        picture::PictureFormat::sniff(&self.data)
    }

    /// Width and height in pixels, when the format says.
    pub fn pixel_size(&self) -> Option<(u32, u32)> {
        picture::pixel_size(&self.data)
    }
}

/// One `ExtData` of `extDatas` (GB/T 38540 §A / GM/T 0031 `ExtensionDatas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtData {
    pub oid: String,
    pub critical: bool,
    pub value: Vec<u8>,
}

/// An electronic seal (`SES_Seal` v4 / `SESeal` v1), decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct SesSeal {
    pub version: SesVersion,
    /// `SES_Header.version` as written (4 for v4; 1–3 for GM/T 0031).
    pub header_version: i64,
    /// `SES_Header.Vid`: the producer's identifier.
    pub vid: String,
    pub es_id: String,
    pub seal_type: i64,
    pub name: String,
    /// Signer certificates (DER) or, when `cert_list_is_digest`, their digests.
    pub cert_list: Vec<Vec<u8>>,
    pub cert_list_is_digest: bool,
    /// For digest lists, each `CertDigestObj.type` (parallel to `cert_list`); empty otherwise.
    pub cert_digest_types: Vec<String>,
    pub create_date_ms: i64,
    pub valid_start_ms: i64,
    pub valid_end_ms: i64,
    pub picture: SealPicture,
    pub ext_datas: Vec<ExtData>,
    pub maker_cert_der: Vec<u8>,
    /// Dotted OID of the maker's signature algorithm.
    pub signature_alg: String,
    pub signature_value: Vec<u8>,
    /// Exactly what the maker signed: the DER of `SES_SealInfo` (v4) or of
    /// `SEQUENCE{ esealInfo, cert, signatureAlgorithm }` (v1).
    pub signed_bytes: Vec<u8>,
    /// The whole seal DER as found.
    pub der: Vec<u8>,
}

/// An electronic signature (`SES_Signature`, v4 or v1), decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct SesSignature {
    pub version: SesVersion,
    /// `TBS_Sign.version` as written.
    pub tbs_version: i64,
    pub seal: SesSeal,
    /// The signing time, when `timeInfo` holds a readable time.
    pub time_ms: Option<i64>,
    /// `timeInfo` as text (v1 producers put a time string or a time-stamp token in a BIT STRING;
    /// non-text contents are given as lower-case hex).
    pub time_raw: String,
    pub data_hash: Vec<u8>,
    pub property_info: String,
    /// The signer's certificate (DER).
    pub cert_der: Vec<u8>,
    pub signature_alg: String,
    pub signature_value: Vec<u8>,
    /// Exactly what the signer signed: the DER of `TBS_Sign` (both versions).
    pub signed_bytes: Vec<u8>,
    /// `timeStamp` (v4 only): the time-stamp token over the signature value, as found.
    pub timestamp: Option<Vec<u8>>,
    pub ext_datas: Vec<ExtData>,
    pub der: Vec<u8>,
}

/// Why a seal or signature is unusable. Messages name the offending field in Chinese, because
/// they reach verification reports as hints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SesError {
    #[error("印章/签章数据超过 {0} 字节上限")]
    TooLarge(usize),
    #[error("印章/签章数据 DER 结构错误: {0}")]
    Der(String),
    #[error("印章 {field} 字段格式错误: {detail}")]
    SealField { field: &'static str, detail: String },
    #[error("签章数据 {field} 字段格式错误: {detail}")]
    SignField { field: &'static str, detail: String },
    #[error("印章证书列表超过 {0} 项")]
    TooManyCerts(usize),
    #[error("不支持的印章版本 {0}")]
    UnsupportedVersion(i64),
    #[error("不支持的签名算法 {0}")]
    UnsupportedAlgorithm(String),
    #[error("制章者证书无效: {0}")]
    MakerCert(String),
    #[error("制章者签名验证失败")]
    MakerSignature,
    #[error("签章者证书无效: {0}")]
    SignerCert(String),
    #[error("签章者签名验证失败")]
    SignerSignature,
    /// A producer (seen: iOFD/dms360, GM/T 0031) that signs `dataHash` as the SM2 digest instead
    /// of `TBS_Sign`: the seal, time and property are then not bound by the signer.
    #[error(
        "签章者签名验证失败：签名只覆盖原文杂凑值，未覆盖印章、签章时间等 TBS_Sign 内容（非标准签法）"
    )]
    SignerSignsDataHashOnly,
    #[error("印章尚未生效（有效期起始 {0}）")]
    NotYetValid(String),
    #[error("印章已过期（有效期截止 {0}）")]
    Expired(String),
    #[error("印章/签章参数无效: {0}")]
    Params(String),
}

impl SesSeal {
    /// Decodes a seal of either version (detected from its structure).
    pub fn decode(der: &[u8]) -> Result<Self, SesError> {
        seal::decode(der)
    }

    /// Verifies the maker's signature over [`SesSeal::signed_bytes`] with the key of
    /// `maker_cert_der` (SM2/SM3 with the standard signer ID; RSA-SHA256 for RSA seals).
    pub fn verify_maker(&self) -> Result<(), SesError> {
        signature::verify_with_cert(
            &self.maker_cert_der,
            &self.signature_alg,
            &self.signed_bytes,
            &self.signature_value,
        )
        .map_err(|e| match e {
            VerifyFailure::Cert(m) => SesError::MakerCert(m),
            VerifyFailure::Algorithm(a) => SesError::UnsupportedAlgorithm(a),
            VerifyFailure::Signature => SesError::MakerSignature,
        })
    }

    /// Checks that `t_ms` lies within `[validStart, validEnd]`.
    pub fn check_validity_at(&self, t_ms: i64) -> Result<(), SesError> {
        if t_ms < self.valid_start_ms {
            return Err(SesError::NotYetValid(format_ms(self.valid_start_ms)));
        }
        if t_ms > self.valid_end_ms {
            return Err(SesError::Expired(format_ms(self.valid_end_ms)));
        }
        Ok(())
    }

    /// SM3 of the seal's DER (identifies the seal in the registry).
    pub fn digest(&self) -> [u8; 32] {
        crate::crypto::sm::sm3(&self.der)
    }
}

impl SesSignature {
    /// Decodes a signature of either version (detected from its structure).
    pub fn decode(der: &[u8]) -> Result<Self, SesError> {
        signature::decode(der)
    }

    /// Verifies the signer's signature over [`SesSignature::signed_bytes`] with the key of
    /// `cert_der`.
    pub fn verify_signature(&self) -> Result<(), SesError> {
        signature::verify_with_cert(
            &self.cert_der,
            &self.signature_alg,
            &self.signed_bytes,
            &self.signature_value,
        )
        .map_err(|e| match e {
            VerifyFailure::Cert(m) => SesError::SignerCert(m),
            VerifyFailure::Algorithm(a) => SesError::UnsupportedAlgorithm(a),
            VerifyFailure::Signature if self.signs_data_hash_only() => {
                SesError::SignerSignsDataHashOnly
            }
            VerifyFailure::Signature => SesError::SignerSignature,
        })
    }

    /// Whether the signature value is an SM2 signature whose digest `e` is `dataHash` itself, so
    /// that the failure can be explained rather than reported as a bare mismatch.
    fn signs_data_hash_only(&self) -> bool {
        self.data_hash.len() == 32
            && signature::cert_spki(&self.cert_der)
                .ok()
                .and_then(|spki| crate::crypto::sm::sm2_public_key_from_spki_der(spki).ok())
                .is_some_and(|key| {
                    crate::crypto::sm::sm2_verify_prehashed(
                        &key,
                        &self.data_hash,
                        &self.signature_value,
                    )
                    .is_ok()
                })
    }
}

/// Why a signature check failed, before it is attributed to the maker or the signer.
#[derive(Debug)]
enum VerifyFailure {
    Cert(String),
    Algorithm(String),
    Signature,
}

/// `YYYY-MM-DD HH:MM:SS UTC` for error hints.
fn format_ms(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{ms} ms"),
    }
}
