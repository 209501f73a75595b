//! The one DER reader and writer of the crate: X.509 and CMS (`crypto`), electronic seals
//! (`ses`) and the verifiers all read ASN.1 through [`read_ber`] / [`read_der`] and the value
//! decoders here, and write it with [`tlv`] and friends.
//!
//! The reader hands out borrowed slices of the input (what is verified is always the bytes as
//! found, never a re-encoding) and is bounded: single-byte tags, lengths of at most four octets,
//! [`MAX_DEPTH`] levels and [`MAX_CHILDREN`] elements per level. Two modes, because the formats'
//! tolerance differs: [`read_ber`] also accepts BER indefinite lengths (CMS from real-world
//! PDF producers), [`read_der`] (seals, signed byte-exact) does not.
//!
//! Must not know any schema: structures (certificates, SignedData, SES_Seal) belong to their
//! modules.

use std::fmt;

/// Deepest nesting the BER reader follows through indefinite-length elements.
pub const MAX_DEPTH: usize = 40;
/// Most elements read from one constructed value.
pub const MAX_CHILDREN: usize = 10_000;

/// ASN.1 universal tags (single-byte identifier octets).
pub mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const T61_STRING: u8 = 0x14;
    pub const IA5_STRING: u8 = 0x16;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const VISIBLE_STRING: u8 = 0x1a;
    pub const BMP_STRING: u8 = 0x1e;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    /// `[0]` constructed (EXPLICIT).
    pub const CONTEXT_0: u8 = 0xa0;
    /// `[0]` primitive (IMPLICIT over a primitive type).
    pub const CONTEXT_0_PRIM: u8 = 0x80;
}

// ---------------------------------------------------------------------------------------------
// Reader

/// Why bytes are not the ASN.1 the reader expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DerError {
    Truncated,
    IndefiniteLength,
    LengthTooLong,
    HighTagNumber,
    TooDeep(usize),
    TooManyElements,
    TrailingData,
    UnexpectedTag { expected: u8, found: u8 },
    Missing,
    Invalid(&'static str),
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DerError::Truncated => f.write_str("数据被截断"),
            DerError::IndefiniteLength => f.write_str("不支持不定长编码"),
            DerError::LengthTooLong => f.write_str("长度字段超出范围"),
            DerError::HighTagNumber => f.write_str("不支持多字节标签"),
            DerError::TooDeep(n) => write!(f, "嵌套深度超过 {n} 层"),
            DerError::TooManyElements => write!(f, "元素超过 {MAX_CHILDREN} 个"),
            DerError::TrailingData => f.write_str("结构后有多余数据"),
            DerError::UnexpectedTag { expected, found } => {
                write!(f, "期望标签 0x{expected:02x}，实际为 0x{found:02x}")
            }
            DerError::Missing => f.write_str("缺少该字段"),
            DerError::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for DerError {}

/// One element borrowed from the input: identifier octet, contents and complete encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    /// The contents octets (for an indefinite encoding, without the end-of-contents octets).
    pub content: &'a [u8],
    /// The whole encoding: identifier, length and contents.
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    pub fn is_constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }

    /// Every child of a constructed element, read as BER.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, DerError> {
        read_all(self.content)
    }

    /// A strict (definite-length) sequential reader over the children.
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.content)
    }

    /// Whether this is the context-specific tag `[n]` (either form).
    pub fn is_context(&self, n: u8) -> bool {
        self.tag & 0xdf == 0x80 | n
    }

    pub fn expect(self, tag: u8) -> Result<Self, DerError> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(DerError::UnexpectedTag {
                expected: tag,
                found: self.tag,
            })
        }
    }
}

/// The identifier and length octets: (tag, definite length or `None`, header length).
fn header(input: &[u8]) -> Result<(u8, Option<usize>, usize), DerError> {
    let tag = *input.first().ok_or(DerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::HighTagNumber);
    }
    let len0 = *input.get(1).ok_or(DerError::Truncated)?;
    if len0 < 0x80 {
        return Ok((tag, Some(usize::from(len0)), 2));
    }
    if len0 == 0x80 {
        return Ok((tag, None, 2));
    }
    let n = usize::from(len0 & 0x7f);
    if n > 4 {
        return Err(DerError::LengthTooLong);
    }
    let digits = input.get(2..2 + n).ok_or(DerError::Truncated)?;
    let len = digits
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Ok((tag, Some(len), 2 + n))
}

