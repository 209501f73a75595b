//! PDF signatures (ISO 32000, GM/T 0112-2021).
//!
//! Every signature field with a value is checked through the eight steps: its `ByteRange`
//! digest, the CMS SignedData or GB/T 38540 `SES_Signature` in `/Contents` (the container is
//! told from the DER, never from `/Filter`), the signer certificate, the time-stamp, and what
//! later incremental updates changed (`coverage`, see [`coverage`]).

mod coverage;

use std::collections::HashSet;
use std::sync::mpsc;
use std::time::Duration;

use lopdf::{Document, Object, ObjectId};

use super::cert_step::{self, check_certificate};
use super::cms_step::{self, Coverage};
use super::{
    Algorithm, DocumentError, Format, SignatureReport, SignatureType, Step, VerifyOptions,
};
use crate::crypto::cms;
use crate::crypto::tsp;
use crate::crypto::x509::{self, CertInfo};
use crate::time::format_time_ms;

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
/// Most signature fields examined in one document.
const MAX_SIGNATURES: usize = 64;
/// Most fields walked in the AcroForm tree, and its deepest nesting.
const MAX_FIELDS: usize = 10_000;
const MAX_FIELD_DEPTH: usize = 32;
/// Most byte ranges one signature may list.
const MAX_RANGES: usize = 16;

/// Verifies every signature field of a PDF.
pub fn verify_pdf(
    bytes: &[u8],
    opts: &VerifyOptions,
) -> Result<Vec<SignatureReport>, DocumentError> {
    let doc = load_guarded(bytes, opts).map_err(DocumentError::Malformed)?;
    let sigs = find_signatures(&doc);
    let revisions = coverage::revision_ends(bytes);
    let mut reports = Vec::with_capacity(sigs.len());
    let mut old_docs = coverage::RevisionCache::default();
    // A second view of the final document, rebuilt by scanning, catches objects appended
    // without cross-reference data (an incremental saving attack some readers honour).
    let later_updates = sigs.iter().any(|s| {
        byte_ranges(&s.sig_dict, bytes.len())
            .ok()
            .and_then(|r| r.last().map(|(st, l)| st + l))
            .and_then(|end| bytes.get(end..))
            .is_some_and(|rest| rest.iter().any(|b| !b.is_ascii_whitespace() && *b != 0))
    });
    let rescanned = if later_updates {
        load_guarded_with(bytes, opts, true).ok()
    } else {
        None
    };
    let views: Vec<&Document> = std::iter::once(&doc).chain(rescanned.as_ref()).collect();
    for sig in &sigs {
        let mut report = verify_one(bytes, &doc, sig, opts);
        coverage::check(
            &mut report,
            bytes,
            &views,
            sig,
            &sigs,
            &revisions,
            &mut old_docs,
            opts,
        );
        reports.push(report);
    }
    Ok(reports)
}

/// Parses `bytes` with lopdf on a worker thread, bounded in time and object count, so that a
/// hostile file cannot hang or exhaust the caller.
pub(crate) fn load_guarded(bytes: &[u8], opts: &VerifyOptions) -> Result<Document, String> {
    load_guarded_with(bytes, opts, false)
}

/// [`load_guarded`]; with `rescan` the cross-reference data is rebuilt by scanning the file
/// for objects, the view of readers that repair files.
pub(crate) fn load_guarded_with(
    bytes: &[u8],
    opts: &VerifyOptions,
    rescan: bool,
) -> Result<Document, String> {
    let data = bytes.to_vec();
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
                std::panic::catch_unwind(|| Document::load_mem_with_options(&data, options));
            let _ = tx.send(result);
        });
    if spawned.is_err() {
        return Err("无法启动 PDF 解析".into());
    }
    match rx.recv_timeout(PARSE_TIMEOUT) {
        Ok(Ok(Ok(doc))) => {
            if doc.objects.len() > max_objects {
                Err(format!("PDF 对象过多（上限 {max_objects}）"))
            } else {
                Ok(doc)
            }
        }
        Ok(Ok(Err(e))) => Err(format!("PDF 无法解析: {e}")),
        Ok(Err(_)) => Err("PDF 解析器异常终止".into()),
        Err(_) => Err("PDF 解析超时".into()),
    }
}

