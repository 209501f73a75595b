//! Building signed PDFs with incremental updates for the verifier tests: a test PKI, SM2 CMS
//! signatures over the standard byte ranges (approval, certification with DocMDP, document
//! time-stamp dictionaries), and updates written with a classic cross-reference table, a
//! cross-reference stream with an object stream (Acrobat), or both (hybrid, `/XRefStm`).
//!
//! The documents grow from `generated/sm2-base-unsigned.pdf` (catalog 1, pages 2, page 3,
//! content 4, font 5).
#![allow(dead_code)] // each test binary uses part of it

use std::path::Path;

use hutong::crypto::certgen::{CertSpec, issue_sm2, self_signed_sm2};
use hutong::crypto::cms::{parse_signed_data, sign_detached_sm2};
use hutong::crypto::sm::Sm2KeyPair;
use hutong::ses::kit;
use hutong::verify::VerifyOptions;

pub fn data(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/pdf")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub struct Pki {
    pub root_cert: Vec<u8>,
    pub leaf_key: Sm2KeyPair,
    pub leaf_cert: Vec<u8>,
}

pub const SIGN_TIME: i64 = 1_763_800_000_000; // 2025-11-22

pub fn pki(leaf_not_after_ms: i64) -> Pki {
    let root_key = Sm2KeyPair::generate();
    let root_spec = CertSpec {
        common_name: "测试根 CA".into(),
        organization: Some("Hutong Test".into()),
        not_before_ms: 1_600_000_000_000,
        not_after_ms: 2_000_000_000_000,
        is_ca: true,
        serial: None,
    };
    let root_cert = self_signed_sm2(&root_spec, &root_key).unwrap();
    let leaf_key = Sm2KeyPair::generate();
    let leaf_spec = CertSpec {
        common_name: "张三".into(),
        organization: Some("某某有限公司".into()),
        not_before_ms: 1_650_000_000_000,
        not_after_ms: leaf_not_after_ms,
        is_ca: false,
        serial: Some(vec![0x0a, 0xbc]),
    };
    let leaf_cert = issue_sm2(&leaf_spec, &leaf_key.public_key(), &root_cert, &root_key).unwrap();
    Pki {
        root_cert,
        leaf_key,
        leaf_cert,
    }
}

pub fn trusting(pki: &Pki) -> VerifyOptions {
    VerifyOptions {
        trust_anchors: vec![pki.root_cert.clone()],
        ..Default::default()
    }
}

/// How an update's cross-reference data is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Xref {
    /// A classic `xref` table and trailer.
    Table,
    /// A cross-reference stream; the update's objects other than the signature dictionary
    /// go into an object stream (how Acrobat saves).
    Stream,
    /// A classic table for the plain objects and a `/XRefStm` cross-reference stream for
    /// those in the object stream (ISO 32000-1 §7.5.8.4, hybrid-reference files).
    Hybrid,
}

pub fn startxref(base: &[u8]) -> usize {
    String::from_utf8_lossy(base)
        .rsplit("startxref")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("startxref")
}

/// Appends an incremental update (classic xref section) defining `objects`.
pub fn append_update(base: &[u8], objects: &[(u32, String)], size: u32, root: u32) -> Vec<u8> {
    append_update_with_trailer(base, objects, size, root, "")
}

/// [`append_update`] with extra trailer entries (e.g. `/Info 8 0 R`).
pub fn append_update_with_trailer(
    base: &[u8],
    objects: &[(u32, String)],
    size: u32,
    root: u32,
    extra: &str,
) -> Vec<u8> {
    assert_eq!(root, 1, "the documents here keep their catalog in object 1");
    append(base, objects, &[], size, extra, Xref::Table)
}

