//! The `coverage` step for PDF: which revision a signature covers and whether later
//! incremental updates changed what it signed.
//!
//! The signed revision (the file up to the end of the second byte range) is parsed on its own
//! and compared object by object with the document a viewer shows (the final revision).
//! Only additions that cannot change the signed rendering pass: later signatures (field,
//! widget, signature dictionary and appearance), AcroForm bookkeeping, DSS/VRI, document
//! time-stamps, `/Info` and XMP metadata, and form fills where DocMDP permits them. This
//! rejects the incremental saving attack (ISA), signature wrapping (SWA: the signature
//! dictionary must lie inside the signed revision and `/Contents` must fill exactly the gap),
//! universal signature forgery (USF: non-standard byte ranges), and the shadow attacks,
//! whose later updates redefine page content, XObjects or annotations.

use std::collections::{BTreeSet, HashMap, HashSet};

use lopdf::{Document, Object, ObjectId};

use super::{SigField, byte_ranges, deref_array, deref_dict, load_guarded};
use crate::verify::{SignatureReport, Step, VerifyOptions};

/// Most violations quoted in a hint.
const MAX_QUOTED: usize = 3;
/// Violations collected before the comparison stops (the verdict is already clear).
const MAX_VIOLATIONS: usize = 50;

/// Offsets just past each `%%EOF` marker (and its end-of-line), in file order.
pub(crate) fn revision_ends(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while let Some(pos) = find(bytes, b"%%EOF", i) {
        let mut end = pos + 5;
        while matches!(bytes.get(end), Some(b'\r') | Some(b'\n')) && end < pos + 7 {
            end += 1;
        }
        out.push(end);
        i = pos + 5;
    }
    out
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    // memchr's searcher: a byte-wise scan of a 100 MiB file ate much of the time budget.
    memchr::memmem::find(hay.get(from..)?, needle).map(|p| p + from)
}

/// Parsed earlier revisions, keyed by their end offset.
#[derive(Default)]
pub(crate) struct RevisionCache {
    docs: HashMap<usize, Result<Document, String>>,
}

impl RevisionCache {
    fn get(&mut self, bytes: &[u8], end: usize, opts: &VerifyOptions) -> &Result<Document, String> {
        self.docs
            .entry(end)
            .or_insert_with(|| match bytes.get(..end) {
                Some(prefix) => load_guarded(prefix, opts),
                None => Err("修订版本超出文件".into()),
            })
    }
}

