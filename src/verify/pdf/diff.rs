//! The diff analysis behind `coverage`: what the updates after a signed revision changed, and
//! whether a rule allows each change.
//!
//! Modelled on the published analyses (pyHanko's `diff_analysis`: whitelisting rules, every
//! update disallowed by default) and on Mainka et al., "Breaking the Specification: PDF
//! Certification" (IEEE S&P 2021). Every object a later update adds or overwrites must be
//! cleared by a rule. An overwritten object (one the signed revision already reached) is
//! cleared only with the route by which the rule reached it: if the signed revision also
//! reached it by another route (another widget's appearance, page resources, a catalog entry),
//! the change shows there too and is illegal, whatever the object is.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap, HashSet};

use lopdf::{Dictionary, Document, Object, ObjectId};

use super::{deref_array, deref_dict};
use crate::verify::VerifyOptions;

/// Violations collected before the comparison stops (the verdict is already clear).
const MAX_VIOLATIONS: usize = 50;
/// Deepest direct-object nesting followed when collecting references.
const MAX_NESTING: usize = 64;
/// Key-path components recorded for a use.
const MAX_PATH: usize = 8;
/// Most objects walked under one approved route.
const MAX_SUBTREE: usize = 10_000;
/// Most objects walked under all routes of one comparison together: one route per appearance
/// owner, each up to [`MAX_SUBTREE`], would otherwise multiply (thousands of annotations
/// whose appearances share one large new resource tree).
const MAX_ROUTE_WORK: usize = 500_000;
/// Objects handled between two looks at the clock.
const CLOCK_EVERY: usize = 1024;

/// Why a comparison stopped before judging everything; its verdict cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The verification's time budget ran out (`VerifyOptions::out_of_time`).
    Time,
    /// [`MAX_ROUTE_WORK`] was spent.
    Work,
}

/// The work one comparison may do, shared by every route and pass, and the clock.
struct Work<'a> {
    opts: &'a VerifyOptions,
    left: Cell<usize>,
    ticks: Cell<usize>,
    stopped: Cell<Option<Stop>>,
}

impl Work<'_> {
    /// Counts one object handled; false once the comparison must stop.
    fn tick(&self) -> bool {
        if self.stopped.get().is_some() {
            return false;
        }
        let t = self.ticks.get().wrapping_add(1);
        self.ticks.set(t);
        if t % CLOCK_EVERY == 1 && self.opts.out_of_time() {
            self.stopped.set(Some(Stop::Time));
            return false;
        }
        true
    }

    /// [`Self::tick`] for an object walked under a route, spending the shared route budget.
    fn walk_step(&self) -> bool {
        if !self.tick() {
            return false;
        }
        match self.left.get().checked_sub(1) {
            Some(l) => {
                self.left.set(l);
                true
            }
            None => {
                self.stopped.set(Some(Stop::Work));
                false
            }
        }
    }

    fn out(&self) -> bool {
        self.stopped.get().is_some()
    }
}

/// Who holds a reference: the trailer or an indirect object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Holder {
    Trailer,
    Obj(ObjectId),
}

/// One reference to an object: its holder and the key path inside the holder (`/AP/N/On`;
/// array positions are not part of the path).
#[derive(Debug, Clone)]
pub(crate) struct Use {
    holder: Holder,
    path: Box<str>,
}

/// The signed revision's references, indexed once per revision: every use of every object,
/// from the objects reachable from the trailer only (what a viewer could show).
pub(crate) struct Uses {
    by_target: HashMap<ObjectId, Vec<Use>>,
}

impl Uses {
    pub(crate) fn of(doc: &Document) -> Self {
        let mut by_target: HashMap<ObjectId, Vec<Use>> = HashMap::new();
        let mut seen: HashSet<ObjectId> = HashSet::new();
        let mut stack: Vec<ObjectId> = Vec::new();
        let mut found = Vec::new();
        let trailer = Object::Dictionary(doc.trailer.clone());
        collect(&trailer, &mut Vec::new(), 0, &mut found);
        for (id, path) in found.drain(..) {
            by_target.entry(id).or_default().push(Use {
                holder: Holder::Trailer,
                path,
            });
            stack.push(id);
        }
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(o) = doc.objects.get(&id) {
                collect(o, &mut Vec::new(), 0, &mut found);
                for (target, path) in found.drain(..) {
                    by_target.entry(target).or_default().push(Use {
                        holder: Holder::Obj(id),
                        path,
                    });
                    if !seen.contains(&target) {
                        stack.push(target);
                    }
                }
            }
        }
        Uses { by_target }
    }

    fn of_target(&self, id: ObjectId) -> &[Use] {
        self.by_target
            .get(&id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// References inside `o` with their key paths.
fn collect<'a>(
    o: &'a Object,
    path: &mut Vec<&'a [u8]>,
    depth: usize,
    out: &mut Vec<(ObjectId, Box<str>)>,
) {
    if depth > MAX_NESTING {
        return;
    }
    let dict = match o {
        Object::Reference(id) => {
            let mut p = String::new();
            for k in path.iter().take(MAX_PATH) {
                p.push('/');
                p.push_str(&String::from_utf8_lossy(k));
            }
            out.push((*id, p.into_boxed_str()));
            return;
        }
        Object::Array(a) => {
            for x in a {
                collect(x, path, depth + 1, out);
            }
            return;
        }
        Object::Dictionary(d) => d,
        Object::Stream(s) => &s.dict,
        _ => return,
    };
    for (k, v) in dict.iter() {
        path.push(k.as_slice());
        collect(v, path, depth + 1, out);
        path.pop();
    }
}

/// Indirect objects referenced from `o`, without paths.
fn refs_in(o: &Object, depth: usize, out: &mut Vec<ObjectId>) {
    if depth > MAX_NESTING {
        return;
    }
    match o {
        Object::Reference(id) => out.push(*id),
        Object::Array(a) => a.iter().for_each(|x| refs_in(x, depth + 1, out)),
        Object::Dictionary(d) => d.iter().for_each(|(_, v)| refs_in(v, depth + 1, out)),
        Object::Stream(s) => s.dict.iter().for_each(|(_, v)| refs_in(v, depth + 1, out)),
        _ => {}
    }
}

/// Objects reachable from the trailer (what a viewer of this view can show).
pub(crate) fn reachable(doc: &Document) -> HashSet<ObjectId> {
    let mut seen = HashSet::new();
    let mut stack = Vec::new();
    doc.trailer
        .iter()
        .for_each(|(_, v)| refs_in(v, 0, &mut stack));
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(o) = doc.objects.get(&id) {
            refs_in(o, 0, &mut stack);
        }
    }
    seen
}

/// Object equality ignoring where a stream sits in the file.
pub(crate) fn same(a: &Object, b: &Object) -> bool {
    match (a, b) {
        (Object::Stream(x), Object::Stream(y)) => x.dict == y.dict && x.content == y.content,
        _ => a == b,
    }
}

fn dict_of(o: &Object) -> Option<&Dictionary> {
    match o {
        Object::Dictionary(d) => Some(d),
        Object::Stream(s) => Some(&s.dict),
        _ => None,
    }
}

fn name_is(d: &Dictionary, key: &[u8], value: &[u8]) -> bool {
    d.get(key).ok().and_then(|o| o.as_name().ok()) == Some(value)
}

fn name_text(d: &Dictionary, key: &[u8]) -> String {
    d.get(key)
        .ok()
        .and_then(|o| o.as_name().ok())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .unwrap_or_default()
}

fn is_annotation(o: &Object) -> bool {
    // A stream with /Subtype is an XObject, never an annotation.
    matches!(o, Object::Dictionary(d)
        if d.has(b"Subtype") && (name_is(d, b"Type", b"Annot") || d.has(b"Rect")))
}

