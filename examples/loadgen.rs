//! Load generator for the platform API. It registers its own members through the control
//! socket of a running server, pre-signs every request (distinct nonces), sends them over
//! `--concurrency` HTTPS connections and reports throughput, latency and result codes.
//!
//! Scenarios:
//! - `system-info`: `POST /api/v1/system/info`.
//! - `seal-query`: files `--seals` seals (v4, made with test keys) for 100 organisations, then
//!   `POST /api/v1/seal/query` from a second member for random organisations.
//! - `cloud-sign`: starts a simulated home member (its own HTTPS callback server and SM2
//!   keys) that files a cloud seal, then runs `--concurrency` concurrent flows of
//!   query → auth/apply → auth/result → cloud/sign, `--requests` flows in all. It reports
//!   routed `cloud/sign` round trips per second and, from the `Server-Timing` header, the
//!   platform's own share of each routed call (server time minus time waiting for the member).
//! - `sm3`, `sm4-gcm`: the ceiling of one core for hashing a large answer (the response
//!   signature) and for the backup cipher.
//! - `crash`: starts its own `hutong serve` (the binary next to this example, or
//!   `--hutong-bin`) on a temporary data directory, files seals and changes their states from
//!   `--concurrency` clients, SIGKILLs the server `--kills` times at random moments over
//!   `--duration-secs`, restarts it, then checks the store: acknowledged, found and lost
//!   writes; exits non-zero on any loss (see `examples/support/crash.rs`).
//!   `cargo build --bin hutong && cargo run --example loadgen -- --scenario crash --concurrency 8`
//! - `mixed`: a soak run of its own `hutong serve` (like `crash`) under a weighted mix of
//!   filings, state changes, queries, routed cloud signing, document verification and auditor
//!   console pages for `--duration`, sampling RSS, open files and store size every 10 s into
//!   `--csv` and `--svg`; exits non-zero on any error or RSS growth above 10 % (see
//!   `examples/support/soak.rs`). Suggested: `--concurrency 8 --duration 10m`.
//!
//! Before a `system-info` or `seal-query` run it sends one call, then measures the machine's
//! SM2 budget — calls per second when each call is one request verification plus one
//! signature of a response the size of that call's answer, on all cores — and prints the
//! scenario's throughput as a fraction of it, so figures compare across machines. By default
//! every connection sends its next request when the answer arrives (closed loop); `--rate` or
//! `--rate-of-budget` send at a fixed rate instead and count latency from each request's due
//! time, which is what a tail-latency target at a given load means.
//!
//! cargo run --release --example loadgen -- --data-dir ./hutong-data --url https://localhost:8443 \
//!     --scenario system-info --requests 20000 --concurrency 32
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a development harness, not shipped: a failed set-up step stops it

#[path = "support/crash.rs"]
mod crash;
#[path = "support/soak.rs"]
mod soak;

use base64::Engine;
use hutong::crypto::sm::Sm2KeyPair;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// Load generator for the Hutong platform API (see the module documentation).
#[derive(clap::Parser)]
struct Args {
    /// Data directory of the running server (its control socket registers the members).
    #[arg(long, default_value = "./hutong-data")]
    data_dir: PathBuf,
    /// Base URL of the server.
    #[arg(long, default_value = "https://localhost:8443")]
    url: String,
    #[arg(long, value_parser = ["system-info", "seal-query", "cloud-sign", "crash", "audit-append", "sm4-gcm", "sm3", "mixed"], default_value = "system-info")]
    scenario: String,
    /// Requests (flows for cloud-sign) in all.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent connections (flows for cloud-sign).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// seal-query, mixed: seals filed before the run (for mixed, 20,000 make the store larger
    /// than the server's page cache, so the run starts in a steady state).
    #[arg(long, default_value_t = 1000)]
    seals: usize,
    /// crash, mixed: the `hutong` binary (default: the one beside this example's directory).
    #[arg(long)]
    hutong_bin: Option<PathBuf>,
    /// crash: how long the clients write.
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// crash: SIGKILLs during the run (one more ends it).
    #[arg(long, default_value_t = 5)]
    kills: usize,
    /// mixed: how long the clients run (`600`, `600s`, `10m`, `1h`).
    #[arg(long, default_value = "10m", value_parser = soak::parse_duration)]
    duration: std::time::Duration,
    /// mixed: the samples as CSV.
    #[arg(long, default_value = "soak.csv")]
    csv: PathBuf,
    /// mixed: the samples drawn as SVG.
    #[arg(long, default_value = "soak.svg")]
    svg: PathBuf,
    /// system-info, seal-query: send at this fixed rate (requests/s, all connections together)
    /// instead of as fast as answers come back; latency counts from each request's scheduled
    /// time, so a stalled server is not hidden by clients waiting on it.
    #[arg(long, conflicts_with = "rate_of_budget")]
    rate: Option<f64>,
    /// system-info, seal-query: the fixed rate as a fraction of the SM2 budget (0.6 = 60 %).
    #[arg(long)]
    rate_of_budget: Option<f64>,
}