/// Records the `coverage` step for one signature.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check(
    report: &mut SignatureReport,
    bytes: &[u8],
    views: &[&Document],
    sig: &SigField,
    all: &[SigField],
    revisions: &[usize],
    cache: &mut RevisionCache,
    opts: &VerifyOptions,
) {
    let ranges = match byte_ranges(&sig.sig_dict, bytes.len()) {
        Ok(r) => r,
        Err(e) => {
            report.fail(Step::Coverage, format!("无法判断签名覆盖范围: {e}"));
            return;
        }
    };
    if let Err(why) = standard_ranges(bytes, &ranges, &sig.sig_dict) {
        report.fail(
            Step::Coverage,
            format!("签名范围（ByteRange）非标准: {why}"),
        );
        return;
    }
    let end = ranges.get(1).map(|(s, l)| s + l).unwrap_or(0);
    let rest = bytes.get(end..).unwrap_or_default();
    let revision_no = revisions.iter().filter(|e| **e <= end).count().max(1);
    let prefix_is_revision = bytes
        .get(..end)
        .map(|p| trim_end(p).ends_with(b"%%EOF"))
        .unwrap_or(false);
    if rest.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
        report.pass(
            Step::Coverage,
            format!("签名覆盖整个文档（共 {} 个修订版本）", revision_no),
        );
        return;
    }
    if !prefix_is_revision {
        report.fail(Step::Coverage, "签名未覆盖整个文档修订版本");
        return;
    }
    if !trim_end(bytes).ends_with(b"%%EOF") {
        report.fail(
            Step::Coverage,
            "签名后追加的内容不是完整的增量更新（文件未以 %%EOF 结束）",
        );
        return;
    }
    let later = revisions.iter().filter(|e| **e > end).count().max(1);
    let old = match cache.get(bytes, end, opts) {
        Ok(d) => d,
        Err(_) if opts.out_of_time() => {
            report.fail(
                Step::Coverage,
                opts.out_of_time_hint("解析签名所覆盖的修订版本"),
            );
            return;
        }
        Err(e) => {
            report.fail(Step::Coverage, format!("无法解析签名所覆盖的修订版本: {e}"));
            return;
        }
    };
    // Signature wrapping: the signature dictionary must be part of what it signs.
    if let Some(id) = sig.sig_dict_id
        && !old
            .objects
            .get(&id)
            .is_some_and(|o| same(o, &Object::Dictionary(sig.sig_dict.clone())))
    {
        report.fail(
            Step::Coverage,
            "签名字典不在其签署的修订版本内或在之后被改写（签名包装攻击）",
        );
        return;
    }
    if sig.sig_dict_id.is_none()
        && let Some(field) = sig.field_id
        && !old.objects.contains_key(&field)
    {
        report.fail(
            Step::Coverage,
            "签名域不在其签署的修订版本内（签名包装攻击）",
        );
        return;
    }
    let Some(doc) = views.first().copied() else {
        report.fail(Step::Coverage, "无法解析文档");
        return;
    };
    let docmdp = all.iter().filter_map(|s| docmdp_p(doc, &s.sig_dict)).min();
    if docmdp == Some(1) {
        report.fail(
            Step::Coverage,
            format!("认证签名（DocMDP P=1）禁止任何修改，但签名后有 {later} 个增量更新"),
        );
        return;
    }
    let mut violations = Vec::new();
    for view in views {
        if opts.out_of_time() {
            report.fail(
                Step::Coverage,
                opts.out_of_time_hint("比较签名后的增量更新"),
            );
            return;
        }
        for v in diff(old, view, docmdp) {
            if !violations.contains(&v) {
                violations.push(v);
            }
        }
    }
    if violations.is_empty() {
        report.pass(
            Step::Coverage,
            format!(
                "签名覆盖第 {revision_no} 个修订版本；其后 {later} 个增量更新仅包含允许的修改（新增签名、表单填写、DSS、元数据）"
            ),
        );
    } else {
        let quoted: Vec<&str> = violations
            .iter()
            .take(MAX_QUOTED)
            .map(String::as_str)
            .collect();
        let more = if violations.len() > MAX_QUOTED {
            format!(" 等 {} 处", violations.len())
        } else {
            String::new()
        };
        report.fail(
            Step::Coverage,
            format!(
                "签名后的增量更新修改了已签署内容: {}{more}",
                quoted.join("；")
            ),
        );
    }
}

fn trim_end(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0
        && b.get(end - 1)
            .is_some_and(|c| c.is_ascii_whitespace() || *c == 0)
    {
        end -= 1;
    }
    b.get(..end).unwrap_or_default()
}

