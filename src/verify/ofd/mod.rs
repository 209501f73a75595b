//! OFD signatures (GB/T 33190-2016 §18, GM/T 0099 where producers follow it).
//!
//! `OFD.xml` → each `DocBody`'s `Signatures.xml` → every `Signature.xml`: the `References`
//! are rehashed, the `SignedValue` is verified over the exact `Signature.xml` bytes (SES for
//! `Type="Seal"`, CMS for `Type="Sign"`), and coverage is judged over the whole package.
//! Pure: bytes in, reports out; the `registry` step is left to the caller.

mod digest;
mod package;
mod sign;
mod xml;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;

use super::ses_step::check_ses_signature;
use super::{
    Algorithm, DocumentError, Format, SignatureReport, SignatureType, Step, VerifyOptions,
};
use crate::time::format_time_ms;
use digest::CheckMethod;
use package::{Package, resolve};
use xml::Element;

pub use package::PackageError;
pub use xml::XmlError;

/// Upper bound on signatures examined in one package; each costs several SM2 verifications.
const MAX_SIGNATURES: usize = 256;
/// Upper bound on references per signature.
const MAX_REFERENCES: usize = 100_000;

/// One `<Signature>` entry of a `Signatures.xml`.
struct Entry {
    signatures_xml: String,
    id: String,
    kind: Option<String>,
    base_loc: Option<String>,
    raw_base_loc: String,
    /// Page object ID → 1-based page number, from the document's `Document.xml`.
    pages: BTreeMap<String, u32>,
}

/// One `Reference` after rehashing.
#[derive(Debug, Clone)]
struct RefCheck {
    /// Package name (no leading `/`), or the raw `FileRef` when it could not be resolved.
    path: String,
    exists: bool,
    matches: bool,
}

/// What the coverage pass needs to know about one examined signature.
struct Examined {
    report: SignatureReport,
    location: String,
    parsed: bool,
    own_files: Vec<String>,
    refs: Vec<RefCheck>,
}

/// Verifies every signature of an OFD package.
///
/// Fails as a whole only when the package or `OFD.xml`/`Signatures.xml` cannot be read; a
/// broken individual signature yields its own report with `parse` failed.
pub fn verify_ofd(
    bytes: &[u8],
    opts: &VerifyOptions,
) -> Result<Vec<SignatureReport>, DocumentError> {
    let pkg =
        Package::open(bytes, opts).map_err(|e| DocumentError::Malformed(format!("OFD 包: {e}")))?;
    if opts.out_of_time() {
        return Err(DocumentError::out_of_time("读取 OFD 包", opts));
    }
    let (entries, bodies) = list_signatures(&pkg, opts)?;
    let mut examined: Vec<Examined> = entries
        .iter()
        .map(|entry| examine(&pkg, entry, opts))
        .collect();
    judge_coverage(&pkg, &mut examined, &entries, &bodies);
    Ok(examined.into_iter().map(|e| e.report).collect())
}

fn malformed(msg: impl Into<String>) -> DocumentError {
    DocumentError::Malformed(msg.into())
}

fn parse_file(pkg: &Package, name: &str, opts: &VerifyOptions) -> Result<Element, String> {
    let bytes = pkg.get(name).ok_or_else(|| format!("文件 {name} 不存在"))?;
    xml::parse(bytes, opts.max_xml_depth).map_err(|e| format!("{name}: {e}"))
}

/// Resolves `path` from `base`, falling back to the package root for producers that write
/// root-relative paths without the leading `/`.
fn locate(pkg: &Package, base: &str, path: &str) -> Option<String> {
    let primary = resolve(base, path)?;
    if pkg.get(&primary).is_some() {
        return Some(primary);
    }
    match resolve("", path) {
        Some(alt) if pkg.get(&alt).is_some() => Some(alt),
        _ => Some(primary),
    }
}

/// One `DocBody` of `OFD.xml` (GB/T 33190 §7.4): the document it shows and its signature list.
struct DocBody {
    doc_root: Option<String>,
    signatures_xml: Option<String>,
}

