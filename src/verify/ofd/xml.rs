//! A small owned element tree over quick-xml, just enough for the OFD signature files.
//!
//! Names are reduced to their local part so `ofd:Signature` and `Signature` read alike: real
//! producers write both, with or without a declared prefix. Depth and element count are
//! bounded because every byte of the package is untrusted.

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

/// Upper bound on elements per file; the signature files have a few hundred at most.
const MAX_ELEMENTS: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// `msg` is ours; the XML library's text goes to the log only.
    #[error("XML 格式错误（第 {pos} 字节附近）：{msg}")]
    Syntax { pos: u64, msg: String },
    #[error("XML 嵌套层数超过上限 {0}")]
    TooDeep(usize),
    #[error("XML 元素数量超过上限")]
    TooManyElements,
    #[error("XML 没有根元素")]
    NoRoot,
    #[error("XML 根元素之后还有元素或文档未闭合")]
    Unbalanced,
}

/// One element: local name, attributes (local names) and children; `text` is the
/// concatenated character data directly inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Trimmed text of the named child, if present and not blank.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }
}

fn local(name: &str) -> String {
    name.rsplit_once(':')
        .map_or(name, |(_, local)| local)
        .to_string()
}

fn syntax(pos: u64, msg: impl Into<String>) -> XmlError {
    XmlError::Syntax {
        pos,
        msg: msg.into(),
    }
}

/// A syntax error the XML library found at `pos`, described in our words (issue 12 point 6:
/// no library English in a report); the library's text is logged.
fn library_syntax(pos: u64, e: impl std::fmt::Display) -> XmlError {
    tracing::debug!(error = %e, pos, "XML 语法错误");
    syntax(pos, "标签未闭合或不匹配、属性或字符引用无效，或文件被截断")
}

fn open(start: &BytesStart<'_>, pos: u64) -> Result<Element, XmlError> {
    let mut el = Element {
        name: local(start.name().as_ref()),
        ..Element::default()
    };
    for attr in start.attributes() {
        let attr = attr.map_err(|e| library_syntax(pos, e))?;
        let key = local(attr.key.as_ref());
        // Namespace declarations carry no OFD data.
        if attr.key.as_ref().starts_with("xmlns") {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| library_syntax(pos, e))?;
        el.attrs.push((key, value.into_owned()));
    }
    Ok(el)
}

/// Parses `bytes` (UTF-8, optional BOM) into its root element.
pub fn parse(bytes: &[u8], max_depth: usize) -> Result<Element, XmlError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = quick_xml::Reader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let pos = reader.buffer_position();
        let event = reader.read_event().map_err(|e| library_syntax(pos, e))?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(XmlError::Unbalanced);
            }
            Event::Start(s) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                if stack.len() >= max_depth {
                    return Err(XmlError::TooDeep(max_depth));
                }
                stack.push(open(&s, pos)?);
            }
            Event::Empty(s) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                if stack.len() >= max_depth {
                    return Err(XmlError::TooDeep(max_depth));
                }
                let el = open(&s, pos)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or(XmlError::Unbalanced)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&t.xml10_content());
                } else if !t.xml10_content().trim().is_empty() {
                    return Err(syntax(pos, "根元素之外出现文本"));
                }
            }
            Event::CData(c) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&c.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| library_syntax(pos, e))? {
                    Some(ch) => ch.to_string(),
                    None => {
                        let name = r.xml10_content().into_owned();
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .map(str::to_string)
                            .ok_or_else(|| syntax(pos, format!("未定义的实体 &{name};")))?
                    }
                };
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&resolved);
                }
            }
            // A DTD could declare entities we would have to expand; OFD never uses one.
            Event::DocType(_) => return Err(syntax(pos, "不允许 DOCTYPE")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Unbalanced);
    }
    root.ok_or(XmlError::NoRoot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_and_plain_names_read_alike() {
        let a = parse(
            br#"<?xml version="1.0"?><ofd:A xmlns:ofd="x" ofd:k="1"><ofd:B>t&amp;&#x41;</ofd:B></ofd:A>"#,
            8,
        )
        .unwrap();
        let b = parse(br#"<A k="1"><B>t&amp;A</B></A>"#, 8).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.child_text("B"), Some("t&A"));
        assert_eq!(a.attr("k"), Some("1"));
    }

    #[test]
    fn depth_limit_and_malformed_input_are_errors() {
        assert_eq!(parse(b"<a><b><c/></b></a>", 2), Err(XmlError::TooDeep(2)));
        assert!(parse(b"<a><b></a>", 8).is_err());
        assert!(parse(b"<a>", 8).is_err());
        assert!(parse(b"", 8).is_err());
        assert!(parse(b"<a/><b/>", 8).is_err());
        assert!(parse(b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>", 8).is_err());
    }
}