/// The field type of a field or widget, following `/Parent` (bounded).
fn field_type(doc: &Document, d: &Dictionary) -> Option<Vec<u8>> {
    let mut cur = d;
    for _ in 0..32 {
        if let Ok(ft) = cur.get(b"FT").and_then(|o| o.as_name()) {
            return Some(ft.to_vec());
        }
        cur = cur.get(b"Parent").ok().and_then(|p| deref_dict(doc, p))?;
    }
    None
}

/// The value (`/V`) of a field or widget as a dictionary, following `/Parent` (bounded).
fn field_value<'a>(doc: &'a Document, d: &'a Dictionary) -> Option<&'a Dictionary> {
    let mut cur = d;
    for _ in 0..32 {
        if let Ok(v) = cur.get(b"V") {
            return deref_dict(doc, v);
        }
        cur = cur.get(b"Parent").ok().and_then(|p| deref_dict(doc, p))?;
    }
    None
}

/// A new visible signature widget shows a signature only if the field holding its `/V` (the
/// widget itself or a parent) is new too and that value signs the widget's revision
/// ([`signs_its_revision`]); a `/Parent` leading to an already signed field lends the widget
/// a signature it does not have.
fn visible_widget_signed(d: &Diff<'_>, id: ObjectId, w: &Dictionary) -> Result<(), String> {
    let (mut holder, mut cur) = (id, w);
    for _ in 0..32 {
        if cur.has(b"V") {
            if !d.old_uses.of_target(holder).is_empty() {
                return Err(format!(
                    "其值继承自签署的修订版本中已有的签名域 {} {}",
                    holder.0, holder.1
                ));
            }
            return signs_its_revision(d, id, holder, cur);
        }
        let Some(parent) = cur.get(b"Parent").ok().and_then(|p| p.as_reference().ok()) else {
            break;
        };
        let Some(p) = d.new.objects.get(&parent).and_then(dict_of) else {
            break;
        };
        (holder, cur) = (parent, p);
    }
    Err("没有签名值 /V".into())
}

/// The field `holder`'s own `/V` is a signature dictionary the signed revision never reached,
/// which no other field of the view uses, and whose `/ByteRange` covers the revision that
/// wrote `widget` (ISO 32000-1 §12.8.1: the signature signs the revision adding its field).
fn signs_its_revision(
    d: &Diff<'_>,
    widget: ObjectId,
    holder: ObjectId,
    field: &Dictionary,
) -> Result<(), String> {
    let Ok(sig) = field.get(b"V").and_then(|o| o.as_reference()) else {
        return Err("签名值 /V 不是间接引用的签名字典".into());
    };
    let Some(v) = d.new.objects.get(&sig).and_then(dict_of) else {
        return Err(format!("签名值 {} {} 不是签名字典", sig.0, sig.1));
    };
    if !d.old_uses.of_target(sig).is_empty() {
        return Err(format!(
            "其签名值 {} {} 是签署的修订版本中已有的签名字典",
            sig.0, sig.1
        ));
    }
    let range: Vec<i64> = v
        .get(b"ByteRange")
        .ok()
        .and_then(|o| deref_array(d.new, o))
        .map(|a| a.iter().filter_map(int).collect())
        .unwrap_or_default();
    let covered_end = match range.as_slice() {
        [_, _, start, len] => start
            .checked_add(*len)
            .and_then(|e| usize::try_from(e).ok()),
        _ => None,
    };
    let revision_end = d
        .revision_of(widget)
        .and_then(|n| d.revisions.get(n - 1).copied());
    match (covered_end, revision_end) {
        (Some(c), Some(e)) if c >= e => {}
        // A view rebuilt by scanning has no cross-reference entry to place the widget: the
        // signature must then cover the whole file.
        (Some(c), None) if d.revisions.last().is_some_and(|e| c >= *e) => {}
        _ => {
            return Err(format!(
                "其签名值 {} {} 的 /ByteRange 未覆盖新增它的修订版本",
                sig.0, sig.1
            ));
        }
    }
    let shared = d.live.iter().find(|o| {
        **o != holder
            && d.new
                .objects
                .get(o)
                .and_then(dict_of)
                .and_then(|x| x.get(b"V").ok())
                .and_then(|x| x.as_reference().ok())
                == Some(sig)
    });
    if let Some(o) = shared {
        return Err(format!(
            "其签名值 {} {} 也是对象 {} {} 的值",
            sig.0, sig.1, o.0, o.1
        ));
    }
    Ok(())
}

/// A field's full name for hints (`/T` of it and its parents, bounded).
fn field_name(doc: &Document, d: &Dictionary) -> String {
    let mut parts = Vec::new();
    let mut cur = d;
    for _ in 0..32 {
        if let Ok(t) = cur.get(b"T").and_then(|o| o.as_str()) {
            parts.push(super::parse::decode_text(t));
        }
        match cur.get(b"Parent").ok().and_then(|p| deref_dict(doc, p)) {
            Some(p) => cur = p,
            None => break,
        }
    }
    parts.reverse();
    let name = parts.join(".");
    if name.is_empty() {
        "（无名）".into()
    } else {
        name
    }
}

/// What a field's widget shows a value from: `/V` (following `/Parent`, dereferenced) and the
/// widget's own `/AS`.
fn shown_value<'a>(
    doc: &'a Document,
    d: &'a Dictionary,
) -> (Option<&'a Object>, Option<&'a Object>) {
    let mut v = None;
    let mut cur = d;
    for _ in 0..32 {
        if let Ok(x) = cur.get(b"V") {
            v = doc.dereference(x).ok().map(|(_, o)| o);
            break;
        }
        match cur.get(b"Parent").ok().and_then(|p| deref_dict(doc, p)) {
            Some(p) => cur = p,
            None => break,
        }
    }
    (v, d.get(b"AS").ok())
}

/// Whether a form fill changed the value a widget shows (ISO 32000-1 §12.7.3.3: the value is
/// `/V`; §12.7.4.2.3: a button's state is `/AS`).
fn value_changed(d: &Diff<'_>, od: &Dictionary, nd: &Dictionary) -> bool {
    let differ = |a: Option<&Object>, b: Option<&Object>| match (a, b) {
        (Some(x), Some(y)) => !same(x, y),
        (None, None) => false,
        _ => true,
    };
    let (ov, oas) = shown_value(d.old, od);
    let (nv, nas) = shown_value(d.new, nd);
    differ(ov, nv) || differ(oas, nas)
}

fn is_sig(doc: &Document, d: &Dictionary) -> bool {
    field_type(doc, d).as_deref() == Some(b"Sig".as_slice())
}

fn int(o: &Object) -> Option<i64> {
    match o {
        Object::Integer(i) => Some(*i),
        Object::Real(r) => Some(*r as i64),
        _ => None,
    }
}

fn number(o: &Object) -> Option<f64> {
    match o {
        Object::Integer(i) => Some(*i as f64),
        Object::Real(r) => Some(f64::from(*r)),
        _ => None,
    }
}

/// Whether a widget can draw anything: a `/Rect` of non-zero area, neither Hidden (bit 2) nor
/// NoView (bit 6) in `/F` (ISO 32000-1 §12.5.3, Table 165), and a normal appearance
/// (§12.5.5: `/N`, or `/R`, `/D`). pyHanko's `is_annot_visible` uses the area alone; the
/// flags and a missing appearance are added here because a viewer shows nothing for them
/// either.
fn widget_visible(doc: &Document, w: &Dictionary) -> bool {
    let area = w
        .get(b"Rect")
        .ok()
        .and_then(|o| deref_array(doc, o))
        .map(|a| a.iter().filter_map(number).collect::<Vec<f64>>())
        .and_then(|n| match n.as_slice() {
            [x1, y1, x2, y2] => Some(((x2 - x1) * (y2 - y1)).abs()),
            _ => None,
        })
        .unwrap_or(0.0);
    let flags = w.get(b"F").ok().and_then(int).unwrap_or(0);
    let has_appearance = w
        .get(b"AP")
        .ok()
        .and_then(|o| deref_dict(doc, o))
        // A rollover or down appearance shows too, on hover or click.
        .is_some_and(|ap| ap.has(b"N") || ap.has(b"R") || ap.has(b"D"));
    // A non-finite area (hostile coordinates) counts as visible.
    area != 0.0 && flags & (2 | 32) == 0 && has_appearance
}

