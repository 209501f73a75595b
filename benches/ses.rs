//! Seal throughput: `SesSeal::decode` + `verify_maker` on the corpus seals (one SM2 verification
//! each, so this is bounded by SM2; decoding a 17 KB seal is a small share), and the same for a
//! whole `SES_Signature` (two SM2 verifications).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a development harness, not shipped: a failed set-up step stops it

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hutong::ses::{SesSeal, SesSignature};
use std::hint::black_box;

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/ofd/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn seals(c: &mut Criterion) {
    let mut g = c.benchmark_group("ses");
    g.throughput(Throughput::Elements(1));
    for name in ["seal-UserV4.esl", "seal-UserV1.esl"] {
        let der = data(name);
        g.bench_function(format!("decode+verify_maker {name}"), |b| {
            b.iter(|| {
                let seal = SesSeal::decode(black_box(&der)).expect("corpus seal decodes");
                seal.verify_maker().expect("corpus seal verifies");
            })
        });
    }
    let der = data("seal-UserV4.esl");
    g.bench_function("decode only seal-UserV4.esl", |b| {
        b.iter(|| SesSeal::decode(black_box(&der)).expect("corpus seal decodes"))
    });
    let sig = data("gomain-1.SignedValue.dat");
    g.bench_function("signature decode+verify+maker gomain-1", |b| {
        b.iter(|| {
            let s = SesSignature::decode(black_box(&sig)).expect("corpus signature decodes");
            s.verify_signature().expect("signer verifies");
            s.seal.verify_maker().expect("maker verifies");
        })
    });
    g.finish();
}

criterion_group!(benches, seals);
criterion_main!(benches);
