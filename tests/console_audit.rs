//! The auditor's console pages over real HTTPS and a real store: search with filters and
//! paging, entry detail with its proof, the integrity check and the export download (which
//! verifies with the CLI and the platform certificate alone); every other role is refused and
//! the refusal is itself an audit entry. The dashboard's recent events and a system's history
//! come from the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;
#[path = "support/totp.rs"]
mod totp;
use totp::*;

use hutong::domain::accounts::create_account;
use hutong::domain::audit_event::Actor;
use hutong::domain::vocab::Role;
use serde_json::json;
use std::collections::HashMap;

const PASSWORD: &str = "Console-Pass-123";

/// A cookie-keeping client that does not follow redirects (copied from tests/console.rs).
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("page has a CSRF field") + marker.len();
        let end = self.body[start..].find('"').unwrap();
        self.body[start..start + end].to_string()
    }
}

impl Browser {
    fn new(srv: &common::TestServer) -> Self {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let (cert, _) = hutong::server::tls::generated_paths(srv.data_dir.path());
        let pem = std::fs::read(cert).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&pem) {
            roots.add(c.unwrap()).unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser {
            base: srv.base.clone(),
            client,
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = if cookie.is_empty() {
            req
        } else {
            req.header("Cookie", cookie)
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for c in headers.get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let body = resp.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    fn location(p: &Page) -> &str {
        p.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    async fn password_step(&mut self, user: &str, password: &str) -> Page {
        let csrf = self.get("/console/login").await.csrf();
        self.post(
            "/console/login",
            &[("csrf", &csrf), ("username", user), ("password", password)],
        )
        .await
    }

    async fn second_step(&mut self, user: &str) -> Page {
        let csrf = self.get("/console/login/verify").await.csrf();
        let code = next_code(&self.base, user).await;
        self.post(
            "/console/login/verify",
            &[("csrf", &csrf), ("code", &code), ("signature", "")],
        )
        .await
    }

    /// Signs in through both steps, enrolling TOTP first when the account is sent to
    /// enrolment (as tests/console.rs does).
    async fn login(&mut self, user: &str, password: &str) -> Page {
        let p = self.password_step(user, password).await;
        match Self::location(&p) {
            "/console/login/verify" => self.second_step(user).await,
            "/console/second-factor" => {
                let page = self.get("/console/second-factor").await;
                let secret = between(&page.body, "id=\"secret\">", "<");
                AUTHENTICATORS
                    .lock()
                    .unwrap()
                    .insert(format!("{}/{user}", self.base), (base32(&secret), 0));
                let code = next_code(&self.base, user).await;
                let done = self
                    .post(
                        "/console/second-factor/totp",
                        &[("csrf", &page.csrf()), ("code", &code)],
                    )
                    .await;
                assert_eq!(done.status, 200, "{}", done.body);
                let csrf = self.get("/console/password").await.csrf();
                self.post("/console/logout", &[("csrf", &csrf)]).await;
                let p = self.password_step(user, password).await;
                assert_eq!(Self::location(&p), "/console/login/verify");
                self.second_step(user).await
            }
            _ => p,
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn admin(srv: &common::TestServer, name: &str, role: Role) {
    create_account(&srv.state.store, name, role, PASSWORD, false, &Actor::cli()).unwrap();
}

/// The seqs listed on a search page, in order.
fn listed(body: &str) -> Vec<u64> {
    body.split("href=\"/console/audit/entry/")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// The newest entry of the log.
fn last_entry(srv: &common::TestServer) -> hutong::audit::entry::Entry {
    let (_, leaf) = srv.state.store.recent_audit_leaves(1).unwrap().remove(0);
    hutong::audit::entry::parse(&leaf).unwrap()
}

#[tokio::test]
async fn the_auditor_searches_reads_checks_and_exports_the_log() {
    let srv = common::start().await;
    admin(&srv, "aud1", Role::Auditor);
    let member = srv.add_member("online");
    let other = srv.add_member("online");
    // 60 calls of the member (every fifth with a bad signature: denied, 20003), 3 of another.
    for i in 0..60 {
        let mut p = member.request(json!({}));
        if i % 5 == 0 {
            p.insert("sign".into(), json!(other.sign("x")));
        }
        srv.post("/api/v1/system/info", &p).await;
    }
    for _ in 0..3 {
        srv.post("/api/v1/system/info", &other.request(json!({})))
            .await;
    }

    let mut aud = Browser::new(&srv);
    assert_eq!(aud.login("aud1", PASSWORD).await.status, 303);
    let page = aud.get("/console/audit").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("href=\"/console/audit/verify\""));
    assert_eq!(listed(&page.body).len(), 50);
    assert!(page.body.contains("id=\"next\""));

    // By appId: the member's 60 calls over two pages, newest first.
    let url = format!("/console/audit?appId={}", member.app_id);
    let first = aud.get(&url).await.body;
    let seqs = listed(&first);
    assert_eq!(seqs.len(), 50);
    assert!(seqs.windows(2).all(|w| w[0] > w[1]));
    let next_href = |body: &str| {
        let i = body.find("\" id=\"next\"").unwrap();
        let j = body[..i].rfind("href=\"").unwrap() + 6;
        body[j..i]
            .replace("&amp;", "&")
            .replace("&#38;", "&")
            .replace("&#x2f;", "/")
            .replace("&#47;", "/")
    };
    let next = aud.get(&next_href(&first)).await.body;
    let more = listed(&next);
    assert_eq!(more.len(), 10);
    assert!(more[0] < *seqs.last().unwrap());
    assert!(!next.contains("id=\"next\""));

    // Combined: the member's denied calls, with their code.
    let denied = aud
        .get(&format!(
            "/console/audit?appId={}&result=denied&action=system.info",
            member.app_id
        ))
        .await
        .body;
    assert_eq!(listed(&denied).len(), 12);
    assert!(denied.contains("20003"));
    // A time range of the future is empty; a bad one is named.
    let empty = aud.get("/console/audit?from=2099-01-01").await;
    assert!(empty.body.contains("没有符合条件的条目"));
    let bad = aud.get("/console/audit?from=2026-02-30").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("起始时间"));

    // Entry detail: every field, the leaf hash, a proof against the latest checkpoint.
    let seq = listed(&denied)[0];
    let entry = aud.get(&format!("/console/audit/entry/{seq}")).await;
    assert_eq!(entry.status, 200);
    for field in ["requestId", "paramsDigest", "latencyMs", "client", "20003"] {
        assert!(entry.body.contains(field), "{field}");
    }
    // Covered by the next checkpoint (due within a minute): sign one now.
    hutong::audit::checkpoint::make(&srv.state.store, &srv.state.keys, "340000").unwrap();
    let entry = aud.get(&format!("/console/audit/entry/{seq}")).await.body;
    assert!(entry.contains("id=\"root-ok\""), "{entry}");
    let leaf = srv.state.store.audit_leaf(seq).unwrap().unwrap();
    assert!(entry.contains(&hex::encode(hutong::audit::merkle::leaf_hash(&leaf))));
    assert_eq!(aud.get("/console/audit/entry/999999").await.status, 404);
    assert_eq!(aud.get("/console/audit/entry/x").await.status, 400);

    // The integrity check runs on request and is audited.
    let check = aud.get("/console/audit/verify").await;
    assert_eq!(check.status, 200);
    assert!(!check.body.contains("id=\"verdict\""));
    let check = aud.get("/console/audit/verify?run=1").await.body;
    assert!(check.contains("审计日志完整"), "{check}");
    let e = last_entry(&srv);
    assert_eq!(
        (e.action.as_str(), e.actor.id.as_str()),
        ("audit.verify", "aud1")
    );
    assert!(e.detail.starts_with("通过"));

    // The export downloads JSON Lines, is audited, and verifies with the CLI and the
    // platform certificate alone (an empty data directory).
    let dl = aud.get("/console/audit/export").await;
    assert_eq!(dl.status, 200);
    assert!(
        dl.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    assert_eq!(last_entry(&srv).action, "audit.export");
    let lines: Vec<&str> = dl.body.lines().collect();
    assert!(lines.len() > 60 && lines[0].contains("\"entry\""));
    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("audit.jsonl");
    std::fs::write(&file, &dl.body).unwrap();
    let cert = elsewhere.path().join("platform.crt");
    std::fs::copy(srv.data_dir.path().join("keys/platform.crt"), &cert).unwrap();
    let cli = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hutong"))
            .arg("--data-dir")
            .arg(elsewhere.path().join("none"))
            .args(["audit", "verify", "--from-export"])
            .arg(file)
            .arg("--cert")
            .arg(&cert)
            .output()
            .unwrap()
    };
    let out = cli(&file);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The same file with two lines swapped fails.
    let mut swapped = lines.clone();
    swapped.swap(3, 4);
    std::fs::write(&file, swapped.join("\n")).unwrap();
    assert!(!cli(&file).status.success());

    // A time range starts at a checkpoint and begins with the anchor line.
    let today = hutong::time::Day::of_ms(hutong::time::now_ms());
    let dl = aud
        .get(&format!("/console/audit/export?from={today}+23:59"))
        .await;
    assert_eq!(dl.status, 200);
    assert!(dl.body.lines().next().unwrap().contains("\"anchor\""));
    let bad = aud.get("/console/audit/export?from=tomorrow").await;
    assert_eq!(bad.status, 400);

    // The dashboard shows the auditor the recent events from the log.
    let dash = aud.get("/console/").await.body;
    assert!(dash.contains("id=\"recent-events\"") && dash.contains("导出审计日志"));
    srv.stop().await;
}

#[tokio::test]
async fn other_roles_are_refused_and_the_refusal_is_audited() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    admin(&srv, "sec1", Role::Security);
    for user in ["op1", "sec1"] {
        let mut b = Browser::new(&srv);
        assert_eq!(b.login(user, PASSWORD).await.status, 303);
        for (page, action) in [
            ("/console/audit", "audit.search"),
            ("/console/audit/entry/0", "audit.search"),
            ("/console/audit/verify?run=1", "audit.verify"),
            ("/console/audit/export", "audit.export"),
        ] {
            let p = b.get(page).await;
            assert_eq!(p.status, 403, "{user} {page}");
            assert!(p.body.contains("无权"));
            let e = last_entry(&srv);
            assert_eq!(
                (e.action.as_str(), e.actor.id.as_str(), e.result.as_str()),
                (action, user, "denied"),
                "{user} {page}"
            );
        }
        let dash = b.get("/console/").await.body;
        assert!(!dash.contains("recent-events") && !dash.contains("/console/audit"));
    }
    // Not signed in: to the login page, nothing else.
    let mut anon = Browser::new(&srv);
    assert_eq!(anon.get("/console/audit").await.status, 303);
    srv.stop().await;
}

#[tokio::test]
async fn a_systems_history_comes_from_the_log() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    let member = srv.add_member("testing");
    let mut op = Browser::new(&srv);
    assert_eq!(op.login("op1", PASSWORD).await.status, 303);
    let path = format!("/console/systems/{}", member.app_id);
    let csrf = op.get(&path).await.csrf();
    let p = op
        .post(
            &format!("{path}/state"),
            &[("csrf", &csrf), ("to", "online"), ("reason", "联调通过")],
        )
        .await;
    assert_eq!(p.status, 303);
    let page = op.get(&path).await.body;
    let history = &page[page.find("id=\"history\"").unwrap()..];
    // Newest first: the state change by op1, then the system's registration by the CLI.
    let state = history.find("变更系统状态").unwrap();
    let add = history.find("登记接入系统").unwrap();
    assert!(state < add);
    assert!(
        history.contains("联调通过") && history.contains("op1（系统管理员）"),
        "{history}"
    );
    assert!(!history.contains("system.state") && !history.contains(">ok<"));
    srv.stop().await;
}