fn key_text(k: &[u8]) -> String {
    String::from_utf8_lossy(k).into_owned()
}

fn changed_keys(a: &Dictionary, b: &Dictionary) -> Vec<Vec<u8>> {
    let mut keys: BTreeSet<Vec<u8>> = a.iter().map(|(k, _)| k.clone()).collect();
    keys.extend(b.iter().map(|(k, _)| k.clone()));
    keys.into_iter()
        .filter(|k| match (a.get(k).ok(), b.get(k).ok()) {
            (Some(x), Some(y)) => !same(x, y),
            _ => true,
        })
        .collect()
}

/// Everything the analysis of one signed revision against one later view needs.
pub(crate) struct Diff<'a> {
    pub old: &'a Document,
    pub old_uses: &'a Uses,
    pub new: &'a Document,
    pub live: &'a HashSet<ObjectId>,
    /// The strictest DocMDP `/P` of the document's certification, if any.
    pub docmdp: Option<i64>,
    /// Offsets just past each `%%EOF`, to name the revision an object was written in.
    pub revisions: &'a [usize],
    /// The verification's options, for its deadline.
    pub opts: &'a VerifyOptions,
}

/// The state of one analysis: objects still to be cleared, cleared ones, and violations.
struct Run<'a> {
    d: &'a Diff<'a>,
    work: Work<'a>,
    pending: Vec<ObjectId>,
    cleared: HashSet<ObjectId>,
    /// Objects already reported (each is named once).
    reported: HashSet<ObjectId>,
    violations: Vec<String>,
    /// Widgets and annotations whose own appearance (`/AP`) may be replaced.
    appearance_owners: Vec<ObjectId>,
    /// Signature fields given a value in this update: their `/V` subtree is new content.
    filled_sig_fields: Vec<ObjectId>,
    /// Allowed changes seen, in words.
    allowed: BTreeSet<String>,
}

impl Diff<'_> {
    /// Which revision (1-based) the view's definition of `id` was written in.
    fn revision_of(&self, id: ObjectId) -> Option<usize> {
        let offset = match self.new.reference_table.get(id.0)? {
            lopdf::xref::XrefEntry::Normal { offset, .. } => *offset,
            lopdf::xref::XrefEntry::Compressed { container, .. } => {
                match self.new.reference_table.get(*container)? {
                    lopdf::xref::XrefEntry::Normal { offset, .. } => *offset,
                    _ => return None,
                }
            }
            _ => return None,
        };
        let offset = usize::try_from(offset).ok()?;
        Some(self.revisions.iter().filter(|e| **e <= offset).count() + 1)
    }

    fn at(&self, id: ObjectId) -> String {
        match self.revision_of(id) {
            Some(n) => format!("第 {n} 个修订版本："),
            None => "签名后的修订版本：".into(),
        }
    }

    fn page_no(&self, id: ObjectId) -> String {
        self.new
            .get_pages()
            .iter()
            .find(|(_, p)| **p == id)
            .map(|(n, _)| format!("第 {n} 页"))
            .unwrap_or_else(|| format!("页面对象 {} {}", id.0, id.1))
    }

    /// The DocMDP level in words, for hints.
    fn mdp_words(&self) -> String {
        match self.docmdp {
            Some(p) => format!("认证签名（DocMDP P={p}）"),
            None => "签名".into(),
        }
    }
}

/// What changed between the signed revision and the view that is not allowed; empty when
/// every change is cleared by a rule.
pub(crate) fn diff(d: &Diff<'_>) -> Outcome {
    let mut run = Run {
        d,
        work: Work {
            opts: d.opts,
            left: Cell::new(MAX_ROUTE_WORK),
            ticks: Cell::new(0),
            stopped: Cell::new(None),
        },
        pending: Vec::new(),
        cleared: HashSet::new(),
        reported: HashSet::new(),
        violations: Vec::new(),
        appearance_owners: Vec::new(),
        filled_sig_fields: Vec::new(),
        allowed: BTreeSet::new(),
    };
    run.trailer_and_pages();
    run.classify();
    // A comparison cut short proves nothing either way: later passes would report objects
    // merely not reached yet as unexplained.
    for pass in [Run::key_vetted, Run::routes, Run::unexplained, Run::deleted] {
        if run.work.out() {
            break;
        }
        pass(&mut run);
    }
    run.metadata_notes();
    Outcome {
        violations: run.violations,
        allowed: run.allowed.into_iter().collect(),
        stopped: run.work.stopped.get(),
    }
}

/// The analysis of one view: what is not allowed, and what allowed changes were seen (for
/// the hint of a passing `coverage`, which says what changed rather than passing silently).
pub(crate) struct Outcome {
    pub violations: Vec<String>,
    pub allowed: Vec<String>,
    /// Set when the comparison stopped early (time or work budget): the verdict is unknown.
    pub stopped: Option<Stop>,
}