/// A signature field with its signature dictionary.
#[derive(Debug, Clone)]
pub(crate) struct SigField {
    pub field_name: String,
    pub field_id: Option<ObjectId>,
    pub sig_dict_id: Option<ObjectId>,
    pub sig_dict: lopdf::Dictionary,
    /// Widget rectangle and page (1-based), when the field has a widget on a page.
    pub page: Option<u32>,
    pub rect: Option<[f64; 4]>,
}

/// Walks AcroForm `/Fields` for `/FT /Sig` fields whose `/V` is a signature dictionary.
/// An empty signature field is not a signature.
pub(crate) fn find_signatures(doc: &Document) -> Vec<SigField> {
    let mut out = Vec::new();
    let Ok(catalog) = doc.catalog() else {
        return out;
    };
    let Some(acroform) = catalog
        .get(b"AcroForm")
        .ok()
        .and_then(|o| deref_dict(doc, o))
    else {
        return out;
    };
    let Some(fields) = acroform
        .get(b"Fields")
        .ok()
        .and_then(|o| deref_array(doc, o))
    else {
        return out;
    };
    let pages: Vec<ObjectId> = doc.get_pages().values().copied().collect();
    let mut seen = HashSet::new();
    let mut budget = MAX_FIELDS;
    for f in fields {
        walk_field(
            doc,
            f,
            "",
            None,
            0,
            &mut seen,
            &mut budget,
            &pages,
            &mut out,
        );
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn walk_field(
    doc: &Document,
    obj: &Object,
    parent_name: &str,
    inherited_ft: Option<Vec<u8>>,
    depth: usize,
    seen: &mut HashSet<ObjectId>,
    budget: &mut usize,
    pages: &[ObjectId],
    out: &mut Vec<SigField>,
) {
    if depth > MAX_FIELD_DEPTH || *budget == 0 || out.len() >= MAX_SIGNATURES {
        return;
    }
    *budget -= 1;
    let id = match obj {
        Object::Reference(id) => {
            if !seen.insert(*id) {
                return;
            }
            Some(*id)
        }
        _ => None,
    };
    let Some(dict) = deref_dict(doc, obj) else {
        return;
    };
    let partial = dict
        .get(b"T")
        .ok()
        .and_then(|t| t.as_str().ok())
        .map(decode_text)
        .unwrap_or_default();
    let name = match (parent_name.is_empty(), partial.is_empty()) {
        (true, _) => partial.clone(),
        (false, true) => parent_name.to_string(),
        (false, false) => format!("{parent_name}.{partial}"),
    };
    let ft = dict
        .get(b"FT")
        .ok()
        .and_then(|o| o.as_name().ok())
        .map(<[u8]>::to_vec)
        .or(inherited_ft);
    if ft.as_deref() == Some(b"Sig".as_slice())
        && let Ok(v) = dict.get(b"V")
        && let Some(sig_dict) = deref_dict(doc, v)
    {
        let sig_dict_id = match v {
            Object::Reference(r) => Some(*r),
            _ => None,
        };
        let (page, rect) = widget_position(doc, dict, pages);
        out.push(SigField {
            field_name: name.clone(),
            field_id: id,
            sig_dict_id,
            sig_dict: sig_dict.clone(),
            page,
            rect,
        });
    }
    if let Some(kids) = dict.get(b"Kids").ok().and_then(|o| deref_array(doc, o)) {
        for k in kids {
            walk_field(
                doc,
                k,
                &name,
                ft.clone(),
                depth + 1,
                seen,
                budget,
                pages,
                out,
            );
        }
    }
}

/// Page number and `/Rect` of a field's widget (the field itself or its first kid).
fn widget_position(
    doc: &Document,
    field: &lopdf::Dictionary,
    pages: &[ObjectId],
) -> (Option<u32>, Option<[f64; 4]>) {
    let widget = if field.has(b"Rect") {
        Some(field)
    } else {
        field
            .get(b"Kids")
            .ok()
            .and_then(|o| deref_array(doc, o))
            .and_then(|k| k.first())
            .and_then(|o| deref_dict(doc, o))
    };
    let Some(w) = widget else {
        return (None, None);
    };
    let rect = w
        .get(b"Rect")
        .ok()
        .and_then(|o| deref_array(doc, o))
        .and_then(|a| {
            let n: Vec<f64> = a.iter().filter_map(number).collect();
            match n.as_slice() {
                [x1, y1, x2, y2] => {
                    Some([x1.min(*x2), y1.min(*y2), (x2 - x1).abs(), (y2 - y1).abs()])
                }
                _ => None,
            }
        });
    let page = w
        .get(b"P")
        .ok()
        .and_then(|o| o.as_reference().ok())
        .and_then(|id| pages.iter().position(|p| *p == id))
        .and_then(|i| u32::try_from(i + 1).ok());
    (page, rect)
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

/// The validated byte ranges of a signature, as (start, length) pairs inside the file.
pub(crate) fn byte_ranges(
    sig: &lopdf::Dictionary,
    file_len: usize,
) -> Result<Vec<(usize, usize)>, String> {
    let arr = match sig.get(b"ByteRange") {
        Ok(Object::Array(a)) => a,
        _ => return Err("签名字典缺少 ByteRange".into()),
    };
    if arr.is_empty() || arr.len() % 2 != 0 || arr.len() > MAX_RANGES * 2 {
        return Err("ByteRange 元素个数错误".into());
    }
    let mut out = Vec::new();
    for pair in arr.chunks(2) {
        let (Some(Object::Integer(start)), Some(Object::Integer(len))) =
            (pair.first(), pair.get(1))
        else {
            return Err("ByteRange 含非整数".into());
        };
        let start = usize::try_from(*start).map_err(|_| "ByteRange 含负数".to_string())?;
        let len = usize::try_from(*len).map_err(|_| "ByteRange 含负数".to_string())?;
        let end = start.checked_add(len).ok_or("ByteRange 溢出")?;
        if end > file_len {
            return Err(format!("ByteRange 超出文件长度（{end} > {file_len}）"));
        }
        out.push((start, len));
    }
    Ok(out)
}

/// The covered bytes as slices.
pub(crate) fn covered<'a>(bytes: &'a [u8], ranges: &[(usize, usize)]) -> Vec<&'a [u8]> {
    ranges
        .iter()
        .filter_map(|(s, l)| bytes.get(*s..s.saturating_add(*l)))
        .collect()
}

/// Which container `/Contents` holds, told from the DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Cms,
    Ses,
    Unknown,
}