/// Appends an update: `plain` objects as they are, `packed` ones in an object stream (with
/// [`Xref::Stream`] or [`Xref::Hybrid`]; with [`Xref::Table`], and streams always, they are
/// written plain).
/// The object stream and cross-reference stream take numbers `size` and `size + 1`.
pub fn append(
    base: &[u8],
    plain: &[(u32, String)],
    packed: &[(u32, String)],
    size: u32,
    extra: &str,
    xref: Xref,
) -> Vec<u8> {
    // Streams never go into an object stream (ISO 32000-1 §7.5.7): written plain.
    let (streams, packed): (Vec<_>, Vec<_>) = packed
        .iter()
        .cloned()
        .partition(|(_, body)| body.contains("\nstream\n"));
    let plain: Vec<(u32, String)> = plain.iter().cloned().chain(streams).collect();
    let (plain, packed) = (plain.as_slice(), packed.as_slice());
    let prev = startxref(base);
    let mut out = base.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let mut table: Vec<(u32, usize)> = Vec::new();
    let write = |out: &mut Vec<u8>, num: u32, body: &str, table: &mut Vec<(u32, usize)>| {
        table.push((num, out.len()));
        out.extend(format!("{num} 0 obj\n{body}\nendobj\n").as_bytes());
    };
    for (num, body) in plain {
        write(&mut out, *num, body, &mut table);
    }
    if xref == Xref::Table || packed.is_empty() {
        for (num, body) in packed {
            write(&mut out, *num, body, &mut table);
        }
        let xref_at = out.len();
        out.extend(b"xref\n");
        table.sort();
        for (num, off) in &table {
            out.extend(format!("{num} 1\n{off:010} 00000 n \n").as_bytes());
        }
        out.extend(
            format!("trailer\n<< /Size {size} /Root 1 0 R{extra} /Prev {prev} >>\nstartxref\n{xref_at}\n%%EOF\n")
                .as_bytes(),
        );
        return out;
    }
    let (objstm, xrefstm, new_size) = (size, size + 1, size + 2);
    let mut header = String::new();
    let mut bodies = String::new();
    for (num, body) in packed {
        header.push_str(&format!("{num} {} ", bodies.len()));
        bodies.push_str(body);
        bodies.push('\n');
    }
    let content = format!("{header}\n{bodies}");
    let first = header.len() + 1;
    write(
        &mut out,
        objstm,
        &format!(
            "<< /Type /ObjStm /N {} /First {first} /Length {} >>\nstream\n{content}\nendstream",
            packed.len(),
            content.len()
        ),
        &mut table,
    );
    // Entries: (number, type, field 2, field 3) with /W [1 4 2].
    let mut entries: Vec<(u32, u8, u32, u16)> = packed
        .iter()
        .enumerate()
        .map(|(i, (num, _))| (*num, 2, objstm, i as u16))
        .collect();
    let xs_at = out.len();
    if xref == Xref::Stream {
        entries.extend(table.iter().map(|(n, off)| (*n, 1, *off as u32, 0)));
        entries.push((xrefstm, 1, xs_at as u32, 0));
    }
    entries.sort();
    let mut bin = Vec::new();
    let mut index = String::new();
    for (num, t, f2, f3) in &entries {
        index.push_str(&format!("{num} 1 "));
        bin.push(*t);
        bin.extend(f2.to_be_bytes());
        bin.extend(f3.to_be_bytes());
    }
    let trailer_keys = if xref == Xref::Stream {
        format!(" /Root 1 0 R{extra} /Prev {prev}")
    } else {
        String::new()
    };
    out.extend(
        format!(
            "{xrefstm} 0 obj\n<< /Type /XRef /Size {new_size}{trailer_keys} /W [1 4 2] /Index [{index}] /Length {} >>\nstream\n",
            bin.len()
        )
        .as_bytes(),
    );
    out.extend(&bin);
    out.extend(b"\nendstream\nendobj\n");
    if xref == Xref::Stream {
        out.extend(format!("startxref\n{xs_at}\n%%EOF\n").as_bytes());
        return out;
    }
    table.push((xrefstm, xs_at));
    table.sort();
    let xref_at = out.len();
    out.extend(b"xref\n");
    for (num, off) in &table {
        out.extend(format!("{num} 1\n{off:010} 00000 n \n").as_bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {new_size} /Root 1 0 R{extra} /Prev {prev} /XRefStm {xs_at} >>\nstartxref\n{xref_at}\n%%EOF\n"
        )
        .as_bytes(),
    );
    out
}

pub const CONTENTS_HEX_LEN: usize = 8192;

