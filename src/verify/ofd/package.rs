//! The OFD container: a ZIP read entirely into memory under the limits of [`VerifyOptions`].
//!
//! Nothing declared in the archive is trusted: every entry is inflated through a bounded
//! reader, so a lying size field or a zip bomb stops at the limit instead of exhausting memory.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use crate::verify::VerifyOptions;

/// Entries whose inflated size is below this are exempt from the ratio check: tiny, highly
/// repetitive XML compresses well without being a bomb.
const RATIO_EXEMPT_BYTES: u64 = 64 * 1024;
/// The highest compression ratio accepted for larger entries.
const MAX_RATIO: u64 = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// What could not be read, in our words (the ZIP library's text goes to the log only).
    #[error("不是有效的 ZIP 包：{0}")]
    Zip(String),
    #[error("ZIP 条目数超过上限 {0}")]
    TooManyEntries(usize),
    #[error("ZIP 条目名不安全（路径穿越、绝对路径或反斜杠）: {0}")]
    UnsafeName(String),
    #[error("ZIP 条目名重复: {0}")]
    DuplicateName(String),
    #[error("ZIP 条目已加密或使用不支持的压缩方式: {0}")]
    Unsupported(String),
    #[error("ZIP 条目 {0} 解压后超过单文件上限")]
    EntryTooLarge(String),
    #[error("ZIP 解压总量超过上限")]
    TotalTooLarge,
    #[error("ZIP 条目 {0} 压缩比超过 100:1，疑似压缩炸弹")]
    RatioTooHigh(String),
}

/// A ZIP failure described by `what` (naming the entry); the library's English text is for
/// the log, never for a report (issue 12 point 6).
fn zip_error(what: &str, e: &dyn std::fmt::Display) -> PackageError {
    tracing::debug!(error = %e, "{what}");
    PackageError::Zip(what.to_string())
}

/// The files of an OFD package by normalised name (no leading `/`), directories dropped.
#[derive(Debug, Default, Clone)]
pub struct Package {
    files: BTreeMap<String, Vec<u8>>,
}

/// Why an entry name is refused, or `None` when it is a safe relative name.
fn unsafe_name(name: &str) -> bool {
    name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name.split('/').any(|c| c == ".." || c == ".")
        || name.chars().nth(1) == Some(':')
}

impl Package {
    pub fn open(bytes: &[u8], opts: &VerifyOptions) -> Result<Self, PackageError> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| zip_error("ZIP 中央目录缺失或损坏", &e))?;
        if zip.len() > opts.max_zip_entries {
            return Err(PackageError::TooManyEntries(opts.max_zip_entries));
        }
        if zip.has_duplicate_names() {
            return Err(PackageError::DuplicateName(String::new()));
        }
        let mut files = BTreeMap::new();
        let mut total: u64 = 0;
        for i in 0..zip.len() {
            let mut entry = zip
                .by_index(i)
                .map_err(|e| zip_error(&format!("第 {} 个 ZIP 条目的头部损坏", i + 1), &e))?;
            let name = entry
                .name()
                .map_err(|e| zip_error(&format!("第 {} 个 ZIP 条目的名称编码无效", i + 1), &e))?
                .into_owned();
            if entry.is_dir() || name.ends_with('/') {
                if unsafe_name(name.trim_end_matches('/')) {
                    return Err(PackageError::UnsafeName(name));
                }
                continue;
            }
            if unsafe_name(&name) {
                return Err(PackageError::UnsafeName(name));
            }
            if entry.encrypted() {
                return Err(PackageError::Unsupported(name));
            }
            let remaining = opts.max_inflated_total.saturating_sub(total);
            let by_ratio = entry
                .compressed_size()
                .saturating_mul(MAX_RATIO)
                .max(RATIO_EXEMPT_BYTES);
            let limit = opts.max_inflated_entry.min(remaining).min(by_ratio);
            let mut data = Vec::new();
            (&mut entry)
                .take(limit.saturating_add(1))
                .read_to_end(&mut data)
                .map_err(|e| {
                    zip_error(
                        &format!(
                            "ZIP 条目 {name} 的数据损坏（无法解压，或与声明的大小、CRC 校验值不符）"
                        ),
                        &e,
                    )
                })?;
            let len = data.len() as u64;
            if len > limit {
                return Err(if len > opts.max_inflated_entry {
                    PackageError::EntryTooLarge(name)
                } else if len > remaining {
                    PackageError::TotalTooLarge
                } else {
                    PackageError::RatioTooHigh(name)
                });
            }
            total = total.saturating_add(len);
            if files.insert(name.clone(), data).is_some() {
                return Err(PackageError::DuplicateName(name));
            }
        }
        Ok(Self { files })
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

/// Resolves an OFD path written inside the file `base_file`: absolute (`/Doc_0/...`) from the
/// package root, relative from the folder of `base_file`. `None` when it leaves the package.
pub fn resolve(base_file: &str, path: &str) -> Option<String> {
    let path = path.trim();
    if path.is_empty() || path.contains('\\') || path.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    let rest = if let Some(abs) = path.strip_prefix('/') {
        abs
    } else {
        if let Some((dir, _)) = base_file.rsplit_once('/') {
            parts.extend(dir.split('/').filter(|c| !c.is_empty()));
        }
        path
    };
    for comp in rest.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_absolute_and_relative_paths() {
        assert_eq!(
            resolve("Doc_0/Signs/Sign_0/Signature.xml", "SignedValue.dat").as_deref(),
            Some("Doc_0/Signs/Sign_0/SignedValue.dat")
        );
        assert_eq!(
            resolve("Doc_0/Signs/Sign_0/Signature.xml", "/Doc_0/Document.xml").as_deref(),
            Some("Doc_0/Document.xml")
        );
        assert_eq!(
            resolve("OFD.xml", "Doc_0/Signs/Signatures.xml").as_deref(),
            Some("Doc_0/Signs/Signatures.xml")
        );
        assert_eq!(
            resolve("Doc_0/Signs/Signatures.xml", "../Pages/./P.xml").as_deref(),
            Some("Doc_0/Pages/P.xml")
        );
        assert_eq!(resolve("OFD.xml", "../../etc/passwd"), None);
        assert_eq!(resolve("OFD.xml", "a\\b"), None);
    }

    #[test]
    fn unsafe_names_are_recognised() {
        for bad in ["/etc/x", "a/../b", "..", "a\\b", "C:/x", ""] {
            assert!(unsafe_name(bad), "{bad}");
        }
        assert!(!unsafe_name("Doc_0/Pages/Page_0/Content.xml"));
    }
}