fn definite(
    input: &[u8],
    tag: u8,
    len: usize,
    header_len: usize,
) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let end = header_len.checked_add(len).ok_or(DerError::LengthTooLong)?;
    let content = input.get(header_len..end).ok_or(DerError::Truncated)?;
    let raw = input.get(..end).ok_or(DerError::Truncated)?;
    let rest = input.get(end..).unwrap_or_default();
    Ok((Tlv { tag, content, raw }, rest))
}

/// Reads one DER element (definite length only) from the front of `input`; returns it and the
/// rest.
pub fn read_der(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    match header(input)? {
        (tag, Some(len), header_len) => definite(input, tag, len, header_len),
        (_, None, _) => Err(DerError::IndefiniteLength),
    }
}

/// Reads one BER element from the front of `input`, indefinite lengths included; returns it
/// and the rest.
pub fn read_ber(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    read_ber_depth(input, 0)
}

fn read_ber_depth(input: &[u8], depth: usize) -> Result<(Tlv<'_>, &[u8]), DerError> {
    if depth > MAX_DEPTH {
        return Err(DerError::TooDeep(MAX_DEPTH));
    }
    let (tag, len, header_len) = header(input)?;
    if let Some(len) = len {
        return definite(input, tag, len, header_len);
    }
    // Indefinite length: children up to the end-of-contents octets.
    if tag & 0x20 == 0 {
        return Err(DerError::Invalid("原始类型不能使用不定长编码"));
    }
    let body = input.get(header_len..).unwrap_or_default();
    let mut cursor = body;
    let mut count = 0usize;
    loop {
        if cursor.starts_with(&[0, 0]) {
            let content_len = body.len() - cursor.len();
            let end = header_len + content_len + 2;
            let content = body.get(..content_len).unwrap_or_default();
            let raw = input.get(..end).ok_or(DerError::Truncated)?;
            let rest = input.get(end..).unwrap_or_default();
            return Ok((Tlv { tag, content, raw }, rest));
        }
        count += 1;
        if count > MAX_CHILDREN {
            return Err(DerError::TooManyElements);
        }
        let (_, rest) = read_ber_depth(cursor, depth + 1)?;
        cursor = rest;
    }
}

/// Reads every BER element of `input` (the contents of a constructed element).
pub fn read_all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, DerError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        // Trailing end-of-contents octets of an indefinite encoding close the list.
        if input.starts_with(&[0, 0]) && input.len() == 2 {
            break;
        }
        if out.len() >= MAX_CHILDREN {
            return Err(DerError::TooManyElements);
        }
        let (tlv, rest) = read_ber(input)?;
        out.push(tlv);
        input = rest;
    }
    Ok(out)
}

/// Checks that `input` is exactly one well-formed DER tree no deeper than `max_depth`
/// constructed levels. Primitive contents (e.g. certificates inside OCTET STRINGs) are not
/// descended into.
pub fn check_tree(input: &[u8], max_depth: usize) -> Result<(), DerError> {
    let (tlv, rest) = read_der(input)?;
    if !rest.is_empty() {
        return Err(DerError::TrailingData);
    }
    check_node(&tlv, 1, max_depth)
}

/// Like [`check_tree`], but allows zero bytes after the element: PDF signature `/Contents`
/// are zero-padded to their reserved size.
pub fn check_tree_padded(input: &[u8], max_depth: usize) -> Result<Tlv<'_>, DerError> {
    let (tlv, rest) = read_der(input)?;
    if rest.iter().any(|b| *b != 0) {
        return Err(DerError::TrailingData);
    }
    check_node(&tlv, 1, max_depth)?;
    Ok(tlv)
}

fn check_node(tlv: &Tlv<'_>, depth: usize, max_depth: usize) -> Result<(), DerError> {
    if depth > max_depth {
        return Err(DerError::TooDeep(max_depth));
    }
    if tlv.is_constructed() {
        let mut r = tlv.reader();
        let mut count = 0usize;
        while let Some(child) = r.next_tlv()? {
            count += 1;
            if count > MAX_CHILDREN {
                return Err(DerError::TooManyElements);
            }
            check_node(&child, depth + 1, max_depth)?;
        }
    }
    Ok(())
}

