//! The audit entry of SPEC §6.1 and its leaf bytes. Every entry carries all thirteen fields;
//! a field that does not apply to the entry's kind is `null` (never omitted), so every leaf
//! has the same shape and a verifier needs no per-kind rules. Personal data is masked before
//! the leaf exists and so before it is hashed: `actor.id` and `target` are identifiers of
//! accounts, systems and seals (never persons), and the free-text `detail` is masked here.

use super::jcs::{self, Value};
use serde::Deserialize;

/// SPEC §6.1 `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Api,
    Console,
    Portal,
    Cli,
    Key,
    System,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Api => "api",
            Kind::Console => "console",
            Kind::Portal => "portal",
            Kind::Cli => "cli",
            Kind::Key => "key",
            Kind::System => "system",
        }
    }
}

/// SPEC §6.1 `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Result {
    Ok,
    Denied,
    Error,
}

impl Result {
    pub fn as_str(self) -> &'static str {
        match self {
            Result::Ok => "ok",
            Result::Denied => "denied",
            Result::Error => "error",
        }
    }
}

/// SPEC §6.1 `actor`: `type` is `system` (a member seal system, by appId), `admin`, `vendor`
/// or `platform` (the appliance itself and its management CLI); `role` is null when none.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Actor {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub role: Option<String>,
}

/// An entry before it has a place in the log (no `seq` yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub at_ms: i64,
    pub kind: Kind,
    pub action: String,
    pub actor: Actor,
    pub target: String,
    pub result: Result,
    pub code: Option<i64>,
    pub request_id: Option<String>,
    pub client: Option<String>,
    pub latency_ms: Option<i64>,
    pub params_digest: Option<String>,
    pub detail: String,
}

/// An entry as read back from its leaf.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    pub at: i64,
    pub kind: Kind,
    pub action: String,
    pub actor: Actor,
    pub target: String,
    pub result: Result,
    pub code: Option<i64>,
    pub request_id: Option<String>,
    pub client: Option<String>,
    pub latency_ms: Option<i64>,
    pub params_digest: Option<String>,
    pub detail: String,
}

impl Draft {
    /// The leaf bytes of this entry at position `seq`, personal data masked.
    pub fn leaf(&self, seq: u64) -> Vec<u8> {
        let actor = Value::Obj(vec![
            ("type".into(), Value::str(&self.actor.kind)),
            ("id".into(), Value::str(&self.actor.id)),
            ("role".into(), Value::opt_str(self.actor.role.clone())),
        ]);
        let v = Value::Obj(vec![
            ("seq".into(), Value::Int(seq as i64)),
            ("at".into(), Value::Int(self.at_ms)),
            ("kind".into(), Value::str(self.kind.as_str())),
            ("action".into(), Value::str(&self.action)),
            ("actor".into(), actor),
            ("target".into(), Value::str(&self.target)),
            ("result".into(), Value::str(self.result.as_str())),
            ("code".into(), Value::opt_int(self.code)),
            ("requestId".into(), Value::opt_str(self.request_id.clone())),
            ("client".into(), Value::opt_str(self.client.clone())),
            ("latencyMs".into(), Value::opt_int(self.latency_ms)),
            (
                "paramsDigest".into(),
                Value::opt_str(self.params_digest.clone()),
            ),
            ("detail".into(), Value::str(mask_personal(&self.detail))),
        ]);
        jcs::to_string(&v).into_bytes()
    }
}

/// Parses a leaf; `None` when it is not an entry of this format.
pub fn parse(leaf: &[u8]) -> Option<Entry> {
    serde_json::from_slice(leaf).ok()
}

/// Masks what looks like a resident ID number (18 characters, digits with an optional final
/// X) or a mobile number (11 digits starting with 1) wherever it appears in free text, as
/// SPEC §6 shows them (`110105********1234`, `138****5678`). Callers mask what they know is
/// personal; this catches what slips into a target or a detail.
pub fn mask_personal(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let starts_word = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        if run == 0 || !starts_word {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let digits: String = chars[i..i + run].iter().collect();
        let next = chars.get(i + run).copied();
        if run == 17 && matches!(next, Some('X' | 'x')) {
            let id = format!("{digits}{}", next.unwrap_or('X'));
            out.push_str(&crate::domain::codes::mask_id(&id));
            i += 18;
        } else if run == 18 && !next.is_some_and(|c| c.is_ascii_alphanumeric()) {
            out.push_str(&crate::domain::codes::mask_id(&digits));
            i += 18;
        } else if run == 11
            && digits.starts_with('1')
            && !next.is_some_and(|c| c.is_ascii_alphanumeric())
        {
            out.push_str(&crate::domain::codes::mask_mobile(&digits));
            i += 11;
        } else {
            out.push_str(&digits);
            i += run;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> Draft {
        Draft {
            at_ms: 1_700_000_000_123,
            kind: Kind::Console,
            action: "account.create".into(),
            actor: Actor {
                kind: "admin".into(),
                id: "sec1".into(),
                role: Some("security".into()),
            },
            target: "op1".into(),
            result: Result::Ok,
            code: None,
            request_id: None,
            client: None,
            latency_ms: None,
            params_digest: None,
            detail: "手机 13812345678 身份证 11010519491231002X".into(),
        }
    }

    #[test]
    fn a_leaf_has_every_field_sorted_with_nulls_and_masked_personal_data() {
        let leaf = String::from_utf8(draft().leaf(7)).unwrap();
        assert_eq!(
            leaf,
            r#"{"action":"account.create","actor":{"id":"sec1","role":"security","type":"admin"},"at":1700000000123,"client":null,"code":null,"detail":"手机 138****5678 身份证 110105********002X","kind":"console","latencyMs":null,"paramsDigest":null,"requestId":null,"result":"ok","seq":7,"target":"op1"}"#
        );
        let e = parse(leaf.as_bytes()).unwrap();
        assert_eq!((e.seq, e.result, e.kind), (7, Result::Ok, Kind::Console));
        assert!(parse(b"{\"seq\":1}").is_none());
    }

    #[test]
    fn masking_leaves_other_numbers_alone() {
        assert_eq!(
            mask_personal("HT20260001 seq 12345"),
            "HT20260001 seq 12345"
        );
        assert_eq!(mask_personal("1381234567890"), "1381234567890");
        assert_eq!(mask_personal("x13812345678"), "x13812345678");
        assert_eq!(mask_personal("13812345678"), "138****5678");
    }
}
