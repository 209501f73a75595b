//! OFD verification throughput on a typical one-seal e-invoice (`gomain-invoice-modified.ofd`,
//! 13.6 KB, 13 References, SES v4): unzip, XML, 14 SM3 digests, two SM2 verifications
//! (signer and seal maker) and the certificate chain attempt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a development harness, not shipped: a failed set-up step stops it

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hutong::verify::VerifyOptions;
use hutong::verify::ofd::verify_ofd;
use std::hint::black_box;

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
    g.finish();
}

criterion_group!(benches, invoice);
criterion_main!(benches);
