//! Signature fields: the AcroForm walk to every `/FT /Sig` field with a signature dictionary,
//! its widget's page and rectangle, and the producer named in the dictionary.
//!
//! Must not read `/Contents` or judge anything: it only finds what is to be verified.

use std::collections::HashSet;

use lopdf::{Document, Object, ObjectId};

use super::parse::{decode_text, deref_array, deref_dict, number};

/// Most signature fields examined in one document.
pub(crate) const MAX_SIGNATURES: usize = 64;
/// Most fields walked in the AcroForm tree, and its deepest nesting.
const MAX_FIELDS: usize = 10_000;
const MAX_FIELD_DEPTH: usize = 32;

/// A signature field with its signature dictionary.
#[derive(Debug, Clone)]
pub(crate) struct SigField {
    pub field_name: String,
    pub field_id: Option<ObjectId>,
    pub sig_dict_id: Option<ObjectId>,
    pub sig_dict: lopdf::Dictionary,
    /// Widget rectangle and page (1-based), when the field has a widget on a page.
    pub page: Option<u32>,
    pub rect: Option<[f64; 4]>,
}

/// Walks AcroForm `/Fields` for `/FT /Sig` fields whose `/V` is a signature dictionary.
/// An empty signature field is not a signature.
pub(crate) fn find_signatures(doc: &Document) -> Vec<SigField> {
    let mut out = Vec::new();
    let Ok(catalog) = doc.catalog() else {
        return out;
    };
    let Some(acroform) = catalog
        .get(b"AcroForm")
        .ok()
        .and_then(|o| deref_dict(doc, o))
    else {
        return out;
    };
    let Some(fields) = acroform
        .get(b"Fields")
        .ok()
        .and_then(|o| deref_array(doc, o))
    else {
        return out;
    };
    let pages: Vec<ObjectId> = doc.get_pages().values().copied().collect();
    let mut seen = HashSet::new();
    let mut budget = MAX_FIELDS;
    for f in fields {
        walk_field(
            doc,
            f,
            "",
            None,
            0,
            &mut seen,
            &mut budget,
            &pages,
            &mut out,
        );
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn walk_field(
    doc: &Document,
    obj: &Object,
    parent_name: &str,
    inherited_ft: Option<Vec<u8>>,
    depth: usize,
    seen: &mut HashSet<ObjectId>,
    budget: &mut usize,
    pages: &[ObjectId],
    out: &mut Vec<SigField>,
) {
    if depth > MAX_FIELD_DEPTH || *budget == 0 || out.len() >= MAX_SIGNATURES {
        return;
    }
    *budget -= 1;
    let id = match obj {
        Object::Reference(id) => {
            if !seen.insert(*id) {
                return;
            }
            Some(*id)
        }
        _ => None,
    };
    let Some(dict) = deref_dict(doc, obj) else {
        return;
    };
    let partial = dict
        .get(b"T")
        .ok()
        .and_then(|t| t.as_str().ok())
        .map(decode_text)
        .unwrap_or_default();
    let name = match (parent_name.is_empty(), partial.is_empty()) {
        (true, _) => partial.clone(),
        (false, true) => parent_name.to_string(),
        (false, false) => format!("{parent_name}.{partial}"),
    };
    let ft = dict
        .get(b"FT")
        .ok()
        .and_then(|o| o.as_name().ok())
        .map(<[u8]>::to_vec)
        .or(inherited_ft);
    if ft.as_deref() == Some(b"Sig".as_slice())
        && let Ok(v) = dict.get(b"V")
        && let Some(sig_dict) = deref_dict(doc, v)
    {
        let sig_dict_id = match v {
            Object::Reference(r) => Some(*r),
            _ => None,
        };
        let (page, rect) = widget_position(doc, dict, pages);
        out.push(SigField {
            field_name: name.clone(),
            field_id: id,
            sig_dict_id,
            sig_dict: sig_dict.clone(),
            page,
            rect,
        });
    }
    if let Some(kids) = dict.get(b"Kids").ok().and_then(|o| deref_array(doc, o)) {
        for k in kids {
            walk_field(
                doc,
                k,
                &name,
                ft.clone(),
                depth + 1,
                seen,
                budget,
                pages,
                out,
            );
        }
    }
}

/// Page number and `/Rect` of a field's widget (the field itself or its first kid).
fn widget_position(
    doc: &Document,
    field: &lopdf::Dictionary,
    pages: &[ObjectId],
) -> (Option<u32>, Option<[f64; 4]>) {
    let widget = if field.has(b"Rect") {
        Some(field)
    } else {
        field
            .get(b"Kids")
            .ok()
            .and_then(|o| deref_array(doc, o))
            .and_then(|k| k.first())
            .and_then(|o| deref_dict(doc, o))
    };
    let Some(w) = widget else {
        return (None, None);
    };
    let rect = w
        .get(b"Rect")
        .ok()
        .and_then(|o| deref_array(doc, o))
        .and_then(|a| {
            let n: Vec<f64> = a.iter().filter_map(number).collect();
            match n.as_slice() {
                [x1, y1, x2, y2] => {
                    Some([x1.min(*x2), y1.min(*y2), (x2 - x1).abs(), (y2 - y1).abs()])
                }
                _ => None,
            }
        });
    let page = w
        .get(b"P")
        .ok()
        .and_then(|o| o.as_reference().ok())
        .and_then(|id| pages.iter().position(|p| *p == id))
        .and_then(|i| u32::try_from(i + 1).ok());
    (page, rect)
}

pub(crate) fn name_of(d: &lopdf::Dictionary, key: &[u8]) -> Option<String> {
    d.get(key)
        .ok()
        .and_then(|o| o.as_name().ok())
        .map(|n| String::from_utf8_lossy(n).into_owned())
}

pub(crate) fn provider(doc: &Document, d: &lopdf::Dictionary) -> String {
    let build = d
        .get(b"Prop_Build")
        .ok()
        .and_then(|o| deref_dict(doc, o))
        .and_then(|b| {
            b.get(b"App")
                .ok()
                .and_then(|o| deref_dict(doc, o))
                .or_else(|| b.get(b"Filter").ok().and_then(|o| deref_dict(doc, o)))
        })
        .and_then(|a| a.get(b"Name").ok())
        .and_then(|n| match n {
            Object::Name(n) => Some(String::from_utf8_lossy(n).into_owned()),
            Object::String(s, _) => Some(decode_text(s)),
            _ => None,
        });
    build.or_else(|| name_of(d, b"Filter")).unwrap_or_default()
}
