//! What SPEC §2 defines for both directions of the platform protocol: the canonical string
//! that requests and callbacks are signed over, and the interface `version`.
//!
//! A leaf: it imports nothing of the crate, so the gateway (inbound) and the member client
//! (outbound) share it without depending on each other.

use serde_json::{Map, Value};

/// The one interface version this platform speaks, sent and expected as the string `"1.0"`.
pub const VERSION: &str = "1.0";

/// The canonical string of SPEC §2: every parameter except `sign`, without nulls and empty
/// strings, sorted by name bytes, `name=value` joined by `&`.
pub fn canonical_string(params: &Map<String, Value>) -> String {
    let mut entries: Vec<(&String, &Value)> = params
        .iter()
        .filter(|(k, v)| {
            k.as_str() != "sign" && !v.is_null() && !matches!(v, Value::String(s) if s.is_empty())
        })
        .collect();
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = String::new();
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        match v {
            Value::String(s) => out.push_str(s),
            // Numbers, booleans, arrays and objects in compact JSON, keys in received order.
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

/// The §2 envelope around `fields`: `version`, `appId`, `time`, `nonce`, and `sign` = Base64 of
/// what `sign` returns for the canonical string's bytes. For callers that sign with a key of
/// their own (the member simulator); the member client signs with the platform's keyring.
pub fn signed_envelope(
    app_id: &str,
    time_ms: i64,
    nonce: u32,
    fields: Map<String, Value>,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Map<String, Value> {
    use base64::Engine;
    let mut p = Map::new();
    p.insert("version".into(), VERSION.into());
    p.insert("appId".into(), app_id.into());
    p.insert("time".into(), time_ms.to_string().into());
    p.insert("nonce".into(), nonce.into());
    p.extend(fields);
    let sig = sign(canonical_string(&p).as_bytes());
    p.insert(
        "sign".into(),
        base64::engine::general_purpose::STANDARD.encode(sig).into(),
    );
    p
}

/// The result codes of SPEC §2: the wire string and the HTTP status of each, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// `0`: success.
    Ok,
    /// `10001`: a parameter is missing, of the wrong type, or invalid.
    InvalidParameter,
    /// `10002`: unsupported `version`.
    UnsupportedVersion,
    /// `10003`: body or file too large.
    TooLarge,
    /// `10004`: unsupported document format.
    UnsupportedFormat,
    /// `20001`: unknown `appId`.
    UnknownApp,
    /// `20002`: system not in a state that may call.
    SystemNotActive,
    /// `20003`: `sign` does not verify.
    BadSignature,
    /// `20004`: `time` outside the window.
    StaleTime,
    /// `20005`: replayed `nonce`.
    Replay,
    /// `20006`: rate limit exceeded.
    RateLimited,
    /// `20007`: usage quota exhausted or expired.
    QuotaExhausted,
    /// `20008`: operation not permitted for this system.
    Forbidden,
    /// `30001`: seal not found.
    SealNotFound,
    /// `30002`: seal state forbids the operation.
    SealState,
    /// `30003`: seal data invalid.
    SealInvalid,
    /// `30004`: duplicate filing.
    DuplicateFiling,
    /// `30005`: `signId` unknown, expired, used or bound elsewhere.
    SignId,
    /// `30006`: `authId` unknown or expired.
    AuthId,
    /// `30007`: intention authentication not completed, or `authCode` invalid.
    AuthIncomplete,
    /// `40001`: the home system is unreachable or answered with an error.
    HomeUnreachable,
    /// `40002`: the home system did not answer in time.
    HomeTimeout,
    /// `40003`: the home system returned data that fails verification.
    HomeBadAnswer,
    /// `50000`: internal error.
    Internal,
}

impl Code {
    pub const ALL: [Code; 24] = [
        Code::Ok,
        Code::InvalidParameter,
        Code::UnsupportedVersion,
        Code::TooLarge,
        Code::UnsupportedFormat,
        Code::UnknownApp,
        Code::SystemNotActive,
        Code::BadSignature,
        Code::StaleTime,
        Code::Replay,
        Code::RateLimited,
        Code::QuotaExhausted,
        Code::Forbidden,
        Code::SealNotFound,
        Code::SealState,
        Code::SealInvalid,
        Code::DuplicateFiling,
        Code::SignId,
        Code::AuthId,
        Code::AuthIncomplete,
        Code::HomeUnreachable,
        Code::HomeTimeout,
        Code::HomeBadAnswer,
        Code::Internal,
    ];

    /// The code as it is written in the `code` field.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "0",
            Code::InvalidParameter => "10001",
            Code::UnsupportedVersion => "10002",
            Code::TooLarge => "10003",
            Code::UnsupportedFormat => "10004",
            Code::UnknownApp => "20001",
            Code::SystemNotActive => "20002",
            Code::BadSignature => "20003",
            Code::StaleTime => "20004",
            Code::Replay => "20005",
            Code::RateLimited => "20006",
            Code::QuotaExhausted => "20007",
            Code::Forbidden => "20008",
            Code::SealNotFound => "30001",
            Code::SealState => "30002",
            Code::SealInvalid => "30003",
            Code::DuplicateFiling => "30004",
            Code::SignId => "30005",
            Code::AuthId => "30006",
            Code::AuthIncomplete => "30007",
            Code::HomeUnreachable => "40001",
            Code::HomeTimeout => "40002",
            Code::HomeBadAnswer => "40003",
            Code::Internal => "50000",
        }
    }

    /// The HTTP status the platform answers with (SPEC §2).
    pub const fn http_status(self) -> u16 {
        match self {
            Code::Ok => 200,
            Code::InvalidParameter | Code::UnsupportedVersion => 400,
            Code::TooLarge => 413,
            Code::UnsupportedFormat => 415,
            Code::UnknownApp | Code::SystemNotActive | Code::BadSignature | Code::StaleTime => 401,
            Code::Replay => 409,
            Code::RateLimited | Code::QuotaExhausted => 429,
            Code::Forbidden => 403,
            Code::SealNotFound => 404,
            Code::SealState
            | Code::DuplicateFiling
            | Code::SignId
            | Code::AuthId
            | Code::AuthIncomplete => 409,
            Code::SealInvalid => 422,
            Code::HomeUnreachable | Code::HomeBadAnswer => 502,
            Code::HomeTimeout => 504,
            Code::Internal => 500,
        }
    }

    /// The code a wire string names, e.g. one a member system answered with.
    pub fn from_wire(s: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_envelope_signs_its_own_canonical_string() {
        let mut fields = Map::new();
        fields.insert("sealCode".into(), "S1".into());
        let mut signed_over = Vec::new();
        let p = signed_envelope("A1", 1732250000000, 42, fields, |c| {
            signed_over = c.to_vec();
            b"sig".to_vec()
        });
        assert_eq!(
            String::from_utf8(signed_over).unwrap(),
            "appId=A1&nonce=42&sealCode=S1&time=1732250000000&version=1.0"
        );
        assert_eq!(
            canonical_string(&p),
            "appId=A1&nonce=42&sealCode=S1&time=1732250000000&version=1.0"
        );
        assert_eq!(p["sign"], "c2ln");
    }

    #[test]
    fn every_code_has_the_documented_wire_string_and_status() {
        let table = [
            ("0", 200),
            ("10001", 400),
            ("10002", 400),
            ("10003", 413),
            ("10004", 415),
            ("20001", 401),
            ("20002", 401),
            ("20003", 401),
            ("20004", 401),
            ("20005", 409),
            ("20006", 429),
            ("20007", 429),
            ("20008", 403),
            ("30001", 404),
            ("30002", 409),
            ("30003", 422),
            ("30004", 409),
            ("30005", 409),
            ("30006", 409),
            ("30007", 409),
            ("40001", 502),
            ("40002", 504),
            ("40003", 502),
            ("50000", 500),
        ];
        assert_eq!(table.len(), Code::ALL.len());
        for (wire, status) in table {
            let code = Code::from_wire(wire).unwrap();
            assert_eq!(code.as_str(), wire);
            assert_eq!(code.http_status(), status, "code {wire}");
        }
        assert_eq!(Code::from_wire("99999"), None);
    }
}
