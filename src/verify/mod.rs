//! Document verification (文档验真, SPEC §3.10): PDF and OFD signatures, each reported
//! through the same eight steps.
//!
//! The format verifiers are pure: bytes in, [`report::SignatureReport`]s out. The `registry`
//! step needs the platform's seal registry, so it is applied afterwards through
//! [`report::SealRegistry`], which keeps this module free of storage.

pub mod cert_step;
pub(crate) mod cms_step;
pub mod ofd;
pub mod pdf;
pub mod report;
pub mod ses_step;

pub use report::{
    Algorithm, DocumentReport, Level, SealRegistry, SignatureReport, SignatureType, Step,
    VerifyOptions,
};

/// Why a document as a whole could not be examined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("不支持的文档格式（仅支持 PDF 与 OFD）")]
    UnsupportedFormat,
    #[error("文件过大（上限 {0} 字节）")]
    TooLarge(usize),
    #[error("文档结构无法解析: {0}")]
    Malformed(String),
    /// Refused before parsing: the objects the file declares would need more memory than its
    /// budget (issue 12 point 5).
    #[error("{0}")]
    TooComplex(String),
    /// The time budget ran out during `step`.
    #[error("验证超出时间预算（{budget_ms} 毫秒）：在“{step}”时用完，文档未验证完毕")]
    OutOfTime { step: &'static str, budget_ms: u128 },
}

impl DocumentError {
    /// [`DocumentError::OutOfTime`] for `step` under `opts`' budget.
    pub(crate) fn out_of_time(step: &'static str, opts: &VerifyOptions) -> Self {
        DocumentError::OutOfTime {
            step,
            budget_ms: opts.budget_ms(),
        }
    }
}

/// The container formats the platform verifies, detected by content; the report's `format`.
/// (`Default` only so reports can be assembled field by field; every report sets it.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Format {
    #[default]
    Pdf,
    Ofd,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Pdf => "PDF",
            Format::Ofd => "OFD",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Detects PDF (`%PDF-` within the first KiB, as readers tolerate leading junk) or OFD (a ZIP
/// local file header); anything else is unsupported whatever its name.
pub fn detect_format(bytes: &[u8]) -> Option<Format> {
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        Some(Format::Pdf)
    } else if bytes.starts_with(b"PK\x03\x04") {
        Some(Format::Ofd)
    } else {
        None
    }
}

/// Verifies every signature of a PDF or OFD document and applies the registry step.
///
/// Fails only when the format is not supported or the file is too large; a malformed
/// document yields a report with `error` set and `verifyResult` false.
pub fn verify_document(
    bytes: &[u8],
    file_name: &str,
    opts: &VerifyOptions,
    registry: &dyn SealRegistry,
) -> Result<DocumentReport, DocumentError> {
    verify_either(bytes, None, file_name, opts, registry)
}

/// [`verify_document`] of a file the caller owns: a PDF's parses share it instead of copying
/// it, so a verification needs the file once in memory rather than twice.
pub fn verify_document_shared(
    file: &pdf::Shared,
    file_name: &str,
    opts: &VerifyOptions,
    registry: &dyn SealRegistry,
) -> Result<DocumentReport, DocumentError> {
    verify_either(file, Some(file), file_name, opts, registry)
}

fn verify_either(
    bytes: &[u8],
    shared: Option<&pdf::Shared>,
    file_name: &str,
    opts: &VerifyOptions,
    registry: &dyn SealRegistry,
) -> Result<DocumentReport, DocumentError> {
    if bytes.len() > opts.max_file_size {
        return Err(DocumentError::TooLarge(opts.max_file_size));
    }
    let format = detect_format(bytes).ok_or(DocumentError::UnsupportedFormat)?;
    // The budget starts here, once per document, for every step below to check.
    let timed;
    let opts = match opts.time_budget {
        Some(budget) if opts.deadline.is_none() => {
            timed = VerifyOptions {
                deadline: Some(std::time::Instant::now() + budget),
                ..opts.clone()
            };
            &timed
        }
        _ => opts,
    };
    let outcome = match format {
        Format::Pdf => match shared {
            Some(file) => pdf::verify_pdf_shared(file, opts),
            None => pdf::verify_pdf(bytes, opts),
        },
        Format::Ofd => ofd::verify_ofd(bytes, opts),
    };
    let mut report = DocumentReport {
        file_name: file_name.to_string(),
        file_size: bytes.len() as u64,
        format,
        ..Default::default()
    };
    match outcome {
        Ok(details) => report.details = details,
        Err(DocumentError::UnsupportedFormat) => return Err(DocumentError::UnsupportedFormat),
        Err(e) => report.error = Some(e.to_string()),
    }
    report.finalize(registry, opts);
    Ok(report)
}
