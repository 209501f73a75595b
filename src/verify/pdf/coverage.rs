//! The `coverage` step for PDF: which revision a signature covers and whether later
//! incremental updates changed what it signed.
//!
//! The signed revision (the file up to the end of the second byte range) is parsed on its own
//! and compared object by object with each view a reader may show (the final revision, and
//! the file rebuilt by scanning); the rules are in [`super::diff`]. Here: universal signature
//! forgery (USF: non-standard byte ranges), signature wrapping (SWA: the signature dictionary
//! must lie inside the signed revision and `/Contents` must fill exactly the gap), incomplete
//! appended revisions, and DocMDP P=1 (ISO 32000-1 §12.8.2.2.2: no change at all).

use std::collections::{HashMap, HashSet};

use lopdf::{Document, Object, ObjectId};

use super::diff::{self, Diff, Uses, same};
use super::{SigField, byte_ranges, deref_array, deref_dict, load_guarded, parse::Shared};
use crate::verify::{SignatureReport, Step, VerifyOptions};

/// Most violations quoted in a hint.
const MAX_QUOTED: usize = 3;

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

/// Parsed earlier revisions, keyed by their end offset, with their reference index; and what
/// each view reaches. Each is computed once for all signatures.
#[derive(Default)]
pub(crate) struct RevisionCache {
    docs: HashMap<usize, Result<Document, String>>,
    uses: HashMap<usize, Uses>,
    live: HashMap<usize, HashSet<ObjectId>>,
}

impl RevisionCache {
    fn get<'a>(
        docs: &'a mut HashMap<usize, Result<Document, String>>,
        file: &Shared,
        end: usize,
        opts: &VerifyOptions,
    ) -> &'a Result<Document, String> {
        docs.entry(end)
            .or_insert_with(|| load_guarded(file, end, opts))
    }
}

/// Aligns the view rebuilt by scanning with the cross-reference view where scanning is known
/// to be wrong: the scan takes an object's last `N G obj` header, but a later revision may have
/// redefined the object inside an object stream (ISO 32000-1 §7.5.7; Acrobat saves so; an
/// incremental update's definitions replace earlier ones, §7.5.6). A reader repairing the file
/// takes the later definition too; without this, every packed update would look like an
/// incremental saving attack.
pub(crate) fn align_rescanned(rescanned: &mut Document, doc: &Document) {
    use lopdf::xref::XrefEntry;
    let normal_offset = |d: &Document, n: u32| match d.reference_table.get(n) {
        Some(XrefEntry::Normal { offset, .. }) => Some(*offset),
        _ => None,
    };
    let later: Vec<(ObjectId, XrefEntry)> = doc
        .objects
        .keys()
        .filter_map(|id| match doc.reference_table.get(id.0) {
            Some(e @ XrefEntry::Compressed { container, .. }) => {
                let packed_at = normal_offset(doc, *container)?;
                let scanned_at = normal_offset(rescanned, id.0);
                scanned_at
                    .is_none_or(|at| at < packed_at)
                    .then_some((*id, e.clone()))
            }
            _ => None,
        })
        .collect();
    for (id, entry) in later {
        if let Some(o) = doc.objects.get(&id) {
            rescanned.objects.insert(id, o.clone());
            rescanned.reference_table.insert(id.0, entry);
        }
    }
}

/// Records the `coverage` step for one signature.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check(
    report: &mut SignatureReport,
    file: &Shared,
    views: &[&Document],
    sig: &SigField,
    all: &[SigField],
    revisions: &[usize],
    cache: &mut RevisionCache,
    opts: &VerifyOptions,
) {
    let bytes: &[u8] = file;
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
    let RevisionCache { docs, uses, live } = cache;
    let old = match RevisionCache::get(docs, file, end, opts) {
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
    let old_uses = uses.entry(end).or_insert_with(|| Uses::of(old));
    // ISO 32000-1 §12.8.2.2.2 Table 254, P=1: no changes to the document are permitted; the
    // first changes found are named.
    if docmdp == Some(1) {
        let first = live.entry(0).or_insert_with(|| diff::reachable(doc));
        let found = diff::diff(&Diff {
            old,
            old_uses,
            new: doc,
            live: first,
            docmdp,
            revisions,
            opts,
        });
        let named: Vec<&str> = found
            .violations
            .iter()
            .take(MAX_QUOTED)
            .map(String::as_str)
            .collect();
        let named = if named.is_empty() {
            String::new()
        } else {
            format!("：{}", named.join("；"))
        };
        report.fail(
            Step::Coverage,
            format!(
                "认证签名（DocMDP P=1）禁止任何修改，但签名后有 {later} 个增量更新（自第 {} 个修订版本起）{named}",
                revision_no + 1
            ),
        );
        return;
    }
    let mut violations = Vec::new();
    let mut allowed = Vec::new();
    for (i, view) in views.iter().enumerate() {
        if opts.out_of_time() {
            report.fail(
                Step::Coverage,
                opts.out_of_time_hint("比较签名后的增量更新"),
            );
            return;
        }
        let live = live.entry(i).or_insert_with(|| diff::reachable(view));
        let found = diff::diff(&Diff {
            old,
            old_uses,
            new: view,
            live,
            docmdp,
            revisions,
            opts,
        });
        match found.stopped {
            Some(diff::Stop::Time) => {
                report.fail(
                    Step::Coverage,
                    opts.out_of_time_hint("比较签名后的增量更新"),
                );
                return;
            }
            Some(diff::Stop::Work) => {
                report.fail(
                    Step::Coverage,
                    "签名后的增量更新过于复杂（外观与资源的引用超出比较的工作量上限），无法判断其修改是否允许，结果不可信",
                );
                return;
            }
            None => {}
        }
        for v in found.violations {
            if !violations.contains(&v) {
                violations.push(v);
            }
        }
        if i == 0 {
            allowed = found.allowed;
        }
    }
    if violations.is_empty() {
        // Say what changed, not only that it was allowed (issue 12: never a silent pass).
        let what = if allowed.is_empty() {
            "无可见变化".to_string()
        } else {
            let shown: Vec<&str> = allowed.iter().take(8).map(String::as_str).collect();
            let more = if allowed.len() > 8 {
                format!(" 等 {} 项", allowed.len())
            } else {
                String::new()
            };
            format!("{}{more}", shown.join("、"))
        };
        report.pass(
            Step::Coverage,
            format!(
                "签名覆盖第 {revision_no} 个修订版本；其后 {later} 个增量更新仅包含允许的修改：{what}"
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