/// Strict sequential reader over the elements of a constructed value.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The tag of the next element, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    pub fn next_tlv(&mut self) -> Result<Option<Tlv<'a>>, DerError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (tlv, rest) = read_der(self.rest)?;
        self.rest = rest;
        Ok(Some(tlv))
    }

    /// The next element, which must exist.
    pub fn required(&mut self) -> Result<Tlv<'a>, DerError> {
        self.next_tlv()?.ok_or(DerError::Missing)
    }

    /// The next element, which must exist and carry `tag`.
    pub fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, DerError> {
        self.required()?.expect(tag)
    }
}

// ---------------------------------------------------------------------------------------------
// Values

/// An INTEGER as i64 (rejects values that do not fit).
pub fn integer_i64(tlv: &Tlv<'_>) -> Result<i64, DerError> {
    let body = tlv.expect(tag::INTEGER)?.content;
    if body.is_empty() {
        return Err(DerError::Invalid("INTEGER 内容为空"));
    }
    if body.len() > 8 {
        return Err(DerError::Invalid("INTEGER 超出 64 位范围"));
    }
    let negative = body.first().is_some_and(|b| b & 0x80 != 0);
    let init: i64 = if negative { -1 } else { 0 };
    Ok(body.iter().fold(init, |acc, b| (acc << 8) | i64::from(*b)))
}

/// The contents of a BIT STRING with zero unused bits (signatures, hashes).
pub fn bit_string_bytes<'a>(tlv: &Tlv<'a>) -> Result<&'a [u8], DerError> {
    let body = tlv.expect(tag::BIT_STRING)?.content;
    let (&unused, bytes) = body
        .split_first()
        .ok_or(DerError::Invalid("BIT STRING 内容为空"))?;
    if unused != 0 {
        return Err(DerError::Invalid("BIT STRING 含未用位"));
    }
    Ok(bytes)
}

/// The bytes of an OCTET STRING, joining the chunks of a BER constructed one.
pub fn octet_string(tlv: &Tlv<'_>) -> Result<Vec<u8>, DerError> {
    match tlv.tag {
        tag::OCTET_STRING => Ok(tlv.content.to_vec()),
        0x24 => {
            let mut out = Vec::new();
            for c in tlv.children()? {
                out.extend(octet_string(&c)?);
            }
            Ok(out)
        }
        found => Err(DerError::UnexpectedTag {
            expected: tag::OCTET_STRING,
            found,
        }),
    }
}

