//! A small, strict-where-it-matters DER reader and writer for the SES structures.
//!
//! Seals are signed over exact byte ranges (`SES_SealInfo`, `TBS_Sign`), so the reader hands out
//! borrowed slices of the input rather than re-encoding anything. It accepts only definite
//! lengths and single-byte tags (all the SES schemas need) and is bounded in depth.

use std::fmt;

/// ASN.1 universal tags (single-byte identifier octets) used by the SES schemas.
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

/// Why bytes are not the DER the reader expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asn1Error {
    Truncated,
    IndefiniteLength,
    LengthTooLong,
    HighTagNumber,
    TooDeep(usize),
    TrailingData,
    UnexpectedTag { expected: u8, found: u8 },
    Missing,
    Invalid(&'static str),
}

impl fmt::Display for Asn1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Asn1Error::Truncated => f.write_str("数据被截断"),
            Asn1Error::IndefiniteLength => f.write_str("不支持不定长编码"),
            Asn1Error::LengthTooLong => f.write_str("长度字段超出范围"),
            Asn1Error::HighTagNumber => f.write_str("不支持多字节标签"),
            Asn1Error::TooDeep(n) => write!(f, "嵌套深度超过 {n} 层"),
            Asn1Error::TrailingData => f.write_str("结构后有多余数据"),
            Asn1Error::UnexpectedTag { expected, found } => {
                write!(f, "期望标签 0x{expected:02x}，实际为 0x{found:02x}")
            }
            Asn1Error::Missing => f.write_str("缺少该字段"),
            Asn1Error::Invalid(why) => f.write_str(why),
        }
    }
}

/// One TLV borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    /// The whole encoding: identifier, length and contents.
    pub raw: &'a [u8],
    /// The contents octets.
    pub body: &'a [u8],
}

impl<'a> Tlv<'a> {
    pub fn is_constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }

    /// A reader over the contents of a constructed TLV.
    pub fn children(&self) -> Reader<'a> {
        Reader::new(self.body)
    }

    pub fn expect(self, tag: u8) -> Result<Self, Asn1Error> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(Asn1Error::UnexpectedTag {
                expected: tag,
                found: self.tag,
            })
        }
    }
}

/// Reads one TLV from the front of `input`, returning it and the rest.
pub fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), Asn1Error> {
    let (&tag, after_tag) = input.split_first().ok_or(Asn1Error::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(Asn1Error::HighTagNumber);
    }
    let (&first, mut rest) = after_tag.split_first().ok_or(Asn1Error::Truncated)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else if first == 0x80 {
        return Err(Asn1Error::IndefiniteLength);
    } else {
        let n = usize::from(first & 0x7f);
        if n > 4 {
            return Err(Asn1Error::LengthTooLong);
        }
        let (digits, after) = rest.split_at_checked(n).ok_or(Asn1Error::Truncated)?;
        rest = after;
        digits
            .iter()
            .fold(0usize, |acc, d| (acc << 8) | usize::from(*d))
    };
    let header_len = input.len() - rest.len();
    let (body, tail) = rest.split_at_checked(len).ok_or(Asn1Error::Truncated)?;
    let total = header_len
        .checked_add(len)
        .ok_or(Asn1Error::LengthTooLong)?;
    let raw = input.get(..total).ok_or(Asn1Error::Truncated)?;
    Ok((Tlv { tag, raw, body }, tail))
}

/// Checks that `input` is exactly one well-formed TLV tree no deeper than `max_depth`
/// constructed levels. Primitive contents (e.g. certificates inside OCTET STRINGs) are not
/// descended into.
pub fn check_tree(input: &[u8], max_depth: usize) -> Result<(), Asn1Error> {
    let (tlv, rest) = read_tlv(input)?;
    if !rest.is_empty() {
        return Err(Asn1Error::TrailingData);
    }
    check_node(&tlv, 1, max_depth)
}

/// Like [`check_tree`], but allows zero bytes after the TLV: PDF signature `/Contents` are
/// zero-padded to their reserved size, and SES values are carried there as they are.
pub fn check_tree_padded(input: &[u8], max_depth: usize) -> Result<Tlv<'_>, Asn1Error> {
    let (tlv, rest) = read_tlv(input)?;
    if rest.iter().any(|b| *b != 0) {
        return Err(Asn1Error::TrailingData);
    }
    check_node(&tlv, 1, max_depth)?;
    Ok(tlv)
}