/// Exactly two ranges, starting at 0, whose gap is exactly this signature's `/Contents`
/// hex string.
fn standard_ranges(
    bytes: &[u8],
    ranges: &[(usize, usize)],
    sig: &lopdf::Dictionary,
) -> Result<(), String> {
    let [(s0, l0), (s1, _)] = ranges else {
        return Err(format!("应为两段，实为 {} 段", ranges.len()));
    };
    if *s0 != 0 {
        return Err("第一段不从文件开头开始".into());
    }
    let gap_start = s0 + l0;
    if *s1 <= gap_start {
        return Err("两段重叠或顺序颠倒".into());
    }
    let gap = bytes.get(gap_start..*s1).ok_or("间隙超出文件")?;
    let inner = match gap {
        [b'<', inner @ .., b'>'] => inner,
        _ => return Err("两段之间不是 /Contents 十六进制串".into()),
    };
    if !inner
        .iter()
        .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace())
    {
        return Err("两段之间含有签名值以外的内容".into());
    }
    let digits: Vec<u8> = inner
        .iter()
        .copied()
        .filter(u8::is_ascii_hexdigit)
        .collect();
    let decoded = hex::decode(&digits).map_err(|_| "签名值十六进制串长度为奇数".to_string())?;
    match sig.get(b"Contents") {
        Ok(Object::String(s, _)) if *s == decoded => Ok(()),
        _ => Err("两段之间的十六进制串不是本签名的 /Contents".into()),
    }
}

/// `/P` of a DocMDP transform in the signature's `/Reference` array (default 2).
fn docmdp_p(doc: &Document, sig: &lopdf::Dictionary) -> Option<i64> {
    let refs = deref_array(doc, sig.get(b"Reference").ok()?)?;
    for r in refs {
        let Some(d) = deref_dict(doc, r) else {
            continue;
        };
        let is_docmdp = d
            .get(b"TransformMethod")
            .ok()
            .and_then(|o| o.as_name().ok())
            == Some(b"DocMDP".as_slice());
        if is_docmdp {
            let p = d
                .get(b"TransformParams")
                .ok()
                .and_then(|o| deref_dict(doc, o))
                .and_then(|tp| tp.get(b"P").ok())
                .and_then(|o| o.as_i64().ok())
                .unwrap_or(2);
            return Some(p);
        }
    }
    None
}

/// Object equality ignoring where a stream sits in the file.
fn same(a: &Object, b: &Object) -> bool {
    match (a, b) {
        (Object::Stream(x), Object::Stream(y)) => x.dict == y.dict && x.content == y.content,
        _ => a == b,
    }
}

fn dict_of(o: &Object) -> Option<&lopdf::Dictionary> {
    match o {
        Object::Dictionary(d) => Some(d),
        Object::Stream(s) => Some(&s.dict),
        _ => None,
    }
}

fn name_is(d: &lopdf::Dictionary, key: &[u8], value: &[u8]) -> bool {
    d.get(key).ok().and_then(|o| o.as_name().ok()) == Some(value)
}

fn refs_in(o: &Object, out: &mut Vec<ObjectId>) {
    match o {
        Object::Reference(id) => out.push(*id),
        Object::Array(a) => a.iter().for_each(|x| refs_in(x, out)),
        Object::Dictionary(d) => d.iter().for_each(|(_, v)| refs_in(v, out)),
        Object::Stream(s) => s.dict.iter().for_each(|(_, v)| refs_in(v, out)),
        _ => {}
    }
}

fn reachable(doc: &Document) -> HashSet<ObjectId> {
    let mut seen = HashSet::new();
    let mut stack = Vec::new();
    refs_in(&Object::Dictionary(doc.trailer.clone()), &mut stack);
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(o) = doc.objects.get(&id) {
            refs_in(o, &mut stack);
        }
    }
    seen
}

fn referrers(doc: &Document) -> HashMap<ObjectId, Vec<ObjectId>> {
    let mut map: HashMap<ObjectId, Vec<ObjectId>> = HashMap::new();
    for (id, o) in &doc.objects {
        let mut out = Vec::new();
        refs_in(o, &mut out);
        for r in out {
            map.entry(r).or_default().push(*id);
        }
    }
    map
}

/// The field type of a field or widget, following `/Parent` (bounded).
fn field_type(doc: &Document, d: &lopdf::Dictionary) -> Option<Vec<u8>> {
    let mut cur = d;
    for _ in 0..32 {
        if let Ok(ft) = cur.get(b"FT").and_then(|o| o.as_name()) {
            return Some(ft.to_vec());
        }
        cur = cur.get(b"Parent").ok().and_then(|p| deref_dict(doc, p))?;
    }
    None
}

