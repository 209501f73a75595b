//! PDF verification throughput: a ~10 MB SM2-signed PDF (built here: the corpus base document
//! plus a 10 MB image stream on the page, signed with a test PKI through the crate's CMS code)
//! and the small corpus sample.
//!
//! `cargo bench --bench verify_pdf -- --quick`. Beside each document it times the crypto floor
//! in the same run (SM3 over the signed byte ranges, and the two SM2 verifications: the CMS
//! signer and its certificate), and prints the verification's own heap peak as a multiple of
//! the file size, counted by the allocator below. With `HUTONG_BENCH_ONCE=1` the binary builds
//! the large file, verifies it once and exits, for `/usr/bin/time -v` figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a development harness, not shipped: a failed set-up step stops it
#![allow(unsafe_code)] // the counting allocator below: a `GlobalAlloc` cannot be written without it

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

use criterion::{Criterion, Throughput};
use hutong::crypto::certgen::{CertSpec, issue_sm2, self_signed_sm2};
use hutong::crypto::cms::sign_detached_sm2;
use hutong::crypto::sm::{Sm2KeyPair, sm2_verify, sm3};
use hutong::verify::pdf::Shared;
use hutong::verify::report::EmptyRegistry;
use hutong::verify::{VerifyOptions, verify_document_shared};

/// The system allocator; while [`COUNTING`] is on it adds up the heap's net growth and the
/// high-water mark of it, so the timed runs pay one load per allocation and nothing else.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static NET: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        let by = by as isize;
        PEAK.fetch_max(NET.fetch_add(by, Ordering::Relaxed) + by, Ordering::Relaxed);
    }
}