fn detect_container(der: &[u8]) -> Container {
    let Ok((outer, _)) = x509::read_tlv(der) else {
        return Container::Unknown;
    };
    if outer.tag != 0x30 {
        return Container::Unknown;
    }
    let kids = outer.children().unwrap_or_default();
    match kids.first() {
        Some(first) if first.tag == 0x06 => Container::Cms,
        // SES_Signature: SEQUENCE { TBS_Sign SEQUENCE { version INTEGER, ... }, ... }
        Some(first) if first.tag == 0x30 => {
            let inner = first.children().unwrap_or_default();
            if inner.first().is_some_and(|v| v.tag == 0x02) {
                Container::Ses
            } else {
                Container::Unknown
            }
        }
        _ => Container::Unknown,
    }
}

fn name_of(d: &lopdf::Dictionary, key: &[u8]) -> Option<String> {
    d.get(key)
        .ok()
        .and_then(|o| o.as_name().ok())
        .map(|n| String::from_utf8_lossy(n).into_owned())
}

fn verify_one(
    bytes: &[u8],
    doc: &Document,
    sig: &SigField,
    opts: &VerifyOptions,
) -> SignatureReport {
    let d = &sig.sig_dict;
    let is_doc_ts = name_of(d, b"Type").as_deref() == Some("DocTimeStamp")
        || name_of(d, b"SubFilter").as_deref() == Some("ETSI.RFC3161");
    let mut report = SignatureReport::new(Format::Pdf, SignatureType::Sign);
    report.location = sig.field_name.clone();
    report.page = sig.page;
    report.position = sig
        .rect
        .map(|r| r.map(|v| (v * 25.4 / 72.0 * 100.0).round() / 100.0));
    report.provider = provider(doc, d);
    report.seal_type = if is_doc_ts {
        "文档时间戳".into()
    } else {
        "数字签名".into()
    };
    let m_time = d
        .get(b"M")
        .ok()
        .and_then(|o| o.as_str().ok())
        .and_then(parse_pdf_date);
    if let Some(t) = m_time {
        report.sign_time = format_time_ms(t);
        report.sign_time_ms = Some(t);
    }

    let contents = match d.get(b"Contents") {
        Ok(Object::String(s, _)) => s.clone(),
        _ => {
            report.fail(Step::Parse, "签名字典缺少 /Contents");
            return report;
        }
    };
    // `/Contents` is zero-padded; the DER element's own length delimits it.
    let der = match x509::read_tlv(&contents) {
        Ok((t, _)) => t.raw.to_vec(),
        Err(e) => {
            report.fail(Step::Parse, format!("签名值 /Contents 不是 DER 结构: {e}"));
            return report;
        }
    };
    let ranges = match byte_ranges(d, bytes.len()) {
        Ok(r) => r,
        Err(e) => {
            report.pass(Step::Parse, "PDF 结构与签名字典可解析");
            report.fail(Step::Integrity, e);
            return report;
        }
    };
    let parts = covered(bytes, &ranges);
    match detect_container(&der) {
        Container::Cms if is_doc_ts => verify_doc_timestamp(&mut report, &der, &parts, opts),
        Container::Cms => verify_cms(&mut report, &der, &parts, opts),
        Container::Ses => verify_ses(&mut report, &der, &parts, opts),
        Container::Unknown => {
            report.fail(
                Step::Parse,
                "签名值 /Contents 既不是 CMS SignedData 也不是 SES_Signature",
            );
        }
    }
    report
}