/// What stays the same in every revision of a document: the catalog's entries besides the
/// AcroForm's fields, and the page's resources and content.
#[derive(Debug, Clone)]
pub struct Layout {
    pub catalog_extra: String,
    /// The AcroForm's `/DR` (default resources) value.
    pub dr: String,
    pub page_resources: String,
    pub page_contents: String,
}

impl Layout {
    /// The base document's page.
    pub fn plain() -> Self {
        Layout {
            catalog_extra: String::new(),
            dr: "<< /Font << /Helv 5 0 R >> >>".into(),
            page_resources: "<< /Font << /F1 5 0 R >> >>".into(),
            page_contents: "4 0 R".into(),
        }
    }

    /// The same layout under a certification whose signature dictionary is `sig`.
    pub fn certified_by(mut self, sig: u32) -> Self {
        self.catalog_extra
            .push_str(&format!(" /Perms << /DocMDP {sig} 0 R >>"));
        self
    }

    pub fn catalog(&self, fields: &[u32]) -> String {
        format!(
            "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [{}] /SigFlags 3 /DR {} /DA (/Helv 0 Tf 0 g) >>{} >>",
            refs(fields),
            self.dr,
            self.catalog_extra
        )
    }

    pub fn page(&self, annots: &[u32]) -> String {
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources {} /Contents {} /Annots [{}] >>",
            self.page_resources,
            self.page_contents,
            refs(annots)
        )
    }
}

pub fn refs(ids: &[u32]) -> String {
    ids.iter().map(|f| format!("{f} 0 R ")).collect()
}

/// A stream object's text.
pub fn stream(dict: &str, content: &str) -> String {
    format!(
        "<< {dict} /Length {} >>\nstream\n{content}\nendstream",
        content.len()
    )
}

/// A form XObject (appearance stream) drawing `content` in a 200 × 40 box.
pub fn form_xobject(content: &str) -> String {
    stream(
        "/Type /XObject /Subtype /Form /BBox [0 0 200 40] /Resources << /Font << /Helv 5 0 R >> >>",
        content,
    )
}

/// An invisible signature widget (zero rectangle, no appearance) of field `name`.
pub fn invisible_sig_widget(name: &str, value: Option<u32>) -> String {
    let v = value.map(|v| format!(" /V {v} 0 R")).unwrap_or_default();
    format!(
        "<< /Type /Annot /Subtype /Widget /FT /Sig /T ({name}){v} /Rect [0 0 0 0] /F 132 /P 3 0 R >>"
    )
}

/// A visible signature widget of field `name` at `rect` showing appearance stream `ap`.
pub fn visible_sig_widget(name: &str, value: Option<u32>, rect: &str, ap: u32) -> String {
    let v = value.map(|v| format!(" /V {v} 0 R")).unwrap_or_default();
    format!(
        "<< /Type /Annot /Subtype /Widget /FT /Sig /T ({name}){v} /Rect [{rect}] /F 4 /P 3 0 R /AP << /N {ap} 0 R >> >>"
    )
}

/// One signing update: the signature dictionary `sig` (written plain, its `/Contents` then
/// filled) and the update's other objects.
pub struct Signing<'a> {
    pub pki: &'a Pki,
    pub sig: u32,
    pub objects: Vec<(u32, String)>,
    pub size: u32,
    /// A certification signature with this DocMDP `/P`.
    pub docmdp: Option<u8>,
    /// The DocMDP reference dictionary's `/Data` (iText points it to the catalog).
    pub data: Option<u32>,
    /// `/Type /DocTimeStamp` with `/SubFilter /ETSI.RFC3161` (the value is still a CMS
    /// signature: only the later signatures' coverage is examined with it).
    pub doc_timestamp: bool,
    pub xref: Xref,
    /// Bytes of the revision left outside the second range.
    pub tail: usize,
    /// The SM2 value without the sign octet (issue 12 point 1).
    pub quirky: bool,
}

impl<'a> Signing<'a> {
    pub fn new(pki: &'a Pki, sig: u32, objects: Vec<(u32, String)>, size: u32) -> Self {
        Signing {
            pki,
            sig,
            objects,
            size,
            docmdp: None,
            data: None,
            doc_timestamp: false,
            xref: Xref::Table,
            tail: 0,
            quirky: false,
        }
    }