fn shrank(by: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        NET.fetch_sub(by as isize, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on to `System`.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc_zeroed` is passed on to `System`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with this `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc` is passed on to `System`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Verifies `pdf` once and prints the most the heap grew meanwhile, against the file's size
/// (the file itself was allocated before).
fn heap_peak(what: &str, pdf: &Shared, opts: &VerifyOptions) {
    NET.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let ok = verify_once(pdf, opts);
    COUNTING.store(false, Ordering::Relaxed);
    let extra = PEAK.load(Ordering::Relaxed);
    println!(
        "{what}: verified {} bytes (verifyResult={ok}): heap peak during verification {extra} bytes = {:.2} x the file",
        pdf.len(),
        extra as f64 / pdf.len() as f64
    );
}

/// `pdf` with one more incremental update after its signature (a new Info dictionary), so a
/// verification also parses the signed revision and a rebuilt view: three parsed documents.
fn with_update_after(pdf: &[u8]) -> Vec<u8> {
    let prev = String::from_utf8_lossy(&pdf[pdf.len() - 64..])
        .rsplit("startxref")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .expect("startxref");
    let mut out = pdf.to_vec();
    let at = out.len();
    out.extend(b"10 0 obj\n<< /Producer (Bench update) >>\nendobj\n");
    let xref = out.len();
    out.extend(
        format!("xref\n10 1\n{at:010} 00000 n \ntrailer\n<< /Size 11 /Root 1 0 R /Info 10 0 R /Prev {prev} >>\nstartxref\n{xref}\n%%EOF\n")
            .as_bytes(),
    );
    out
}

const BIG: usize = 10 * 1024 * 1024;
const CONTENTS_HEX_LEN: usize = 8192;

fn corpus(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/pdf")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Root certificate, signer key and signer certificate.
fn pki() -> (Vec<u8>, Sm2KeyPair, Vec<u8>) {
    let spec = |cn: &str, is_ca: bool| CertSpec {
        common_name: cn.into(),
        organization: Some("Hutong Bench".into()),
        not_before_ms: 1_600_000_000_000,
        not_after_ms: 2_000_000_000_000,
        is_ca,
        serial: None,
    };
    let root_key = Sm2KeyPair::generate();
    let root = self_signed_sm2(&spec("Bench Root", true), &root_key).expect("root");
    let key = Sm2KeyPair::generate();
    let cert = issue_sm2(
        &spec("Bench Signer", false),
        &key.public_key(),
        &root,
        &root_key,
    )
    .expect("leaf");
    (root, key, cert)
}

/// `generated/sm2-base-unsigned.pdf` + an incremental update with a `big`-byte image XObject
/// drawn on the page and an SM2 CMS signature over the standard byte ranges.
fn build_signed(big: usize, key: &Sm2KeyPair, cert: &[u8]) -> Vec<u8> {
    let base = corpus("generated/sm2-base-unsigned.pdf");
    let prev: usize = String::from_utf8_lossy(&base)
        .rsplit("startxref")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("startxref");
    let side = ((big / 3) as f64).sqrt() as usize;
    let pixels: Vec<u8> = (0..side * side * 3).map(|i| (i * 31 % 251) as u8).collect();
    let content = "q 200 0 0 200 72 400 cm /Im1 Do Q BT /F1 16 Tf 72 760 Td (Bench) Tj ET";
    let placeholder = "0".repeat(CONTENTS_HEX_LEN);
    let mut objs: Vec<(u32, Vec<u8>)> = vec![
        (1, b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [7 0 R] /SigFlags 3 >> >>".to_vec()),
        (3, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> /XObject << /Im1 8 0 R >> >> /Contents 9 0 R /Annots [7 0 R] >>".to_vec()),
        (6, format!("<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /adbe.pkcs7.detached /M (D:20261123000000Z) /ByteRange [0 0000000000 0000000000 0000000000] /Contents <{placeholder}> >>").into_bytes()),
        (7, b"<< /Type /Annot /Subtype /Widget /FT /Sig /T (Sig1) /V 6 0 R /Rect [0 0 0 0] /F 132 /P 3 0 R >>".to_vec()),
        (9, format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()).into_bytes()),
    ];
    let mut image = format!("<< /Type /XObject /Subtype /Image /Width {side} /Height {side} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Length {} >>\nstream\n", pixels.len()).into_bytes();
    image.extend(&pixels);
    image.extend(b"\nendstream");
    objs.push((8, image));

    let mut pdf = base.clone();
    let mut offsets = Vec::new();
    for (num, body) in &objs {
        offsets.push((*num, pdf.len()));
        pdf.extend(format!("{num} 0 obj\n").as_bytes());
        pdf.extend(body);
        pdf.extend(b"\nendobj\n");
    }
    let xref_at = pdf.len();
    pdf.extend(b"xref\n");
    for (num, off) in &offsets {
        pdf.extend(format!("{num} 1\n{off:010} 00000 n \n").as_bytes());
    }
    pdf.extend(
        format!("trailer\n<< /Size 10 /Root 1 0 R /Prev {prev} >>\nstartxref\n{xref_at}\n%%EOF\n")
            .as_bytes(),
    );

    let find = |hay: &[u8], needle: &[u8]| {
        hay.windows(needle.len())
            .rposition(|w| w == needle)
            .expect("placeholder")
    };
    let lt = find(&pdf, format!("<{placeholder}>").as_bytes());
    let gt = lt + CONTENTS_HEX_LEN + 2;
    let br = format!("[0 {lt:010} {gt:010} {:010}]", pdf.len() - gt);
    let br_at = find(&pdf, b"[0 0000000000 0000000000 0000000000]");
    pdf[br_at..br_at + br.len()].copy_from_slice(br.as_bytes());
    let cms = sign_detached_sm2(
        &[&pdf[..lt], &pdf[gt..]],
        key,
        cert,
        1_795_000_000_000,
        true,
    )
    .expect("sign");
    let hexed = hex::encode(cms);
    pdf[lt + 1..lt + 1 + hexed.len()].copy_from_slice(hexed.as_bytes());
    pdf
}

/// As the appliance verifies an upload: the file shared with the parser, not copied.
fn verify_once(pdf: &Shared, opts: &VerifyOptions) -> bool {
    verify_document_shared(pdf, "bench.pdf", opts, &EmptyRegistry)
        .map(|r| r.verify_result)
        .unwrap_or(false)
}

fn bench(c: &mut Criterion) {
    let (root, key, cert) = pki();
    let opts = VerifyOptions {
        trust_anchors: vec![root],
        ..Default::default()
    };
    let big = Shared::new(build_signed(BIG, &key, &cert));
    assert!(verify_once(&big, &opts), "the bench document must verify");
    heap_peak("signed", &big, &opts);
    heap_peak(
        "updated after signing",
        &Shared::new(with_update_after(&big)),
        &opts,
    );

    let mut g = c.benchmark_group("verify_pdf");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("sm2_signed_{}MB", big.len() / (1024 * 1024)), |b| {
        b.iter(|| black_box(verify_once(black_box(&big), &opts)))
    });
    let (msg, sig) = (b"floor", key.sign(b"floor"));
    let public = key.public_key();
    g.bench_function(
        format!("crypto floor sm2_signed_{}MB", big.len() / (1024 * 1024)),
        |b| {
            b.iter(|| {
                // The signed ranges: all but `<`, the hex digits and `>`.
                black_box(sm3(black_box(&big[..big.len() - CONTENTS_HEX_LEN - 2])));
                for _ in 0..2 {
                    sm2_verify(&public, black_box(msg), &sig).expect("floor signature verifies");
                }
            })
        },
    );
    let small = Shared::new(corpus("generated/sm2-cms-pkcs7oid-detached.pdf"));
    g.bench_function("sm2_signed_corpus_36KB", |b| {
        b.iter(|| black_box(verify_once(black_box(&small), &VerifyOptions::default())))
    });
    g.finish();
}

fn main() {
    if std::env::var_os("HUTONG_BENCH_ONCE").is_some() {
        let (root, key, cert) = pki();
        let opts = VerifyOptions {
            trust_anchors: vec![root],
            ..Default::default()
        };
        heap_peak(
            "signed",
            &Shared::new(build_signed(BIG, &key, &cert)),
            &opts,
        );
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