fn list_signatures(
    pkg: &Package,
    opts: &VerifyOptions,
) -> Result<(Vec<Entry>, Vec<DocBody>), DocumentError> {
    let root = parse_file(pkg, "OFD.xml", opts).map_err(malformed)?;
    if root.name != "OFD" {
        return Err(malformed(format!(
            "OFD.xml 的根元素应为 OFD，实为 {}",
            root.name
        )));
    }
    let mut entries = Vec::new();
    let mut bodies = Vec::new();
    for body in root.children_named("DocBody") {
        let doc_root = body
            .child_text("DocRoot")
            .and_then(|p| locate(pkg, "OFD.xml", p));
        let Some(list_path) = body.child_text("Signatures") else {
            bodies.push(DocBody {
                doc_root,
                signatures_xml: None,
            });
            continue;
        };
        let list_name = locate(pkg, "OFD.xml", list_path)
            .ok_or_else(|| malformed(format!("签名列表路径无效: {list_path}")))?;
        let list = parse_file(pkg, &list_name, opts).map_err(malformed)?;
        if list.name != "Signatures" {
            return Err(malformed(format!(
                "{list_name} 的根元素应为 Signatures，实为 {}",
                list.name
            )));
        }
        let pages = doc_root
            .as_deref()
            .map(|doc| page_numbers(pkg, doc, opts))
            .unwrap_or_default();
        bodies.push(DocBody {
            doc_root,
            signatures_xml: Some(list_name.clone()),
        });
        for sig in list.children_named("Signature") {
            if entries.len() >= MAX_SIGNATURES {
                return Err(malformed(format!("签名数量超过上限 {MAX_SIGNATURES}")));
            }
            let raw = sig.attr("BaseLoc").unwrap_or_default().trim().to_string();
            entries.push(Entry {
                signatures_xml: list_name.clone(),
                id: sig.attr("ID").unwrap_or_default().to_string(),
                kind: sig.attr("Type").map(|t| t.trim().to_string()),
                base_loc: locate(pkg, &list_name, &raw),
                raw_base_loc: raw,
                pages: pages.clone(),
            });
        }
    }
    Ok((entries, bodies))
}

/// Page object IDs of a `Document.xml` in page order. Best effort: only used to report the
/// stamp's page number.
fn page_numbers(pkg: &Package, doc: &str, opts: &VerifyOptions) -> BTreeMap<String, u32> {
    let Ok(root) = parse_file(pkg, doc, opts) else {
        return BTreeMap::new();
    };
    root.child("Pages")
        .map(|pages| {
            pages
                .children_named("Page")
                .filter_map(|p| p.attr("ID"))
                .zip(1u32..)
                .map(|(id, n)| (id.trim().to_string(), n))
                .collect()
        })
        .unwrap_or_default()
}

/// The parts of `Signature.xml` the verifier uses.
struct SignatureXml {
    provider: Option<String>,
    method: Option<String>,
    date_time: Option<String>,
    check_method: Option<String>,
    references: Vec<(String, String)>,
    stamp: Option<(Option<String>, Option<String>)>,
    seal_loc: Option<String>,
    signed_value: Option<String>,
}

fn read_signature_xml(root: &Element) -> Result<SignatureXml, String> {
    if root.name != "Signature" {
        return Err(format!("根元素应为 Signature，实为 {}", root.name));
    }
    let info = root.child("SignedInfo").ok_or("缺少 SignedInfo 元素")?;
    let provider = info.child("Provider").and_then(|p| {
        p.attr("ProviderName")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .or_else(|| p.child_text("ProviderName"))
            .map(str::to_string)
    });
    let refs_el = info.child("References");
    let mut references = Vec::new();
    if let Some(refs) = refs_el {
        for r in refs.children_named("Reference") {
            if references.len() >= MAX_REFERENCES {
                return Err(format!("Reference 数量超过上限 {MAX_REFERENCES}"));
            }
            let file = r.attr("FileRef").ok_or("Reference 缺少 FileRef 属性")?;
            let value = r
                .child_text("CheckValue")
                .ok_or_else(|| format!("Reference {file} 缺少 CheckValue"))?;
            references.push((file.trim().to_string(), value.to_string()));
        }
    }
    let stamp = info.child("StampAnnot").map(|s| {
        (
            s.attr("PageRef").map(str::to_string),
            s.attr("Boundary").map(str::to_string),
        )
    });
    Ok(SignatureXml {
        provider,
        method: info.child_text("SignatureMethod").map(str::to_string),
        date_time: info.child_text("SignatureDateTime").map(str::to_string),
        check_method: refs_el
            .and_then(|r| r.attr("CheckMethod"))
            .map(str::to_string),
        references,
        stamp,
        seal_loc: info
            .child("Seal")
            .and_then(|s| s.child_text("BaseLoc"))
            .map(str::to_string),
        signed_value: root.child_text("SignedValue").map(str::to_string),
    })
}

