//! Load generator for the platform API. It registers its own members through the control
//! socket of a running server, pre-signs every request (distinct nonces), sends them over
//! `--concurrency` HTTPS connections and reports throughput, latency and result codes.
//!
//! Scenarios:
//! - `system-info`: `POST /api/v1/system/info`.
//! - `seal-query`: files `--seals` seals (v4, made with test keys) for 100 organisations, then
//!   `POST /api/v1/seal/query` from a second member for random organisations.
//!
//! cargo run --release --example loadgen -- --data-dir ./hutong-data --url https://localhost:8443 \
//!     --scenario system-info --requests 20000 --concurrency 32

use base64::Engine;
use hutong::crypto::sm::Sm2KeyPair;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

struct Args {
    data_dir: PathBuf,
    url: String,
    scenario: String,
    requests: usize,
    concurrency: usize,
    seals: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        data_dir: PathBuf::from("./hutong-data"),
        url: "https://localhost:8443".into(),
        scenario: "system-info".into(),
        requests: 20_000,
        concurrency: 32,
        seals: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--data-dir" => a.data_dir = val.into(),
            "--url" => a.url = val,
            "--scenario" => a.scenario = val,
            "--requests" => a.requests = val.parse().expect("--requests"),
            "--concurrency" => a.concurrency = val.parse().expect("--concurrency"),
            "--seals" => a.seals = val.parse().expect("--seals"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

struct Member {
    app_id: String,
    key: Sm2KeyPair,
    nonce: AtomicU32,
}

impl Member {
    fn register(data_dir: &std::path::Path, name: &str) -> Self {
        let key = Sm2KeyPair::generate();
        let added = hutong::server::control::call(
            data_dir,
            &hutong::server::control::Command::SystemAdd {
                name: name.into(),
                plat_name: format!("{name}平台"),
                public_key_pem: hutong::crypto::sm::sm2_public_key_to_pem(&key.public_key()),
                callback_url: None,
                callback_ca_pem: None,
                dest_host: None,
                state: Some("online".into()),
            },
        )
        .expect("control socket")
        .expect("no server is running on this data directory");
        Member {
            app_id: added["appId"].as_str().unwrap().to_string(),
            key,
            nonce: AtomicU32::new(0),
        }
    }

    /// A signed JSON body: the common parameters plus `extra`.
    fn body(&self, extra: Value) -> Vec<u8> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let mut p = json!({
            "version": "1.0",
            "appId": self.app_id,
            "time": now.to_string(),
            "nonce": self.nonce.fetch_add(1, Ordering::Relaxed),
        })
        .as_object()
        .unwrap()
        .clone();
        if let Value::Object(e) = extra {
            p.extend(e);
        }
        let canonical = hutong::gateway::canonical_string(&p);
        let sig = self.key.sign(canonical.as_bytes());
        p.insert(
            "sign".into(),
            base64::engine::general_purpose::STANDARD.encode(sig).into(),
        );
        serde_json::to_vec(&Value::Object(p)).unwrap()
    }
}

/// A valid unified social credit code for organisation `i`.
fn org_code(i: usize) -> String {
    let first17 = format!("91340000MA{i:07}");
    let check = hutong::domain::codes::uscc_check_char(first17.as_bytes()).unwrap();
    format!("{first17}{}", check as char)
}

fn client(args: &Args) -> reqwest::Client {
    let cert = std::fs::read(args.data_dir.join("tls/server.crt")).expect("server certificate");
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    for c in CertificateDer::pem_slice_iter(&cert) {
        roots.add(c.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .unwrap()
}

/// Files `n` seals for 100 organisations through the API.
async fn file_seals(client: &reqwest::Client, url: &str, filer: &Member, n: usize) {
    let kit = hutong::ses::kit::SealKit::generate("压测单位").unwrap();
    let picture = vec![0x89u8; 8 * 1024];
    let t = Instant::now();
    for i in 0..n {
        let name = format!("压测印章{i}");
        let seal = kit
            .seal_v4(&kit.params(&name, &format!("LOAD-{i}"), 365, picture.clone()))
            .unwrap();
        let body = filer.body(json!({
            "name": name,
            "sealType": "01",
            "possessor": format!("压测单位{}", i % 100),
            "possessorCertNo": org_code(i % 100),
            "possessorType": 1,
            "bizType": 1,
            "certType": 2,
            "sealData": base64::engine::general_purpose::STANDARD.encode(&seal),
        }));
        let v: Value = client
            .post(format!("{url}/api/v1/seal/filing"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["code"], "0", "filing failed: {v}");
    }
    eprintln!("filed {n} seals in {:?}", t.elapsed());
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let client = client(&args);
    let caller = Member::register(&args.data_dir, "压测系统");
    let (path, bodies): (&str, Vec<Vec<u8>>) = match args.scenario.as_str() {
        "system-info" => (
            "/api/v1/system/info",
            (0..args.requests).map(|_| caller.body(json!({}))).collect(),
        ),
        "seal-query" => {
            let filer = Member::register(&args.data_dir, "备案系统");
            file_seals(&client, &args.url, &filer, args.seals).await;
            let bodies = (0..args.requests)
                .map(|i| caller.body(json!({"orgCode": org_code((i * 7) % 100), "sealType": "0"})))
                .collect();
            ("/api/v1/seal/query", bodies)
        }
        other => panic!("unknown scenario {other}"),
    };
    let url = format!("{}{path}", args.url);
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, queue, url) = (client.clone(), queue.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut codes: BTreeMap<String, usize> = BTreeMap::new();
            loop {
                let Some(body) = queue.lock().unwrap().pop() else {
                    break;
                };
                let t = Instant::now();
                let resp = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let code =
                    match resp {
                        Ok(r) => r.json::<Map<String, Value>>().await.ok().and_then(|v| {
                            v.get("code").and_then(Value::as_str).map(str::to_string)
                        }),
                        Err(_) => None,
                    }
                    .unwrap_or_else(|| "transport-error".into());
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                *codes.entry(code).or_default() += 1;
            }
            (lat, codes)
        }));
    }
    let mut lat = Vec::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        let (l, c) = t.await.unwrap();
        lat.extend(l);
        for (k, v) in c {
            *codes.entry(k).or_default() += v;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
    println!(
        "{}: {} requests, concurrency {}: {:.0} req/s; client latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}; codes {:?}",
        args.scenario,
        lat.len(),
        args.concurrency,
        lat.len() as f64 / secs,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
        codes
    );
}