    pub fn sign(&self, base: &[u8]) -> Vec<u8> {
        let placeholder = "0".repeat(CONTENTS_HEX_LEN);
        let data = self
            .data
            .map(|n| format!(" /Data {n} 0 R"))
            .unwrap_or_default();
        let reference = self
            .docmdp
            .map(|p| {
                format!(
                    " /Reference [<< /Type /SigRef /TransformMethod /DocMDP /TransformParams << /Type /TransformParams /P {p} /V /1.2 >>{data} >>]"
                )
            })
            .unwrap_or_default();
        let (ty, sub) = if self.doc_timestamp {
            ("DocTimeStamp", "ETSI.RFC3161")
        } else {
            ("Sig", "adbe.pkcs7.detached")
        };
        let sig_dict = format!(
            "<< /Type /{ty} /Filter /Adobe.PPKLite /SubFilter /{sub} /M (D:20251122082640Z){reference} /ByteRange [0 0000000000 0000000000 0000000000] /Contents <{placeholder}> >>"
        );
        let mut pdf = append(
            base,
            &[(self.sig, sig_dict)],
            &self.objects,
            self.size,
            "",
            self.xref,
        );
        let find = |hay: &[u8], needle: &[u8]| {
            hay.windows(needle.len())
                .rposition(|w| w == needle)
                .unwrap()
        };
        let lt = find(&pdf, format!("<{placeholder}>").as_bytes());
        let gt = lt + CONTENTS_HEX_LEN + 2;
        let covered_end = pdf.len() - self.tail;
        let br = format!("[0 {lt:010} {gt:010} {:010}]", covered_end - gt);
        let br_at = find(&pdf, b"[0 0000000000 0000000000 0000000000]");
        pdf[br_at..br_at + br.len()].copy_from_slice(br.as_bytes());
        let parts = [&pdf[..lt], &pdf[gt..covered_end]];
        let pki = self.pki;
        let cms = if self.quirky {
            quirky_cms(&parts, pki)
        } else {
            sign_detached_sm2(&parts, &pki.leaf_key, &pki.leaf_cert, SIGN_TIME, true).unwrap()
        };
        let hexed = hex::encode(&cms);
        assert!(hexed.len() <= CONTENTS_HEX_LEN);
        pdf[lt + 1..lt + 1 + hexed.len()].copy_from_slice(hexed.as_bytes());
        pdf
    }
}

/// A CMS over `parts` whose SM2 SignerInfo signature lacks the sign octet of r or s (issue 12
/// point 1: one vendor's encoding); the signing time moves by seconds until r or s has its high
/// bit set.
fn quirky_cms(parts: &[&[u8]], pki: &Pki) -> Vec<u8> {
    for second in 0..64 {
        let t = SIGN_TIME + second * 1000;
        let cms = sign_detached_sm2(parts, &pki.leaf_key, &pki.leaf_cert, t, true).unwrap();
        let value = parse_signed_data(&cms).unwrap().signer.signature;
        if let Some(q) = kit::without_sign_octets(&value) {
            return kit::replace_value(&cms, &value, &q).unwrap();
        }
    }
    panic!("64 signatures without a high bit in r or s");
}

/// A signing update of `layout` adding the invisible signature field `name`: signature
/// dictionary `first_obj`, widget `first_obj + 1`; `fields` and `annots` are the AcroForm
/// fields and page annotations after this update.
pub fn new_field_signing<'a>(
    pki: &'a Pki,
    layout: &Layout,
    first_obj: u32,
    fields: &[u32],
    annots: &[u32],
    name: &str,
) -> Signing<'a> {
    let (sig, widget) = (first_obj, first_obj + 1);
    Signing::new(
        pki,
        sig,
        vec![
            (1, layout.catalog(fields)),
            (3, layout.page(annots)),
            (widget, invisible_sig_widget(name, Some(sig))),
        ],
        widget + 1,
    )
}

/// Signs `base` in an incremental update adding field `name` (see [`new_field_signing`]).
pub fn sign_update(
    base: &[u8],
    pki: &Pki,
    first_obj: u32,
    fields: &[u32],
    annots: &[u32],
    name: &str,
) -> Vec<u8> {
    new_field_signing(pki, &Layout::plain(), first_obj, fields, annots, name).sign(base)
}

