//! Crash harness (issue 15, point 6): runs the real `hutong serve` binary on a fresh data
//! directory, lets clients file seals and change their states, kills the server with SIGKILL
//! at random moments, restarts it, and finally opens the store itself to check that every
//! acknowledged write is there and that no unacknowledged one is half-applied.
//!
//! Shared by `loadgen --scenario crash` and the short form in `tests/crash.rs`; it owns no
//! server logic and must not soften a check to make a run pass.

use base64::Engine;
use hutong::crypto::sm::Sm2KeyPair;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub struct CrashConfig {
    /// The `hutong` binary.
    pub binary: PathBuf,
    pub clients: usize,
    /// How long clients write in all.
    pub duration: Duration,
    /// SIGKILLs spread at random over `duration`.
    pub kills: usize,
}

#[derive(Debug, Default)]
pub struct CrashReport {
    pub kills: usize,
    /// Writes answered `code 0` (filings plus state changes).
    pub acknowledged: usize,
    /// Acknowledged writes found as acknowledged (or superseded by a later attempt).
    pub found: usize,
    pub lost: Vec<String>,
    /// Unacknowledged filings found complete (allowed: the write may have landed).
    pub unacknowledged_present: usize,
    /// Records that are neither whole nor absent, or index entries without a record.
    pub half_applied: Vec<String>,
    /// Writes the server answered with an error code (none is expected).
    pub refused: Vec<String>,
}

impl CrashReport {
    pub fn ok(&self) -> bool {
        self.lost.is_empty()
            && self.half_applied.is_empty()
            && self.refused.is_empty()
            && self.acknowledged > 0
    }
}

impl std::fmt::Display for CrashReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "crash: {} SIGKILLs; acknowledged {}, found {}, lost {}; unacknowledged filings present {}, half-applied {}, refused {}",
            self.kills,
            self.acknowledged,
            self.found,
            self.lost.len(),
            self.unacknowledged_present,
            self.half_applied.len(),
            self.refused.len()
        )?;
        for l in self
            .lost
            .iter()
            .chain(&self.half_applied)
            .chain(&self.refused)
            .take(20)
        {
            write!(f, "\n  {l}")?;
        }
        Ok(())
    }
}

/// Starts `hutong serve` on a free loopback port with its log (at `log_level`) to `stderr`;
/// returns once it listens, with its port. Shared with the soak scenario.
pub fn spawn_server(
    binary: &Path,
    data_dir: &Path,
    log_level: &str,
    stderr: Stdio,
) -> (Child, u16) {
    let mut child = Command::new(binary)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", log_level)
        // The default monitoring port may be taken by another run on this machine.
        .env("HUTONG_METRICS__LISTEN", "127.0.0.1:0")
        // Clients write as fast as the server answers; the per-appId limit is not under test.
        .env("HUTONG_API__RATE_LIMIT_PER_SEC", "1000000")
        .env("HUTONG_API__RATE_LIMIT_BURST", "1000000")
        .env("HUTONG_SERVER__MAX_CONNECTIONS_PER_IP", "1024")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn hutong serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.wait();
            panic!("hutong serve exited before listening");
        };
        if let Some(rest) = line.strip_prefix("hutong listening on https://") {
            let addr = rest.split_whitespace().next().expect("address");
            let port = addr
                .rsplit(':')
                .next()
                .expect("port")
                .parse()
                .expect("port");
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (child, port);
        }
    }
}

/// An HTTPS client trusting the server's generated certificate; redirects are not followed
/// (the console's answers are checked as they come).
pub fn client(data_dir: &Path, timeout: Duration) -> reqwest::Client {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let (cert, _) = hutong::server::tls::generated_paths(data_dir);
    let pem = std::fs::read(cert).expect("server certificate");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.expect("certificate PEM")).expect("root");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .expect("client")
}

struct Writer {
    app_id: String,
    key: Sm2KeyPair,
    nonce: AtomicU32,
}