impl Run<'_> {
    fn push(&mut self, v: String) {
        if self.violations.len() < MAX_VIOLATIONS && !self.violations.contains(&v) {
            self.violations.push(v);
        }
    }

    fn report(&mut self, id: ObjectId, what: String) {
        if self.reported.insert(id) {
            let at = self.d.at(id);
            self.push(format!("{at}{what}"));
        }
    }

    /// The catalog stays the catalog (ISO 32000-1 §7.5.5: `/Root`), and pages are neither
    /// added nor removed (DocMDP, §12.8.2.2.2 Table 254: no level permits it).
    fn trailer_and_pages(&mut self) {
        let d = self.d;
        let old_root = d
            .old
            .trailer
            .get(b"Root")
            .and_then(|o| o.as_reference())
            .ok();
        let new_root = d
            .new
            .trailer
            .get(b"Root")
            .and_then(|o| o.as_reference())
            .ok();
        if old_root != new_root {
            let to = new_root
                .map(|r| format!("对象 {} {}", r.0, r.1))
                .unwrap_or_else(|| "空".into());
            self.push(format!("文件尾的 /Root 被改为 {to}（文档目录被替换）"));
        }
        let (old_pages, new_pages) = (d.old.get_pages().len(), d.new.get_pages().len());
        if old_pages != new_pages {
            self.push(format!("页数由 {old_pages} 变为 {new_pages}"));
        }
    }

    /// Sorts the view's changed objects: fresh ones (the signed revision never reached their
    /// number) are judged by kind; overwritten ones wait for a rule that clears their route.
    fn classify(&mut self) {
        let d = self.d;
        for (id, obj) in &d.new.objects {
            if self.violations.len() >= MAX_VIOLATIONS || !self.work.tick() {
                return;
            }
            if !d.live.contains(id) {
                continue;
            }
            let reached_before = !d.old_uses.of_target(*id).is_empty();
            if !reached_before {
                // pyHanko treats numbers the signed revision never reached like new objects:
                // they matter only where a changed (and judged) object points to them. This
                // comes before the equality test: an annotation already in the signed file
                // but reached from nowhere (so never shown) is new content once an update
                // links it into a page's /Annots (hidden-annotation attack), whatever bytes
                // it kept.
                self.fresh(*id, obj);
                continue;
            }
            let old = d.old.objects.get(id);
            if old.is_some_and(|o| same(o, obj)) {
                continue;
            }
            // Object and cross-reference streams are file structure (pyHanko
            // `ObjectStreamRule`, `XrefStreamRule`); reusing a number the signed revision
            // used for content is an overwrite like any other.
            self.pending.push(*id);
        }
    }

    /// A new object: pages and annotations are judged by kind; anything else matters only
    /// through the changed objects that point to it.
    fn fresh(&mut self, id: ObjectId, obj: &Object) {
        let d = self.d;
        let Some(dict) = dict_of(obj) else {
            return;
        };
        if name_is(dict, b"Type", b"Page") || name_is(dict, b"Type", b"Pages") {
            self.report(id, format!("新增页面对象 {} {}", id.0, id.1));
            return;
        }
        // A new signature field with a value of its own must be signed by the signature that
        // signs this revision; a /V borrowed from a signed field shows that signature twice.
        // (A visible one after a certification is the Sneaky Signature Attack, named below.)
        let sneaky = d.docmdp.is_some() && is_annotation(obj) && widget_visible(d.new, dict);
        if is_sig(d.new, dict)
            && dict.has(b"V")
            && !sneaky
            && let Err(why) = signs_its_revision(d, id, id, dict)
        {
            self.report(
                id,
                format!("签名后新增的签名域（对象 {} {}）{why}", id.0, id.1),
            );
            return;
        }
        if !is_annotation(obj) {
            return;
        }
        let subtype = name_text(dict, b"Subtype");
        if subtype == "Widget" {
            if !is_sig(d.new, dict) {
                // pyHanko `SigFieldCreationRule`: only signature fields may be created.
                self.report(
                    id,
                    format!(
                        "新增非签名的 Widget 表单域控件（对象 {} {}），签名后只允许新建签名域",
                        id.0, id.1
                    ),
                );
            } else if d.docmdp.is_some() && widget_visible(d.new, dict) {
                self.sneaky_signature(id);
            } else if widget_visible(d.new, dict)
                && let Err(why) = visible_widget_signed(d, id, dict)
            {
                // Without DocMDP a new signature may show itself, but an empty field that
                // draws something is an overlay like an annotation (the EAA choice above);
                // so is one whose value is inherited from a signed field (/Parent) or borrowed
                // from another signature: only the signature of this very update may show.
                self.report(
                    id,
                    format!(
                        "签名后新增未签名但可见的签名域控件（对象 {} {}），其外观可能覆盖已签署的页面内容：{why}",
                        id.0, id.1
                    ),
                );
            } else {
                self.allowed
                    .insert(format!("新增签名域 {}", field_name(d.new, dict)));
            }
            return;
        }
        // ISO 32000-1 §12.8.2.2.2 Table 254: only P=3 permits creating annotations after a
        // certification; P=1 and P=2 do not (Mainka et al. 2021, Evil Annotation Attack).
        // Without DocMDP an approval signature gets the stricter P=2 reading: an annotation
        // drawn over signed content is indistinguishable from a comment, so it fails.
        if d.docmdp == Some(3) {
            self.allowed
                .insert(format!("新增 {subtype} 注释（DocMDP P=3 允许）"));
        } else {
            let mdp = d.mdp_words();
            self.report(
                id,
                format!(
                    "{mdp}后新增 {subtype} 注释（对象 {} {}），可能遮盖或改变已签署的页面内容（恶意注释攻击 EAA）",
                    id.0, id.1
                ),
            );
        }
    }

    /// Mainka et al. 2021, Sneaky Signature Attack; pyHanko `SigFieldCreationRule`
    /// (`allow_new_visible_after_certify = False`): after a certification, a signature field
    /// created later must not draw anything, signed or not.
    fn sneaky_signature(&mut self, id: ObjectId) {
        let mdp = self.d.mdp_words();
        self.report(
            id,
            format!(
                "{mdp}后新增可见的签名域控件（对象 {} {}），其外观可能覆盖已签署的页面内容（偷偷签名攻击 SSA）；认证后新建的签名域只能不可见",
                id.0, id.1
            ),
        );
    }

    /// Rules for overwritten dictionaries and arrays whose every changed key is checked: the
    /// catalog, the AcroForm, the field and annotation lists, pages, fields and widgets.
    fn key_vetted(&mut self) {
        let d = self.d;
        let root = d
            .new
            .trailer
            .get(b"Root")
            .and_then(|o| o.as_reference())
            .ok();
        let acroform = root
            .and_then(|r| d.new.objects.get(&r))
            .and_then(dict_of)
            .and_then(|c| c.get(b"AcroForm").ok())
            .and_then(|o| o.as_reference().ok());
        for id in self.pending.clone() {
            if self.violations.len() >= MAX_VIOLATIONS {
                return;
            }
            let (Some(old_obj), Some(new_obj)) = (d.old.objects.get(&id), d.new.objects.get(&id))
            else {
                continue;
            };
            let (od, nd) = (dict_of(old_obj), dict_of(new_obj));
            let verdict: Option<Result<(), String>> = match (od, nd, old_obj, new_obj) {
                (Some(od), Some(nd), _, _) if Some(id) == root => Some(
                    self.catalog_ok(od, nd)
                        .and_then(|()| self.only_from(id, &[(Holder::Trailer, "/Root")])),
                ),
                (Some(od), Some(nd), _, _) if Some(id) == acroform => {
                    Some(acroform_ok(d, od, nd).and_then(|()| match root {
                        Some(r) => self.only_from(id, &[(Holder::Obj(r), "/AcroForm")]),
                        None => Err("文档目录缺失".into()),
                    }))
                }
                (_, _, Object::Array(a), Object::Array(b)) => Some(self.member_array(id, a, b)),
                (Some(od), Some(nd), _, _) if name_is(nd, b"Type", b"Page") => {
                    Some(self.page_ok(id, od, nd))
                }
                (Some(_), Some(nd), _, _) if name_is(nd, b"Type", b"Pages") => {
                    Some(Err(format!("页面树对象 {} {} 被修改", id.0, id.1)))
                }
                (Some(od), Some(nd), _, Object::Dictionary(_))
                    if field_type(d.new, nd).is_some() || name_is(nd, b"Subtype", b"Widget") =>
                {
                    Some(
                        self.field_ok(id, od, nd)
                            .map_err(|v| format!("表单域对象 {} {}: {v}", id.0, id.1)),
                    )
                }
                (Some(od), Some(nd), _, _) if is_annotation(new_obj) => {
                    let st = name_text(nd, b"Subtype");
                    // The same annotation, not another object's number reused.
                    let same_kind =
                        is_annotation(old_obj) && name_text(od, b"Subtype") == st && st != "Widget";
                    if d.docmdp == Some(3) && same_kind {
                        // Table 254: P=3 also permits modifying annotations.
                        self.appearance_owners.push(id);
                        Some(Ok(()))
                    } else {
                        Some(Err(format!(
                            "{st} 注释（对象 {} {}）被修改（{}不允许修改注释）",
                            id.0,
                            id.1,
                            d.mdp_words()
                        )))
                    }
                }
                _ => None,
            };
            match verdict {
                Some(Ok(())) => {
                    self.cleared.insert(id);
                }
                Some(Err(v)) => self.report(id, v),
                None => {}
            }
        }
    }

    /// Every use of `id` in the signed revision is one of `routes` (holder, key path prefix);
    /// otherwise the overwrite shows through another route.
    fn only_from(&self, id: ObjectId, routes: &[(Holder, &str)]) -> Result<(), String> {
        // A signature reference dictionary's /Data names the object a transform is about
        // (ISO 32000-1 §12.8.1, Table 253; iText writes it for DocMDP); it shows nothing.
        match self.d.old_uses.of_target(id).iter().find(|u| {
            &*u.path != "/Reference/Data"
                && !routes
                    .iter()
                    .any(|(h, p)| u.holder == *h && under(&u.path, p))
        }) {
            None => Ok(()),
            Some(u) => Err(format!(
                "对象 {} {} 在签署的修订版本中还经 {} 引用",
                id.0,
                id.1,
                route_words(u)
            )),
        }
    }

    /// ISO 32000-1 §7.7.2 (catalog); pyHanko `CatalogModificationRule`: the catalog may change
    /// only in the entries other rules judge (`/AcroForm`, `/DSS`, `/Metadata`) and in
    /// `/Extensions` and `/Version`, which do not change what is shown.
    fn catalog_ok(&mut self, od: &Dictionary, nd: &Dictionary) -> Result<(), String> {
        for key in changed_keys(od, nd) {
            match key.as_slice() {
                b"AcroForm" => {
                    // A direct AcroForm dictionary is judged here; an indirect one as its own
                    // object.
                    let d = self.d;
                    if let (Some(a), Some(b)) = (
                        od.get(b"AcroForm").ok().and_then(|o| deref_dict(d.old, o)),
                        nd.get(b"AcroForm").ok().and_then(|o| deref_dict(d.new, o)),
                    ) {
                        acroform_ok(d, a, b)?;
                    } else {
                        return Err("文档目录的 /AcroForm 被删除或不是字典".into());
                    }
                }
                b"DSS" | b"Metadata" | b"Extensions" | b"Version" | b"MarkInfo" => {}
                other => return Err(format!("文档目录的 /{} 被修改", key_text(other))),
            }
        }
        Ok(())
    }

    /// An overwritten array: the AcroForm `/Fields`, a field's `/Kids` or a page's `/Annots`
    /// held indirectly (ISO 32000-1 §12.7.2, §12.7.3.1, §12.5.2); it may only gain signature
    /// fields (and annotations at P=3, Table 254), and only those lists may lead to it
    /// (pyHanko `SigFieldCreationRule`, `compare_key_refs` on `/Fields`).
    fn member_array(&mut self, id: ObjectId, a: &[Object], b: &[Object]) -> Result<(), String> {
        let uses = self.d.old_uses.of_target(id);
        let all_lists = uses
            .iter()
            .all(|u| matches!(&*u.path, "/Fields" | "/Kids" | "/Annots"));
        if !all_lists {
            let u = uses
                .iter()
                .find(|u| !matches!(&*u.path, "/Fields" | "/Kids" | "/Annots"));
            return Err(format!(
                "数组对象 {} {} 被改写{}",
                id.0,
                id.1,
                u.map(|u| format!("（签署的修订版本中经 {} 引用）", route_words(u)))
                    .unwrap_or_default()
            ));
        }
        // A page-tree node's /Kids is the page order (ISO 32000-1 §7.7.3.2); a permutation
        // keeps the page count and every member, so no change to it is allowed.
        if let Some(u) = uses.iter().find(|u| {
            matches!(u.holder, Holder::Obj(h) if self.d.old.objects.get(&h)
                .and_then(dict_of)
                .is_some_and(|x| name_is(x, b"Type", b"Pages")))
        }) {
            return Err(format!(
                "页面树的 /Kids 数组（对象 {} {}）被改写（签署的修订版本中经 {} 引用），页面顺序或页面可能被改变",
                id.0,
                id.1,
                route_words(u)
            ));
        }
        let annots = uses.iter().all(|u| &*u.path == "/Annots");
        only_additions(self.d, a, b, annots).map_err(|v| format!("数组对象 {} {}: {v}", id.0, id.1))
    }

    /// A page may only change its `/Annots` (signature widgets, pyHanko
    /// `SigFieldCreationRule` widget bindings; annotations at P=3, ISO 32000-1 Table 254);
    /// its content, resources and boxes are what was signed.
    fn page_ok(&mut self, id: ObjectId, od: &Dictionary, nd: &Dictionary) -> Result<(), String> {
        let d = self.d;
        for key in changed_keys(od, nd) {
            if key != b"Annots" {
                return Err(format!("{} 的 /{} 被修改", d.page_no(id), key_text(&key)));
            }
            let list = |doc: &Document, dict: &Dictionary| {
                dict.get(b"Annots")
                    .ok()
                    .and_then(|o| deref_array(doc, o))
                    .cloned()
                    .unwrap_or_default()
            };
            let (a, b) = (list(d.old, od), list(d.new, nd));
            only_additions(d, &a, &b, true)
                .map_err(|v| format!("{} 的注释: {v}", d.page_no(id)))?;
        }
        Ok(())
    }

    /// pyHanko `SigFieldModificationRule` and `GenericFieldModificationRule`: filling an empty
    /// signature field (its value, appearance, lock), or a form fill where DocMDP permits it
    /// (ISO 32000-1 §12.8.2.2.2 Table 254: P ≥ 2; §12.7.3 field dictionaries). Rectangles,
    /// flags and everything else that moves or shows a widget are not allowed.
    fn field_ok(&mut self, id: ObjectId, od: &Dictionary, nd: &Dictionary) -> Result<(), String> {
        let d = self.d;
        let sig = is_sig(d.new, nd);
        // The value lives in the field, which may be the widget's /Parent.
        let filled_before = field_value(d.old, od).is_some();
        let filled_now = field_value(d.new, nd).is_some();
        let filling = sig && !filled_before && filled_now;
        for key in changed_keys(od, nd) {
            match key.as_slice() {
                // pyHanko `FORMFIELD_ALWAYS_MODIFIABLE` (/Ff): Acrobat locks fields it signs;
                // only the ReadOnly bit (ISO 32000-1 Table 221, bit 1) changes nothing shown.
                b"Ff" => {
                    let ff = |dict: &Dictionary| dict.get(b"Ff").ok().and_then(int).unwrap_or(0);
                    if (ff(od) ^ ff(nd)) & !1 != 0 {
                        return Err("域标志 /Ff 被修改".into());
                    }
                }
                // pyHanko `SigFieldModificationRule`: a signed field, or one that stays empty,
                // keeps its state; its appearance belongs to what was signed.
                _ if sig && filled_before => return Err("已签名的签名域被改写".into()),
                _ if sig && !filling => {
                    return Err(format!("未签名的签名域的 /{} 被修改", key_text(&key)));
                }
                b"V" | b"AS" | b"AP" | b"MK" | b"DA" | b"Q" | b"Lock" | b"SV" | b"Kids" => {
                    if !sig && d.docmdp == Some(1) {
                        return Err("DocMDP 不允许填写表单".into());
                    }
                    // A form fill changes the value; the appearance follows it. A new
                    // appearance for an unchanged value replaces what was signed (Mainka et
                    // al., NDSS 2021, shadow attack "replace via overlay").
                    if !sig && key.as_slice() == b"AP" && !value_changed(d, od, nd) {
                        return Err("外观 /AP 被替换但域值未改变（影子攻击：替换显示内容）".into());
                    }
                    if key.as_slice() == b"Kids" {
                        let list = |doc: &Document, dict: &Dictionary| {
                            dict.get(b"Kids")
                                .ok()
                                .and_then(|o| deref_array(doc, o))
                                .cloned()
                                .unwrap_or_default()
                        };
                        only_additions(d, &list(d.old, od), &list(d.new, nd), false)?;
                    }
                }
                // Signing a pre-created field may set its print flag (Acrobat).
                b"F" if filling => {}
                // pyHanko `FORMFIELD_ALWAYS_MODIFIABLE`: a missing /Type /Annot may be added.
                b"Type" if !od.has(b"Type") && name_is(nd, b"Type", b"Annot") => {}
                b"F" => return Err("注释显示标志 /F 被修改（隐藏/显示）".into()),
                other => return Err(format!("/{} 被修改", key_text(other))),
            }
        }
        if filling || (!sig && value_changed(d, od, nd)) {
            self.appearance_owners.push(id);
            let what = if sig { "签名域" } else { "表单填写" };
            self.allowed
                .insert(format!("{what} {}", field_name(d.new, nd)));
        }
        if filling && nd.has(b"V") {
            self.filled_sig_fields.push(id);
        }
        Ok(())
    }

    /// Rules that clear a whole route with what lies under it: the document information
    /// dictionary (pyHanko `DocInfoRule`; ISO 32000-1 §14.3.3), XMP metadata (pyHanko
    /// `MetadataUpdateRule`; §14.3.2), the DSS (pyHanko `DSSCompareRule`; ISO 32000-2
    /// §12.8.4.3, ETSI EN 319 142-1 §5.4), the value of a signature field filled now
    /// (pyHanko `SigFieldModificationRule`; §12.7.4.5) and the appearance of a widget or
    /// annotation whose update was allowed (pyHanko `_allow_appearance_update` and in-place
    /// appearance stream changes; §12.5.5).
    fn routes(&mut self) {
        let d = self.d;
        let root = d
            .new
            .trailer
            .get(b"Root")
            .and_then(|o| o.as_reference())
            .ok();
        let mut routes: Vec<(Holder, &'static str)> = vec![(Holder::Trailer, "/Info")];
        if let Some(r) = root {
            routes.push((Holder::Obj(r), "/Metadata"));
            routes.push((Holder::Obj(r), "/DSS"));
            // pyHanko `FormUpdatingRule`: Acrobat rewrites the AcroForm's default resources.
            routes.push((Holder::Obj(r), "/AcroForm/DR"));
            if let Some(af) = d
                .new
                .objects
                .get(&r)
                .and_then(dict_of)
                .and_then(|c| c.get(b"AcroForm").ok())
                .and_then(|o| o.as_reference().ok())
            {
                routes.push((Holder::Obj(af), "/DR"));
            }
        }
        routes.extend(
            self.appearance_owners
                .iter()
                .map(|w| (Holder::Obj(*w), "/AP")),
        );
        routes.extend(
            self.filled_sig_fields
                .iter()
                .map(|f| (Holder::Obj(*f), "/V")),
        );
        let open: HashSet<ObjectId> = self
            .pending
            .iter()
            .filter(|p| !self.cleared.contains(p) && !self.reported.contains(p))
            .copied()
            .collect();
        if open.is_empty() {
            return;
        }
        // pyHanko `allow_in_place_appearance_stream_changes`: a form field's appearance
        // stream rewritten in place, where DocMDP permits form filling, is the widget's own
        // update when its value changed (in it or its parent); the route rule still applies.
        if d.docmdp != Some(1) {
            let known: HashSet<&ObjectId> = self.appearance_owners.iter().collect();
            let work = &self.work;
            let mut extra: Vec<ObjectId> = open
                .iter()
                .take_while(|_| work.tick())
                .filter_map(|id| form_widget_using(d, *id))
                .filter(|w| !known.contains(w))
                .collect();
            extra.sort();
            extra.dedup();
            routes.extend(extra.into_iter().map(|w| (Holder::Obj(w), "/AP")));
        }
        for (holder, key) in routes {
            // Every open object cleared: the remaining routes cannot change the verdict.
            if self.work.out() || open.iter().all(|id| self.cleared.contains(id)) {
                return;
            }
            let cleared = clear_route(d, &self.work, holder, key, &open);
            if key.ends_with("/DR") {
                // Default resources may be regrouped, but a font or XObject rewritten in
                // place changes every field drawn with it, the signed ones included
                // (stricter than pyHanko, which clears /DR's dependencies wholesale).
                self.cleared.extend(cleared.into_iter().filter(|id| {
                    matches!(d.new.objects.get(id), Some(Object::Dictionary(x))
                        if !name_is(x, b"Type", b"Font"))
                }));
            } else {
                self.cleared.extend(cleared);
            }
        }
    }

    /// Overwritten objects no rule cleared: named with the route that shows the change
    /// (pyHanko: “unexplained xrefs”, with the paths of the older revision not cleared).
    fn unexplained(&mut self) {
        let d = self.d;
        let owners: HashSet<ObjectId> = self
            .appearance_owners
            .iter()
            .chain(&self.filled_sig_fields)
            .copied()
            .collect();
        for id in self.pending.clone() {
            if self.violations.len() >= MAX_VIOLATIONS || !self.work.tick() {
                return;
            }
            if self.cleared.contains(&id) || self.reported.contains(&id) {
                continue;
            }
            let uses = d.old_uses.of_target(id);
            let Some(new_obj) = d.new.objects.get(&id) else {
                continue;
            };
            let old_obj = d.old.objects.get(&id);
            // Name the route no rule approved (not the updated widget's own).
            let approved = |h: &ObjectId| self.cleared.contains(h) || owners.contains(h);
            let foreign = |u: &&Use| !matches!(u.holder, Holder::Obj(h) if approved(&h));
            let on_page = |u: &&Use| {
                matches!(u.holder, Holder::Obj(h) if d.old.objects.get(&h)
                    .and_then(dict_of)
                    .is_some_and(|p| name_is(p, b"Type", b"Page")))
            };
            // A page's own use says best what the change shows on.
            let route = uses
                .iter()
                .find(|u| foreign(u) && on_page(u))
                .or_else(|| uses.iter().find(foreign))
                .or(uses.first())
                .map(|u| format!("（签署的修订版本中经 {} 引用）", route_words(u)))
                .unwrap_or_default();
            let old_sig = old_obj
                .and_then(dict_of)
                .is_some_and(|o| o.has(b"ByteRange"));
            let what = if old_sig {
                format!("已有签名字典 {} {} 被改写{route}", id.0, id.1)
            } else if uses.iter().any(|u| u.path.starts_with("/Contents"))
                && matches!(new_obj, Object::Stream(_))
            {
                format!("页面内容流 {} {} 被替换{route}", id.0, id.1)
            } else {
                let kind = old_obj
                    .or(Some(new_obj))
                    .and_then(dict_of)
                    .and_then(|o| o.get(b"Type").ok().or_else(|| o.get(b"Subtype").ok()))
                    .and_then(|t| t.as_name().ok())
                    .map(|n| format!(" /{}", key_text(n)))
                    .unwrap_or_default();
                let verb = if old_obj.is_some() {
                    "被改写"
                } else {
                    "被新定义"
                };
                format!(
                    "对象 {} {}{kind} {verb}{route}，不在任何允许的修改路径上",
                    id.0, id.1
                )
            };
            self.report(id, what);
        }
    }

    /// Names the document information, XMP and DSS when the view's differ from the signed
    /// ones (their routes were judged above).
    fn metadata_notes(&mut self) {
        let d = self.d;
        let root = d
            .new
            .trailer
            .get(b"Root")
            .and_then(|o| o.as_reference())
            .ok();
        let mut places = vec![(Holder::Trailer, "/Info", "文档信息 /Info")];
        if let Some(r) = root {
            places.push((Holder::Obj(r), "/Metadata", "XMP 元数据"));
            places.push((Holder::Obj(r), "/DSS", "DSS"));
        }
        for (holder, key, words) in places {
            let (a, b) = (
                resolved_at(d.old, holder, key),
                resolved_at(d.new, holder, key),
            );
            let changed = match (a, b) {
                (Some(x), Some(y)) => !same(x, y),
                (None, Some(_)) => true,
                _ => false,
            };
            if changed {
                self.allowed.insert(words.to_string());
            }
        }
    }

    /// pyHanko `reject_object_freeing`: an object the signed revision reached may not vanish
    /// while something shown still points to it.
    fn deleted(&mut self) {
        let d = self.d;
        let gone: HashSet<ObjectId> = d
            .old
            .objects
            .keys()
            .filter(|id| !d.new.objects.contains_key(id) && !d.old_uses.of_target(**id).is_empty())
            .copied()
            .collect();
        if gone.is_empty() {
            return;
        }
        // Each vanished object with the first shown object still pointing to it.
        let mut still_used: std::collections::BTreeMap<ObjectId, ObjectId> = Default::default();
        for id in d.live {
            if let Some(o) = d.new.objects.get(id) {
                let mut refs = Vec::new();
                refs_in(o, 0, &mut refs);
                for r in refs.into_iter().filter(|r| gone.contains(r)) {
                    still_used.entry(r).or_insert(*id);
                }
            }
        }
        // Which update freed it is not recorded in the view: the final one shows the gap.
        let last = d.revisions.len().max(1);
        for (id, by) in still_used {
            self.push(format!(
                "第 {last} 个修订版本（最终版本）：对象 {} {} 被删除或无法读取，但对象 {} {} 仍引用它",
                id.0, id.1, by.0, by.1
            ));
        }
    }
}