/// Dotted text of an OBJECT IDENTIFIER's contents.
pub fn oid_from_content(content: &[u8]) -> Result<String, DerError> {
    if content.is_empty() || content.len() > 64 {
        return Err(DerError::Invalid("OID 长度无效"));
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    let mut in_arc = false;
    for &b in content {
        if !in_arc && b == 0x80 {
            return Err(DerError::Invalid("OID 编码不是最短形式"));
        }
        acc = acc
            .checked_mul(128)
            .and_then(|v| v.checked_add(u64::from(b & 0x7f)))
            .ok_or(DerError::Invalid("OID 分量过大"))?;
        in_arc = b & 0x80 != 0;
        if !in_arc {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    if in_arc {
        return Err(DerError::Invalid("OID 编码被截断"));
    }
    Ok(arcs
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("."))
}

/// Dotted text of an element that must be an OBJECT IDENTIFIER.
pub fn oid_string(tlv: &Tlv<'_>) -> Result<String, DerError> {
    oid_from_content(tlv.expect(tag::OID)?.content)
}

/// Text of any of the ASN.1 string types producers use interchangeably.
pub fn any_string(tlv: &Tlv<'_>) -> Result<String, DerError> {
    match tlv.tag {
        tag::UTF8_STRING
        | tag::IA5_STRING
        | tag::PRINTABLE_STRING
        | tag::VISIBLE_STRING
        | tag::T61_STRING
        | tag::OCTET_STRING => String::from_utf8(tlv.content.to_vec())
            .map_err(|_| DerError::Invalid("字符串不是有效的 UTF-8")),
        tag::BMP_STRING => {
            if !tlv.content.len().is_multiple_of(2) {
                return Err(DerError::Invalid("BMPString 长度不是偶数"));
            }
            let units: Vec<u16> = tlv
                .content
                .chunks_exact(2)
                .map(|c| {
                    u16::from_be_bytes([
                        c.first().copied().unwrap_or(0),
                        c.get(1).copied().unwrap_or(0),
                    ])
                })
                .collect();
            String::from_utf16(&units).map_err(|_| DerError::Invalid("BMPString 无效"))
        }
        found => Err(DerError::UnexpectedTag {
            expected: tag::IA5_STRING,
            found,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Times: one parser per format

/// A UTCTime element or a GeneralizedTime element as UTC milliseconds.
pub fn time_ms(tlv: &Tlv<'_>) -> Result<i64, DerError> {
    let text = std::str::from_utf8(tlv.content).map_err(|_| DerError::Invalid("时间不是 ASCII"))?;
    match tlv.tag {
        tag::UTC_TIME => parse_utc_time(text),
        tag::GENERALIZED_TIME => parse_generalized_time(text),
        found => Err(DerError::UnexpectedTag {
            expected: tag::GENERALIZED_TIME,
            found,
        }),
    }
}

/// UTCTime text as producers write it: `YYMMDDhhmm[ss][Z|±hhmm]`, no zone taken as UTC;
/// years 50–99 are 19xx (RFC 5280 §4.1.2.5.1).
pub fn parse_utc_time(text: &str) -> Result<i64, DerError> {
    parse_compact_time(text, 2)
}

/// GeneralizedTime text as producers write it: `YYYYMMDDhhmm[ss][.fff][Z|±hh[mm]]`, no zone
/// taken as UTC.
pub fn parse_generalized_time(text: &str) -> Result<i64, DerError> {
    parse_compact_time(text, 4)
}

fn parse_compact_time(text: &str, year_digits: usize) -> Result<i64, DerError> {
    const BAD: DerError = DerError::Invalid("时间格式无效");
    let text = text.trim();
    let (main, zone) = split_zone(text);
    let (digits, fraction) = match main.split_once(['.', ',']) {
        Some((d, f)) => (d, Some(f)),
        None => (main, None),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() != year_digits + 8 && digits.len() != year_digits + 10)
    {
        return Err(BAD);
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, DerError> {
        digits.get(r).and_then(|s| s.parse::<i64>().ok()).ok_or(BAD)
    };
    let year = match year_digits {
        2 => match num(0..2)? {
            yy if yy < 50 => 2000 + yy,
            yy => 1900 + yy,
        },
        _ => num(0..4)?,
    };
    let at = year_digits;
    let (month, day) = (num(at..at + 2)?, num(at + 2..at + 4)?);
    let (hour, minute) = (num(at + 4..at + 6)?, num(at + 6..at + 8)?);
    let second = if digits.len() == at + 10 {
        num(at + 8..at + 10)?
    } else {
        0
    };
    let month_enum =
        time::Month::try_from(u8::try_from(month).map_err(|_| BAD)?).map_err(|_| BAD)?;
    let date = time::Date::from_calendar_date(
        i32::try_from(year).map_err(|_| BAD)?,
        month_enum,
        u8::try_from(day).map_err(|_| BAD)?,
    )
    .map_err(|_| BAD)?;
    // A leap second (:60) is the instant after :59.
    if hour > 23 || minute > 59 || second > 60 {
        return Err(BAD);
    }
    let millis = match fraction {
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded: String = f.chars().chain("000".chars()).take(3).collect();
            padded.parse::<i64>().map_err(|_| BAD)?
        }
        Some(_) => return Err(BAD),
        None => 0,
    };
    let offset_secs: i64 = match zone {
        "" | "Z" => 0,
        z => {
            let sign = match z.get(0..1) {
                Some("+") => 1,
                Some("-") => -1,
                _ => return Err(BAD),
            };
            let field = |s: Option<&str>| -> Result<i64, DerError> {
                s.filter(|d| d.len() == 2 && d.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|d| d.parse().ok())
                    .ok_or(BAD)
            };
            let hh = field(z.get(1..3))?;
            let mm = match z.get(3..) {
                Some("") | None => 0,
                Some(m) => field(Some(m.trim_start_matches(':')))?,
            };
            sign * (hh * 3600 + mm * 60)
        }
    };
    let days = days_from_civil(i64::from(date.year()), month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(1000)
        .and_then(|v| v.checked_add(millis))
        .ok_or(BAD)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn split_zone(text: &str) -> (&str, &str) {
    if let Some(main) = text.strip_suffix('Z') {
        return (main, "Z");
    }
    // A '+' or '-' after the date part starts an offset.
    match text
        .char_indices()
        .skip(8)
        .find(|(_, c)| *c == '+' || *c == '-')
    {
        Some((i, _)) => (text.get(..i).unwrap_or(text), text.get(i..).unwrap_or("")),
        None => (text, ""),
    }
}

// ---------------------------------------------------------------------------------------------
// Writer

/// One TLV with a definite length.
pub fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len();
    let mut out = Vec::with_capacity(len + 10);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be = (len as u64).to_be_bytes();
        let skip = be.iter().take_while(|b| **b == 0).count();
        let digits = be.get(skip..).unwrap_or_default();
        out.push(0x80 | digits.len() as u8);
        out.extend_from_slice(digits);
    }
    out.extend_from_slice(body);
    out
}

/// SEQUENCE of already-encoded elements.
pub fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &parts.concat())
}

/// Minimal two's-complement INTEGER.
pub fn integer(v: i64) -> Vec<u8> {
    let be = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (Some(&b), Some(&next)) = (be.get(start), be.get(start + 1)) else {
            break;
        };
        let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    tlv(tag::INTEGER, be.get(start..).unwrap_or(&be))
}

/// BIT STRING with no unused bits.
pub fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(bytes.len() + 1);
    body.push(0);
    body.extend_from_slice(bytes);
    tlv(tag::BIT_STRING, &body)
}

/// OBJECT IDENTIFIER from dotted text.
pub fn oid(dotted: &str) -> Result<Vec<u8>, &'static str> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| a.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| "OID 文本无效")?;
    let (Some(&a), Some(&b)) = (arcs.first(), arcs.get(1)) else {
        return Err("OID 至少需要两个分量");
    };
    if a > 2 || (a < 2 && b >= 40) {
        return Err("OID 前两个分量无效");
    }
    let first = (a * 40).checked_add(b).ok_or("OID 分量过大")?;
    let mut body = Vec::new();
    for arc in std::iter::once(first).chain(arcs.iter().skip(2).copied()) {
        let mut chunk = vec![(arc & 0x7f) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            chunk.push(((v & 0x7f) as u8) | 0x80);
            v >>= 7;
        }
        chunk.reverse();
        body.extend(chunk);
    }
    Ok(tlv(tag::OID, &body))
}

/// Which ASN.1 time type to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeForm {
    Utc,
    Generalized,
    /// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5, CMS signingTime).
    Rfc5280,
}

/// A time of UTC milliseconds as `YYMMDDhhmmssZ` / `YYYYMMDDhhmmssZ`; sub-second precision
/// is dropped, as every structure written here specifies whole seconds.
pub fn time(ms: i64, form: TimeForm) -> Result<Vec<u8>, &'static str> {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map_err(|_| "时间超出范围")?;
    let rest = format!(
        "{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let utc_ok = (1950..2050).contains(&t.year());
    let utc = match form {
        TimeForm::Utc if !utc_ok => return Err("时间超出 UTCTime 范围"),
        TimeForm::Utc => true,
        TimeForm::Generalized => false,
        TimeForm::Rfc5280 => utc_ok,
    };
    if utc {
        Ok(tlv(
            tag::UTC_TIME,
            format!("{:02}{rest}", t.year() % 100).as_bytes(),
        ))
    } else if (0..=9999).contains(&t.year()) {
        Ok(tlv(
            tag::GENERALIZED_TIME,
            format!("{:04}{rest}", t.year()).as_bytes(),
        ))
    } else {
        Err("时间超出 GeneralizedTime 范围")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ber_and_der_readers_agree_on_definite_encodings_and_differ_on_indefinite() {
        let v = sequence(&[&integer(5), &tlv(tag::OCTET_STRING, b"ab")]);
        let (a, rest) = read_der(&v).unwrap();
        assert!(rest.is_empty());
        assert_eq!(read_ber(&v).unwrap().0, a);
        assert_eq!(a.children().unwrap().len(), 2);
        let mut r = a.reader();
        assert_eq!(integer_i64(&r.required().unwrap()), Ok(5));
        // SEQUENCE (indefinite) { OCTET STRING "a" } EOC
        let indefinite = [0x30, 0x80, 0x04, 0x01, b'a', 0, 0];
        assert_eq!(read_der(&indefinite), Err(DerError::IndefiniteLength));
        let (t, rest) = read_ber(&indefinite).unwrap();
        assert!(rest.is_empty());
        assert_eq!(octet_string(&t.children().unwrap()[0]).unwrap(), b"a");
    }

    #[test]
    fn the_readers_are_bounded() {
        assert_eq!(read_der(&[0x04, 0x05, 1]), Err(DerError::Truncated));
        assert_eq!(
            read_ber(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(DerError::LengthTooLong)
        );
        assert_eq!(read_ber(&[0x1f, 0x01, 0]), Err(DerError::HighTagNumber));
        // Indefinite nesting deeper than MAX_DEPTH.
        let mut deep = [0x30, 0x80].repeat(MAX_DEPTH + 2);
        deep.extend([0, 0].repeat(MAX_DEPTH + 2));
        assert_eq!(read_ber(&deep), Err(DerError::TooDeep(MAX_DEPTH)));
        let mut v = tlv(0x05, &[]);
        for _ in 0..40 {
            v = tlv(tag::SEQUENCE, &v);
        }
        assert_eq!(check_tree(&v, 32), Err(DerError::TooDeep(32)));
    }

    #[test]
    fn one_parser_per_time_format() {
        // 2020-04-22 02:09:00 UTC
        let want = 1_587_521_340_000;
        assert_eq!(parse_generalized_time("20200422020900Z"), Ok(want));
        assert_eq!(parse_utc_time("200422020900Z"), Ok(want));
        assert_eq!(parse_utc_time("2004220209Z"), Ok(want));
        assert_eq!(parse_generalized_time("20200422100900+0800"), Ok(want));
        assert_eq!(parse_generalized_time("20200422020900.25Z"), Ok(want + 250));
        assert_eq!(parse_utc_time("500101000000Z"), Ok(-631_152_000_000));
        assert!(parse_utc_time("20200422020900Z").is_err());
        assert!(parse_generalized_time("20201322020900Z").is_err());
        assert!(parse_generalized_time("20200230020900Z").is_err());
        let enc = time(want, TimeForm::Generalized).unwrap();
        assert_eq!(time_ms(&read_der(&enc).unwrap().0), Ok(want));
        let enc = time(want, TimeForm::Utc).unwrap();
        assert_eq!(time_ms(&read_der(&enc).unwrap().0), Ok(want));
    }

    #[test]
    fn oids_round_trip() {
        for s in [
            "1.2.156.10197.1.501",
            "2.5.29.14",
            "1.2.840.113549.1.1.11",
            "2.999.3",
        ] {
            let enc = oid(s).unwrap();
            assert_eq!(oid_string(&read_der(&enc).unwrap().0).unwrap(), s);
        }
        assert!(oid_from_content(&[0x2a, 0x86]).is_err());
    }

    #[test]
    fn lengths_integers_oids_and_times() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        assert_eq!(&tlv(0x04, &[0; 300])[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(integer(0), vec![0x02, 1, 0]);
        assert_eq!(integer(128), vec![0x02, 2, 0, 0x80]);
        assert_eq!(integer(-1), vec![0x02, 1, 0xff]);
        assert_eq!(
            oid("1.2.156.10197.1.401").unwrap(),
            vec![0x06, 8, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x11]
        );
        assert!(oid("3.1").is_err());
        // 2020-01-02 03:04:05 UTC.
        let ms = 1_577_934_245_000;
        assert_eq!(&time(ms, TimeForm::Utc).unwrap()[2..], b"200102030405Z");
        assert_eq!(
            &time(ms, TimeForm::Generalized).unwrap()[2..],
            b"20200102030405Z"
        );
        assert_eq!(time(ms, TimeForm::Rfc5280).unwrap()[0], tag::UTC_TIME);
        let y2050 = 2_524_608_000_000;
        assert_eq!(
            time(y2050, TimeForm::Rfc5280).unwrap()[0],
            tag::GENERALIZED_TIME
        );
        assert!(time(y2050, TimeForm::Utc).is_err());
    }
}