fn is_sig_field_or_widget(doc: &Document, id: ObjectId) -> bool {
    doc.objects
        .get(&id)
        .and_then(dict_of)
        .is_some_and(|d| field_type(doc, d).as_deref() == Some(b"Sig".as_slice()))
}

/// What changed between the signed revision `old` and the final document `new` that is not
/// allowed; empty when every change is permitted.
fn diff(old: &Document, new: &Document, docmdp: Option<i64>) -> Vec<String> {
    let mut violations = Vec::new();
    let live = reachable(new);
    let new_refs = referrers(new);
    let old_refs = referrers(old);
    let root = new.trailer.get(b"Root").and_then(|o| o.as_reference()).ok();
    let info = new.trailer.get(b"Info").and_then(|o| o.as_reference()).ok();
    let page_ids: BTreeSet<ObjectId> = new.get_pages().values().copied().collect();
    let old_pages = old.get_pages();
    if old_pages.len() != page_ids.len() {
        violations.push(format!(
            "页数由 {} 变为 {}",
            old_pages.len(),
            page_ids.len()
        ));
    }
    let page_no = |id: ObjectId| -> String {
        new.get_pages()
            .iter()
            .find(|(_, p)| **p == id)
            .map(|(n, _)| format!("第 {n} 页"))
            .unwrap_or_else(|| format!("页面对象 {} {}", id.0, id.1))
    };
    // Widgets whose own update is allowed; streams only they use may be replaced.
    let mut updated_widgets: HashSet<ObjectId> = HashSet::new();
    let mut pending_streams: Vec<ObjectId> = Vec::new();

    for (id, new_obj) in &new.objects {
        if violations.len() >= MAX_VIOLATIONS {
            return violations;
        }
        let old_obj = old.objects.get(id);
        if old_obj.is_some_and(|o| same(o, new_obj)) || !live.contains(id) {
            continue;
        }
        let nd = dict_of(new_obj);
        if nd.is_some_and(|d| name_is(d, b"Type", b"ObjStm") || name_is(d, b"Type", b"XRef")) {
            continue;
        }
        let Some(old_obj) = old_obj else {
            // A new object matters only where an existing one now points to it, except
            // annotations and pages, which are judged here.
            if let Some(d) = nd {
                if name_is(d, b"Type", b"Page") || name_is(d, b"Type", b"Pages") {
                    violations.push(format!("新增页面对象 {} {}", id.0, id.1));
                } else if d.has(b"Subtype") && (name_is(d, b"Type", b"Annot") || d.has(b"Rect")) {
                    if name_is(d, b"Subtype", b"Widget")
                        && field_type(new, d).as_deref() == Some(b"Sig".as_slice())
                    {
                        updated_widgets.insert(*id);
                    } else {
                        let st = d
                            .get(b"Subtype")
                            .and_then(|o| o.as_name())
                            .map(|n| String::from_utf8_lossy(n).into_owned())
                            .unwrap_or_default();
                        violations.push(format!("新增 {st} 注释（对象 {} {}）", id.0, id.1));
                    }
                }
            }
            continue;
        };
        if Some(*id) == info {
            continue;
        }
        let od = dict_of(old_obj);
        match (od, nd, old_obj, new_obj) {
            (_, _, Object::Array(a), Object::Array(b)) => {
                if let Err(v) = only_sig_additions(new, a, b) {
                    violations.push(format!("数组对象 {} {}: {v}", id.0, id.1));
                }
            }
            (Some(od), Some(nd), _, _) if Some(*id) == root => {
                for key in changed_keys(od, nd) {
                    match key.as_slice() {
                        b"AcroForm" => {
                            if let (Some(a), Some(b)) = (
                                od.get(b"AcroForm").ok().and_then(|o| deref_dict(old, o)),
                                nd.get(b"AcroForm").ok().and_then(|o| deref_dict(new, o)),
                            ) && let Err(v) = acroform_ok(old, new, a, b)
                            {
                                violations.push(v);
                            }
                        }
                        b"DSS" | b"Metadata" | b"Extensions" | b"Version" => {}
                        other => violations.push(format!(
                            "文档目录的 /{} 被修改",
                            String::from_utf8_lossy(other)
                        )),
                    }
                }
            }
            (Some(od), Some(nd), _, _) if od.has(b"Fields") && nd.has(b"Fields") => {
                if let Err(v) = acroform_ok(old, new, od, nd) {
                    violations.push(v);
                }
            }
            (Some(od), Some(nd), _, _) if name_is(nd, b"Type", b"Page") => {
                for key in changed_keys(od, nd) {
                    if key == b"Annots" {
                        let a = od
                            .get(b"Annots")
                            .ok()
                            .and_then(|o| deref_array(old, o))
                            .cloned()
                            .unwrap_or_default();
                        let b = nd
                            .get(b"Annots")
                            .ok()
                            .and_then(|o| deref_array(new, o))
                            .cloned()
                            .unwrap_or_default();
                        if let Err(v) = only_sig_additions(new, &a, &b) {
                            violations.push(format!("{} 的注释: {v}", page_no(*id)));
                        }
                    } else {
                        violations.push(format!(
                            "{} 的 /{} 被修改",
                            page_no(*id),
                            String::from_utf8_lossy(&key)
                        ));
                    }
                }
            }
            (Some(od), Some(nd), _, _) if name_is(nd, b"Type", b"Pages") => {
                let _ = od;
                violations.push(format!("页面树对象 {} {} 被修改", id.0, id.1));
            }
            (Some(od), Some(nd), _, _)
                if field_type(new, nd).is_some() || name_is(nd, b"Subtype", b"Widget") =>
            {
                match field_update_ok(old, new, od, nd, docmdp) {
                    Ok(()) => {
                        updated_widgets.insert(*id);
                    }
                    Err(v) => violations.push(format!("表单域对象 {} {}: {v}", id.0, id.1)),
                }
            }
            (Some(_), Some(nd), _, _)
                if nd.has(b"Subtype")
                    && (name_is(nd, b"Type", b"Annot") || nd.has(b"Rect"))
                    && !matches!(new_obj, Object::Stream(_)) =>
            {
                let st = nd
                    .get(b"Subtype")
                    .and_then(|o| o.as_name())
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_default();
                violations.push(format!("{st} 注释（对象 {} {}）被修改", id.0, id.1));
            }
            (_, Some(nd), _, _)
                if name_is(nd, b"Type", b"Metadata")
                    || name_is(nd, b"Type", b"Sig")
                    || name_is(nd, b"Type", b"DocTimeStamp") =>
            {
                // XMP metadata; a signature dictionary filled into a previously empty
                // field keeps its object number in some writers.
                if (name_is(nd, b"Type", b"Sig") || name_is(nd, b"Type", b"DocTimeStamp"))
                    && od.is_some_and(|d| d.has(b"ByteRange"))
                {
                    violations.push(format!("已有签名字典 {} {} 被改写", id.0, id.1));
                }
            }
            (_, Some(nd), _, _)
                if nd.has(b"VRI")
                    || name_is(nd, b"Type", b"VRI")
                    || name_is(nd, b"Type", b"DSS")
                    || (nd.has(b"Certs") && (nd.has(b"OCSPs") || nd.has(b"CRLs"))) => {}
            (_, _, _, Object::Stream(_)) => pending_streams.push(*id),
            (_, Some(nd), _, _)
                if nd.has(b"N")
                    && nd
                        .iter()
                        .all(|(k, _)| matches!(k.as_slice(), b"N" | b"D" | b"R")) =>
            {
                // An appearance dictionary: judged by who uses it, like a stream.
                pending_streams.push(*id);
            }
            _ => violations.push(describe_change(*id, new_obj)),
        }
    }

    // A replaced stream (or appearance dictionary) is harmless only when every user, in
    // either revision, is a widget whose update was allowed (directly or through an
    // appearance dictionary). Otherwise it changes what the signed revision displayed.
    for id in pending_streams {
        let mut users: Vec<ObjectId> = new_refs.get(&id).cloned().unwrap_or_default();
        users.extend(old_refs.get(&id).cloned().unwrap_or_default());
        let ok = !users.is_empty()
            && users.iter().all(|u| {
                updated_widgets.contains(u)
                    || is_appearance_dict_of(new, *u, &updated_widgets, &new_refs)
                    || is_appearance_dict_of(old, *u, &updated_widgets, &old_refs)
            });
        if !ok {
            let mut used_by: Vec<String> = users
                .iter()
                .filter(|u| !updated_widgets.contains(u))
                .take(2)
                .map(|u| format!("{} {}", u.0, u.1))
                .collect();
            used_by.dedup();
            let by = if used_by.is_empty() {
                String::new()
            } else {
                format!("（被对象 {} 使用）", used_by.join("、"))
            };
            let what = if new_refs
                .get(&id)
                .is_some_and(|r| r.iter().any(|p| page_ids.contains(p)))
            {
                "页面内容流"
            } else {
                "流对象"
            };
            violations.push(format!("{what} {} {} 被替换{by}", id.0, id.1));
        }
    }

    // An object deleted while something still points to it changes the rendering.
    for id in old.objects.keys() {
        if !new.objects.contains_key(id)
            && new_refs
                .get(id)
                .is_some_and(|r| r.iter().any(|u| live.contains(u)))
        {
            violations.push(format!("对象 {} {} 被删除", id.0, id.1));
        }
    }
    violations
}

