//! The SES structures' view of [`crate::crypto::der`], the crate's one DER reader: strict mode
//! (definite lengths only), since seals are signed over exact byte ranges (`SES_SealInfo`,
//! `TBS_Sign`) and the reader hands out borrowed slices of the input. Adds only what is
//! particular to seals: the ISO-style text some v1 producers put in `timeInfo`.
//!
//! Must not grow a second reader or time parser: fix `crypto::der` instead.

pub use crate::crypto::der::{
    DerError as Asn1Error, Reader, Tlv, any_string, bit_string_bytes, check_tree,
    check_tree_padded, integer_i64, oid_string, read_der as read_tlv, tag, time_ms,
};

/// Parses the time texts producers write in `timeInfo` strings: UTCTime or GeneralizedTime
/// text (`utc_time` says which the field is), or the `YYYY-MM-DD hh:mm:ss` form some v1
/// producers use, taken as GeneralizedTime once its separators are dropped.
pub fn parse_time_text(text: &str, utc_time: bool) -> Result<i64, Asn1Error> {
    use crate::crypto::der::{parse_generalized_time, parse_utc_time};
    let text = text.trim();
    if text.get(4..5) == Some("-") {
        let (main, zone) = match text
            .char_indices()
            .skip(10)
            .find(|(_, c)| matches!(c, 'Z' | '+' | '-'))
        {
            Some((i, _)) => (text.get(..i).unwrap_or(text), text.get(i..).unwrap_or("")),
            None => (text, ""),
        };
        let digits: String = main
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        return parse_generalized_time(&format!("{digits}{zone}"));
    }
    // Producers write four-digit years in UTCTime fields too.
    match (
        utc_time,
        text.bytes().take_while(u8::is_ascii_digit).count(),
    ) {
        (true, 10 | 12) => parse_utc_time(text),
        _ => parse_generalized_time(text),
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
    fn long_lengths_and_truncation() {
        let body = vec![7u8; 300];
        let enc = tlv(tag::OCTET_STRING, &body);
        assert_eq!(enc.get(..4), Some(&[0x04, 0x82, 0x01, 0x2c][..]));
        let (t, _) = read_tlv(&enc).unwrap();
        assert_eq!(t.content, &body[..]);
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