/// The non-signature widget whose appearance uses `id` in the signed revision, directly or
/// through an appearance dictionary held by reference.
fn form_widget_using(d: &Diff<'_>, id: ObjectId) -> Option<ObjectId> {
    // Only a widget whose value changed: an appearance rewritten for an unchanged value
    // replaces what was signed.
    let is_form_widget = |h: ObjectId| {
        let (Some(old), Some(new)) = (
            d.old.objects.get(&h).and_then(dict_of),
            d.new.objects.get(&h).and_then(dict_of),
        ) else {
            return false;
        };
        name_is(new, b"Subtype", b"Widget") && !is_sig(d.new, new) && value_changed(d, old, new)
    };
    for u in d.old_uses.of_target(id) {
        let Holder::Obj(h) = u.holder else { continue };
        if under(&u.path, "/AP") && is_form_widget(h) {
            return Some(h);
        }
        for up in d.old_uses.of_target(h) {
            if let Holder::Obj(w) = up.holder
                && &*up.path == "/AP"
                && is_form_widget(w)
            {
                return Some(w);
            }
        }
    }
    None
}

/// `path` lies at or below the key path `prefix` (`/AP` covers `/AP/N/On`, not `/APX`).
fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn route_words(u: &Use) -> String {
    match u.holder {
        Holder::Trailer => format!("文件尾的 {}", u.path),
        Holder::Obj(h) => format!("对象 {} {} 的 {}", h.0, h.1, u.path),
    }
}