fn is_appearance_dict_of(
    doc: &Document,
    candidate: ObjectId,
    widgets: &HashSet<ObjectId>,
    refs: &HashMap<ObjectId, Vec<ObjectId>>,
) -> bool {
    let is_ap = doc
        .objects
        .get(&candidate)
        .and_then(|o| match o {
            Object::Dictionary(d) => Some(d),
            _ => None,
        })
        .is_some_and(|d| {
            d.iter()
                .all(|(k, _)| matches!(k.as_slice(), b"N" | b"D" | b"R" | b"Off" | b"On"))
                || d.iter().all(|(_, v)| matches!(v, Object::Reference(_)))
        });
    is_ap
        && refs
            .get(&candidate)
            .is_some_and(|users| !users.is_empty() && users.iter().all(|u| widgets.contains(u)))
}

fn changed_keys(a: &lopdf::Dictionary, b: &lopdf::Dictionary) -> Vec<Vec<u8>> {
    let mut keys: BTreeSet<Vec<u8>> = a.iter().map(|(k, _)| k.clone()).collect();
    keys.extend(b.iter().map(|(k, _)| k.clone()));
    keys.into_iter()
        .filter(|k| match (a.get(k).ok(), b.get(k).ok()) {
            (Some(x), Some(y)) => !same(x, y),
            _ => true,
        })
        .collect()
}