/// Runs every step but `registry` and `coverage` for one signature.
fn examine(pkg: &Package, entry: &Entry, opts: &VerifyOptions) -> Examined {
    let is_sign = entry
        .kind
        .as_deref()
        .is_some_and(|k| k.eq_ignore_ascii_case("Sign"));
    let mut report = SignatureReport::new(
        Format::Ofd,
        if is_sign {
            SignatureType::Sign
        } else {
            SignatureType::Seal
        },
    );
    let location = entry
        .base_loc
        .clone()
        .unwrap_or_else(|| entry.raw_base_loc.clone());
    report.location = location.clone();
    let mut ex = Examined {
        report,
        location: location.clone(),
        parsed: false,
        own_files: Vec::new(),
        refs: Vec::new(),
    };
    if opts.out_of_time() {
        ex.report
            .fail(Step::Parse, opts.out_of_time_hint("签名验证"));
        return ex;
    }
    if let Some(kind) = entry.kind.as_deref()
        && !kind.eq_ignore_ascii_case("Sign")
        && !kind.eq_ignore_ascii_case("Seal")
    {
        ex.report.fail(
            Step::Parse,
            format!(
                "签名 {} 的 Type 属性值 {kind} 无效（应为 Seal 或 Sign）",
                entry.id
            ),
        );
        return ex;
    }
    let Some(sig_path) = entry.base_loc.clone().filter(|p| pkg.get(p).is_some()) else {
        ex.report.fail(
            Step::Parse,
            format!(
                "{} 中签名 {} 的签名描述文件 {} 不存在",
                entry.signatures_xml, entry.id, entry.raw_base_loc
            ),
        );
        return ex;
    };
    ex.own_files.push(sig_path.clone());
    let sig_bytes = pkg.get(&sig_path).unwrap_or_default();
    let parsed = xml::parse(sig_bytes, opts.max_xml_depth)
        .map_err(|e| e.to_string())
        .and_then(|root| read_signature_xml(&root));
    let sx = match parsed {
        Ok(sx) => sx,
        Err(e) => {
            ex.report.fail(Step::Parse, format!("{sig_path}: {e}"));
            return ex;
        }
    };
    if let Some(seal) = sx
        .seal_loc
        .as_deref()
        .and_then(|s| locate(pkg, &sig_path, s))
    {
        ex.own_files.extend(in_folder_of(&sig_path, seal));
    }
    let Some(value_path) = sx
        .signed_value
        .as_deref()
        .and_then(|v| locate(pkg, &sig_path, v))
        .filter(|v| pkg.get(v).is_some())
    else {
        ex.report.fail(
            Step::Parse,
            format!(
                "{sig_path}: 签名值文件 {} 不存在",
                sx.signed_value
                    .as_deref()
                    .unwrap_or("（未给出 SignedValue）")
            ),
        );
        return ex;
    };
    ex.own_files
        .extend(in_folder_of(&sig_path, value_path.clone()));
    let value = pkg.get(&value_path).unwrap_or_default();

    fill_descriptive_fields(&mut ex.report, &sx, entry);
    let method = match sx.check_method.as_deref() {
        Some(m) => CheckMethod::parse(m),
        None => CheckMethod::Sm3,
    };
    ex.report.pass(
        Step::Parse,
        format!(
            "OFD 包、签名列表与 {sig_path} 结构完整，{} 个 Reference",
            sx.references.len()
        ),
    );
    ex.parsed = true;

    // The signed value first: the `401.2` CheckMethod needs the signer's key.
    let outcome = if is_sign {
        sign::check_sign_value(&mut ex.report, value, sig_bytes, opts)
    } else {
        match check_ses_signature(&mut ex.report, value, sig_bytes, opts) {
            Ok(h) => Ok(ValueCheck {
                matches: h.matches,
                hint: h.hint,
                signer_cert_der: Some(h.signer_cert_der),
            }),
            // `Type` is optional (default Seal) and some producers omit it on digital
            // signatures: a value that is CMS is then verified as one.
            Err(e) if entry.kind.is_none() => {
                let cms = sign::check_sign_value(&mut ex.report, value, sig_bytes, opts);
                if cms.is_ok() {
                    ex.report.signature_type = SignatureType::Sign;
                }
                cms.map_err(|_| format!("不是有效的 SES_Signature: {e}"))
            }
            Err(e) => Err(format!("不是有效的 SES_Signature: {e}")),
        }
    };
    let value_check = match outcome {
        Ok(v) => v,
        Err(hint) => {
            ex.report
                .fail(Step::Parse, format!("签名值 {value_path} {hint}"));
            ex.parsed = false;
            return ex;
        }
    };

    let (refs, ref_hint, refs_ok) = check_references(
        pkg,
        &sig_path,
        &sx.references,
        &method,
        value_check.signer_cert_der.as_deref(),
        opts,
    );
    ex.refs = refs;
    let passed = refs_ok && value_check.matches;
    ex.report.record(
        Step::Integrity,
        passed,
        format!("{ref_hint}；{}", value_check.hint),
    );
    ex
}

