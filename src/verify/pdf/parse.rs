//! Loading a PDF with lopdf under guard (a worker thread, a time limit, a bound on parser
//! threads and objects) and reading its objects: references, numbers, text strings, dates.
//!
//! Must not interpret signatures: it hands a `Document` and plain values to the others.

use std::sync::{Arc, mpsc};
use std::time::Duration;

use lopdf::{Document, Object};

use crate::crypto::x509;
use crate::verify::VerifyOptions;

/// Longest time a single PDF parse may take before the file is given up as hostile.
const PARSE_TIMEOUT: Duration = Duration::from_secs(20);
/// Parser threads alive at once. A parse that times out keeps its thread until lopdf returns;
/// this bound keeps hostile files from piling up such threads.
const MAX_PARSERS: usize = 16;
static PARSERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Holds one of the [`MAX_PARSERS`] slots; released when the worker thread ends.
struct ParserSlot;

impl ParserSlot {
    fn take() -> Option<Self> {
        use std::sync::atomic::Ordering;
        PARSERS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_PARSERS).then_some(n + 1)
            })
            .ok()
            .map(|_| ParserSlot)
    }
}

impl Drop for ParserSlot {
    fn drop(&mut self) {
        PARSERS.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A file's bytes, shared with the parser's worker threads rather than copied for each: a
/// parse that times out keeps its thread, and so its view of the file, until lopdf returns.
pub type Shared = Arc<Vec<u8>>;

/// Parses the first `end` bytes of `file` with lopdf on a worker thread, bounded in time and
/// object count, so that a hostile file cannot hang or exhaust the caller.
pub(crate) fn load_guarded(
    file: &Shared,
    end: usize,
    opts: &VerifyOptions,
) -> Result<Document, String> {
    load_guarded_with(file, end, opts, false)
}

/// [`load_guarded`]; with `rescan` the cross-reference data is rebuilt by scanning the file
/// for objects, the view of readers that repair files.
pub(crate) fn load_guarded_with(
    file: &Shared,
    end: usize,
    opts: &VerifyOptions,
    rescan: bool,
) -> Result<Document, String> {
    if end > file.len() {
        return Err("修订版本超出文件".into());
    }
    let data = Arc::clone(file);
    let max_objects = opts.max_pdf_objects;
    let (tx, rx) = mpsc::channel();
    let slot = ParserSlot::take().ok_or("PDF 解析任务过多，请稍后重试")?;
    let spawned = std::thread::Builder::new()
        .name("pdf-parse".into())
        .spawn(move || {
            let _slot = slot;
            let options = lopdf::LoadOptions {
                max_decompressed_size: Some(64 * 1024 * 1024),
                force_reconstruct: rescan,
                ..Default::default()
            };
            let result =
                std::panic::catch_unwind(|| Document::load_mem_with_options(&data[..end], options));
            let _ = tx.send(result);
        });
    if spawned.is_err() {
        return Err("无法启动 PDF 解析".into());
    }
    // Within the verification's budget; the worker may outlive it, but the census in
    // `budget` has bounded what it parses.
    let wait = opts
        .time_left()
        .map_or(PARSE_TIMEOUT, |left| left.min(PARSE_TIMEOUT));
    match rx.recv_timeout(wait) {
        Ok(Ok(Ok(doc))) => {
            if doc.objects.len() > max_objects {
                Err(format!("PDF 对象过多（上限 {max_objects}）"))
            } else {
                Ok(doc)
            }
        }
        // The parser's English text is for the log; the report gets our sentence (issue 12
        // point 6).
        Ok(Ok(Err(e))) => {
            tracing::debug!(error = %e, "PDF 无法解析");
            Err("PDF 无法解析：文件结构（交叉引用表、文件尾或对象）损坏".into())
        }
        Ok(Err(_)) => Err("PDF 解析器异常终止".into()),
        Err(_) => Err("PDF 解析超时".into()),
    }
}

pub(crate) fn number(o: &Object) -> Option<f64> {
    match o {
        Object::Integer(i) => Some(*i as f64),
        Object::Real(r) => Some(f64::from(*r)),
        _ => None,
    }
}

pub(crate) fn deref<'a>(doc: &'a Document, o: &'a Object) -> Option<&'a Object> {
    doc.dereference(o).ok().map(|(_, o)| o)
}

pub(crate) fn deref_dict<'a>(doc: &'a Document, o: &'a Object) -> Option<&'a lopdf::Dictionary> {
    match deref(doc, o)? {
        Object::Dictionary(d) => Some(d),
        Object::Stream(s) => Some(&s.dict),
        _ => None,
    }
}

pub(crate) fn deref_array<'a>(doc: &'a Document, o: &'a Object) -> Option<&'a Vec<Object>> {
    match deref(doc, o)? {
        Object::Array(a) => Some(a),
        _ => None,
    }
}

/// PDF text string: UTF-16BE with BOM, else PDFDocEncoding (treated as Latin-1).
pub(crate) fn decode_text(b: &[u8]) -> String {
    if let Some(rest) = b.strip_prefix(&[0xfe, 0xff]) {
        return x509::utf16be_lossy(rest);
    }
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|c| char::from(*c)).collect(),
    }
}

/// Parses a PDF date `D:YYYYMMDDHHmmSSOHH'mm'` into UTC milliseconds.
pub(crate) fn parse_pdf_date(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    let s = s.strip_prefix("D:").unwrap_or(s);
    let num = |r: std::ops::Range<usize>, default: i64| -> Option<i64> {
        match s.get(r) {
            Some(d) if d.bytes().all(|b| b.is_ascii_digit()) && !d.is_empty() => d.parse().ok(),
            Some(_) => None,
            None => Some(default),
        }
    };
    let year = num(0..4, 0)?;
    if s.len() < 4 {
        return None;
    }
    let month = num(4..6, 1)?;
    let day = num(6..8, 1)?;
    let hour = num(8..10, 0)?;
    let minute = num(10..12, 0)?;
    let second = num(12..14, 0)?;
    let mut offset = 0i64;
    if let Some(tz) = s.get(14..) {
        let sign = match tz.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => 0,
        };
        if sign != 0 {
            let digits: String = tz.chars().filter(char::is_ascii_digit).collect();
            let h: i64 = digits.get(0..2).and_then(|d| d.parse().ok()).unwrap_or(0);
            let m: i64 = digits.get(2..4).and_then(|d| d.parse().ok()).unwrap_or(0);
            offset = sign * (h * 3600 + m * 60);
        }
    }
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = crate::crypto::der::days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 + second - offset) * 1000)
}
