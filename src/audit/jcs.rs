//! RFC 8785 (JCS) serialisation of the few value types audit leaves carry: strings,
//! integers, null and objects. Owns nothing else: no floats, no arrays (leaves have none),
//! no parsing (readers use `serde_json`, any JSON parser reads JCS).

/// A JSON value of the leaf vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Str(String),
    Obj(Vec<(String, Value)>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Self {
        Value::Str(s.into())
    }

    pub fn opt_str(s: Option<impl Into<String>>) -> Self {
        s.map_or(Value::Null, |s| Value::Str(s.into()))
    }

    pub fn opt_int(n: Option<i64>) -> Self {
        n.map_or(Value::Null, Value::Int)
    }
}

/// The canonical UTF-8 text of `v`.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        // Integers print as ECMAScript Number::toString would. Leaves hold only values below
        // 2^53 (seq, milliseconds, codes), where that is the plain decimal form.
        Value::Int(n) => out.push_str(&n.to_string()),
        Value::Str(s) => write_str(s, out),
        Value::Obj(members) => {
            // RFC 8785 §3.2.3: members sorted by their names as UTF-16 code units.
            let mut sorted: Vec<&(String, Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (k, val)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write(val, out);
            }
            out.push('}');
        }
    }
}

/// RFC 8785 §3.2.2.2: the short escapes for `"` `\` and \b \f \n \r \t, `\u00xx` (lower-case
/// hex) for the other controls, every other character as itself.
fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(m: &[(&str, Value)]) -> Value {
        Value::Obj(m.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    #[test]
    fn strings_escape_as_rfc8785_says() {
        // RFC 8785 §3.2.2.2 and its Appendix B string examples.
        let s = "\u{20ac}$\u{000F}\u{000a}A'\u{0042}\u{0022}\u{005c}\\\"/\u{08}\u{0c}\r\t\u{1f}";
        assert_eq!(
            to_string(&Value::str(s)),
            "\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\\b\\f\\r\\t\\u001f\""
        );
        // Non-ASCII stays literal; `/` and DEL are not escaped.
        assert_eq!(to_string(&Value::str("审计/\u{7f}")), "\"审计/\u{7f}\"");
    }

    #[test]
    fn members_sort_by_utf16_code_units_recursively() {
        // RFC 8785 §3.2.3's sorting example: "\u{20ac}" (U+20AC) sorts before "\u{1f600}"
        // (a surrogate pair D83D DE00) in UTF-16, though not in UTF-8 or by code point...
        let v = obj(&[
            ("\u{20ac}", Value::str("Euro Sign")),
            ("\r", Value::str("Carriage Return")),
            ("\u{fb33}", Value::str("Hebrew Letter Dalet With Dagesh")),
            ("1", Value::str("One")),
            ("\u{1f600}", Value::str("Emoji: Grinning Face")),
            ("\u{80}", Value::str("Control")),
            ("\u{f6}", Value::str("Latin Small Letter O With Diaeresis")),
        ]);
        let got = to_string(&v);
        let order: Vec<usize> = [
            "\"\\r\"",
            "\"1\"",
            "\"\u{80}\"",
            "\"\u{f6}\"",
            "\"\u{20ac}\"",
            "\"\u{1f600}\"",
            "\"\u{fb33}\"",
        ]
        .iter()
        .map(|k| got.find(k).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{got}");
        // ...and nested objects are sorted too, with no whitespace anywhere.
        let nested = obj(&[
            ("b", obj(&[("z", Value::Int(-1)), ("a", Value::Null)])),
            ("a", Value::Int(0)),
        ]);
        assert_eq!(to_string(&nested), r#"{"a":0,"b":{"a":null,"z":-1}}"#);
    }

    #[test]
    fn output_parses_back_to_the_same_value() {
        let v = obj(&[
            ("k\u{1}", Value::str("v\"\\\n\u{1f600}")),
            ("n", Value::Int(1 << 52)),
        ]);
        let text = to_string(&v);
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["k\u{1}"], "v\"\\\n\u{1f600}");
        assert_eq!(parsed["n"], 1i64 << 52);
    }
}