/// `file` when it lies in the folder of `sig_path` (or below). Only such files are exempt from
/// coverage as the signature's own: a signature entry must not be able to exempt a content
/// file by naming it as its seal or value.
fn in_folder_of(sig_path: &str, file: String) -> Option<String> {
    let dir = sig_path.rsplit_once('/').map_or("", |(d, _)| d);
    let inside = if dir.is_empty() {
        !file.contains('/')
    } else {
        file.strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    inside.then_some(file)
}

/// The outcome of verifying the `SignedValue` that the integrity step needs.
pub(crate) struct ValueCheck {
    /// Whether the signed value covers the exact `Signature.xml` bytes.
    pub matches: bool,
    pub hint: String,
    pub signer_cert_der: Option<Vec<u8>>,
}

fn fill_descriptive_fields(report: &mut SignatureReport, sx: &SignatureXml, entry: &Entry) {
    if let Some(p) = &sx.provider {
        report.provider = p.clone();
    }
    if let Some(m) = &sx.method {
        report.algorithm = Algorithm::from_signature_oid(m);
    }
    if let Some(ms) = sx.date_time.as_deref().and_then(parse_date_time) {
        report.sign_time_ms = Some(ms);
        report.sign_time = format_time_ms(ms);
    }
    if let Some((page_ref, boundary)) = &sx.stamp {
        report.page = page_ref.as_deref().and_then(|r| {
            let r = r.trim();
            entry.pages.get(r).copied()
        });
        report.position = boundary.as_deref().and_then(parse_boundary);
    }
}

fn parse_boundary(text: &str) -> Option<[f64; 4]> {
    let mut out = [0f64; 4];
    let mut parts = text.split_whitespace();
    for slot in &mut out {
        let v: f64 = parts.next()?.parse().ok()?;
        if !v.is_finite() {
            return None;
        }
        *slot = v;
    }
    parts.next().is_none().then_some(out)
}

/// Parses the `SignatureDateTime` forms producers write: `20200723130907.763Z`,
/// `20221101092233Z`, `2020-07-16 16:04:27`, ISO 8601 with `T`/offset. Without a zone the
/// platform time zone is assumed, as Chinese producers write local time.
pub(crate) fn parse_date_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let (body, offset_secs) = split_zone(text)?;
    let mut digits = String::new();
    let mut frac = String::new();
    let mut in_frac = false;
    for c in body.chars() {
        match c {
            '0'..='9' if in_frac => frac.push(c),
            '0'..='9' => digits.push(c),
            '.' | ',' => in_frac = true,
            '-' | ':' | ' ' | 'T' | '/' => {}
            _ => return None,
        }
    }
    if digits.len() != 14 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<u32>().ok());
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(num(6..8)?).ok()?).ok()?;
    let t = time::Time::from_hms(
        u8::try_from(num(8..10)?).ok()?,
        u8::try_from(num(10..12)?).ok()?,
        u8::try_from(num(12..14)?).ok()?,
    )
    .ok()?;
    let millis: i64 = frac
        .get(..frac.len().min(3))
        .filter(|f| !f.is_empty())
        .map(|f| format!("{f:0<3}").parse().unwrap_or(0))
        .unwrap_or(0);
    let offset = time::UtcOffset::from_whole_seconds(offset_secs).ok()?;
    let dt = time::PrimitiveDateTime::new(date, t).assume_offset(offset);
    Some(dt.unix_timestamp() * 1000 + millis)
}