/// The base document signed once (field `Sig1`: signature 6, widget 7): two revisions.
pub fn signed_sample(pki: &Pki) -> Vec<u8> {
    sign_update(
        &data("generated/sm2-base-unsigned.pdf"),
        pki,
        6,
        &[7],
        &[7],
        "Sig1",
    )
}

/// The base document certified (field `Sig1`: signature 6, widget 7) with DocMDP `p`, its
/// reference dictionary's `/Data` pointing to the catalog as iText writes it.
pub fn certified_sample(pki: &Pki, p: u8) -> (Vec<u8>, Layout) {
    let layout = Layout::plain().certified_by(6);
    let mut s = new_field_signing(pki, &layout, 6, &[7], &[7], "Sig1");
    s.docmdp = Some(p);
    s.data = Some(1);
    (s.sign(&data("generated/sm2-base-unsigned.pdf")), layout)
}

/// Object numbers of the prepared form document ([`form_document`]).
pub mod form {
    /// Second content stream: draws the logo.
    pub const LOGO_CONTENT: u32 = 10;
    /// The logo, a form XObject in the page resources.
    pub const LOGO: u32 = 11;
    /// Text field `Name` (widget), its appearance stream shared with `Name2`.
    pub const NAME: u32 = 20;
    pub const NAME_AP: u32 = 21;
    /// Text field `Amount`, appearance dictionary 23 (by reference, shared with `Total`)
    /// with /N 25 (also `Name2`'s down appearance).
    pub const AMOUNT: u32 = 22;
    pub const AMOUNT_AP_DICT: u32 = 23;
    pub const AMOUNT_AP: u32 = 25;
    /// Empty, visible signature fields `Approval` and `Approval2`, sharing appearance 26.
    pub const APPROVAL: u32 = 24;
    pub const APPROVAL_AP: u32 = 26;
    pub const APPROVAL2: u32 = 27;
    /// Text field `Name2`: /AP << /N 21 /D 25 >>.
    pub const NAME2: u32 = 29;
    /// Text field `Total`: /AP 23.
    pub const TOTAL: u32 = 31;
    /// Text field `Stamp` whose appearance is the page's logo 11.
    pub const STAMP: u32 = 32;
    /// Hidden text field `Shadow` (/F 2) with its own appearance 34.
    pub const SHADOW: u32 = 33;
    pub const SHADOW_AP: u32 = 34;
    /// Text field `City` with its own appearance 36.
    pub const CITY: u32 = 35;
    pub const CITY_AP: u32 = 36;
    /// Text field `Note` whose /AP /N points to a missing object (99).
    pub const NOTE: u32 = 37;
    /// Text field `Memo` whose /AP is object 39, an array (malformed).
    pub const MEMO: u32 = 38;
    pub const MEMO_AP: u32 = 39;
    /// The approval signature `Sig1`: signature dictionary and widget.
    pub const SIG1: u32 = 40;
    pub const SIG1_WIDGET: u32 = 41;
    /// First free number after the signed revision.
    pub const NEXT: u32 = 42;
    /// Every field and page annotation of the prepared document.
    pub const FIELDS: &[u32] = &[
        NAME, AMOUNT, APPROVAL, APPROVAL2, NAME2, TOTAL, STAMP, SHADOW, CITY, NOTE, MEMO,
    ];
}

/// The form layout: the page also draws the logo XObject.
pub fn form_layout() -> Layout {
    Layout {
        catalog_extra: String::new(),
        dr: Layout::plain().dr,
        page_resources: format!(
            "<< /Font << /F1 5 0 R >> /XObject << /Logo {} 0 R >> >>",
            form::LOGO
        ),
        page_contents: format!("[4 0 R {} 0 R]", form::LOGO_CONTENT),
    }
}

fn text_field(name: &str, value: &str, y: u32, ap: &str, flags: u32) -> String {
    format!(
        "<< /Type /Annot /Subtype /Widget /FT /Tx /T ({name}) /V ({value}) /DA (/Helv 12 Tf 0 g) /Rect [72 {y} 272 {}] /F {flags} /P 3 0 R /AP {ap} >>",
        y + 20
    )
}