impl Writer {
    fn body(&self, extra: Value) -> Vec<u8> {
        let mut p = json!({
            "version": "1.0",
            "appId": self.app_id,
            "time": hutong::time::now_ms().to_string(),
            "nonce": self.nonce.fetch_add(1, Ordering::Relaxed),
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        if let Value::Object(e) = extra {
            p.extend(e);
        }
        let sig = self
            .key
            .sign(hutong::protocol::canonical_string(&p).as_bytes());
        p.insert(
            "sign".into(),
            base64::engine::general_purpose::STANDARD.encode(sig).into(),
        );
        serde_json::to_vec(&Value::Object(p)).expect("JSON")
    }
}

fn org_code(i: usize) -> String {
    let first17 = format!("91340000MC{i:07}");
    let check = hutong::domain::codes::uscc_check_char(first17.as_bytes()).expect("USCC");
    format!("{first17}{}", check as char)
}

/// One filed seal as its client saw it.
#[derive(Default)]
struct Sealed {
    code: String,
    /// The last acknowledged state (`1` enabled at filing).
    acked_state: i64,
    /// States the record may hold: the acknowledged one plus any sent but unanswered since.
    possible: BTreeSet<i64>,
    /// Acknowledged writes of this seal: its filing and its state changes.
    writes: usize,
}

/// What one client wrote: acknowledged filings by name, unacknowledged ones by name.
#[derive(Default)]
struct Ledger {
    org: String,
    der_by_name: BTreeMap<String, Vec<u8>>,
    acked: BTreeMap<String, Sealed>,
    unacked: BTreeSet<String>,
    refused: Vec<String>,
}

enum Answer {
    Ok(Value),
    Refused(Value),
    /// No answer: the server may or may not have applied it.
    Unknown,
}

/// POSTs a signed JSON body.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
}

async fn post(
    client: &reqwest::Client,
    base: &Arc<RwLock<String>>,
    path: &str,
    body: Vec<u8>,
) -> Answer {
    let url = format!(
        "{}{path}",
        base.read().map(|b| b.clone()).unwrap_or_default()
    );
    let Ok(resp) = post_json(client, &url, body).await else {
        return Answer::Unknown;
    };
    match resp.json::<Value>().await {
        Ok(v) if v["code"] == "0" => Answer::Ok(v),
        Ok(v) => Answer::Refused(v),
        Err(_) => Answer::Unknown,
    }
}

async fn write_loop(
    i: usize,
    writer: Writer,
    client: reqwest::Client,
    base: Arc<RwLock<String>>,
    stop: Arc<AtomicBool>,
) -> Ledger {
    let kit = hutong::ses::kit::SealKit::generate(&format!("崩溃测试单位{i}")).expect("seal kit");
    let mut ledger = Ledger {
        org: org_code(i),
        ..Ledger::default()
    };
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let roll = hutong::crypto::sm::random_bytes::<1>()[0];
        if ledger.acked.is_empty() || roll < 100 {
            let name = format!("崩溃测试章{i}-{n}");
            n += 1;
            let der = kit
                .seal_v4(&kit.params(&name, &format!("CRASH-{i}-{n}"), 365, vec![0x89; 2048]))
                .expect("seal");
            let body = writer.body(json!({
                "name": name, "sealType": "01", "possessor": format!("崩溃测试单位{i}"),
                "possessorCertNo": ledger.org, "possessorType": 1, "bizType": 1, "certType": 2,
                "sealData": base64::engine::general_purpose::STANDARD.encode(&der),
            }));
            ledger.der_by_name.insert(name.clone(), der);
            match post(&client, &base, "/api/v1/seal/filing", body).await {
                Answer::Ok(v) => {
                    let code = v["data"].as_str().unwrap_or_default().to_string();
                    ledger.acked.insert(
                        name,
                        Sealed {
                            code,
                            acked_state: 1,
                            possible: BTreeSet::from([1]),
                            writes: 1,
                        },
                    );
                }
                Answer::Refused(v) => ledger.refused.push(format!("filing {name}: {v}")),
                Answer::Unknown => {
                    ledger.unacked.insert(name);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        } else {
            let names: Vec<String> = ledger.acked.keys().cloned().collect();
            let name = &names[roll as usize % names.len()];
            let Some(seal) = ledger.acked.get_mut(name) else {
                continue;
            };
            let to = if seal.acked_state == 1 { 4 } else { 1 };
            seal.possible.insert(to);
            let body = writer.body(json!({"sealCode": seal.code, "state": to}));
            match post(&client, &base, "/api/v1/seal/state", body).await {
                Answer::Ok(_) => {
                    seal.writes += 1;
                    seal.acked_state = to;
                    seal.possible = BTreeSet::from([to]);
                }
                Answer::Refused(v) => {
                    // Refused means not applied.
                    seal.possible = BTreeSet::from([seal.acked_state]);
                    ledger.refused.push(format!("state of {}: {v}", seal.code));
                }
                Answer::Unknown => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    ledger
}

fn state_code(s: hutong::domain::vocab::SealState) -> i64 {
    use hutong::domain::vocab::SealState;
    match s {
        SealState::Enabled => 1,
        SealState::Revoked => 3,
        SealState::Disabled => 4,
    }
}

/// Opens the store of the stopped server and checks every client's ledger against it.
fn check(data_dir: &Path, ledgers: &[Ledger], report: &mut CrashReport) {
    let store = hutong::store::Store::open(data_dir).expect("open the store after the crashes");
    for l in ledgers {
        report.acknowledged += l.acked.values().map(|s| s.writes).sum::<usize>();
        report.refused.extend(l.refused.iter().cloned());
        let org = hutong::domain::seals::org_key(&store, &l.org).expect("org key");
        let mut by_name = BTreeMap::new();
        for code in store.seals_of_org(&org).expect("org index") {
            match store.get_seal(&code).expect("seal record") {
                None => report
                    .half_applied
                    .push(format!("index entry {code} without a record")),
                Some(rec) => {
                    let whole = rec
                        .current()
                        .and_then(|v| store.seal_der(&v.digest).ok().flatten());
                    if whole.as_deref() != l.der_by_name.get(&rec.name).map(Vec::as_slice) {
                        report
                            .half_applied
                            .push(format!("seal {code} ({}) without its filed data", rec.name));
                    }
                    by_name.insert(rec.name.clone(), rec);
                }
            }
        }
        for (name, sealed) in &l.acked {
            match by_name.get(name) {
                None => report.lost.push(format!(
                    "acknowledged filing {name} ({}) missing",
                    sealed.code
                )),
                Some(rec) if rec.seal_code != sealed.code => report.lost.push(format!(
                    "filing {name} answered {} but holds {}",
                    sealed.code, rec.seal_code
                )),
                Some(rec) if !sealed.possible.contains(&state_code(rec.state)) => {
                    report.lost.push(format!(
                        "seal {} in state {} after acknowledged state {}",
                        sealed.code,
                        state_code(rec.state),
                        sealed.acked_state
                    ))
                }
                Some(_) => report.found += sealed.writes,
            }
        }
        for name in by_name.keys().filter(|n| !l.acked.contains_key(*n)) {
            if l.unacked.contains(name) {
                report.unacknowledged_present += 1;
            } else {
                report
                    .half_applied
                    .push(format!("seal {name} that nobody filed"));
            }
        }
    }
}

pub async fn run(cfg: CrashConfig) -> CrashReport {
    let dir = tempfile::tempdir().expect("temp data dir");
    let data_dir = dir.path().to_path_buf();
    let (mut child, port) = spawn_server(&cfg.binary, &data_dir, "error", Stdio::null());
    let base = Arc::new(RwLock::new(format!("https://localhost:{port}")));
    let client = client(&data_dir, Duration::from_secs(10));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..cfg.clients {
        let key = Sm2KeyPair::generate();
        let added = hutong::server::control::call(
            &data_dir,
            &hutong::server::control::Command::SystemAdd {
                name: format!("崩溃测试系统{i}"),
                plat_name: "崩溃测试平台".into(),
                public_key_pem: hutong::crypto::sm::sm2_public_key_to_pem(&key.public_key()),
                callback_url: None,
                callback_ca_pem: None,
                dest_host: None,
                state: Some(hutong::domain::vocab::SystemState::Online),
            },
        )
        .expect("control socket")
        .expect("system add");
        let hutong::server::control::Response::SystemAdd(added) = added else {
            panic!("system add answered {added:?}");
        };
        let writer = Writer {
            app_id: added.app_id,
            key,
            nonce: AtomicU32::new(0),
        };
        tasks.push(tokio::spawn(write_loop(
            i,
            writer,
            client.clone(),
            base.clone(),
            stop.clone(),
        )));
    }
    let mut report = CrashReport::default();
    let start = Instant::now();
    let slot = cfg.duration / (cfg.kills.max(1) as u32 + 1);
    while report.kills < cfg.kills {
        // A random moment in the middle half of each slot.
        let jitter = u64::from(u16::from_le_bytes(hutong::crypto::sm::random_bytes::<2>()));
        let wait = slot / 2 + slot.mul_f64(jitter as f64 / 65_536.0) / 2;
        tokio::time::sleep(wait.max(Duration::from_millis(300))).await;
        child.kill().expect("SIGKILL the server");
        let _ = child.wait();
        report.kills += 1;
        let binary = cfg.binary.clone();
        let dd = data_dir.clone();
        let (c, port) =
            tokio::task::spawn_blocking(move || spawn_server(&binary, &dd, "error", Stdio::null()))
                .await
                .expect("restart");
        child = c;
        if let Ok(mut b) = base.write() {
            *b = format!("https://localhost:{port}");
        }
    }
    tokio::time::sleep(cfg.duration.saturating_sub(start.elapsed())).await;
    // The last kill comes while clients still write; then they stop and the store is read.
    child.kill().expect("SIGKILL the server");
    let _ = child.wait();
    report.kills += 1;
    stop.store(true, Ordering::Relaxed);
    let mut ledgers = Vec::new();
    for t in tasks {
        ledgers.push(t.await.expect("client"));
    }
    check(&data_dir, &ledgers, &mut report);
    report
}