fn check_node(tlv: &Tlv<'_>, depth: usize, max_depth: usize) -> Result<(), Asn1Error> {
    if depth > max_depth {
        return Err(Asn1Error::TooDeep(max_depth));
    }
    if tlv.is_constructed() {
        let mut r = tlv.children();
        while let Some(child) = r.next_tlv()? {
            check_node(&child, depth + 1, max_depth)?;
        }
    }
    Ok(())
}

/// Sequential reader over the elements of a constructed value.
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

    pub fn next_tlv(&mut self) -> Result<Option<Tlv<'a>>, Asn1Error> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (tlv, rest) = read_tlv(self.rest)?;
        self.rest = rest;
        Ok(Some(tlv))
    }

    /// The next element, which must exist.
    pub fn required(&mut self) -> Result<Tlv<'a>, Asn1Error> {
        self.next_tlv()?.ok_or(Asn1Error::Missing)
    }

    /// The next element, which must exist and carry `tag`.
    pub fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, Asn1Error> {
        self.required()?.expect(tag)
    }
}

/// An INTEGER as i64 (rejects values that do not fit).
pub fn integer_i64(tlv: &Tlv<'_>) -> Result<i64, Asn1Error> {
    let body = tlv.expect(tag::INTEGER)?.body;
    if body.is_empty() {
        return Err(Asn1Error::Invalid("INTEGER 内容为空"));
    }
    if body.len() > 8 {
        return Err(Asn1Error::Invalid("INTEGER 超出 64 位范围"));
    }
    let negative = body.first().is_some_and(|b| b & 0x80 != 0);
    let init: i64 = if negative { -1 } else { 0 };
    Ok(body.iter().fold(init, |acc, b| (acc << 8) | i64::from(*b)))
}

/// The contents of a BIT STRING with zero unused bits (signatures, hashes).
pub fn bit_string_bytes<'a>(tlv: &Tlv<'a>) -> Result<&'a [u8], Asn1Error> {
    let body = tlv.expect(tag::BIT_STRING)?.body;
    let (&unused, bytes) = body
        .split_first()
        .ok_or(Asn1Error::Invalid("BIT STRING 内容为空"))?;
    if unused != 0 {
        return Err(Asn1Error::Invalid("BIT STRING 含未用位"));
    }
    Ok(bytes)
}