fn split_zone(text: &str) -> Option<(&str, i32)> {
    if let Some(body) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        return Some((body, 0));
    }
    // An offset follows the time part: look for a sign after the date.
    if let Some(pos) = text.rfind(['+', '-']).filter(|&p| p >= 10) {
        let (body, zone) = text.split_at(pos);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let zd: String = zone.chars().filter(char::is_ascii_digit).collect();
        if zd.len() == 4 || zd.len() == 2 {
            let h: i32 = zd.get(..2)?.parse().ok()?;
            let m: i32 = zd
                .get(2..)
                .filter(|s| !s.is_empty())
                .map_or(Some(0), |s| s.parse().ok())?;
            return Some((body, sign * (h * 3600 + m * 60)));
        }
    }
    Some((text, crate::time::PLATFORM_UTC_OFFSET_SECS))
}

/// Rehashes every `Reference`. Returns the checks, the hint and whether all passed.
fn check_references(
    pkg: &Package,
    sig_path: &str,
    references: &[(String, String)],
    method: &CheckMethod,
    signer_cert_der: Option<&[u8]>,
    opts: &VerifyOptions,
) -> (Vec<RefCheck>, String, bool) {
    let mut checks = Vec::with_capacity(references.len());
    let mut problems: Vec<String> = Vec::new();
    let hasher = method.hasher(signer_cert_der);
    for (file_ref, check_value) in references {
        let Some(path) = locate(pkg, sig_path, file_ref) else {
            problems.push(format!("Reference 路径无效: {file_ref}"));
            checks.push(RefCheck {
                path: file_ref.clone(),
                exists: false,
                matches: false,
            });
            continue;
        };
        let Some(data) = pkg.get(&path) else {
            problems.push(format!("被引用的文件 {path} 不存在"));
            checks.push(RefCheck {
                path,
                exists: false,
                matches: false,
            });
            continue;
        };
        let expected = base64::engine::general_purpose::STANDARD
            .decode(check_value.split_whitespace().collect::<String>());
        let matches = match (&expected, &hasher) {
            (Ok(want), Ok(h)) => h.digest(data).as_slice() == want.as_slice(),
            _ => false,
        };
        if expected.is_err() {
            problems.push(format!("文件 {path} 的 CheckValue 不是有效的 Base64"));
        } else if hasher.is_ok() && !matches {
            problems.push(format!("文件 {path} 的校验值不符"));
        }
        checks.push(RefCheck {
            path,
            exists: true,
            matches,
        });
    }
    if references.is_empty() {
        problems.push("签名未引用任何文件（References 为空）".into());
    }
    let name = method.name();
    let weak_refused = method.is_weak() && !opts.allow_weak_hashes;
    let mut hint = match &hasher {
        Err(why) => format!("无法校验 Reference: {why}"),
        Ok(_) if problems.is_empty() => {
            format!("{} 个文件的校验值（{name}）全部一致", checks.len())
        }
        Ok(_) => format!("{}（摘要算法 {name}）", problems.join("；")),
    };
    if hasher.is_err() && !problems.is_empty() {
        hint = format!("{hint}；{}", problems.join("；"));
    }
    if method.is_weak() {
        hint = if weak_refused {
            format!("摘要算法 {name} 强度不足，按策略不予接受；{hint}")
        } else {
            format!("{hint}（摘要算法 {name} 强度不足，按策略接受）")
        };
    } else if let Some(note) = method.note() {
        hint = format!("{hint}（{note}）");
    }
    let ok = hasher.is_ok() && problems.is_empty() && !weak_refused;
    (checks, hint, ok)
}