fn provider(doc: &Document, d: &lopdf::Dictionary) -> String {
    let build = d
        .get(b"Prop_Build")
        .ok()
        .and_then(|o| deref_dict(doc, o))
        .and_then(|b| {
            b.get(b"App")
                .ok()
                .and_then(|o| deref_dict(doc, o))
                .or_else(|| b.get(b"Filter").ok().and_then(|o| deref_dict(doc, o)))
        })
        .and_then(|a| a.get(b"Name").ok())
        .and_then(|n| match n {
            Object::Name(n) => Some(String::from_utf8_lossy(n).into_owned()),
            Object::String(s, _) => Some(decode_text(s)),
            _ => None,
        });
    build.or_else(|| name_of(d, b"Filter")).unwrap_or_default()
}

fn verify_cms(report: &mut SignatureReport, der: &[u8], parts: &[&[u8]], opts: &VerifyOptions) {
    let sd = match cms::parse_signed_data(der) {
        Ok(sd) => sd,
        Err(e) => {
            report.fail(Step::Parse, format!("签名值无法解析: {e}"));
            return;
        }
    };
    report.pass(Step::Parse, "PDF 结构与 CMS SignedData 可解析");
    let check = cms_step::check_cms(report, &sd, parts, opts);
    match check.coverage {
        Coverage::Matches { digest, .. } => report.pass(
            Step::Integrity,
            format!("ByteRange 摘要（{digest}）与签名一致"),
        ),
        Coverage::Fails(hint) => report.fail(Step::Integrity, hint),
        Coverage::NotExamined(_) => {}
    }
    if check.verified {
        report.pass(Step::Seal, "数字签名，不含电子印章");
    }
}

/// A document time-stamp (`/Type /DocTimeStamp`): the token's imprint covers the ranges.
fn verify_doc_timestamp(
    report: &mut SignatureReport,
    der: &[u8],
    parts: &[&[u8]],
    opts: &VerifyOptions,
) {
    report.pass(Step::Parse, "PDF 结构与时间戳令牌可解析");
    report.pass(Step::Seal, "文档时间戳，不含电子印章");
    match tsp::verify_timestamp_token_parts(der, parts) {
        Ok(ts) => {
            report.pass(
                Step::Integrity,
                format!("ByteRange 摘要（{}）与时间戳一致", ts.hash_algorithm),
            );
            report.pass(Step::Signature, "时间戳服务器签名验证通过");
            report.algorithm = Algorithm::Scheme(ts.tsa_scheme);
            report.sign_time_ms = Some(ts.gen_time_ms);
            report.sign_time = format_time_ms(ts.gen_time_ms);
            cert_step::check_tsa(report, &ts, opts);
            check_certificate(
                report,
                &ts.tsa_cert_der,
                &ts.certs,
                Some(ts.gen_time_ms),
                opts,
            );
        }
        Err(tsp::TspError::ImprintMismatch) => {
            report.fail(Step::Integrity, "文档摘要与时间戳 messageImprint 不一致")
        }
        Err(tsp::TspError::Parse(e)) => {
            report.fail(Step::Parse, format!("时间戳令牌无法解析: {e}"))
        }
        Err(e) => {
            report.pass(Step::Integrity, "ByteRange 可读");
            report.fail(Step::Signature, e.to_string());
        }
    }
}