/// An array (Fields, Annots) may only gain references to signature fields/widgets.
fn only_sig_additions(new: &Document, a: &[Object], b: &[Object]) -> Result<(), String> {
    let old_set: HashSet<ObjectId> = a.iter().filter_map(|o| o.as_reference().ok()).collect();
    let new_set: HashSet<ObjectId> = b.iter().filter_map(|o| o.as_reference().ok()).collect();
    if let Some(gone) = old_set.difference(&new_set).next() {
        return Err(format!("移除了对象 {} {}", gone.0, gone.1));
    }
    let direct_old: Vec<&Object> = a.iter().filter(|o| o.as_reference().is_err()).collect();
    let direct_new: Vec<&Object> = b.iter().filter(|o| o.as_reference().is_err()).collect();
    if direct_old != direct_new {
        return Err("直接对象被修改".into());
    }
    for added in new_set.difference(&old_set) {
        if !is_sig_field_or_widget(new, *added) {
            let kind = new
                .objects
                .get(added)
                .and_then(dict_of)
                .and_then(|d| d.get(b"Subtype").ok().or_else(|| d.get(b"FT").ok()))
                .and_then(|o| o.as_name().ok())
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .unwrap_or_else(|| "对象".into());
            return Err(format!("新增非签名的 {kind}（{} {}）", added.0, added.1));
        }
    }
    Ok(())
}

