//! Identifier rules: seal codes (SPEC §3.9), unified social credit codes (GB 32100-2015),
//! resident ID numbers (GB 11643), and masking of personal data for display and logs.

use super::DomainError;

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// ISO 7064 MOD 11-2 check character over 17 digits (resident ID numbers, seal codes).
pub fn mod11_2_check(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    ID_CHECK.get((sum % 11) as usize).copied()
}

/// An 18-character seal code: region (6) ‖ seal type (2) ‖ sequence (9) ‖ check (1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SealCode(String);

impl SealCode {
    pub fn new(region: &str, seal_type: &str, sequence: u64) -> Result<Self, DomainError> {
        if region.len() != 6 || !region.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::Invalid("行政区划代码必须是 6 位数字".into()));
        }
        check_seal_type(seal_type)?;
        if sequence >= 1_000_000_000 {
            return Err(DomainError::Conflict("印章顺序号已用尽".into()));
        }
        let first17 = format!("{region}{seal_type}{sequence:09}");
        let check = mod11_2_check(first17.as_bytes())
            .ok_or_else(|| DomainError::Invalid("印章编码格式错误".into()))?;
        Ok(Self(format!("{first17}{}", check as char)))
    }

    /// Validates format and check character (`10001` before any look-up).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let b = s.as_bytes();
        let ok = b.len() == 18
            && mod11_2_check(&b[..17]).is_some_and(|c| c == b[17].to_ascii_uppercase());
        if ok {
            Ok(Self(s.to_ascii_uppercase()))
        } else {
            Err(DomainError::Invalid(format!(
                "sealCode {} 格式或校验位错误",
                s.chars().take(32).collect::<String>()
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn seal_type(&self) -> &str {
        &self.0[6..8]
    }
}

impl std::fmt::Display for SealCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `01`…`08` (表1).
pub fn check_seal_type(t: &str) -> Result<(), DomainError> {
    match t {
        "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" => Ok(()),
        _ => Err(DomainError::Invalid(format!(
            "sealType {} 无效，应为 01–08",
            t.chars().take(8).collect::<String>()
        ))),
    }
}

/// GB 11643 resident ID number: 17 digits and an ISO 7064 check character.
pub fn is_valid_resident_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 18 && mod11_2_check(&b[..17]).is_some_and(|c| c == b[17].to_ascii_uppercase())
}

const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The GB 32100-2015 check character over the first 17 characters of a unified social credit
/// code; `None` when a character is outside the code's 31-letter alphabet.
pub fn uscc_check_char(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.iter().zip(USCC_WEIGHTS) {
        sum += USCC_CHARS.iter().position(|x| x == c)? as u32 * w;
    }
    USCC_CHARS.get(((31 - sum % 31) % 31) as usize).copied()
}

/// GB 32100-2015 unified social credit code: 18 characters from its 31-letter alphabet, the
/// last a MOD 31 check character.
pub fn is_valid_uscc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 18 && uscc_check_char(&b[..17]) == Some(b[17])
}

/// A unified social credit code as a person types it: surrounding spaces and lower-case
/// letters are accepted (upper-cased), and what is wrong is named — the length, the first
/// character outside the GB 32100-2015 alphabet (which has no I, O, S, V, Z), or the check
/// character with the one it should be.
pub fn normalize_uscc(s: &str) -> Result<String, String> {
    let code: String = s.trim().to_ascii_uppercase();
    let n = code.chars().count();
    if n != 18 {
        return Err(format!("统一社会信用代码须为 18 位，实为 {n} 位"));
    }
    if let Some((i, c)) = code
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii() || !USCC_CHARS.contains(&(*c as u8)))
    {
        return Err(format!(
            "统一社会信用代码第 {} 位“{c}”不是 GB 32100-2015 允许的字符（数字与除 I、O、S、V、Z 外的大写字母）",
            i + 1
        ));
    }
    let b = code.as_bytes();
    match uscc_check_char(&b[..17]) {
        Some(expected) if expected == b[17] => Ok(code),
        Some(expected) => Err(format!(
            "统一社会信用代码校验位错误：第 18 位应为“{}”，实为“{}”（GB 32100-2015）",
            expected as char, b[17] as char
        )),
        None => Err("统一社会信用代码含有不允许的字符".into()),
    }
}

