//! Load generator for the platform API: registers its own member through the control socket
//! of a running server, pre-signs every request (distinct nonces), then sends them over
//! `--concurrency` HTTPS connections and reports throughput, latency and result codes.
//!
//! cargo run --release --example loadgen -- --data-dir ./hutong-data --url https://localhost:8443 \
//!     --requests 20000 --concurrency 32

use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

struct Args {
    data_dir: PathBuf,
    url: String,
    requests: usize,
    concurrency: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        data_dir: PathBuf::from("./hutong-data"),
        url: "https://localhost:8443".into(),
        requests: 20_000,
        concurrency: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--data-dir" => a.data_dir = val.into(),
            "--url" => a.url = val,
            "--requests" => a.requests = val.parse().expect("--requests"),
            "--concurrency" => a.concurrency = val.parse().expect("--concurrency"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn canonical(p: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = p.keys().filter(|k| *k != "sign").collect();
    keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    keys.iter()
        .map(|k| match &p[*k] {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let kp = hutong::crypto::sm::Sm2KeyPair::generate();
    let added = hutong::server::control::call(
        &args.data_dir,
        &hutong::server::control::Command::SystemAdd {
            name: "压测系统".into(),
            plat_name: "压测平台".into(),
            public_key_pem: hutong::crypto::sm::sm2_public_key_to_pem(&kp.public_key()),
            callback_url: None,
            callback_ca_pem: None,
            dest_host: None,
            state: Some("online".into()),
        },
    )
    .expect("control socket")
    .expect("no server is running on this data directory");
    let app_id = added["appId"].as_str().unwrap().to_string();

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let t0 = Instant::now();
    let bodies: Vec<Vec<u8>> = (0..args.requests)
        .map(|i| {
            let mut p =
                json!({"version": "1.0", "appId": app_id, "time": now.to_string(), "nonce": i})
                    .as_object()
                    .unwrap()
                    .clone();
            let sig = kp.sign(canonical(&p).as_bytes());
            p.insert(
                "sign".into(),
                base64::engine::general_purpose::STANDARD.encode(sig).into(),
            );
            serde_json::to_vec(&p).unwrap()
        })
        .collect();
    eprintln!("pre-signed {} requests in {:?}", bodies.len(), t0.elapsed());

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
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .unwrap();

    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let url = format!("{}/api/v1/system/info", args.url);
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
                let code = match resp {
                    Ok(r) => r
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v["code"].as_str().map(str::to_string)),
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
        "{} requests, concurrency {}: {:.0} req/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}; mean {:.2}; codes {:?}",
        lat.len(),
        args.concurrency,
        lat.len() as f64 / secs,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
        lat.iter().sum::<f64>() / lat.len() as f64,
        codes
    );
}