fn parse_args() -> Args {
    <Args as clap::Parser>::parse()
}

struct Member {
    app_id: String,
    key: Sm2KeyPair,
    nonce: AtomicU32,
}

impl Member {
    fn register(data_dir: &std::path::Path, name: &str) -> Self {
        Self::register_with(data_dir, name, None)
    }

    /// Registers a member; `callback` is its (base URL, TLS CA PEM) for routed calls.
    fn register_with(
        data_dir: &std::path::Path,
        name: &str,
        callback: Option<(String, String)>,
    ) -> Self {
        let key = Sm2KeyPair::generate();
        let (callback_url, callback_ca_pem) = callback.unzip();
        let added = hutong::server::control::call(
            data_dir,
            &hutong::server::control::Command::SystemAdd {
                name: name.into(),
                plat_name: format!("{name}平台"),
                public_key_pem: hutong::crypto::sm::sm2_public_key_to_pem(&key.public_key()),
                callback_url,
                callback_ca_pem,
                dest_host: None,
                state: Some(hutong::domain::vocab::SystemState::Online),
            },
        )
        .expect("control socket")
        .expect("no server is running on this data directory");
        let hutong::server::control::Response::SystemAdd(added) = added else {
            panic!("system add answered {added:?}");
        };
        Member {
            app_id: added.app_id,
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
        let canonical = hutong::protocol::canonical_string(&p);
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

/// Files `n` seals for 100 organisations through the API, on `concurrency` connections.
async fn file_seals(
    client: &reqwest::Client,
    url: &str,
    filer: Arc<Member>,
    n: usize,
    concurrency: usize,
) {
    let picture = Arc::new(vec![0x89u8; 8 * 1024]);
    let t = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, filer, picture, next) = (
            client.clone(),
            url.to_string(),
            filer.clone(),
            picture.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let kit = hutong::ses::kit::SealKit::generate("压测单位").unwrap();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let name = format!("压测印章{i}");
                let seal = kit
                    .seal_v4(&kit.params(&name, &format!("LOAD-{i}"), 365, picture.to_vec()))
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
                if (i + 1) % 10_000 == 0 {
                    eprintln!("filed {} seals in {:?}", i + 1, t.elapsed());
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    eprintln!("filed {n} seals in {:?}", t.elapsed());
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    if args.scenario == "crash" {
        return crash_scenario(&args).await;
    }
    if args.scenario == "mixed" {
        return soak::run(&args).await;
    }
    if args.scenario == "sm4-gcm" {
        return sm4_gcm_budget();
    }
    if args.scenario == "sm3" {
        return sm3_ceiling();
    }
    if args.scenario == "audit-append" {
        return audit_append(&args);
    }
    let client = client(&args);
    let caller = Member::register(&args.data_dir, "压测系统");
    let (path, mut bodies): (&str, Vec<Vec<u8>>) = match args.scenario.as_str() {
        "system-info" => (
            "/api/v1/system/info",
            (0..args.requests).map(|_| caller.body(json!({}))).collect(),
        ),
        "seal-query" => {
            let filer = Arc::new(Member::register(&args.data_dir, "备案系统"));
            file_seals(&client, &args.url, filer, args.seals, args.concurrency).await;
            let bodies = (0..args.requests)
                .map(|i| caller.body(json!({"orgCode": org_code((i * 7) % 100), "sealType": "0"})))
                .collect();
            ("/api/v1/seal/query", bodies)
        }
        "cloud-sign" => return cloud_sign(&args, &client, &caller).await,
        other => panic!("unknown scenario {other}"),
    };
    let url = format!("{}{path}", args.url);
    // One call first, outside the figures: its answer's size is the response the budget signs.
    let probe = bodies.pop().expect("at least one request");
    let (code, probe_bytes) = send(&client, &url, probe).await;
    assert_eq!(code, "0", "the first call failed");
    let budget = sm2_budget(probe_bytes);
    let rate = args.rate.or(args.rate_of_budget.map(|f| f * budget));
    let total = bodies.len();
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, queue, url) = (client.clone(), queue.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut codes: BTreeMap<String, usize> = BTreeMap::new();
            let mut bytes = 0usize;
            let next = || {
                let mut q = queue.lock().unwrap();
                q.pop().map(|b| (total - q.len() - 1, b))
            };
            while let Some((i, body)) = next() {
                // Open loop: the i-th request is due at start + i / rate.
                let t = match rate {
                    Some(r) => {
                        let due = start + std::time::Duration::from_secs_f64(i as f64 / r);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                let (code, n) = send(&client, &url, body).await;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                bytes += n;
                *codes.entry(code).or_default() += 1;
            }
            (lat, codes, bytes)
        }));
    }
    let mut lat = Vec::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut bytes = 0;
    for t in tasks {
        let (l, c, b) = t.await.unwrap();
        lat.extend(l);
        bytes += b;
        for (k, v) in c {
            *codes.entry(k).or_default() += v;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let offered = rate.map_or_else(
        || "as fast as answered".into(),
        |r| format!("offered {r:.0} req/s"),
    );
    println!(
        "{}: {:.0} req/s is {:.1} % of the SM2 budget ({offered})",
        args.scenario,
        lat.len() as f64 / secs,
        100.0 * lat.len() as f64 / secs / budget
    );
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
    println!(
        "{}: {} requests, concurrency {}: {:.0} req/s; client latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}; mean answer {} bytes; codes {:?}",
        args.scenario,
        lat.len(),
        args.concurrency,
        lat.len() as f64 / secs,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
        bytes / lat.len().max(1),
        codes
    );
    // Every request is valid: any other answer is a failure, not a figure.
    if codes.keys().any(|c| c != "0") {
        std::process::exit(1);
    }
}

/// Sends one signed request; its answer's `code` (or the transport error) and body size.
async fn send(client: &reqwest::Client, url: &str, body: Vec<u8>) -> (String, usize) {
    let answer = match crash::post_json(client, url, body).await {
        Ok(r) => r.bytes().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match answer {
        Ok(b) => {
            // Only the code: the client's CPU is the server's too on one machine.
            #[derive(serde::Deserialize)]
            struct Head {
                code: String,
            }
            let code =
                serde_json::from_slice::<Head>(&b).map_or_else(|_| "not-json".into(), |h| h.code);
            (code, b.len())
        }
        Err(e) => {
            eprintln!("transport error: {e}");
            ("transport-error".into(), 0)
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> (Value, Option<String>) {
    let resp = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let timing = resp
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (resp.json().await.expect("JSON answer"), timing)
}

/// `total;dur=X, member;dur=Y` → X − Y.
fn platform_share(timing: &str) -> Option<f64> {
    let dur = |name: &str| {
        timing.split(',').find_map(|p| {
            let p = p.trim();
            p.strip_prefix(name)?
                .strip_prefix(";dur=")?
                .parse::<f64>()
                .ok()
        })
    };
    Some(dur("total")? - dur("member")?)
}

/// A simulated home member (its own HTTPS callback server and SM2 keys) registered with the
/// server at `base`, with a cloud seal for `org` on file: (simulator, (orgCode, sealCode,
/// docHash)), the docHash being an SM2 message digest the member's signer key can sign.
async fn cloud_member(
    data_dir: &std::path::Path,
    client: &reqwest::Client,
    base: &str,
    org: String,
) -> (
    hutong::interop::simulator::RunningSimulator,
    (String, String, String),
) {
    use hutong::interop::simulator::{self, MemberIdentity, SimulatorConfig};
    let pem = client
        .get(format!("{base}/api/v1/platform/certificate"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("platform certificate")
        .text()
        .await
        .unwrap();
    let identity = MemberIdentity::generate("压测乙方单位").unwrap();
    let seal = identity
        .build_seal("压测合同章", "LOAD-CLOUD", vec![0x89; 4096], 365)
        .unwrap();
    let signer_key = identity.kit.signer.public_key();
    let sim = simulator::start(SimulatorConfig {
        app_id: String::new(),
        platform_key: hutong::crypto::sm::sm2_public_key_from_pem(&pem).unwrap(),
        identity,
        confirm_delay: std::time::Duration::ZERO,
        time_window: std::time::Duration::from_secs(300),
        listen: "127.0.0.1:0".into(),
    })
    .unwrap();
    let home = Member::register_with(
        data_dir,
        "压测乙方系统",
        Some((sim.base_url.clone(), sim.tls_cert_pem.clone())),
    );
    sim.set_app_id(&home.app_id);
    let (v, _) = post(
        client,
        &format!("{base}/api/v1/seal/filing"),
        home.body(json!({
            "name": "压测合同章", "sealType": "04", "possessor": "压测乙方单位", "possessorCertNo": org,
            "possessorType": 1, "bizType": 1, "certType": 2,
            "sealData": base64::engine::general_purpose::STANDARD.encode(&seal),
        })),
    )
    .await;
    let seal_code = v["data"]
        .as_str()
        .unwrap_or_else(|| panic!("cloud seal filing: {v}"))
        .to_string();
    let digest =
        hutong::crypto::sm::sm2_message_digest(&signer_key, b"TBS_Sign to be signed").unwrap();
    let doc_hash = base64::engine::general_purpose::STANDARD.encode(digest);
    (sim, (org, seal_code, doc_hash))
}

async fn cloud_sign(args: &Args, client: &reqwest::Client, caller: &Member) {
    let (sim, (org, seal_code, doc_hash)) =
        cloud_member(&args.data_dir, client, &args.url, org_code(0)).await;

    let api = |p: &str| format!("{}/api/v1/{p}", args.url);
    let flows_left = Arc::new(AtomicU32::new(args.requests as u32));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, flows_left) = (client.clone(), flows_left.clone());
        let (api, org, seal_code, doc_hash) =
            (api(""), org.clone(), seal_code.clone(), doc_hash.clone());
        let caller = Member {
            app_id: caller.app_id.clone(),
            key: Sm2KeyPair::from_secret_bytes(&caller.key.secret_bytes()).unwrap(),
            nonce: AtomicU32::new(caller.nonce.fetch_add(5_000_000, Ordering::Relaxed)),
        };
        tasks.push(tokio::spawn(async move {
            let mut sign_ms = Vec::new();
            let mut platform_ms = Vec::new();
            let mut failures = 0;
            while flows_left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok() {
                let (q, _) = post(&client, &format!("{api}seal/query"), caller.body(json!({"orgCode": org, "sealType": "0"}))).await;
                let sign_id = q["data"][0]["signId"].as_str().unwrap_or_default().to_string();
                let apply = json!({"sealCode": seal_code, "mobile": "13812345678", "name": "张三", "orgCode": org});
                let (a, _) = post(&client, &format!("{api}cloud/auth/apply"), caller.body(apply)).await;
                let auth_id = a["data"]["authId"].as_str().unwrap_or_default().to_string();
                let (r, _) = post(&client, &format!("{api}cloud/auth/result"), caller.body(json!({"authId": auth_id, "sealCode": seal_code}))).await;
                let auth_code = r["data"]["authCode"].as_str().unwrap_or_default().to_string();
                let t = Instant::now();
                let (s, timing) = post(
                    &client,
                    &format!("{api}cloud/sign"),
                    caller.body(json!({
                        "sealCode": seal_code, "authId": auth_id, "authCode": auth_code, "type": "P1",
                        "docHash": doc_hash, "credentNo": "11010519491231002X", "orgCode": org,
                        "signId": sign_id, "hashType": 4,
                    })),
                )
                .await;
                if s["code"] != "0" {
                    failures += 1;
                    continue;
                }
                sign_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                if let Some(p) = timing.as_deref().and_then(platform_share) {
                    platform_ms.push(p);
                }
            }
            (sign_ms, platform_ms, failures)
        }));
    }
    let (mut sign_ms, mut platform_ms, mut failures) = (Vec::new(), Vec::new(), 0);
    for t in tasks {
        let (s, p, f) = t.await.unwrap();
        sign_ms.extend(s);
        platform_ms.extend(p);
        failures += f;
    }
    let secs = start.elapsed().as_secs_f64();
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(((v.len().max(1) - 1) as f64 * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "cloud-sign: {} flows ({} failed), {} concurrent: {:.0} routed cloud/sign per s (each flow also does query, apply, result); cloud/sign round trip ms p50 {:.2} p99 {:.2}; platform's own share per routed call ms p50 {:.2} p99 {:.2}",
        sign_ms.len() + failures,
        failures,
        args.concurrency,
        sign_ms.len() as f64 / secs,
        pct(&mut sign_ms, 0.5),
        pct(&mut sign_ms, 0.99),
        pct(&mut platform_ms, 0.5),
        pct(&mut platform_ms, 0.99),
    );
    sim.stop().await;
}

/// What the machine's SM4-GCM allows on one core: the ceiling of backup, check and restore,
/// which encrypt or decrypt every byte once in 64 KiB chunks.
fn sm4_gcm_budget() {
    let key = hutong::crypto::sm::random_bytes::<16>();
    let chunk = vec![0x5au8; 64 * 1024];
    let start = Instant::now();
    let mut bytes = 0usize;
    while start.elapsed().as_secs_f64() < 2.0 {
        let sealed = hutong::crypto::sm4::seal(&key, &chunk);
        bytes += chunk.len();
        std::hint::black_box(sealed);
    }
    let mbps = bytes as f64 / 1_048_576.0 / start.elapsed().as_secs_f64();
    println!("sm4-gcm: {mbps:.1} MiB/s on one core (64 KiB chunks)");
}

/// What the machine's SM3 allows on one core: the ceiling of signing a large answer (the
/// signature hashes every byte of the body once).
fn sm3_ceiling() {
    let data = vec![0x5au8; 256 * 1024];
    let start = Instant::now();
    let mut bytes = 0usize;
    while start.elapsed().as_secs_f64() < 2.0 {
        std::hint::black_box(hutong::crypto::sm::sm3(&data));
        bytes += data.len();
    }
    let mbps = bytes as f64 / 1_048_576.0 / start.elapsed().as_secs_f64();
    println!("sm3: {mbps:.1} MiB/s on one core (256 KiB messages)");
}

/// Appends `--requests` API-call entries to a fresh store's audit log on one thread (the
/// JCS leaf, its hash, the frontier update and the leaf write of each append), then one flush.
fn audit_append(args: &Args) {
    let dir = tempfile::tempdir().unwrap();
    let store = hutong::store::Store::open(dir.path()).unwrap();
    let draft = |i: usize| hutong::audit::entry::Draft {
        at_ms: hutong::time::now_ms(),
        kind: hutong::audit::entry::Kind::Api,
        action: "system.info".into(),
        actor: hutong::audit::entry::Actor {
            kind: "system".into(),
            id: format!("HT{:014X}", i % 32),
            role: None,
        },
        target: String::new(),
        result: hutong::audit::entry::Result::Ok,
        code: Some(0),
        request_id: Some(format!("{i:032x}")),
        client: Some("127.0.0.1".into()),
        latency_ms: Some(3),
        params_digest: Some(hutong::crypto::sm::sm3_hex(i.to_string().as_bytes())),
        detail: String::new(),
    };
    let start = Instant::now();
    for i in 0..args.requests {
        store.append_audit(&draft(i)).unwrap();
    }
    let appended = start.elapsed().as_secs_f64();
    store.flush_blocking().unwrap();
    let total = start.elapsed().as_secs_f64();
    println!(
        "audit-append: {} entries on one thread: {:.0} appends/s ({:.1} µs each); with the final flush {:.0}/s",
        args.requests,
        args.requests as f64 / appended,
        appended * 1e6 / args.requests as f64,
        args.requests as f64 / total
    );
}

async fn crash_scenario(args: &Args) {
    let binary = soak::hutong_binary(args);
    let report = crash::run(crash::CrashConfig {
        binary,
        clients: args.concurrency,
        duration: std::time::Duration::from_secs(args.duration_secs),
        kills: args.kills,
    })
    .await;
    println!("{report}");
    if !report.ok() {
        std::process::exit(1);
    }
}

/// Calls per second this machine's SM2 allows when each call is one verification of a
/// request-sized message and one signature of a `response_bytes` body (SM3 over all of it),
/// on every core at once.
fn sm2_budget(response_bytes: usize) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let run = std::time::Duration::from_secs(2);
    let started = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            std::thread::spawn(move || {
                let member = Sm2KeyPair::generate();
                let platform = Sm2KeyPair::generate();
                let request = format!(
                    "appId=HT3400000000000001&nonce=12345678&time={}&version=1.0",
                    1_732_250_000_000u64
                );
                let sig = member.sign(request.as_bytes());
                let key = member.public_key();
                let response = vec![b'x'; response_bytes];
                let mut calls = 0u64;
                while started.elapsed() < run {
                    hutong::crypto::sm::sm2_verify(&key, request.as_bytes(), &sig).unwrap();
                    std::hint::black_box(platform.sign(&response));
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let calls: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let budget = calls as f64 / started.elapsed().as_secs_f64();
    println!(
        "SM2 budget: {budget:.0} calls/s on {cores} cores (one request verification + one signature of a {response_bytes}-byte response per call)"
    );
    budget
}
