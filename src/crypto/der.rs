//! A minimal DER writer shared by everything that produces ASN.1: certificates (`certgen`),
//! CMS SignedData (`cms`) and electronic seals (`ses`). Parsing stays with each format, whose
//! tolerance for real-world encodings differs.

/// Universal tags used by the writers.
pub mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
}

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