/// Profile D: a raw GB/T 38540 `SES_Signature`; the SES module checks signature, seal and
/// time-stamp and compares its `dataHash` with the covered bytes.
fn verify_ses(report: &mut SignatureReport, der: &[u8], parts: &[&[u8]], opts: &VerifyOptions) {
    report.signature_type = SignatureType::Seal;
    report.seal_type = "电子签章".into();
    let signed: Vec<u8> = parts.concat();
    match super::ses_step::check_ses_signature(report, der, &signed, opts) {
        Ok(hash) => {
            report.pass(Step::Parse, "PDF 结构与 SES_Signature 可解析");
            report.record(Step::Integrity, hash.matches, hash.hint.clone());
            if !hash.signer_cert_der.is_empty() {
                if let Ok(c) = CertInfo::parse(&hash.signer_cert_der)
                    && report.algorithm.is_unknown()
                {
                    report.algorithm = Algorithm::from_key(&c.spki_der);
                }
                if report.outcome(Step::Certificate).is_none() {
                    check_certificate(
                        report,
                        &hash.signer_cert_der,
                        &[],
                        report.sign_time_ms,
                        opts,
                    );
                }
            }
        }
        Err(msg) => report.fail(Step::Parse, msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_dates_with_offsets() {
        assert_eq!(
            parse_pdf_date(b"D:20201101000000Z"),
            Some(1_604_188_800_000)
        );
        assert_eq!(
            parse_pdf_date(b"D:20201101080000+08'00'"),
            Some(1_604_188_800_000)
        );
        assert_eq!(parse_pdf_date(b"D:2020"), Some(1_577_836_800_000));
        assert_eq!(parse_pdf_date(b"D:20201341"), None);
        assert_eq!(parse_pdf_date(b"garbage"), None);
    }

    fn sig_with(range: Vec<Object>) -> lopdf::Dictionary {
        let mut d = lopdf::Dictionary::new();
        d.set("ByteRange", Object::Array(range));
        d
    }

    #[test]
    fn byte_ranges_are_bounded_by_the_file() {
        let ok = sig_with(vec![0.into(), 10.into(), 20.into(), 5.into()]);
        assert_eq!(byte_ranges(&ok, 25).unwrap(), vec![(0, 10), (20, 5)]);
        assert!(byte_ranges(&ok, 24).unwrap_err().contains("超出文件长度"));
        let negative = sig_with(vec![0.into(), (-1).into()]);
        assert!(byte_ranges(&negative, 25).is_err());
        let odd = sig_with(vec![0.into(), 10.into(), 20.into()]);
        assert!(byte_ranges(&odd, 25).is_err());
        let huge = sig_with(vec![0.into(), i64::MAX.into()]);
        assert!(byte_ranges(&huge, 25).is_err());
    }

    #[test]
    fn container_is_told_from_the_der() {
        // ContentInfo starts with an OID; SES_Signature with TBS_Sign { version INTEGER ... }.
        assert_eq!(
            detect_container(&[0x30, 0x03, 0x06, 0x01, 0x2a]),
            Container::Cms
        );
        assert_eq!(
            detect_container(&[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x04]),
            Container::Ses
        );
        assert_eq!(detect_container(b"not der"), Container::Unknown);
    }

    #[test]
    fn unparseable_pdf_is_a_document_error_not_a_panic() {
        let r = verify_pdf(b"%PDF-1.7\n1 0 obj <<", &VerifyOptions::default());
        assert!(
            matches!(r, Err(DocumentError::Malformed(ref m)) if m.contains("PDF")),
            "{r:?}"
        );
    }
}