/// The value at `key` of the trailer or of an object.
fn value_at<'a>(doc: &'a Document, holder: Holder, key: &str) -> Option<&'a Object> {
    let mut dict = match holder {
        Holder::Trailer => &doc.trailer,
        Holder::Obj(id) => doc.objects.get(&id).and_then(dict_of)?,
    };
    // A key path (`/AcroForm/DR`) through direct or referenced dictionaries.
    let mut keys = key.split('/').filter(|k| !k.is_empty()).peekable();
    while let Some(k) = keys.next() {
        let v = dict.get(k.as_bytes()).ok()?;
        if keys.peek().is_none() {
            return Some(v);
        }
        dict = deref_dict(doc, v)?;
    }
    None
}

/// [`value_at`], dereferenced.
fn resolved_at<'a>(doc: &'a Document, holder: Holder, key: &str) -> Option<&'a Object> {
    let v = value_at(doc, holder, key)?;
    Some(doc.dereference(v).map_or(v, |(_, o)| o))
}

/// Walks the objects reachable from `start`, parents before children, descending only
/// below the objects `visit` returns true for (bounded), and passes each object once to
/// `visit`. Pruning keeps the walk to the region a route can clear, not the whole document
/// its resources lead to.
fn walk(doc: &Document, work: &Work<'_>, start: &Object, mut visit: impl FnMut(ObjectId) -> bool) {
    let mut seen = HashSet::new();
    let mut queue = std::collections::VecDeque::new();
    let mut first = Vec::new();
    refs_in(start, 0, &mut first);
    queue.extend(first);
    while let Some(id) = queue.pop_front() {
        if seen.len() >= MAX_SUBTREE || !work.walk_step() {
            break;
        }
        if !seen.insert(id) || !visit(id) {
            continue;
        }
        if let Some(o) = doc.objects.get(&id) {
            let mut refs = Vec::new();
            refs_in(o, 0, &mut refs);
            queue.extend(refs.into_iter().filter(|r| !seen.contains(r)));
        }
    }
}