/// 11-digit mainland mobile number starting with 1.
pub fn is_valid_mobile(s: &str) -> bool {
    s.len() == 11 && s.starts_with('1') && s.bytes().all(|b| b.is_ascii_digit())
}

/// `110105********1234`: first 6 and last 4 characters of an ID number.
pub fn mask_id(s: &str) -> String {
    mask(s, 6, 4)
}

/// `138****5678`: first 3 and last 4 digits of a mobile number.
pub fn mask_mobile(s: &str) -> String {
    mask(s, 3, 4)
}

/// A personal name keeps its first character: `张**`.
pub fn mask_name(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

fn mask(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < head || i >= chars.len() - tail {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_typed_uscc_is_upper_cased_and_its_fault_named() {
        assert_eq!(
            normalize_uscc(" 91350100m000100y43 ").unwrap(),
            "91350100M000100Y43"
        );
        let e = normalize_uscc("91350100M000100Y4").unwrap_err();
        assert!(e.contains("18 位，实为 17 位"), "{e}");
        let e = normalize_uscc("91350100M0001O0Y43").unwrap_err();
        assert!(e.contains("第 14 位“O”"), "{e}");
        let e = normalize_uscc("91350100M000100Y44").unwrap_err();
        assert!(e.contains("应为“3”，实为“4”"), "{e}");
        let e = normalize_uscc("91350100M00010中Y4").unwrap_err();
        assert!(e.contains("18 位") || e.contains("第 15 位"), "{e}");
        // Every valid code survives normalisation unchanged.
        for c in ["91350100M000100Y43", "11010519491231002X"] {
            if is_valid_uscc(c) {
                assert_eq!(normalize_uscc(c).unwrap(), c);
            }
        }
    }

    #[test]
    fn known_identifiers() {
        // GB 11643 example number.
        assert!(is_valid_resident_id("11010519491231002X"));
        assert!(!is_valid_resident_id("110105194912310021"));
        // A published unified social credit code.
        assert!(is_valid_uscc("91350100M000100Y43"));
        assert!(!is_valid_uscc("91350100M000100Y44"));
        assert!(
            !is_valid_uscc("91350100M000100I43"),
            "I is not in the alphabet"
        );
        assert!(is_valid_mobile("13812345678"));
        assert!(!is_valid_mobile("2381234567"));
    }

    #[test]
    fn masking() {
        assert_eq!(mask_id("11010519491231002X"), "110105********002X");
        assert_eq!(mask_mobile("13812345678"), "138****5678");
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_mobile("123"), "***");
    }

    #[test]
    fn seal_code_layout_and_check() {
        let c = SealCode::new("340000", "01", 7).unwrap();
        assert_eq!(c.as_str().len(), 18);
        assert!(c.as_str().starts_with("34000001000000007"));
        assert_eq!(c.seal_type(), "01");
        assert_eq!(SealCode::parse(c.as_str()).unwrap(), c);
        assert!(SealCode::new("340000", "09", 1).is_err());
        assert!(SealCode::new("34000", "01", 1).is_err());
    }

    proptest! {
        #[test]
        fn any_single_digit_change_breaks_the_check(seq in 0u64..1_000_000_000, pos in 0usize..17, delta in 1u8..10) {
            let c = SealCode::new("340000", "04", seq).unwrap();
            let mut b = c.as_str().as_bytes().to_vec();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            prop_assert!(SealCode::parse(std::str::from_utf8(&b).unwrap()).is_err());
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = SealCode::parse(&s);
            let _ = is_valid_uscc(&s);
            let _ = is_valid_resident_id(&s);
            let _ = mask_id(&s);
        }
    }
}