fn acroform_ok(
    old: &Document,
    new: &Document,
    a: &lopdf::Dictionary,
    b: &lopdf::Dictionary,
) -> Result<(), String> {
    let _ = old;
    for key in changed_keys(a, b) {
        match key.as_slice() {
            b"Fields" => {
                let fa = a
                    .get(b"Fields")
                    .ok()
                    .and_then(|o| deref_array(old, o))
                    .cloned()
                    .unwrap_or_default();
                let fb = b
                    .get(b"Fields")
                    .ok()
                    .and_then(|o| deref_array(new, o))
                    .cloned()
                    .unwrap_or_default();
                only_sig_additions(new, &fa, &fb).map_err(|v| format!("AcroForm 域列表: {v}"))?;
            }
            b"SigFlags" | b"DR" | b"DA" => {}
            other => {
                return Err(format!(
                    "AcroForm 的 /{} 被修改",
                    String::from_utf8_lossy(other)
                ));
            }
        }
    }
    Ok(())
}

/// A field or widget update: filling an empty signature field, or a form fill where DocMDP
/// permits it. Flags, rectangles and everything else that changes the page are not allowed.
fn field_update_ok(
    old: &Document,
    new: &Document,
    od: &lopdf::Dictionary,
    nd: &lopdf::Dictionary,
    docmdp: Option<i64>,
) -> Result<(), String> {
    let is_sig = field_type(new, nd).as_deref() == Some(b"Sig".as_slice());
    for key in changed_keys(od, nd) {
        match key.as_slice() {
            b"V" if is_sig => {
                if od.has(b"V") && od.get(b"V").ok().and_then(|v| deref_dict(old, v)).is_some() {
                    return Err("已签名的签名域被改写".into());
                }
            }
            b"V" | b"AS" | b"AP" | b"MK" | b"DA" | b"Lock" | b"SV" | b"Kids" => {
                if !is_sig && key.as_slice() != b"AP" && docmdp == Some(1) {
                    return Err("DocMDP 不允许填写表单".into());
                }
                if key.as_slice() == b"Kids" {
                    let a = od
                        .get(b"Kids")
                        .ok()
                        .and_then(|o| deref_array(old, o))
                        .cloned()
                        .unwrap_or_default();
                    let b = nd
                        .get(b"Kids")
                        .ok()
                        .and_then(|o| deref_array(new, o))
                        .cloned()
                        .unwrap_or_default();
                    only_sig_additions(new, &a, &b)?;
                }
            }
            // Signing an empty field may set its print flag; hiding a signature widget
            // changes nothing the earlier signature covered.
            b"F" if is_sig => {}
            b"F" => return Err("注释显示标志 /F 被修改（隐藏/显示）".into()),
            other => return Err(format!("/{} 被修改", String::from_utf8_lossy(other))),
        }
    }
    Ok(())
}

fn describe_change(id: ObjectId, o: &Object) -> String {
    let kind = dict_of(o)
        .and_then(|d| d.get(b"Type").ok().or_else(|| d.get(b"Subtype").ok()))
        .and_then(|t| t.as_name().ok())
        .map(|n| format!(" /{}", String::from_utf8_lossy(n)))
        .unwrap_or_default();
    format!("对象 {} {}{kind} 被修改", id.0, id.1)
}