/// A prepared form (revision 2, unsigned) with appearances shared on purpose, signed by
/// `Sig1` (revision 3, invisible field; certification with `docmdp` when given). Numbers in
/// [`form`].
pub fn form_document(pki: &Pki, docmdp: Option<u8>) -> (Vec<u8>, Layout) {
    use form::*;
    let layout = form_layout();
    let sig_ap = |label: &str| {
        form_xobject(&format!(
            "0.9 g 0 0 200 40 re f 0 g BT /Helv 10 Tf 4 15 Td ({label}) Tj ET"
        ))
    };
    let objects = vec![
        (1, layout.catalog(FIELDS)),
        (3, layout.page(FIELDS)),
        (LOGO_CONTENT, stream("", "q 1 0 0 1 400 700 cm /Logo Do Q")),
        (
            LOGO,
            stream(
                "/Type /XObject /Subtype /Form /BBox [0 0 120 60] /Resources << /Font << /F1 5 0 R >> >>",
                "1 0 0 rg 0 0 120 60 re f BT /F1 12 Tf 8 24 Td (Company seal) Tj ET",
            ),
        ),
        (
            NAME,
            text_field("Name", "Alice", 600, &format!("<< /N {NAME_AP} 0 R >>"), 4),
        ),
        (NAME_AP, form_xobject("BT /Helv 12 Tf 2 5 Td (Alice) Tj ET")),
        (
            AMOUNT,
            text_field(
                "Amount",
                "10000.00",
                570,
                &format!("{AMOUNT_AP_DICT} 0 R"),
                4,
            ),
        ),
        (AMOUNT_AP_DICT, format!("<< /N {AMOUNT_AP} 0 R >>")),
        (
            AMOUNT_AP,
            form_xobject("BT /Helv 12 Tf 2 5 Td (10000.00) Tj ET"),
        ),
        (
            APPROVAL,
            visible_sig_widget("Approval", None, "300 100 500 140", APPROVAL_AP),
        ),
        (APPROVAL_AP, sig_ap("Sign here")),
        (
            APPROVAL2,
            visible_sig_widget("Approval2", None, "300 150 500 190", APPROVAL_AP),
        ),
        (
            NAME2,
            text_field(
                "Name2",
                "Alice",
                540,
                &format!("<< /N {NAME_AP} 0 R /D {AMOUNT_AP} 0 R >>"),
                4,
            ),
        ),
        (
            TOTAL,
            text_field(
                "Total",
                "10000.00",
                510,
                &format!("{AMOUNT_AP_DICT} 0 R"),
                4,
            ),
        ),
        (
            STAMP,
            text_field("Stamp", "", 480, &format!("<< /N {LOGO} 0 R >>"), 4),
        ),
        (
            SHADOW,
            text_field(
                "Shadow",
                "90000.00",
                570,
                &format!("<< /N {SHADOW_AP} 0 R >>"),
                2,
            ),
        ),
        (
            SHADOW_AP,
            form_xobject("1 g 0 0 200 20 re f 0 g BT /Helv 12 Tf 2 5 Td (90000.00) Tj ET"),
        ),
        (
            CITY,
            text_field(
                "City",
                "Beijing",
                450,
                &format!("<< /N {CITY_AP} 0 R >>"),
                4,
            ),
        ),
        (
            CITY_AP,
            form_xobject("BT /Helv 12 Tf 2 5 Td (Beijing) Tj ET"),
        ),
        (NOTE, text_field("Note", "", 420, "<< /N 99 0 R >>", 4)),
        (
            MEMO,
            text_field("Memo", "", 390, &format!("{MEMO_AP} 0 R"), 4),
        ),
        (MEMO_AP, "[1 2 3]".into()),
    ];
    let prepared = append_update(
        &data("generated/sm2-base-unsigned.pdf"),
        &objects,
        MEMO_AP + 1,
        1,
    );
    let layout = match docmdp {
        Some(_) => layout.certified_by(SIG1),
        None => layout,
    };
    let mut all: Vec<u32> = FIELDS.to_vec();
    all.push(SIG1_WIDGET);
    let mut s = new_field_signing(pki, &layout, SIG1, &all, &all, "Sig1");
    s.docmdp = docmdp;
    (s.sign(&prepared), layout)
}