/// The `open` objects the route `holder`/`key` clears: those under the route in the view
/// whose every use in the signed revision is the route itself or an object that only the
/// route led to (pyHanko `ReferenceUpdate` with its checked context: an overwritten
/// reference is cleared together with the paths through which it was reached).
fn clear_route(
    d: &Diff<'_>,
    work: &Work<'_>,
    holder: Holder,
    key: &str,
    open: &HashSet<ObjectId>,
) -> HashSet<ObjectId> {
    let mut cleared = HashSet::new();
    let Some(new_start) = value_at(d.new, holder, key) else {
        return cleared;
    };
    // What the route alone led to in the signed revision.
    let owned = match value_at(d.old, holder, key) {
        Some(old_start) => owned_by(d, work, holder, key, old_start),
        None => HashSet::new(),
    };
    let on_route = |u: &Use, cleared: &HashSet<ObjectId>| {
        (u.holder == holder && under(&u.path, key))
            || matches!(u.holder, Holder::Obj(h) if owned.contains(&h) || cleared.contains(&h))
    };
    // Parents come first, so one pass usually settles it; a few more settle the rest. Below
    // an object the signed revision also reached by another route nothing can be cleared,
    // so the walk stops there.
    for _ in 0..4 {
        let before = cleared.len();
        walk(d.new, work, new_start, |id| {
            if open.contains(&id) {
                if !cleared.contains(&id)
                    && d.old_uses
                        .of_target(id)
                        .iter()
                        .all(|u| on_route(u, &cleared))
                {
                    cleared.insert(id);
                }
                cleared.contains(&id)
            } else {
                d.old_uses.of_target(id).is_empty() || owned.contains(&id)
            }
        });
        if cleared.len() == before || work.out() {
            break;
        }
    }
    cleared
}

/// Of the objects reachable from the route in the signed revision (`start` its value), those
/// every use of which is the route or another owned object.
fn owned_by(
    d: &Diff<'_>,
    work: &Work<'_>,
    holder: Holder,
    key: &str,
    start: &Object,
) -> HashSet<ObjectId> {
    let mut owned = HashSet::new();
    for _ in 0..4 {
        let before = owned.len();
        walk(d.old, work, start, |id| {
            if !owned.contains(&id)
                && d.old_uses.of_target(id).iter().all(|u| {
                    (u.holder == holder && under(&u.path, key))
                        || matches!(u.holder, Holder::Obj(h) if owned.contains(&h))
                })
            {
                owned.insert(id);
            }
            owned.contains(&id)
        });
        if owned.len() == before || work.out() {
            break;
        }
    }
    owned
}

/// pyHanko `FormUpdatingRule` (AcroForm part): the AcroForm may gain signature fields and
/// change `/SigFlags`, `/DR` and `/DA` (ISO 32000-1 §12.7.2, Table 218).
fn acroform_ok(d: &Diff<'_>, a: &Dictionary, b: &Dictionary) -> Result<(), String> {
    for key in changed_keys(a, b) {
        match key.as_slice() {
            b"Fields" => {
                let list = |doc: &Document, dict: &Dictionary| {
                    dict.get(b"Fields")
                        .ok()
                        .and_then(|o| deref_array(doc, o))
                        .cloned()
                        .unwrap_or_default()
                };
                only_additions(d, &list(d.old, a), &list(d.new, b), false)
                    .map_err(|v| format!("AcroForm 域列表: {v}"))?;
            }
            // pyHanko `ACROFORM_EXEMPT_STRICT_COMPARISON` (plus /SigFlags, which signing sets):
            // /DR's overwritten members are judged as a route.
            b"SigFlags" | b"DR" | b"DA" | b"Q" => {}
            // Turning NeedAppearances on would make viewers redraw every field from /V,
            // replacing the signed appearances (the shadow attack's replace variant).
            b"NeedAppearances" => {
                if b.get(b"NeedAppearances")
                    .ok()
                    .and_then(|o| o.as_bool().ok())
                    == Some(true)
                {
                    return Err(
                        "AcroForm 的 /NeedAppearances 被设为 true（查看器将按域值重绘全部外观）"
                            .into(),
                    );
                }
            }
            other => return Err(format!("AcroForm 的 /{} 被修改", key_text(other))),
        }
    }
    Ok(())
}

