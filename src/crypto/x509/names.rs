//! Distinguished names and strings as reports show them: `CN=…,O=…`, serial numbers in hex,
//! the ASN.1 string types producers use interchangeably.
//!
//! Presentation only: must not be used to compare names for chain building (that compares DER).

use crate::crypto::der::{self, Tlv};

/// The CN of a `CN=…,O=…` string, else the string itself.
pub fn common_name(name: &str) -> String {
    name.split(',')
        .find_map(|p| p.strip_prefix("CN="))
        .map(str::to_string)
        .unwrap_or_else(|| name.to_string())
}

/// Serial as lower-case hex, without the sign octet DER adds for a high first bit.
pub fn serial_hex(content: &[u8]) -> String {
    let trimmed = match content {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    hex::encode(trimmed)
}

/// A distinguished name as `CN=…,O=…,C=…` (RFC 4514 order: most specific first).
pub fn name_to_string(name: &Tlv<'_>) -> String {
    let mut parts = Vec::new();
    for rdn in name.children().unwrap_or_default() {
        let mut atvs = Vec::new();
        for atv in rdn.children().unwrap_or_default() {
            let kids = atv.children().unwrap_or_default();
            let (Some(oid), Some(value)) = (kids.first(), kids.get(1)) else {
                continue;
            };
            let oid = der::oid_from_content(oid.content).unwrap_or_default();
            let label = match oid.as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.6" => "C",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                "2.5.4.9" => "STREET",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "2.5.4.5" => "SERIALNUMBER",
                "2.5.4.4" => "SN",
                "2.5.4.42" => "GN",
                "2.5.4.12" => "T",
                "1.2.840.113549.1.9.1" => "E",
                "0.9.2342.19200300.100.1.25" => "DC",
                "0.9.2342.19200300.100.1.1" => "UID",
                _ => "",
            };
            let text = string_value(value);
            if label.is_empty() {
                atvs.push(format!("{oid}={text}"));
            } else {
                atvs.push(format!("{label}={text}"));
            }
        }
        parts.push(atvs.join("+"));
    }
    parts.reverse();
    parts.join(",")
}

/// UTF-16BE text (BMPString, PDF text strings); an odd last byte and bad surrogates become
/// replacement characters.
pub fn utf16be_lossy(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| {
            u16::from_be_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .collect();
    String::from_utf16_lossy(&units)
}

/// Decodes the directory string types met in names.
pub fn string_value(value: &Tlv<'_>) -> String {
    match value.tag {
        0x0c | 0x13 | 0x16 | 0x1a | 0x12 => String::from_utf8_lossy(value.content).into_owned(),
        // T61String: treat as Latin-1, the common practice.
        0x14 => value.content.iter().map(|b| char::from(*b)).collect(),
        0x1e => utf16be_lossy(value.content),
        _ => format!("#{}", hex::encode(value.raw)),
    }
}