/// Adds why `file` changed to the integrity hint that names it.
fn amend_integrity(report: &mut SignatureReport, file: &str, note: &str) {
    if let Some((passed, hint)) = report.outcome(Step::Integrity) {
        let hint = hint.replace(
            &format!("文件 {file} 的校验值不符"),
            &format!("文件 {note} 的校验值不符"),
        );
        report.record(Step::Integrity, passed, hint);
    }
}

/// Why `OFD.xml` may stay outside the signatures' references, or why not.
///
/// Producers sign the document, not the package entry: GB/T 38540 §7 (and GB/T 33190 §18.1)
/// puts a signature's `References` over the files of the document its `DocBody` names, and
/// `OFD.xml` only says which document (`DocRoot`) a viewer opens and where its signatures are
/// (GB/T 33190 §7.4, `DocBody`: `DocRoot`, `Signatures`). An unprotected `OFD.xml` is therefore
/// harmless exactly when it cannot make a viewer show anything the signatures do not vouch for:
/// one `DocBody` only (a second one is a document the viewer may show instead), and its
/// `DocRoot` is a `Document.xml` that a verified signature of that body's own list protects.
/// `Err` names what breaks that.
fn entry_file_is_harmless(
    bodies: &[DocBody],
    examined: &[Examined],
    entries: &[Entry],
) -> Result<String, String> {
    let [body] = bodies else {
        return Err(format!(
            "OFD.xml 含 {} 个 DocBody，阅读器可能显示签名未覆盖的文档（GB/T 33190 §7.4）",
            bodies.len()
        ));
    };
    let root = body
        .doc_root
        .as_deref()
        .ok_or("OFD.xml 的 DocBody 缺少有效的 DocRoot")?;
    let list = body
        .signatures_xml
        .as_deref()
        .ok_or_else(|| format!("OFD.xml 指向的文档 {root} 没有签名列表（未签名的文档）"))?;
    let vouched = examined.iter().zip(entries).any(|(ex, entry)| {
        ex.parsed
            && entry.signatures_xml == list
            && ex.refs.iter().any(|r| r.path == root && r.matches)
    });
    if !vouched {
        return Err(format!(
            "OFD.xml 的 DocRoot 指向 {root}，它不受签名列表 {list} 中任何有效签名保护（未签名的文档）"
        ));
    }
    Ok(format!(
        "OFD.xml 未列入签名引用：它只指明唯一的文档 {root}，该文档受签名保护（GB/T 33190 §7.4）"
    ))
}

