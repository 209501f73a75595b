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