/// Dotted text of an OBJECT IDENTIFIER.
pub fn oid_string(tlv: &Tlv<'_>) -> Result<String, Asn1Error> {
    let body = tlv.expect(tag::OID)?.body;
    if body.is_empty() || body.len() > 64 {
        return Err(Asn1Error::Invalid("OID 长度无效"));
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    let mut in_arc = false;
    for &b in body {
        if !in_arc && b == 0x80 {
            return Err(Asn1Error::Invalid("OID 编码不是最短形式"));
        }
        acc = acc
            .checked_mul(128)
            .and_then(|v| v.checked_add(u64::from(b & 0x7f)))
            .ok_or(Asn1Error::Invalid("OID 分量过大"))?;
        in_arc = b & 0x80 != 0;
        if !in_arc {
            if arcs.is_empty() {
                let (first, second) = match acc {
                    0..=39 => (0, acc),
                    40..=79 => (1, acc - 40),
                    _ => (2, acc - 80),
                };
                arcs.push(first);
                arcs.push(second);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    if in_arc {
        return Err(Asn1Error::Invalid("OID 编码被截断"));
    }
    Ok(arcs
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("."))
}

/// Text of any of the ASN.1 string types producers use interchangeably.
pub fn any_string(tlv: &Tlv<'_>) -> Result<String, Asn1Error> {
    match tlv.tag {
        tag::UTF8_STRING
        | tag::IA5_STRING
        | tag::PRINTABLE_STRING
        | tag::VISIBLE_STRING
        | tag::T61_STRING
        | tag::OCTET_STRING => String::from_utf8(tlv.body.to_vec())
            .map_err(|_| Asn1Error::Invalid("字符串不是有效的 UTF-8")),
        tag::BMP_STRING => {
            if !tlv.body.len().is_multiple_of(2) {
                return Err(Asn1Error::Invalid("BMPString 长度不是偶数"));
            }
            let units: Vec<u16> = tlv
                .body
                .chunks_exact(2)
                .map(|c| {
                    u16::from_be_bytes([
                        c.first().copied().unwrap_or(0),
                        c.get(1).copied().unwrap_or(0),
                    ])
                })
                .collect();
            String::from_utf16(&units).map_err(|_| Asn1Error::Invalid("BMPString 无效"))
        }
        found => Err(Asn1Error::UnexpectedTag {
            expected: tag::IA5_STRING,
            found,
        }),
    }
}

/// UTCTime / GeneralizedTime (or their text carried in a string) as UTC milliseconds.
pub fn time_ms(tlv: &Tlv<'_>) -> Result<i64, Asn1Error> {
    let text = std::str::from_utf8(tlv.body).map_err(|_| Asn1Error::Invalid("时间不是 ASCII"))?;
    match tlv.tag {
        tag::UTC_TIME => parse_time_text(text, true),
        tag::GENERALIZED_TIME => parse_time_text(text, false),
        found => Err(Asn1Error::UnexpectedTag {
            expected: tag::GENERALIZED_TIME,
            found,
        }),
    }
}

/// Parses the time texts producers write: `YYMMDDhhmm[ss]Z` (UTCTime), `YYYYMMDDhhmmss[.f]Z`
/// (GeneralizedTime), either with `+hhmm`/`-hhmm` offsets or no zone (taken as UTC), and the
/// `YYYY-MM-DD hh:mm:ss` form some v1 producers put in `timeInfo`.
pub fn parse_time_text(text: &str, utc_time: bool) -> Result<i64, Asn1Error> {
    let bad = Asn1Error::Invalid("时间格式无效");
    let text = text.trim();
    let compact: String = if text.contains('-') && text.get(4..5) == Some("-") {
        // ISO-ish text: drop separators, keep fraction and zone.
        let (main, zone) = split_zone(text);
        let digits: String = main
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        format!("{digits}{zone}")
    } else {
        text.to_string()
    };
    let (main, zone) = split_zone(&compact);
    let (digits, fraction) = match main.split_once('.') {
        Some((d, f)) => (d, Some(f)),
        None => (main, None),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let num = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| Asn1Error::Invalid("时间格式无效"))
    };
    let (year, rest) = if utc_time && (digits.len() == 10 || digits.len() == 12) {
        let yy = num(digits.get(0..2).ok_or(bad.clone())?)? as i32;
        (
            if yy < 50 { 2000 + yy } else { 1900 + yy },
            digits.get(2..).ok_or(bad.clone())?,
        )
    } else if digits.len() == 12 || digits.len() == 14 {
        (
            num(digits.get(0..4).ok_or(bad.clone())?)? as i32,
            digits.get(4..).ok_or(bad.clone())?,
        )
    } else {
        return Err(bad);
    };
    let field = |i: usize| -> Result<u32, Asn1Error> {
        match rest.get(i..i + 2) {
            Some(s) => num(s),
            None => Ok(0),
        }
    };
    let month = time::Month::try_from(field(0)? as u8).map_err(|_| bad.clone())?;
    let date =
        time::Date::from_calendar_date(year, month, field(2)? as u8).map_err(|_| bad.clone())?;
    let t = time::Time::from_hms(field(4)? as u8, field(6)? as u8, field(8)? as u8)
        .map_err(|_| bad.clone())?;
    let millis = match fraction {
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let mut ms = String::from(f.get(..f.len().min(3)).unwrap_or("0"));
            while ms.len() < 3 {
                ms.push('0');
            }
            i64::from(num(&ms)?)
        }
        Some(_) => return Err(bad),
        None => 0,
    };
    let offset_secs: i64 = match zone {
        "" | "Z" => 0,
        z => {
            let sign = match z.get(0..1) {
                Some("+") => 1,
                Some("-") => -1,
                _ => return Err(bad),
            };
            let hh = i64::from(num(z.get(1..3).ok_or(bad.clone())?)?);
            let mm = match z.get(3..) {
                Some("") | None => 0,
                Some(m) => i64::from(num(m.trim_start_matches(':'))?),
            };
            sign * (hh * 3600 + mm * 60)
        }
    };
    let secs = time::PrimitiveDateTime::new(date, t)
        .assume_utc()
        .unix_timestamp()
        .checked_sub(offset_secs)
        .ok_or(bad.clone())?;
    secs.checked_mul(1000)
        .and_then(|v| v.checked_add(millis))
        .ok_or(bad)
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

pub use crate::crypto::der::{bit_string, integer, sequence, tlv};

/// OBJECT IDENTIFIER from dotted text.
pub fn oid(dotted: &str) -> Result<Vec<u8>, Asn1Error> {
    crate::crypto::der::oid(dotted).map_err(Asn1Error::Invalid)
}

/// GeneralizedTime `YYYYMMDDhhmmssZ` (v4) or UTCTime `YYMMDDhhmmssZ` (v1) of UTC milliseconds.
pub fn time(ms: i64, generalized: bool) -> Result<Vec<u8>, Asn1Error> {
    use crate::crypto::der::TimeForm;
    let form = if generalized {
        TimeForm::Generalized
    } else {
        TimeForm::Utc
    };
    crate::crypto::der::time(ms, form).map_err(Asn1Error::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_minimally() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            -1,
            -128,
            -129,
            i64::MAX,
            i64::MIN,
        ] {
            let enc = integer(v);
            let (t, rest) = read_tlv(&enc).unwrap();
            assert!(rest.is_empty());
            assert_eq!(integer_i64(&t).unwrap(), v, "{v}");
        }
        assert_eq!(integer(128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(-128), [0x02, 0x01, 0x80]);
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
            let (t, _) = read_tlv(&enc).unwrap();
            assert_eq!(oid_string(&t).unwrap(), s);
        }
    }

    #[test]
    fn long_lengths_and_truncation() {
        let body = vec![7u8; 300];
        let enc = tlv(tag::OCTET_STRING, &body);
        assert_eq!(enc.get(..4), Some(&[0x04, 0x82, 0x01, 0x2c][..]));
        let (t, _) = read_tlv(&enc).unwrap();
        assert_eq!(t.body, &body[..]);
        assert_eq!(
            read_tlv(enc.get(..enc.len() - 1).unwrap()),
            Err(Asn1Error::Truncated)
        );
        assert_eq!(
            read_tlv(&[0x30, 0x80, 0, 0]),
            Err(Asn1Error::IndefiniteLength)
        );
        assert_eq!(
            read_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(Asn1Error::LengthTooLong)
        );
    }

    #[test]
    fn depth_is_bounded() {
        let mut v = tlv(0x05, &[]);
        for _ in 0..40 {
            v = tlv(tag::SEQUENCE, &v);
        }
        assert_eq!(check_tree(&v, 32), Err(Asn1Error::TooDeep(32)));
        let mut ok = tlv(0x05, &[]);
        for _ in 0..31 {
            ok = tlv(tag::SEQUENCE, &ok);
        }
        assert_eq!(check_tree(&ok, 32), Ok(()));
    }

    #[test]
    fn time_texts() {
        // 2020-04-22 02:09:00 UTC
        let want = 1_587_521_340_000;
        assert_eq!(parse_time_text("20200422020900Z", false), Ok(want));
        assert_eq!(parse_time_text("200422020900Z", true), Ok(want));
        assert_eq!(parse_time_text("20200422100900+0800", false), Ok(want));
        assert_eq!(
            parse_time_text("20200422020900.250Z", false),
            Ok(want + 250)
        );
        assert_eq!(parse_time_text("2020-04-22 02:09:00", false), Ok(want));
        assert!(parse_time_text("2020-13-22 02:09:00", false).is_err());
        assert!(parse_time_text("garbage", false).is_err());
        let enc = time(want, true).unwrap();
        assert_eq!(time_ms(&read_tlv(&enc).unwrap().0), Ok(want));
        let enc = time(want, false).unwrap();
        assert_eq!(time_ms(&read_tlv(&enc).unwrap().0), Ok(want));
    }
}