/// The `coverage` step for every parsed signature.
fn judge_coverage(pkg: &Package, examined: &mut [Examined], entries: &[Entry], bodies: &[DocBody]) {
    let lists: BTreeSet<&str> = entries.iter().map(|e| e.signatures_xml.as_str()).collect();
    let signature_files: BTreeSet<String> = examined
        .iter()
        .flat_map(|e| e.own_files.iter().cloned())
        .collect();
    let covered: BTreeSet<String> = examined
        .iter()
        .filter(|e| e.parsed)
        .flat_map(|e| e.refs.iter().filter(|r| r.exists).map(|r| r.path.clone()))
        .collect();
    let mut uncovered: Vec<&str> = pkg
        .names()
        .filter(|n| !covered.contains(*n) && !signature_files.contains(*n) && !lists.contains(n))
        .collect();
    // The entry file: a note when it is harmless, a failure naming why when it is not
    // (whether or not a signature lists it, since a second DocBody is never vouched for).
    let entry_file = entry_file_is_harmless(bodies, examined, entries);
    let mut entry_note = None;
    if let Ok(note) = &entry_file
        && uncovered.contains(&"OFD.xml")
    {
        uncovered.retain(|n| *n != "OFD.xml");
        entry_note = Some(note.clone());
    }
    let entry_problem = entry_file.err();
    let protected = pkg.names().filter(|n| covered.contains(*n)).count();

    // Later signatures that vouch for a file's current content explain when it changed.
    let current_ok: Vec<BTreeSet<String>> = examined
        .iter()
        .map(|e| {
            e.refs
                .iter()
                .filter(|r| r.matches)
                .map(|r| r.path.clone())
                .collect()
        })
        .collect();
    let locations: Vec<String> = examined.iter().map(|e| e.location.clone()).collect();
    let count = examined.len();

    for (i, ex) in examined.iter_mut().enumerate() {
        if !ex.parsed {
            continue;
        }
        let mut changed: Vec<String> = Vec::new();
        for r in ex.refs.iter().filter(|r| !r.matches) {
            if !r.exists {
                changed.push(format!("{}（签署后被删除或路径无效）", r.path));
                continue;
            }
            let later = (i + 1..count)
                .find(|&j| current_ok.get(j).is_some_and(|set| set.contains(&r.path)));
            let why = match later {
                _ if lists.contains(r.path.as_str()) && i + 1 < count => {
                    let note = format!(
                        "{}（签名列表，其后的签名 {} 追加签名条目时改写）",
                        r.path,
                        locations.get(i + 1..).unwrap_or_default().join("、")
                    );
                    amend_integrity(&mut ex.report, &r.path, &note);
                    note
                }
                Some(j) => format!(
                    "{}（在后续签名 {} 之前被修改）",
                    r.path,
                    locations.get(j).map_or("", String::as_str)
                ),
                None => r.path.clone(),
            };
            changed.push(why);
        }
        let later_sigs = count.saturating_sub(i + 1);
        let mut exempt = format!(
            "不计入：各签名自身的 Signature.xml、SignedValue.dat 与印章文件（由签名值自身保护），签名列表 {}（每次签章追加条目时改写，各条目均单独验证）",
            lists.iter().copied().collect::<Vec<_>>().join("、")
        );
        if later_sigs > 0 {
            exempt.push_str(&format!("，以及其后 {later_sigs} 个签名的文件"));
        }
        if let Some(note) = &entry_note {
            exempt.push_str(&format!("；{note}"));
        }
        if uncovered.is_empty() && changed.is_empty() && entry_problem.is_none() {
            ex.report.pass(
                Step::Coverage,
                format!("包内 {protected} 个文件均受签名保护（{exempt}）"),
            );
        } else {
            let mut parts = Vec::new();
            if let Some(problem) = &entry_problem {
                parts.push(problem.clone());
            }
            if !changed.is_empty() {
                parts.push(format!("签署后被修改的文件: {}", changed.join("、")));
            }
            if !uncovered.is_empty() {
                parts.push(format!("未受任何签名保护的文件: {}", uncovered.join("、")));
            }
            ex.report
                .fail(Step::Coverage, format!("{}（{exempt}）", parts.join("；")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exhausted_time_budget_names_the_step_it_interrupted() {
        let ofd = include_bytes!("../../../tests/data/ofd/gomain-v4signed.ofd");
        let opts = VerifyOptions {
            time_budget: Some(std::time::Duration::from_millis(5)),
            deadline: Some(std::time::Instant::now()),
            ..VerifyOptions::default()
        };
        assert_eq!(
            verify_ofd(ofd, &opts).unwrap_err(),
            DocumentError::OutOfTime {
                step: "读取 OFD 包",
                budget_ms: 5
            }
        );
        assert!(verify_ofd(ofd, &VerifyOptions::default()).is_ok_and(|r| !r.is_empty()));
    }

    #[test]
    fn date_time_forms_of_real_producers() {
        // 2020-07-23 13:09:07.763 UTC
        assert_eq!(
            parse_date_time("20200723130907.763Z"),
            Some(1_595_509_747_763)
        );
        assert_eq!(parse_date_time("20221101092233Z"), Some(1_667_294_553_000));
        // Local time in the platform zone (+08:00).
        assert_eq!(
            parse_date_time("2020-07-16 16:04:27"),
            parse_date_time("2020-07-16T08:04:27Z")
        );
        assert_eq!(
            parse_date_time("2020-07-16T16:04:27+08:00"),
            parse_date_time("20200716080427Z")
        );
        assert_eq!(parse_date_time("yesterday"), None);
        assert_eq!(parse_date_time("2020-13-01 00:00:00"), None);
    }

    #[test]
    fn boundary_needs_four_finite_numbers() {
        assert_eq!(
            parse_boundary("90.00 8.00 30.00 20.00"),
            Some([90.0, 8.0, 30.0, 20.0])
        );
        assert_eq!(parse_boundary("1 2 3"), None);
        assert_eq!(parse_boundary("1 2 3 NaN"), None);
    }
}
