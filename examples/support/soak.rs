//! Soak scenario (issue 15, point 5): `loadgen --scenario mixed --duration 10m`. Runs the real
//! `hutong serve` binary on a fresh temporary data directory and drives it from `--concurrency`
//! clients (8 is the suggested value) with what a deployment sees: seal filings, state changes
//! (enabled ↔ disabled, and fresh seals revoked), seal queries by another member, routed
//! cloud signing against the in-process member simulator, document verification (a PDF
//! signed at start-up with a fresh SM2 PKI whose root the platform trusts, and a corpus OFD)
//! and auditor console pages. Every answer is checked (API `code "0"` and the expected
//! verdict, console pages 200). Every 10 s it samples the server's RSS, open files and store
//! size into `--csv` and draws them into `--svg`; it exits non-zero on any unexpected answer,
//! an unclean exit on SIGTERM, or RSS growth above 10 % over the last 8 minutes (the last 80 %
//! of a shorter run).

#[path = "../../tests/support/pdf_updates.rs"]
mod pdf_updates;
#[path = "../../tests/support/totp.rs"]
mod totp;

use super::{Args, Member};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `600`, `600s`, `10m` or `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("“{t}”: a number of seconds, or a number followed by s, m or h"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("“{t}”: the unit is s, m or h")),
    };
    match n.checked_mul(factor) {
        Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(format!("“{t}”: must be positive and not absurdly long")),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Filing,
    State,
    Query,
    Cloud,
    Verify,
    Console,
}

const KIND_NAMES: [&str; 6] = ["filing", "state", "query", "cloud", "verify", "console"];

/// The weighted mix (per cent of operations picked).
#[derive(Clone, Copy)]
enum Op {
    File,
    Toggle,
    Revoke,
    Query,
    CloudSign,
    Verify,
    Console,
}

const MIX: [(Op, u32); 7] = [
    (Op::File, 6),
    (Op::Toggle, 12),
    (Op::Revoke, 2),
    (Op::Query, 30),
    (Op::CloudSign, 15),
    (Op::Verify, 15),
    (Op::Console, 20),
];

/// Auditor pages loaded in turn (`{app}` is the client's filing system).
const PAGES: [&str; 6] = [
    "/console/",
    "/console/audit",
    "/console/audit?appId={app}&result=ok",
    "/console/audit/verify",
    "/console/events",
    "/console/usage",
];

#[derive(Default)]
struct Stats {
    /// Requests (page loads) per [`Kind`].
    ops: [AtomicU64; 6],
    errors: AtomicU64,
    by_kind_and_code: Mutex<BTreeMap<String, u64>>,
    examples: Mutex<Vec<String>>,
    relogins: AtomicU64,
}

impl Stats {
    fn op(&self, k: Kind) {
        self.ops[k as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, k: Kind, what: &str, detail: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let key = format!("{} {what}", KIND_NAMES[k as usize]);
        *self
            .by_kind_and_code
            .lock()
            .unwrap()
            .entry(key)
            .or_default() += 1;
        let mut ex = self.examples.lock().unwrap();
        if ex.len() < 20 {
            ex.push(format!(
                "{what}: {}",
                detail.chars().take(300).collect::<String>()
            ));
        }
    }

    fn total(&self) -> u64 {
        self.ops.iter().map(|o| o.load(Ordering::Relaxed)).sum()
    }
}

/// A document sent for verification with the verdict verified locally at start-up.
struct Doc {
    name: String,
    bytes: Vec<u8>,
    verify_result: bool,
    sign_count: usize,
}

/// What every client shares.
struct Shared {
    client: reqwest::Client,
    base: String,
    stats: Stats,
    docs: Vec<Doc>,
    /// The simulated home member's cloud seal: (orgCode, sealCode, docHash).
    cloud: (String, String, String),
}

fn roll(n: usize) -> usize {
    u32::from_le_bytes(hutong::crypto::sm::random_bytes::<4>()) as usize % n.max(1)
}

fn org_code(i: usize) -> String {
    let first17 = format!("91340000MD{i:07}");
    let check = hutong::domain::codes::uscc_check_char(first17.as_bytes()).unwrap();
    format!("{first17}{}", check as char)
}

/// The checked answer of an API call: `Some` only for `code "0"`.
async fn answer(
    sh: &Shared,
    kind: Kind,
    path: &str,
    resp: reqwest::Result<reqwest::Response>,
) -> Option<Value> {
    let v = match resp {
        Ok(r) => r.json::<Value>().await,
        Err(e) => Err(e),
    };
    match v {
        Ok(v) if v["code"] == "0" => Some(v),
        Ok(v) => {
            let code = v["code"].as_str().unwrap_or("?").to_string();
            sh.stats
                .error(kind, &format!("{path} code {code}"), &v.to_string());
            None
        }
        Err(e) => {
            sh.stats
                .error(kind, &format!("{path} transport"), &e.to_string());
            None
        }
    }
}

async fn api(sh: &Shared, kind: Kind, path: &str, body: Vec<u8>) -> Option<Value> {
    sh.stats.op(kind);
    let resp = sh
        .client
        .post(format!("{}/api/v1/{path}", sh.base))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await;
    answer(sh, kind, path, resp).await
}

/// The signed text parameters of a document upload: the file's SM3 is signed as `file`.
fn upload_params(m: &Member, file: &[u8]) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("version".into(), "1.0".into());
    p.insert("appId".into(), m.app_id.clone().into());
    p.insert("time".into(), hutong::time::now_ms().to_string().into());
    p.insert(
        "nonce".into(),
        m.nonce.fetch_add(1, Ordering::Relaxed).into(),
    );
    p.insert("file".into(), hutong::crypto::sm::sm3_hex(file).into());
    let sig = m
        .key
        .sign(hutong::protocol::canonical_string(&p).as_bytes());
    p.remove("file");
    p.insert(
        "sign".into(),
        base64::engine::general_purpose::STANDARD.encode(sig).into(),
    );
    p
}

struct Page {
    status: u16,
    location: String,
    body: String,
}

fn csrf(body: &str) -> Result<String, String> {
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).ok_or("page without a CSRF field")? + marker.len();
    let len = body[start..].find('"').ok_or("unterminated CSRF field")?;
    Ok(body[start..start + len].to_string())
}

fn expect(p: &Page, status: u16, location: &str) -> Result<(), String> {
    if p.status == status && p.location == location {
        Ok(())
    } else {
        Err(format!(
            "HTTP {} → “{}”, expected {status} → “{location}”",
            p.status, p.location
        ))
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An auditor in a browser: its own cookie jar (`__Host-` cookies), redirects not followed.
struct Browser {
    client: reqwest::Client,
    base: String,
    user: String,
    password: String,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    async fn send(&mut self, req: reqwest::RequestBuilder) -> Result<Page, String> {
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let req = if jar.is_empty() {
            req
        } else {
            req.header("Cookie", jar.join("; "))
        };
        let resp = req.send().await.map_err(|e| format!("transport: {e}"))?;
        let status = resp.status().as_u16();
        for c in resp.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap_or_default();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            if let Some((k, v)) = kv.split_once('=') {
                if attrs.contains("Max-Age=0") {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_string(), v.to_string());
                }
            }
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = resp.text().await.map_err(|e| format!("body: {e}"))?;
        Ok(Page {
            status,
            location,
            body,
        })
    }

    async fn get(&mut self, path: &str) -> Result<Page, String> {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Result<Page, String> {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect();
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.join("&"));
        self.send(req).await
    }

    async fn password_step(&mut self, password: &str) -> Result<Page, String> {
        let token = csrf(&self.get("/console/login").await?.body)?;
        let user = self.user.clone();
        let form = [
            ("csrf", token.as_str()),
            ("username", &user),
            ("password", password),
        ];
        self.post("/console/login", &form).await
    }

    /// First sign-in of an account made through the control socket: the forced password
    /// change, then TOTP enrolment (the secret read off the page, as a person would).
    async fn first_login(&mut self, initial: &str) -> Result<(), String> {
        expect(
            &self.password_step(initial).await?,
            303,
            "/console/password",
        )?;
        let token = csrf(&self.get("/console/password").await?.body)?;
        let new = self.password.clone();
        let form = [
            ("csrf", token.as_str()),
            ("current", initial),
            ("new", &new),
            ("confirm", &new),
        ];
        let p = self.post("/console/password", &form).await?;
        expect(&p, 303, "/console/second-factor?done=password")?;
        let page = self.get("/console/second-factor").await?;
        expect(&page, 200, "")?;
        let secret = totp::between(&page.body, "id=\"secret\">", "<");
        totp::AUTHENTICATORS.lock().unwrap().insert(
            format!("{}/{}", self.base, self.user),
            (totp::base32(&secret), 0),
        );
        let code = totp::next_code(&self.base, &self.user).await;
        let token = csrf(&page.body)?;
        let p = self
            .post(
                "/console/second-factor/totp",
                &[("csrf", &token), ("code", &code)],
            )
            .await?;
        expect(&p, 200, "")
    }

    async fn login(&mut self) -> Result<(), String> {
        self.cookies.clear();
        let password = self.password.clone();
        expect(
            &self.password_step(&password).await?,
            303,
            "/console/login/verify",
        )?;
        let token = csrf(&self.get("/console/login/verify").await?.body)?;
        let code = totp::next_code(&self.base, &self.user).await;
        let form = [("csrf", token.as_str()), ("code", &code), ("signature", "")];
        expect(
            &self.post("/console/login/verify", &form).await?,
            303,
            "/console/",
        )
    }
}

/// One client: a filing system, a second system that queries, signs and verifies, and an
/// auditor in the console.
struct Worker {
    i: usize,
    sh: Arc<Shared>,
    filer: Member,
    caller: Member,
    kit: hutong::ses::kit::SealKit,
    /// Seals this client filed and may toggle, with their last acknowledged state.
    seals: Vec<(String, i64)>,
    /// Organisations with seals on file (four seals each at most).
    orgs: Vec<String>,
    filed: usize,
    browser: Browser,
    page: usize,
    doc: usize,
}

impl Worker {
    async fn file(&mut self) -> Option<String> {
        let (i, n) = (self.i, self.filed);
        self.filed += 1;
        let org_n = i * 100_000 + n / 4;
        let org = org_code(org_n);
        let name = format!("浸泡测试章{i}-{n}");
        let der = self
            .kit
            .seal_v4(
                &self
                    .kit
                    .params(&name, &format!("SOAK-{i}-{n}"), 365, vec![0x89; 4096]),
            )
            .unwrap();
        let body = self.filer.body(json!({
            "name": name, "sealType": "01", "possessor": format!("浸泡测试单位{org_n}"),
            "possessorCertNo": org, "possessorType": 1, "bizType": 1, "certType": 2,
            "sealData": base64::engine::general_purpose::STANDARD.encode(&der),
        }));
        let v = api(&self.sh, Kind::Filing, "seal/filing", body).await?;
        if self.orgs.last() != Some(&org) {
            self.orgs.push(org);
        }
        v["data"].as_str().map(str::to_string)
    }

    async fn set_state(&mut self, code: &str, to: i64) -> bool {
        let body = self.filer.body(json!({"sealCode": code, "state": to}));
        api(&self.sh, Kind::State, "seal/state", body)
            .await
            .is_some()
    }

    async fn op(&mut self, op: Op) {
        match op {
            Op::Toggle if !self.seals.is_empty() => {
                let k = roll(self.seals.len());
                let (code, state) = self.seals[k].clone();
                let to = if state == 1 { 4 } else { 1 };
                if self.set_state(&code, to).await {
                    self.seals[k].1 = to;
                }
            }
            // Revoked is final: a fresh seal is filed for it.
            Op::Revoke => {
                if let Some(code) = self.file().await {
                    self.set_state(&code, 3).await;
                }
            }
            Op::Query if !self.orgs.is_empty() => {
                let org = self.orgs[roll(self.orgs.len())].clone();
                let body = self.caller.body(json!({"orgCode": org, "sealType": "0"}));
                api(&self.sh, Kind::Query, "seal/query", body).await;
            }
            // A filing, also when nothing is filed yet to change or look up.
            Op::File | Op::Toggle | Op::Query => {
                if let Some(code) = self.file().await {
                    self.seals.push((code, 1));
                }
            }
            Op::CloudSign => self.cloud_sign().await,
            Op::Verify => self.verify().await,
            Op::Console => self.console().await,
        }
    }

    /// query → cloud/auth/apply → cloud/auth/result → cloud/sign, routed to the simulator.
    async fn cloud_sign(&mut self) {
        let sh = self.sh.clone();
        let (org, seal_code, doc_hash) = &sh.cloud;
        let body = self.caller.body(json!({"orgCode": org, "sealType": "0"}));
        let Some(q) = api(&sh, Kind::Cloud, "seal/query", body).await else {
            return;
        };
        let Some(sign_id) = q["data"][0]["signId"].as_str().map(str::to_string) else {
            return sh
                .stats
                .error(Kind::Cloud, "seal/query without signId", &q.to_string());
        };
        let apply =
            json!({"sealCode": seal_code, "mobile": "13812345678", "name": "张三", "orgCode": org});
        let body = self.caller.body(apply);
        let Some(a) = api(&sh, Kind::Cloud, "cloud/auth/apply", body).await else {
            return;
        };
        let auth_id = a["data"]["authId"].as_str().unwrap_or_default().to_string();
        let body = self
            .caller
            .body(json!({"authId": auth_id, "sealCode": seal_code}));
        let Some(r) = api(&sh, Kind::Cloud, "cloud/auth/result", body).await else {
            return;
        };
        let auth_code = r["data"]["authCode"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let body = self.caller.body(json!({
            "sealCode": seal_code, "authId": auth_id, "authCode": auth_code, "type": "P1",
            "docHash": doc_hash, "credentNo": "11010519491231002X", "orgCode": org,
            "signId": sign_id, "hashType": 4,
        }));
        if let Some(s) = api(&sh, Kind::Cloud, "cloud/sign", body).await
            && s["data"]["signData"].as_str().is_none_or(str::is_empty)
        {
            sh.stats
                .error(Kind::Cloud, "cloud/sign without signData", &s.to_string());
        }
    }

    async fn verify(&mut self) {
        let sh = self.sh.clone();
        let doc = &sh.docs[self.doc % sh.docs.len()];
        self.doc += 1;
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in upload_params(&self.caller, &doc.bytes) {
            form = form.text(k, v.as_str().map_or_else(|| v.to_string(), str::to_string));
        }
        let part = reqwest::multipart::Part::bytes(doc.bytes.clone()).file_name(doc.name.clone());
        sh.stats.op(Kind::Verify);
        let resp = sh
            .client
            .post(format!("{}/api/v1/document/verify", sh.base))
            .multipart(form.part("file", part))
            .send()
            .await;
        let Some(v) = answer(&sh, Kind::Verify, "document/verify", resp).await else {
            return;
        };
        let d = &v["data"];
        if d["verifyResult"] != doc.verify_result || d["signCount"] != doc.sign_count {
            let what = format!("document/verify verdict of {}", doc.name);
            sh.stats.error(Kind::Verify, &what, &d.to_string());
        }
    }

    async fn console(&mut self) {
        let path = PAGES[self.page % PAGES.len()].replace("{app}", &self.filer.app_id);
        self.page += 1;
        self.sh.stats.op(Kind::Console);
        let mut page = self.browser.get(&path).await;
        if let Ok(p) = &page
            && p.status == 303
            && p.location.starts_with("/console/login")
        {
            self.sh.stats.relogins.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.browser.login().await {
                return self.sh.stats.error(Kind::Console, "login again", &e);
            }
            page = self.browser.get(&path).await;
        }
        let what = path.split('?').next().unwrap_or_default();
        match page {
            Ok(p) if p.status == 200 => {}
            Ok(p) => {
                let detail = format!("→ {} {}", p.location, p.body);
                self.sh
                    .stats
                    .error(Kind::Console, &format!("{what} HTTP {}", p.status), &detail)
            }
            Err(e) => self
                .sh
                .stats
                .error(Kind::Console, &format!("{what} transport"), &e),
        }
    }

    async fn run(mut self, deadline: tokio::time::Instant) -> Self {
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        while tokio::time::Instant::now() < deadline {
            let mut r = roll(total as usize) as u32;
            for (op, w) in MIX {
                if r < w {
                    self.op(op).await;
                    break;
                }
                r -= w;
            }
        }
        self
    }
}

/// SIGTERM, then up to 30 s for a clean exit (status 0).
fn stop_server(child: &mut Child) -> Result<(), String> {
    // SAFETY: kill(2) on the pid of our own child, which has not been waited for yet.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => return Err(format!("exited with {s} after SIGTERM")),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("still running 30 s after SIGTERM (killed)".into())
}

fn control(
    data_dir: &Path,
    cmd: hutong::server::control::Command,
) -> hutong::server::control::Response {
    hutong::server::control::call(data_dir, &cmd)
        .expect("control socket")
        .expect("the server answers on its control socket")
}

/// A PDF signed now with a fresh SM2 PKI (its root trusted by the platform) and a corpus OFD;
/// each with the verdict the crate's verifier gives it here.
fn documents(data_dir: &Path) -> Vec<Doc> {
    use hutong::verify::{VerifyOptions, report::EmptyRegistry, verify_document};
    let pki = pdf_updates::pki(2_000_000_000_000);
    control(
        data_dir,
        hutong::server::control::Command::TrustAdd {
            certificate_b64: base64::engine::general_purpose::STANDARD.encode(&pki.root_cert),
        },
    );
    let ofd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ofd/ofdrw-V4RideRight.ofd");
    let opts = VerifyOptions {
        trust_anchors: vec![pki.root_cert.clone()],
        ..Default::default()
    };
    let files = [
        ("contract.pdf".to_string(), pdf_updates::signed_sample(&pki)),
        (
            "ofdrw-V4RideRight.ofd".to_string(),
            std::fs::read(&ofd).expect("corpus OFD"),
        ),
    ];
    let docs: Vec<Doc> = files
        .into_iter()
        .map(|(name, bytes)| {
            let r = verify_document(&bytes, &name, &opts, &EmptyRegistry).expect("verifies");
            Doc {
                name,
                bytes,
                verify_result: r.verify_result,
                sign_count: r.sign_count,
            }
        })
        .collect();
    assert!(docs[0].verify_result, "the generated PDF must verify");
    for d in &docs {
        eprintln!(
            "document {} ({} bytes): {} signature(s), expected verifyResult {}",
            d.name,
            d.bytes.len(),
            d.sign_count,
            d.verify_result
        );
    }
    docs
}

struct Sample {
    t: f64,
    rss_kib: u64,
    open_files: u64,
    store_bytes: u64,
    ops: u64,
    errors: u64,
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    })
}

fn sample(pid: u32, db: &Path, t: f64, stats: &Stats) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Sample {
        t,
        rss_kib,
        open_files: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64),
        store_bytes: dir_bytes(db),
        ops: stats.total(),
        errors: stats.errors.load(Ordering::Relaxed),
    }
}

/// Title, value of a sample, colour, decimals.
type Panel = (&'static str, fn(&Sample) -> f64, &'static str, usize);

/// Three stacked panels on one time axis; the dashed line starts the RSS growth window.
fn svg(samples: &[Sample], window_s: f64) -> String {
    let (w, ph, left, right, top, gap) = (900.0, 160.0, 90.0, 30.0, 50.0, 45.0);
    let tmax = samples.last().map_or(1.0, |s| s.t).max(1.0);
    let x = |t: f64| left + t / tmax * (w - left - right);
    let panels: [Panel; 3] = [
        ("RSS (MiB)", |s| s.rss_kib as f64 / 1024.0, "#c0392b", 1),
        ("open files", |s| s.open_files as f64, "#2471a3", 0),
        (
            "store on disk (MiB)",
            |s| s.store_bytes as f64 / 1_048_576.0,
            "#1e8449",
            1,
        ),
    ];
    let h = top + 3.0 * (ph + gap) + 10.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"13\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">hutong soak: {} samples over {tmax:.0} s (dashed: start of the RSS growth window)</text>\n",
        samples.len()
    );
    for (k, (label, f, colour, dp)) in panels.iter().enumerate() {
        let y0 = top + k as f64 * (ph + gap);
        let vals: Vec<f64> = samples.iter().map(f).collect();
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let y = |v: f64| y0 + ph - (v - lo) / span * ph;
        let points: Vec<String> = samples
            .iter()
            .zip(&vals)
            .map(|(s, v)| format!("{:.1},{:.1}", x(s.t), y(*v)))
            .collect();
        let (xl, xr, yb, wx) = (x(0.0), x(tmax), y0 + ph, x(window_s));
        out += &format!(
            "<text x=\"{xl}\" y=\"{}\" font-weight=\"bold\">{label}</text>\n<rect x=\"{xl}\" y=\"{y0}\" width=\"{}\" height=\"{ph}\" fill=\"none\" stroke=\"#888\"/>\n<line x1=\"{wx:.1}\" y1=\"{y0}\" x2=\"{wx:.1}\" y2=\"{yb}\" stroke=\"#aaa\" stroke-dasharray=\"4 4\"/>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{hi:.dp$}</text>\n<text x=\"{}\" y=\"{yb}\" text-anchor=\"end\">{lo:.dp$}</text>\n<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>\n",
            y0 - 8.0,
            xr - xl,
            xl - 6.0,
            y0 + 10.0,
            xl - 6.0,
            points.join(" ")
        );
        for t in [0.0, tmax / 2.0, tmax] {
            out += &format!(
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{t:.0} s</text>\n",
                x(t),
                yb + 16.0
            );
        }
    }
    out + "</svg>\n"
}

/// `--hutong-bin`, else the `hutong` built beside this example; it must exist.
pub fn hutong_binary(args: &Args) -> PathBuf {
    // target/<profile>/examples/loadgen → target/<profile>/hutong
    let binary = args.hutong_bin.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap();
        exe.parent()
            .and_then(|p| p.parent())
            .unwrap()
            .join("hutong")
    });
    assert!(
        binary.exists(),
        "{} not found: build it first (cargo build --bin hutong) or pass --hutong-bin",
        binary.display()
    );
    binary
}

/// Runs the scenario and exits the process: 0 only when every check passed.
pub async fn run(args: &Args) {
    let binary = hutong_binary(args);
    let dir = tempfile::tempdir().expect("temp data dir");
    let data_dir = dir.path().to_path_buf();
    let log = data_dir.join("server.log");
    let server_log = std::fs::File::create(&log).expect("server log");
    let (mut child, port) =
        super::crash::spawn_server(&binary, &data_dir, "warn", Stdio::from(server_log));
    let base = format!("https://localhost:{port}");
    eprintln!(
        "mixed: hutong serve (pid {}) on {base}, data directory {}, log {}",
        child.id(),
        data_dir.display(),
        log.display()
    );
    let client = super::crash::client(&data_dir, Duration::from_secs(30));
    if args.seals > 0 {
        // A store larger than sled's page cache, as on a server in service: the window then
        // measures the server, not its caches filling up to their bounds.
        let filer = Arc::new(Member::register(&data_dir, "浸泡测试预置系统"));
        super::file_seals(&client, &base, filer, args.seals, 8).await;
        // Each organisation queried once, so the server's cache of query answers' seal parts
        // is at its bound too before the clock starts.
        let reader = Member::register(&data_dir, "浸泡测试预热系统");
        for i in 0..args.seals.min(100) {
            let body = reader.body(json!({"orgCode": super::org_code(i), "sealType": "0"}));
            let v: Value = client
                .post(format!("{base}/api/v1/seal/query"))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .expect("warm-up query")
                .json()
                .await
                .expect("warm-up answer");
            assert_eq!(v["code"], "0", "warm-up query: {}", v["message"]);
        }
        eprintln!("mixed: warmed up with {} seals", args.seals);
    }
    let docs = documents(&data_dir);
    let (sim, cloud) = super::cloud_member(&data_dir, &client, &base, org_code(9_999_999)).await;
    let sh = Arc::new(Shared {
        client: client.clone(),
        base: base.clone(),
        stats: Stats::default(),
        docs,
        cloud,
    });
    let clients = args.concurrency.max(1);
    let mut workers = Vec::new();
    for i in 0..clients {
        let user = format!("soak-auditor-{i}");
        let initial = "Soak-Initial-Pass-1";
        control(
            &data_dir,
            hutong::server::control::Command::AdminCreate {
                role: hutong::domain::vocab::Role::Auditor,
                username: user.clone(),
                password: initial.into(),
            },
        );
        let mut browser = Browser {
            client: client.clone(),
            base: base.clone(),
            user,
            password: format!(
                "Soak-Audit-{}",
                hex::encode(hutong::crypto::sm::random_bytes::<6>())
            ),
            cookies: BTreeMap::new(),
        };
        browser.first_login(initial).await.expect("console sign-in");
        // Once more through both steps, as after an expired session during the run.
        browser.login().await.expect("console sign-in again");
        workers.push(Worker {
            i,
            sh: sh.clone(),
            filer: Member::register(&data_dir, &format!("浸泡测试备案系统{i}")),
            caller: Member::register(&data_dir, &format!("浸泡测试调用系统{i}")),
            kit: hutong::ses::kit::SealKit::generate(&format!("浸泡测试单位{i}")).unwrap(),
            seals: Vec::new(),
            orgs: Vec::new(),
            filed: 0,
            browser,
            page: 0,
            doc: 0,
        });
    }

    let duration = args.duration;
    let window_s = if duration >= Duration::from_secs(600) {
        (duration - Duration::from_secs(480)).as_secs_f64()
    } else {
        duration.as_secs_f64() * 0.2
    };
    let (pid, db) = (child.id(), data_dir.join("db"));
    eprintln!("mixed: {clients} clients for {} s", duration.as_secs());
    let t0 = tokio::time::Instant::now();
    let show = |s: &Sample| {
        eprintln!(
            "  {:>5.0} s: RSS {:.1} MiB, {} open files, store {:.1} MiB, {} ops, {} errors",
            s.t,
            s.rss_kib as f64 / 1024.0,
            s.open_files,
            s.store_bytes as f64 / 1_048_576.0,
            s.ops,
            s.errors
        )
    };
    let mut samples = vec![sample(pid, &db, 0.0, &sh.stats)];
    show(&samples[0]);
    let deadline = t0 + duration;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|w| tokio::spawn(w.run(deadline)))
        .collect();
    let mut at: Vec<f64> = (1..)
        .map(|k| k as f64 * 10.0)
        .take_while(|t| *t < duration.as_secs_f64())
        .chain([window_s])
        .collect();
    at.sort_by(f64::total_cmp);
    at.dedup();
    for t in at {
        tokio::time::sleep_until(t0 + Duration::from_secs_f64(t)).await;
        samples.push(sample(pid, &db, t, &sh.stats));
        show(samples.last().unwrap());
    }
    for t in tasks {
        if t.await.is_err() {
            sh.stats.error(Kind::Console, "client task panicked", "");
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    samples.push(sample(pid, &db, secs, &sh.stats));
    show(samples.last().unwrap());
    sim.stop().await;
    let stopped = stop_server(&mut child);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let notable: Vec<&str> = log_text
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    eprintln!(
        "mixed: server log: {} warning or error lines",
        notable.len()
    );
    for l in notable.iter().take(5) {
        eprintln!("  {l}");
    }

    let mut csv = String::from("elapsed_s,rss_kib,open_files,store_bytes,ops_total,errors_total\n");
    for s in &samples {
        csv += &format!(
            "{:.1},{},{},{},{},{}\n",
            s.t, s.rss_kib, s.open_files, s.store_bytes, s.ops, s.errors
        );
    }
    std::fs::write(&args.csv, csv).expect("write the CSV");
    std::fs::write(&args.svg, svg(&samples, window_s)).expect("write the SVG");

    let near = |t: f64| {
        samples
            .iter()
            .min_by(|a, b| (a.t - t).abs().total_cmp(&(b.t - t).abs()))
            .unwrap()
    };
    let (first, last) = (&samples[0], samples.last().unwrap());
    let rss_start = near(window_s).rss_kib as f64;
    let rss_end = last.rss_kib as f64;
    let growth = 100.0 * (rss_end - rss_start) / rss_start.max(1.0);
    let errors = sh.stats.errors.load(Ordering::Relaxed);
    let per_kind: Vec<String> = KIND_NAMES
        .iter()
        .zip(&sh.stats.ops)
        .map(|(name, n)| {
            let n = n.load(Ordering::Relaxed);
            format!("{name} {n} ({:.1}/s)", n as f64 / secs)
        })
        .collect();
    let ok = errors == 0 && growth <= 10.0 && stopped.is_ok();
    for (k, n) in sh.stats.by_kind_and_code.lock().unwrap().iter() {
        eprintln!("  error {k}: {n}");
    }
    for e in sh.stats.examples.lock().unwrap().iter() {
        eprintln!("  e.g. {e}");
    }
    eprintln!(
        "mixed: CSV {}, chart {}",
        args.csv.display(),
        args.svg.display()
    );
    println!(
        "mixed: {secs:.0} s, {clients} clients, {} ops ({:.1}/s): {}; errors {errors}; RSS {:.1} MiB at {window_s:.0} s → {:.1} MiB at the end ({growth:+.1} %, limit +10 %); open files max {}; store {:.1} → {:.1} MiB; console re-logins {}; server stop: {}; {}",
        last.ops,
        last.ops as f64 / secs,
        per_kind.join(", "),
        rss_start / 1024.0,
        rss_end / 1024.0,
        samples.iter().map(|s| s.open_files).max().unwrap_or(0),
        first.store_bytes as f64 / 1_048_576.0,
        last.store_bytes as f64 / 1_048_576.0,
        sh.stats.relogins.load(Ordering::Relaxed),
        stopped
            .as_ref()
            .map_or_else(|e| e.as_str(), |_| "clean exit"),
        if ok { "PASS" } else { "FAIL" }
    );
    if !ok {
        let kept = dir.keep();
        eprintln!(
            "mixed: data directory and server log kept in {}",
            kept.display()
        );
        std::process::exit(1);
    }
}
