//! The "errors are ours" check shared by the random-input tests: once the package's own file
//! names and the GB/T 38540 field a message names ("印章 property 字段格式错误") are taken out,
//! no bare lower-case word of four letters or more may remain (the zip, XML, PDF and DER
//! libraries write lower-case English).

pub fn library_word(text: &str, names: &[&str]) -> Option<String> {
    let mut rest = text.to_string();
    for n in names {
        rest = rest.replace(n, "");
    }
    while let Some(i) = rest.find(" 字段格式错误") {
        let start = rest[..i].rfind(' ').map_or(0, |j| j + 1);
        rest.replace_range(start..i + " 字段格式错误".len(), "");
    }
    rest.split(|c: char| !(c.is_ascii_alphanumeric() || "._/-".contains(c)))
        .find(|w| w.len() >= 4 && w.chars().all(|c| c.is_ascii_lowercase()))
        .map(str::to_string)
}
