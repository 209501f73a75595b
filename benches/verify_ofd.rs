//! OFD verification throughput on a typical one-seal e-invoice (`gomain-invoice-modified.ofd`,
//! 13.6 KB, 13 References, SES v4): unzip, XML, 14 SM3 digests, two SM2 verifications
//! (signer and seal maker) and the certificate chain attempt. Beside it, in the same run, the
//! crypto floor: SM3 over the 13 referenced files and `Signature.xml`, `SignedValue.dat` in
//! place of the two signed messages inside it (about 10 KB against its 6.4 KB: the floor is
//! some 2 % low), and two SM2 verifications.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a development harness, not shipped: a failed set-up step stops it

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hutong::crypto::sm::{Sm2KeyPair, sm2_verify, sm3};
use hutong::verify::VerifyOptions;
use hutong::verify::ofd::verify_ofd;
use std::hint::black_box;
use std::io::Read;

fn invoice(c: &mut Criterion) {
    let path = format!(
        "{}/tests/data/ofd/gomain-invoice-modified.ofd",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let opts = VerifyOptions::default();
    let mut g = c.benchmark_group("verify_ofd");
    g.throughput(Throughput::Elements(1));
    g.bench_function("e-invoice, 1 seal", |b| {
        b.iter(|| {
            let reports = verify_ofd(black_box(&bytes), &opts).expect("corpus invoice opens");
            assert_eq!(reports.len(), 1);
        })
    });
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).expect("corpus zip");
    let entries: Vec<Vec<u8>> = (0..zip.len())
        .filter_map(|i| {
            let mut f = zip.by_index(i).expect("entry");
            (f.name().expect("entry name") != "Doc_0/Signs/Signatures.xml").then(|| {
                let mut v = Vec::new();
                f.read_to_end(&mut v).expect("inflate");
                v
            })
        })
        .collect();
    let key = Sm2KeyPair::generate();
    let (public, sig) = (key.public_key(), key.sign(b"floor"));
    g.bench_function("crypto floor e-invoice, 1 seal", |b| {
        b.iter(|| {
            for e in &entries {
                black_box(sm3(black_box(e)));
            }
            for _ in 0..2 {
                sm2_verify(&public, black_box(b"floor"), &sig).expect("floor signature verifies");
            }
        })
    });
    g.finish();
}

criterion_group!(benches, invoice);
criterion_main!(benches);