/// A list of fields, kids or annotations may only gain signature fields or widgets (pyHanko
/// `SigFieldCreationRule`), and, in a page's `/Annots` under DocMDP P=3, gain or lose other
/// annotations (ISO 32000-1 Table 254).
fn only_additions(d: &Diff<'_>, a: &[Object], b: &[Object], annots: bool) -> Result<(), String> {
    let annotations_allowed = annots && d.docmdp == Some(3);
    let old_set: HashSet<ObjectId> = a.iter().filter_map(|o| o.as_reference().ok()).collect();
    let new_set: HashSet<ObjectId> = b.iter().filter_map(|o| o.as_reference().ok()).collect();
    for gone in old_set.difference(&new_set) {
        let plain_annotation = d.old.objects.get(gone).is_some_and(|o| {
            is_annotation(o) && !dict_of(o).is_some_and(|x| name_is(x, b"Subtype", b"Widget"))
        });
        if !(annotations_allowed && plain_annotation) {
            return Err(format!("移除了对象 {} {}", gone.0, gone.1));
        }
    }
    // The members kept stay in their order: a permutation of /Annots changes what is drawn
    // on top (ISO 32000-1 §12.5.2, later annotations are painted over earlier ones) and of
    // /Fields or /Kids the tab and calculation order; a set comparison would let it pass.
    let kept_old: Vec<ObjectId> = a
        .iter()
        .filter_map(|o| o.as_reference().ok())
        .filter(|r| new_set.contains(r))
        .collect();
    let kept_new: Vec<ObjectId> = b
        .iter()
        .filter_map(|o| o.as_reference().ok())
        .filter(|r| old_set.contains(r))
        .collect();
    if kept_old != kept_new {
        return Err("数组成员的顺序被改变".into());
    }
    let direct_old: Vec<&Object> = a.iter().filter(|o| o.as_reference().is_err()).collect();
    let direct_new: Vec<&Object> = b.iter().filter(|o| o.as_reference().is_err()).collect();
    if direct_old != direct_new {
        return Err("直接对象被修改".into());
    }
    let mut added: Vec<&ObjectId> = new_set.difference(&old_set).collect();
    added.sort();
    for id in added {
        let obj = d.new.objects.get(id);
        let dict = obj.and_then(dict_of);
        let sig = dict.is_some_and(|x| is_sig(d.new, x));
        if sig {
            // Whether a created signature field may be visible is judged on its widget
            // (`Run::fresh`).
            continue;
        }
        let is_plain_annotation = obj.is_some_and(|o| {
            is_annotation(o) && !dict_of(o).is_some_and(|x| name_is(x, b"Subtype", b"Widget"))
        });
        if annotations_allowed && is_plain_annotation {
            continue;
        }
        // A new annotation is named once, as an object: `Run::classify` passes every live
        // annotation the signed revision never reached to `Run::fresh`, identical bytes or not.
        if obj.is_some_and(is_annotation)
            && d.live.contains(id)
            && d.old_uses.of_target(*id).is_empty()
        {
            continue;
        }
        let kind = dict
            .and_then(|x| x.get(b"Subtype").ok().or_else(|| x.get(b"FT").ok()))
            .and_then(|o| o.as_name().ok())
            .map(key_text)
            .unwrap_or_else(|| "对象".into());
        let why = if is_plain_annotation {
            format!("（{}后不允许新增注释，恶意注释攻击 EAA）", d.mdp_words())
        } else {
            String::new()
        };
        return Err(format!("新增非签名的 {kind}（{} {}）{why}", id.0, id.1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(objects: Vec<(u32, Object)>) -> Document {
        let mut d = Document::with_version("1.7");
        for (n, o) in objects {
            d.objects.insert((n, 0), o);
        }
        d.trailer.set("Root", Object::Reference((1, 0)));
        d
    }

    fn dict(pairs: Vec<(&str, Object)>) -> Object {
        let mut d = Dictionary::new();
        for (k, v) in pairs {
            d.set(k, v);
        }
        Object::Dictionary(d)
    }

    #[test]
    fn a_comparison_past_the_deadline_stops_with_no_verdict() {
        let old = doc(vec![(
            1,
            dict(vec![("Type", Object::Name(b"Catalog".to_vec()))]),
        )]);
        let mut new = old.clone();
        new.objects.insert((2, 0), dict(vec![]));
        let opts = VerifyOptions {
            deadline: Some(std::time::Instant::now()),
            ..Default::default()
        };
        let uses = Uses::of(&old);
        let live = reachable(&new);
        let found = diff(&Diff {
            old: &old,
            old_uses: &uses,
            new: &new,
            live: &live,
            docmdp: None,
            revisions: &[],
            opts: &opts,
        });
        assert_eq!(found.stopped, Some(Stop::Time));
        let found = diff(&Diff {
            opts: &VerifyOptions::default(),
            old: &old,
            old_uses: &uses,
            new: &new,
            live: &live,
            docmdp: None,
            revisions: &[],
        });
        assert_eq!(found.stopped, None);
    }

    #[test]
    fn a_prefix_covers_whole_keys_only() {
        assert!(under("/AP", "/AP"));
        assert!(under("/AP/N/On", "/AP"));
        assert!(!under("/APX", "/AP"));
        assert!(!under("/Resources/AP", "/AP"));
    }

    #[test]
    fn uses_record_holder_and_key_path_from_reachable_objects_only() {
        let d = doc(vec![
            (
                1,
                dict(vec![
                    ("Type", Object::Name(b"Catalog".to_vec())),
                    ("Pages", Object::Reference((2, 0))),
                ]),
            ),
            (
                2,
                dict(vec![(
                    "Res",
                    dict(vec![(
                        "Font",
                        dict(vec![("F1", Object::Reference((3, 0)))]),
                    )]),
                )]),
            ),
            (3, dict(vec![])),
            // Unreachable: its reference to 3 is no use.
            (9, dict(vec![("X", Object::Reference((3, 0)))])),
        ]);
        let uses = Uses::of(&d);
        let of3 = uses.of_target((3, 0));
        assert_eq!(of3.len(), 1);
        assert_eq!(of3[0].holder, Holder::Obj((2, 0)));
        assert_eq!(&*of3[0].path, "/Res/Font/F1");
        assert_eq!(uses.of_target((1, 0))[0].holder, Holder::Trailer);
    }

    #[test]
    fn a_widget_is_visible_only_with_area_flags_and_appearance() {
        let d = doc(vec![]);
        let rect = |r: [i64; 4]| Object::Array(r.iter().map(|v| Object::Integer(*v)).collect());
        let ap = || dict(vec![("N", Object::Reference((5, 0)))]);
        let w = |pairs| match dict(pairs) {
            Object::Dictionary(x) => x,
            _ => unreachable!(),
        };
        assert!(widget_visible(
            &d,
            &w(vec![("Rect", rect([0, 0, 10, 10])), ("AP", ap())])
        ));
        assert!(widget_visible(
            &d,
            &w(vec![("Rect", rect([10, 10, 0, 0])), ("AP", ap())])
        ));
        assert!(!widget_visible(
            &d,
            &w(vec![("Rect", rect([0, 0, 0, 10])), ("AP", ap())])
        ));
        assert!(!widget_visible(
            &d,
            &w(vec![
                ("Rect", rect([0, 0, 10, 10])),
                ("AP", ap()),
                ("F", Object::Integer(2))
            ])
        ));
        assert!(!widget_visible(
            &d,
            &w(vec![
                ("Rect", rect([0, 0, 10, 10])),
                ("AP", ap()),
                ("F", Object::Integer(32))
            ])
        ));
        assert!(!widget_visible(
            &d,
            &w(vec![("Rect", rect([0, 0, 10, 10]))])
        ));
        // Hostile values: no rectangle, wrong types.
        assert!(!widget_visible(
            &d,
            &w(vec![("Rect", Object::Name(b"x".to_vec())), ("AP", ap())])
        ));
    }
}
