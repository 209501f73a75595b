//! Console and vendor portal over real HTTPS: role boundaries on every page and action, CSRF
//! refusal, session cookies and rotation, forced password change, tenant isolation; trust
//! anchors, document verification and seal registry search; 测试回调 against a simulator member
//! on the system page and in the testing vendor's portal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;
#[path = "support/totp.rs"]
mod totp;
use totp::*;

use hutong::domain::accounts::create_account;
use hutong::domain::audit_event::{Action as Act, Actor, Outcome};
use hutong::domain::vocab::ApplicationState;
use hutong::domain::vocab::Role;
use std::collections::HashMap;

const USCC: &str = "91350100M000100Y43";
const PASSWORD: &str = "Console-Pass-123";

/// A cookie-keeping client that does not follow redirects, so each answer can be inspected.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Page {
    status: u16,
    location: String,
    set_cookies: Vec<String>,
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

/// Posts the quota form of a system page.
async fn post_quota(
    b: &mut Browser,
    url: &str,
    csrf: &str,
    [kind, limit, from, until]: [&str; 4],
) -> Page {
    let form = [
        ("csrf", csrf),
        ("kind", kind),
        ("limit", limit),
        ("from", from),
        ("until", until),
    ];
    b.post(url, &form).await
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
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set_cookies {
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let location = headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = resp.text().await.unwrap();
        Page {
            status,
            location,
            set_cookies,
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

    async fn post_multipart(&mut self, path: &str, form: reqwest::multipart::Form) -> Page {
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .multipart(form);
        self.send(req).await
    }

    /// The first step only: the password form.
    async fn password_step(&mut self, user: &str, password: &str) -> Page {
        let csrf = self.get("/console/login").await.csrf();
        self.post(
            "/console/login",
            &[("csrf", &csrf), ("username", user), ("password", password)],
        )
        .await
    }

    /// The second step with the next TOTP code of `user`'s authenticator.
    async fn second_step(&mut self, user: &str) -> Page {
        let csrf = self.get("/console/login/verify").await.csrf();
        let code = next_code(&self.base, user).await;
        self.post(
            "/console/login/verify",
            &[("csrf", &csrf), ("code", &code), ("signature", "")],
        )
        .await
    }

    /// Signs in through both steps, enrolling TOTP first if the account is sent to enrolment
    /// (then signing out and in again, so the answer is always the one that opens the
    /// session). Stops at the first answer that is not a step of this flow (wrong password,
    /// lockout, forced password change).
    async fn login(&mut self, user: &str, password: &str) -> Page {
        let p = self.password_step(user, password).await;
        match p.location.as_str() {
            "/console/login/verify" => self.second_step(user).await,
            "/console/second-factor" => {
                let enrolled = self.enrol(user).await;
                assert_eq!(enrolled.status, 200, "{}", enrolled.body);
                self.logout().await;
                let p = self.password_step(user, password).await;
                assert_eq!(p.location, "/console/login/verify");
                self.second_step(user).await
            }
            _ => p,
        }
    }

    /// Enrols TOTP on the enrolment page: reads the Base32 secret off the page (as a person
    /// types it into an authenticator) and confirms with its first code; returns the page
    /// with the recovery codes.
    async fn enrol(&mut self, user: &str) -> Page {
        let page = self.get("/console/second-factor").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let secret = between(&page.body, "id=\"secret\">", "<");
        AUTHENTICATORS
            .lock()
            .unwrap()
            .insert(format!("{}/{user}", self.base), (base32(&secret), 0));
        let code = next_code(&self.base, user).await;
        self.post(
            "/console/second-factor/totp",
            &[("csrf", &page.csrf()), ("code", &code)],
        )
        .await
    }

    async fn logout(&mut self) -> Page {
        let csrf = self.session_csrf().await;
        self.post("/console/logout", &[("csrf", &csrf)]).await
    }

    /// Signs in and returns the session's CSRF token from a page every role can open.
    async fn session_csrf(&mut self) -> String {
        self.get("/console/password").await.csrf()
    }
}

/// application/x-www-form-urlencoded encoding of one value.
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

/// (path, form fields besides the CSRF token, the user whose role may do it).
type Action<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

fn admin(srv: &common::TestServer, name: &str, role: Role) {
    create_account(&srv.state.store, name, role, PASSWORD, false, &Actor::cli()).unwrap();
}

async fn register_vendor(b: &mut Browser, user: &str, uscc: &str, mobile: &str) -> Page {
    let csrf = b.get("/portal/register").await.csrf();
    b.post(
        "/portal/register",
        &[
            ("csrf", &csrf),
            ("username", user),
            ("password", PASSWORD),
            ("org_name", "某某科技有限公司"),
            ("uscc", uscc),
            ("legal_rep", "张三"),
            ("contact_name", "李四"),
            ("mobile", mobile),
            ("email", "ops@example.cn"),
        ],
    )
    .await
}

fn public_key_pem() -> String {
    use hutong::crypto::sm::{Sm2KeyPair, sm2_public_key_to_pem};
    sm2_public_key_to_pem(&Sm2KeyPair::generate().public_key())
}

async fn apply(b: &mut Browser, system_name: &str) -> Page {
    let csrf = b.get("/portal/").await.csrf();
    let key = public_key_pem();
    b.post(
        "/portal/apply",
        &[
            ("csrf", &csrf),
            ("system_name", system_name),
            ("plat_name", "某某平台"),
            ("vendor", "某某科技"),
            ("public_key_pem", &key),
            ("callback_url", ""),
            ("dest_host", ""),
        ],
    )
    .await
}

#[tokio::test]
async fn pages_carry_security_headers_and_cookies_are_locked_down() {
    let srv = common::start().await;
    let mut b = Browser::new(&srv);
    let p = b.get("/console").await;
    assert_eq!((p.status, p.location.as_str()), (303, "/console/"));
    let p = b.get("/console/").await;
    assert_eq!((p.status, p.location.as_str()), (303, "/console/login"));
    let p = b.get("/console/login").await;
    assert_eq!(p.status, 200);
    let csp = p.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(p.headers["x-frame-options"], "DENY");
    assert!(!p.body.contains("<script") && !p.body.contains("style="));
    for c in &p.set_cookies {
        assert!(
            c.contains("Secure") && c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
    }
    let css = b.get("/console/static/console.css").await;
    assert_eq!(css.status, 200);
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );

    admin(&srv, "op1", Role::Operator);
    let p = b.login("op1", PASSWORD).await;
    assert_eq!((p.status, p.location.as_str()), (303, "/console/"));
    let session = p
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-hutong_session="))
        .expect("session cookie");
    assert!(
        session.contains("Secure")
            && session.contains("HttpOnly")
            && session.contains("SameSite=Strict")
    );
    let first = b.cookies["__Host-hutong_session"].clone();
    // Signing in again yields a different session token (rotation), and the old one is dead.
    b.login("op1", PASSWORD).await;
    let second = b.cookies["__Host-hutong_session"].clone();
    assert_ne!(first, second);
    let mut old = Browser::new(&srv);
    old.cookies.insert("__Host-hutong_session".into(), first);
    assert_eq!(old.get("/console/").await.status, 303);
    let dash = b.get("/console/").await;
    assert_eq!(dash.status, 200);
    assert!(dash.body.contains("<svg") && dash.body.contains("最近 24 小时"));
    srv.stop().await;
}

#[tokio::test]
async fn forged_posts_are_refused() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    // A login form posted without the form token (a cross-site login) is refused.
    let mut b = Browser::new(&srv);
    let p = b
        .post(
            "/console/login",
            &[("csrf", "x"), ("username", "op1"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(p.body.contains("CSRF"));

    let mut vendor = Browser::new(&srv);
    assert_eq!(
        register_vendor(&mut vendor, "vendor1", USCC, "13812345678")
            .await
            .status,
        303
    );
    vendor.login("vendor1", PASSWORD).await;
    assert_eq!(
        apply(&mut vendor, "甲印章系统").await.location,
        "/portal/?done=apply"
    );

    b.login("op1", PASSWORD).await;
    let real = b.session_csrf().await;
    for forged in ["", "0000", &"a".repeat(64)] {
        let p = b
            .post("/console/applications/vendor1/approve", &[("csrf", forged)])
            .await;
        assert_eq!(p.status, 403, "forged token {forged:?}");
    }
    let app = srv.state.store.get_application("vendor1").unwrap().unwrap();
    assert_eq!(app.state, ApplicationState::Submitted);
    // Another session's token does not work either.
    let mut other = Browser::new(&srv);
    other.login("op1", PASSWORD).await;
    let other_csrf = other.session_csrf().await;
    let p = b
        .post(
            "/console/applications/vendor1/approve",
            &[("csrf", &other_csrf)],
        )
        .await;
    assert_eq!(p.status, 403);
    let p = b
        .post("/console/applications/vendor1/approve", &[("csrf", &real)])
        .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/console/applications?done=approve")
    );
    let app = srv.state.store.get_application("vendor1").unwrap().unwrap();
    assert_eq!(app.state, ApplicationState::Approved);
    let events = srv.state.store.recent_events(100).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == Act::OnboardingApprove && e.outcome == Outcome::Denied)
    );
    assert!(events.iter().any(|e| e.action == Act::OnboardingApprove
        && e.outcome == Outcome::Ok
        && e.actor.id == "op1"));
    srv.stop().await;
}

#[tokio::test]
async fn every_role_reaches_only_its_own_pages_and_actions() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    admin(&srv, "sec1", Role::Security);
    admin(&srv, "aud1", Role::Auditor);
    let mut vendor = Browser::new(&srv);
    register_vendor(&mut vendor, "vendor1", USCC, "13812345678").await;
    vendor.login("vendor1", PASSWORD).await;
    apply(&mut vendor, "甲印章系统").await;

    let pages = [
        "/console/",
        "/console/applications",
        "/console/systems",
        "/console/accounts",
        "/console/keys",
        "/console/events",
        "/console/seals",
        "/console/verify",
        "/console/trust",
        "/portal/",
        "/portal/platform.pem",
    ];
    let allowed: [(&str, &[&str]); 4] = [
        (
            "op1",
            &[
                "/console/",
                "/console/applications",
                "/console/systems",
                "/console/seals",
                "/console/verify",
            ],
        ),
        (
            "sec1",
            &[
                "/console/",
                "/console/systems",
                "/console/accounts",
                "/console/keys",
                "/console/trust",
            ],
        ),
        ("aud1", &["/console/", "/console/events"]),
        ("vendor1", &["/portal/", "/portal/platform.pem"]),
    ];
    for (user, ok) in allowed {
        let mut b = Browser::new(&srv);
        assert_eq!(b.login(user, PASSWORD).await.status, 303);
        for page in pages {
            let p = b.get(page).await;
            let want = if ok.contains(&page) { 200 } else { 403 };
            assert_eq!(p.status, want, "{user} GET {page}");
        }
        // Actions of other roles, with this session's valid CSRF token.
        let csrf = b.session_csrf().await;
        let actions: [Action; 5] = [
            (
                "/console/applications/vendor1/reject",
                &[("reason", "不符合要求")],
                "op1",
            ),
            (
                "/console/accounts",
                &[("username", "newop"), ("role", "operator")],
                "sec1",
            ),
            ("/console/accounts/aud1/disable", &[], "sec1"),
            ("/portal/rotate", &[("public_key_pem", "x")], "vendor1"),
            (
                "/console/systems/HTNONE/destroy",
                &[("confirm", "HTNONE"), ("reason", "x")],
                "sec1",
            ),
        ];
        for (path, fields, owner) in actions {
            if owner == user {
                continue;
            }
            let mut form = vec![("csrf", csrf.as_str())];
            form.extend_from_slice(fields);
            let p = b.post(path, &form).await;
            assert_eq!(p.status, 403, "{user} POST {path}");
        }
    }
    // Nothing changed by the refused actions.
    let app = srv.state.store.get_application("vendor1").unwrap().unwrap();
    assert_eq!(app.state, ApplicationState::Submitted);
    assert!(srv.state.store.get_account("newop").unwrap().is_none());
    assert!(
        !srv.state
            .store
            .get_account("aud1")
            .unwrap()
            .unwrap()
            .disabled
    );

    // The auditor sees the refusals, with actor and role.
    let mut aud = Browser::new(&srv);
    aud.login("aud1", PASSWORD).await;
    let events = aud.get("/console/events").await.body;
    // In words: the act, the result and the role, no wire names or `角色=` tags.
    assert!(
        events.contains("拒绝") && events.contains("aud1（审计管理员）"),
        "{events}"
    );
    assert!(!events.contains("角色=") && !events.contains(">denied<"));
    // The keys page never shows key material.
    let mut sec = Browser::new(&srv);
    sec.login("sec1", PASSWORD).await;
    let keys = sec.get("/console/keys").await.body;
    assert!(keys.contains("密钥提供者") && !keys.contains("PRIVATE KEY"));
    // Created and last-used times, and the key operations from the audit log: the start's
    // unwrap (or the first start's creation) is there.
    assert!(keys.contains("最近使用") && keys.contains("id=\"key-history\""));
    assert!(
        keys.contains("解封平台密钥") || keys.contains("生成平台密钥"),
        "no key operation on the key page"
    );
    // After rotations (as `hutong keys rotate …` runs them): both platform certificates,
    // the retired KEK awaiting destruction, and the rotations in the history.
    for cmd in [
        hutong::server::control::Command::KeysRotatePlatform,
        hutong::server::control::Command::KeysRotateKek,
    ] {
        hutong::server::control::execute(
            &srv.state.store,
            Some(&srv.state.keys),
            &srv.state.config,
            cmd,
        )
        .expect("rotation");
    }
    let keys = sec.get("/console/keys").await.body;
    let certs = &keys[keys
        .find("id=\"platform-certificates\"")
        .expect("certificate table")..];
    let certs = &certs[..certs.find("</table>").unwrap()];
    assert_eq!(certs.matches("<tr><td>").count(), 2, "{certs}");
    assert!(certs.contains("当前") && certs.contains("过渡期（仍公布）"));
    assert!(keys.contains("id=\"retired-keks\"") && keys.contains("kek-retired-"));
    assert!(keys.contains("轮换平台签名密钥") && keys.contains("轮换密钥加密密钥"));
    srv.stop().await;
}

#[tokio::test]
async fn new_administrators_must_change_their_password_first() {
    let srv = common::start().await;
    admin(&srv, "sec1", Role::Security);
    let mut sec = Browser::new(&srv);
    sec.login("sec1", PASSWORD).await;
    let csrf = sec.session_csrf().await;
    let p = sec
        .post(
            "/console/accounts",
            &[("csrf", &csrf), ("username", "op2"), ("role", "operator")],
        )
        .await;
    assert_eq!(p.status, 200);
    let marker = "id=\"issued-password\">";
    let start = p.body.find(marker).expect("one-time password shown") + marker.len();
    let initial = p.body[start..start + p.body[start..].find('<').unwrap()].to_string();

    let mut op = Browser::new(&srv);
    let p = op.login("op2", &initial).await;
    assert_eq!(p.location, "/console/password");
    for page in ["/console/", "/console/applications"] {
        let p = op.get(page).await;
        assert_eq!(
            (p.status, p.location.as_str()),
            (303, "/console/password"),
            "{page}"
        );
    }
    let csrf = op.session_csrf().await;
    let p = op
        .post(
            "/console/password",
            &[
                ("csrf", &csrf),
                ("current", &initial),
                ("new", "weak"),
                ("confirm", "weak"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("密码长度"));
    // Having to change the password is a notice to act on, styled apart from a success.
    assert!(
        p.body.contains("class=\"attention\" id=\"forced\""),
        "{}",
        p.body
    );
    let p = op
        .post(
            "/console/password",
            &[
                ("csrf", &csrf),
                ("current", &initial),
                ("new", "Operator-New-Pass-1"),
                ("confirm", "Operator-New-Pass-1"),
            ],
        )
        .await;
    // Then the second factor: every page sends the account to enrolment until it is done.
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/console/second-factor?done=password")
    );
    // The change is confirmed there; the forced-change notice was not a success message.
    let enrol = op.get(&p.location).await.body;
    assert!(enrol.contains("id=\"notice\">密码已修改"), "{enrol}");
    assert_eq!(
        op.get("/console/applications").await.location,
        "/console/second-factor"
    );
    assert_eq!(op.enrol("op2").await.status, 200);
    assert_eq!(op.get("/console/applications").await.status, 200);

    // Disabling the account ends its session at once.
    let csrf = sec.session_csrf().await;
    let p = sec
        .post("/console/accounts/op2/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(
        op.get("/console/applications").await.location,
        "/console/login"
    );
    srv.stop().await;
}

/// Approving, rejecting, changing a system's state, disabling an account and resetting a
/// password first ask on a page of their own, which posts the act; the page the act returns to
/// says what was done.
#[tokio::test]
async fn irreversible_acts_ask_first_and_say_what_was_done() {
    let srv = common::start().await;
    let mut v = Browser::new(&srv);
    register_vendor(&mut v, "vendor-a", USCC, "13812345678").await;
    v.login("vendor-a", PASSWORD).await;
    apply(&mut v, "甲印章系统").await;
    admin(&srv, "op1", Role::Operator);
    admin(&srv, "sec1", Role::Security);
    admin(&srv, "op2", Role::Operator);
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;

    // The queue links to the confirmation, which changes nothing by itself.
    let queue = op.get("/console/applications").await.body;
    assert!(queue.contains("href=\"/console/applications/vendor-a/approve\""));
    let ask = op.get("/console/applications/vendor-a/approve").await;
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("确认通过入驻申请") && ask.body.contains("甲印章系统"));
    assert!(
        ask.body
            .contains("action=\"/console/applications/vendor-a/approve\"")
    );
    let app = srv
        .state
        .store
        .get_application("vendor-a")
        .unwrap()
        .unwrap();
    assert_eq!(
        app.state,
        ApplicationState::Submitted,
        "asking changes nothing"
    );
    let p = op
        .post(
            "/console/applications/vendor-a/approve",
            &[("csrf", &ask.csrf())],
        )
        .await;
    assert_eq!(p.status, 303);
    let back = op.get(&p.location).await.body;
    assert!(back.contains("id=\"notice\">已通过入驻申请"), "{back}");
    let app_id = srv
        .state
        .store
        .get_application("vendor-a")
        .unwrap()
        .unwrap()
        .app_id
        .unwrap();

    // A suspension names the state change and its consequence, and keeps the typed reason.
    let path = format!("/console/systems/{app_id}");
    let ask = op
        .get(&format!(
            "{path}/state?to=suspended&reason=%E8%BF%9D%E8%A7%84"
        ))
        .await;
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(ask.body.contains("确认暂停系统") && ask.body.contains("20002"));
    assert!(ask.body.contains("value=\"违规\""));
    let p = op
        .post(
            &format!("{path}/state"),
            &[
                ("csrf", &ask.csrf()),
                ("to", "suspended"),
                ("reason", "违规"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    assert!(
        op.get(&p.location)
            .await
            .body
            .contains("id=\"notice\">系统状态已变更")
    );
    assert_eq!(
        srv.state.store.get_system(&app_id).unwrap().unwrap().state,
        hutong::domain::vocab::SystemState::Suspended
    );

    // Disabling and resetting an administrator.
    let mut sec = Browser::new(&srv);
    sec.login("sec1", PASSWORD).await;
    let list = sec.get("/console/accounts").await.body;
    assert!(list.contains("href=\"/console/accounts/op2/disable\""));
    let ask = sec.get("/console/accounts/op2/disable").await;
    assert!(ask.body.contains("确认停用账户") && ask.body.contains("op2"));
    assert!(
        !srv.state
            .store
            .get_account("op2")
            .unwrap()
            .unwrap()
            .disabled
    );
    let p = sec
        .post("/console/accounts/op2/disable", &[("csrf", &ask.csrf())])
        .await;
    assert_eq!(p.status, 303);
    assert!(
        sec.get(&p.location)
            .await
            .body
            .contains("id=\"notice\">账户已停用")
    );
    let ask = sec.get("/console/accounts/op2/reset").await;
    assert!(ask.body.contains("确认重置密码"));
    // The operator may not even ask.
    assert_eq!(op.get("/console/accounts/op2/reset").await.status, 403);
    srv.stop().await;
}

/// The queue shows an applicant's real-name data masked; the deciding operator sees it whole
/// only after giving a reason, and the look is audited with that reason.
#[tokio::test]
async fn an_applicants_full_data_is_revealed_only_with_an_audited_reason() {
    let srv = common::start().await;
    let mut v = Browser::new(&srv);
    register_vendor(&mut v, "vendor-a", USCC, "13812345678").await;
    v.login("vendor-a", PASSWORD).await;
    apply(&mut v, "甲印章系统").await;
    admin(&srv, "op1", Role::Operator);
    admin(&srv, "aud1", Role::Auditor);
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let queue = op.get("/console/applications").await.body;
    assert!(
        queue.contains("张*") && queue.contains("138****5678"),
        "{queue}"
    );
    assert!(!queue.contains("13812345678") && !queue.contains("张三"));
    let csrf = op.session_csrf().await;
    let p = op
        .post(
            "/console/applications/vendor-a/reveal",
            &[("csrf", &csrf), ("reason", " ")],
        )
        .await;
    assert_eq!(p.status, 400, "a reason is required");
    assert!(!p.body.contains("13812345678"));
    let p = op
        .post(
            "/console/applications/vendor-a/reveal",
            &[("csrf", &csrf), ("reason", "核对法定代表人")],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        p.body.contains("张三")
            && p.body.contains("13812345678")
            && p.body.contains("ops@example.cn")
    );
    let looks = events_of(&srv, Act::OnboardingReveal);
    let ok: Vec<_> = looks.iter().filter(|e| e.outcome == Outcome::Ok).collect();
    assert_eq!(ok.len(), 1, "{looks:?}");
    assert_eq!(ok[0].target, "vendor-a");
    assert!(ok[0].detail.as_str().contains("核对法定代表人"));
    assert_eq!(ok[0].actor.id, "op1");
    // Neither a forged form nor another role gets it.
    let p = op
        .post(
            "/console/applications/vendor-a/reveal",
            &[("csrf", "forged"), ("reason", "x")],
        )
        .await;
    assert_eq!(p.status, 403);
    let mut aud = Browser::new(&srv);
    aud.login("aud1", PASSWORD).await;
    let acsrf = aud.session_csrf().await;
    let p = aud
        .post(
            "/console/applications/vendor-a/reveal",
            &[("csrf", &acsrf), ("reason", "x")],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(!p.body.contains("13812345678"));
    srv.stop().await;
}

/// A USCC typed in lower case is kept upper-cased; a second account for the same
/// organisation is pointed out to the operator deciding either application.
#[tokio::test]
async fn a_second_registration_of_one_organisation_warns_the_operator() {
    let srv = common::start().await;
    let mut a = Browser::new(&srv);
    assert_eq!(
        register_vendor(&mut a, "vendor-a", USCC, "13812345678")
            .await
            .status,
        303
    );
    let mut b = Browser::new(&srv);
    let lower = USCC.to_ascii_lowercase();
    assert_eq!(
        register_vendor(&mut b, "vendor-b", &format!(" {lower} "), "13912345678")
            .await
            .status,
        303
    );
    a.login("vendor-a", PASSWORD).await;
    b.login("vendor-b", PASSWORD).await;
    apply(&mut a, "甲印章系统").await;
    apply(&mut b, "乙印章系统").await;
    admin(&srv, "op1", Role::Operator);
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let queue = op.get("/console/applications").await.body;
    let article = |user: &str| between(&queue, &format!("id=\"app-{user}\""), "</article>");
    assert!(
        article("vendor-a").contains("same-uscc") && article("vendor-a").contains("vendor-b"),
        "{queue}"
    );
    assert!(article("vendor-b").contains("vendor-a"));
    assert!(article("vendor-b").contains(USCC), "stored upper-cased");
    // Fields the vendor left empty say so.
    assert!(article("vendor-a").contains("未填写"));
    srv.stop().await;
}

#[tokio::test]
async fn vendors_get_field_errors_and_see_only_their_own_application() {
    let srv = common::start().await;
    let mut a = Browser::new(&srv);
    let p = register_vendor(&mut a, "vendor-a", "91350100M000100Y44", "2381234567").await;
    assert_eq!(p.status, 400);
    // The USCC's fault is named: here its check character (GB 32100-2015).
    assert!(
        p.body.contains("id=\"uscc-error\"") && p.body.contains("校验位错误：第 18 位应为“3”"),
        "{}",
        p.body
    );
    assert!(p.body.contains("id=\"mobile-error\"") && p.body.contains("手机号须为"));
    assert!(!p.body.contains(PASSWORD), "password is never echoed");
    assert_eq!(
        register_vendor(&mut a, "vendor-a", USCC, "13812345678")
            .await
            .status,
        303
    );
    let mut b = Browser::new(&srv);
    register_vendor(&mut b, "vendor-b", USCC, "13912345678").await;

    a.login("vendor-a", PASSWORD).await;
    b.login("vendor-b", PASSWORD).await;
    // Bad key: rejected at upload with a message next to the field.
    let csrf = a.session_csrf().await;
    let p = a
        .post(
            "/portal/apply",
            &[
                ("csrf", &csrf),
                ("system_name", "甲系统"),
                ("plat_name", "甲"),
                ("vendor", "甲"),
                (
                    "public_key_pem",
                    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
                ),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("id=\"public_key_pem-error\""));
    apply(&mut a, "甲印章系统").await;
    let home_a = a.get("/portal/").await.body;
    assert!(home_a.contains("甲印章系统") && home_a.contains("138****5678"));
    let home_b = b.get("/portal/").await.body;
    assert!(!home_b.contains("甲印章系统") && !home_b.contains("138****5678"));

    // Rejection reason reaches the applicant; resubmission is possible.
    admin(&srv, "op1", Role::Operator);
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let csrf = op.session_csrf().await;
    let p = op
        .post(
            "/console/applications/vendor-a/reject",
            &[("csrf", &csrf), ("reason", " ")],
        )
        .await;
    assert_eq!(p.status, 400, "a reason is required");
    let p = op
        .post(
            "/console/applications/vendor-a/reject",
            &[("csrf", &csrf), ("reason", "公钥与证书主体不一致")],
        )
        .await;
    assert_eq!(p.status, 303);
    let home_a = a.get("/portal/").await.body;
    assert!(home_a.contains("公钥与证书主体不一致") && home_a.contains("重新提交"));

    // A callback server under a private CA: the CA is validated at upload and shown to the
    // operator who decides.
    let ca_key = hutong::crypto::sm::Sm2KeyPair::generate();
    let now = common::now_ms();
    let spec = hutong::crypto::certgen::CertSpec {
        common_name: "乙方回调 CA".into(),
        organization: None,
        not_before_ms: now - 1000,
        not_after_ms: now + 86_400_000,
        is_ca: true,
        serial: None,
    };
    let ca_der = hutong::crypto::certgen::self_signed_sm2(&spec, &ca_key).unwrap();
    let ca_pem = hutong::crypto::sm::pem_encode("CERTIFICATE", &ca_der);
    let key = public_key_pem();
    let csrf = b.session_csrf().await;
    let form = |ca: &'static str| {
        vec![
            ("system_name", "乙印章系统".to_string()),
            ("plat_name", "乙".into()),
            ("vendor", "乙".into()),
            ("public_key_pem", key.clone()),
            ("callback_url", "https://callback.example.cn/hutong".into()),
            ("callback_ca_pem", ca.into()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let mut all = vec![("csrf", csrf.clone())];
        all.extend(fields);
        all
    };
    let bad = post(form(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
    ));
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post("/portal/apply", &bad).await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("id=\"callback_ca_pem-error\""));
    let mut good = post(form(""));
    good.last_mut().unwrap().1 = ca_pem;
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(b.post("/portal/apply", &good).await.status, 303);
    let queue = op.get("/console/applications").await.body;
    assert!(
        queue.contains("回调服务 CA") && queue.contains("乙方回调 CA"),
        "{queue}"
    );
    srv.stop().await;
}

/// Vendor `vendor1` signed in with its application approved by operator `op1`: the two
/// sessions, the operator's CSRF token and the new system's appId.
async fn approved_system(srv: &common::TestServer) -> (Browser, Browser, String, String) {
    admin(srv, "op1", Role::Operator);
    let mut vendor = Browser::new(srv);
    register_vendor(&mut vendor, "vendor1", USCC, "13812345678").await;
    vendor.login("vendor1", PASSWORD).await;
    apply(&mut vendor, "甲印章系统").await;
    let mut op = Browser::new(srv);
    op.login("op1", PASSWORD).await;
    let csrf = op.session_csrf().await;
    op.post("/console/applications/vendor1/approve", &[("csrf", &csrf)])
        .await;
    let app_id = srv
        .state
        .store
        .get_application("vendor1")
        .unwrap()
        .unwrap()
        .app_id
        .unwrap();
    (vendor, op, csrf, app_id)
}

#[tokio::test]
async fn operators_move_systems_with_a_reason_and_rotate_vendor_keys() {
    let srv = common::start().await;
    let (mut vendor, mut op, csrf, app_id) = approved_system(&srv).await;
    let path = format!("/console/systems/{app_id}/state");

    let p = op
        .post(&path, &[("csrf", &csrf), ("to", "online"), ("reason", "")])
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("原因"));
    let p = op
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("to", "online"),
                ("reason", "联调测试通过"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    let p = op
        .post(
            &path,
            &[("csrf", &csrf), ("to", "suspended"), ("reason", "证书过期")],
        )
        .await;
    assert_eq!(p.status, 303);
    let detail = op.get(&format!("/console/systems/{app_id}")).await.body;
    assert!(
        detail.contains("已暂停") && detail.contains("证书过期") && detail.contains("联调测试通过")
    );
    let sys = srv.state.store.get_system(&app_id).unwrap().unwrap();
    assert_eq!(sys.state, hutong::domain::vocab::SystemState::Suspended);

    // Key rotation: the vendor asks, the operator enables; old and new keys are both valid.
    let vcsrf = vendor.session_csrf().await;
    let p = vendor
        .post(
            "/portal/rotate",
            &[("csrf", &vcsrf), ("public_key_pem", "junk")],
        )
        .await;
    assert_eq!(p.status, 400);
    let new_key = public_key_pem();
    let p = vendor
        .post(
            "/portal/rotate",
            &[("csrf", &vcsrf), ("public_key_pem", &new_key)],
        )
        .await;
    assert_eq!(p.location, "/portal/?done=rotate");
    assert!(
        op.get("/console/applications")
            .await
            .body
            .contains("密钥轮换待处理")
    );
    let p = op
        .post("/console/applications/vendor1/rotation", &[("csrf", &csrf)])
        .await;
    assert_eq!(p.status, 303);
    let sys = srv.state.store.get_system(&app_id).unwrap().unwrap();
    assert_eq!(sys.public_keys.len(), 2);
    assert_eq!(sys.public_keys[1].trim(), new_key.trim());

    assert_eq!(op.get("/console/no-such-page").await.status, 404);
    srv.stop().await;
}

/// A self-signed SM2 CA certificate in PEM, as a vendor's private callback CA.
fn callback_ca_pem(cn: &str) -> String {
    let now = common::now_ms();
    let spec = hutong::crypto::certgen::CertSpec {
        common_name: cn.into(),
        organization: None,
        not_before_ms: now - 1000,
        not_after_ms: now + 86_400_000,
        is_ca: true,
        serial: None,
    };
    let key = hutong::crypto::sm::Sm2KeyPair::generate();
    let der = hutong::crypto::certgen::self_signed_sm2(&spec, &key).unwrap();
    hutong::crypto::sm::pem_encode("CERTIFICATE", &der)
}

#[tokio::test]
async fn vendors_request_callback_changes_that_operators_approve_or_reject() {
    let srv = common::start().await;
    let (mut vendor, mut op, csrf, app_id) = approved_system(&srv).await;
    let change = |csrf: &str, url: &str, ca: &str, dest: &str| {
        vec![
            ("csrf".to_string(), csrf.to_string()),
            ("callback_url".into(), url.into()),
            ("callback_ca_pem".into(), ca.into()),
            ("dest_host".into(), dest.into()),
        ]
    };
    async fn post(b: &mut Browser, path: &str, fields: &[(String, String)]) -> Page {
        let f: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        b.post(path, &f).await
    }

    // Not before approval: another vendor whose application is still in the queue.
    let mut early = Browser::new(&srv);
    register_vendor(&mut early, "vendor2", USCC, "13912345678").await;
    early.login("vendor2", PASSWORD).await;
    apply(&mut early, "乙印章系统").await;
    let ecsrf = early.session_csrf().await;
    let p = post(
        &mut early,
        "/portal/callback",
        &change(&ecsrf, "https://cb.example.cn", "", ""),
    )
    .await;
    assert_eq!(p.status, 400);
    assert!(
        p.body.contains("入驻申请通过后才能变更回调配置"),
        "{}",
        p.body
    );
    let app2 = srv.state.store.get_application("vendor2").unwrap().unwrap();
    assert!(app2.pending_callback.is_none());

    // The portal offers the form prefilled with the system's settings (none yet).
    let home = vendor.get("/portal/").await.body;
    assert!(home.contains("变更回调配置") && home.contains("id=\"request-callback-change\""));
    let vcsrf = vendor.session_csrf().await;
    // A plain-http URL: a field error, nothing stored.
    let ca = callback_ca_pem("甲方回调 CA");
    let p = post(
        &mut vendor,
        "/portal/callback",
        &change(
            &vcsrf,
            "http://cb.example.cn/hutong",
            &ca,
            "https://ukey.example.cn",
        ),
    )
    .await;
    assert_eq!(p.status, 400);
    assert!(
        p.body.contains("id=\"callback_url-error\"") && p.body.contains("https:// 开头"),
        "{}",
        p.body
    );
    // What was typed stays in the form.
    assert!(p.body.contains("http://cb.example.cn/hutong"));
    let app = srv.state.store.get_application("vendor1").unwrap().unwrap();
    assert!(app.pending_callback.is_none());
    // Without the session's CSRF token, and from an operator's session: refused.
    let good = change(
        &vcsrf,
        "https://cb.example.cn/hutong",
        &ca,
        "https://ukey.example.cn",
    );
    let mut forged = good.clone();
    forged[0].1 = "0".repeat(64);
    assert_eq!(
        post(&mut vendor, "/portal/callback", &forged).await.status,
        403
    );
    let mut as_op = good.clone();
    as_op[0].1 = csrf.clone();
    assert_eq!(post(&mut op, "/portal/callback", &as_op).await.status, 403);
    assert!(
        srv.state
            .store
            .get_application("vendor1")
            .unwrap()
            .unwrap()
            .pending_callback
            .is_none()
    );

    let p = post(&mut vendor, "/portal/callback", &good).await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/portal/?done=callback")
    );
    let home = vendor.get("/portal/?done=callback").await.body;
    assert!(home.contains("回调配置变更已提交") && home.contains("id=\"callback-pending\""));
    assert!(home.contains("https://cb.example.cn/hutong"));

    // The operator sees it in the queue, old → new, and on the system page.
    let queue = op.get("/console/applications").await.body;
    assert!(queue.contains("回调配置变更待处理"), "{queue}");
    assert!(
        queue.contains("https://cb.example.cn/hutong")
            && queue.contains("甲方回调 CA")
            && queue.contains("id=\"callback-approve-vendor1\"")
    );
    let system = format!("/console/systems/{app_id}");
    let page = op.get(&system).await.body;
    assert!(
        page.contains("id=\"pending-callback\"") && page.contains("https://ukey.example.cn"),
        "{page}"
    );

    // Roles and CSRF on the decision: the vendor, the security administrator and a forged
    // token are refused and change nothing.
    let approve = "/console/applications/vendor1/callback/approve";
    let vcsrf = vendor.session_csrf().await;
    assert_eq!(vendor.post(approve, &[("csrf", &vcsrf)]).await.status, 403);
    admin(&srv, "sec1", Role::Security);
    let mut sec = Browser::new(&srv);
    sec.login("sec1", PASSWORD).await;
    let scsrf = sec.session_csrf().await;
    assert_eq!(sec.post(approve, &[("csrf", &scsrf)]).await.status, 403);
    assert_eq!(op.post(approve, &[("csrf", "x")]).await.status, 403);
    let sys = srv.state.store.get_system(&app_id).unwrap().unwrap();
    assert!(sys.callback_url.is_none());

    let p = op.post(approve, &[("csrf", &csrf)]).await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/console/applications?done=callback-approve")
    );
    assert!(
        op.get(&p.location)
            .await
            .body
            .contains("已批准回调配置变更")
    );
    let sys = srv.state.store.get_system(&app_id).unwrap().unwrap();
    assert_eq!(
        sys.callback_url.as_deref(),
        Some("https://cb.example.cn/hutong")
    );
    assert_eq!(sys.dest_host.as_deref(), Some("https://ukey.example.cn"));
    assert_eq!(
        hutong::crypto::sm::pem_decode(sys.callback_ca_pem.as_deref().unwrap()).unwrap(),
        hutong::crypto::sm::pem_decode(&ca).unwrap()
    );
    let page = op.get(&system).await.body;
    assert!(!page.contains("id=\"pending-callback\""));
    assert!(
        page.contains("申请变更回调配置")
            && page.contains("批准变更回调配置")
            && page.contains("甲方回调 CA"),
        "{page}"
    );
    let events = srv.state.store.recent_events(200).unwrap();
    for (act, who) in [
        (Act::SystemCallbackChangeRequest, "vendor1"),
        (Act::SystemCallbackChangeApprove, "op1"),
    ] {
        assert!(
            events.iter().any(|e| e.action == act
                && e.outcome == Outcome::Ok
                && e.target == app_id
                && e.actor.id == who),
            "{act:?}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e.action == Act::SystemCallbackChangeApprove && e.outcome == Outcome::Denied)
    );

    // A second request, refused with a reason the vendor reads; the settings stay.
    let vcsrf = vendor.session_csrf().await;
    let again = change(&vcsrf, "https://cb-new.example.cn", &ca, "");
    assert_eq!(
        post(&mut vendor, "/portal/callback", &again).await.status,
        303
    );
    let reject = "/console/applications/vendor1/callback/reject";
    let p = op.post(reject, &[("csrf", &csrf), ("reason", " ")]).await;
    assert_eq!(p.status, 400);
    let p = op
        .post(reject, &[("csrf", &csrf), ("reason", "新回调地址尚未备案")])
        .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/console/applications?done=callback-reject")
    );
    let home = vendor.get("/portal/").await.body;
    assert!(
        home.contains("id=\"callback-reject-reason\"") && home.contains("新回调地址尚未备案"),
        "{home}"
    );
    assert!(!home.contains("id=\"callback-pending\""));
    assert_eq!(srv.state.store.get_system(&app_id).unwrap().unwrap(), sys);
    assert!(op.get(&system).await.body.contains("驳回变更回调配置"));
    srv.stop().await;
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    let mut b = Browser::new(&srv);
    for _ in 0..4 {
        let p = b.login("op1", "Wrong-Password-1").await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("用户名或密码错误"));
    }
    let p = b.login("op1", "Wrong-Password-1").await;
    assert!(p.body.contains("已锁定"), "{}", p.body);
    let p = b.login("op1", PASSWORD).await;
    assert_eq!(p.status, 200, "locked even with the right password");
    assert!(!b.cookies.contains_key("__Host-hutong_session"));
    srv.stop().await;
}

fn multipart(csrf: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().text("csrf", csrf.to_string())
}

fn file_part(name: &str, bytes: Vec<u8>) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes).file_name(name.to_string())
}

const PDF: &str = "tests/data/pdf/generated/sm2-cms-pkcs7oid-detached.pdf";
const ROOT_PEM: &str = "tests/data/pdf/generated/pki-sm2/root.pem";

async fn verify_upload(b: &mut Browser, path: &str) -> Page {
    let csrf = b.get("/console/verify").await.csrf();
    let bytes = std::fs::read(path).unwrap();
    let name = std::path::Path::new(path)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    b.post_multipart(
        "/console/verify",
        multipart(&csrf).part("file", file_part(&name, bytes)),
    )
    .await
}

#[tokio::test]
async fn trust_anchors_and_document_verification() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    admin(&srv, "sec1", Role::Security);
    admin(&srv, "aud1", Role::Auditor);
    let root = std::fs::read(ROOT_PEM).unwrap();

    // Without a trust anchor the certificate step fails.
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let p = verify_upload(&mut op, PDF).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("sm2-cms-pkcs7oid-detached.pdf"));
    assert!(p.body.contains("id=\"verify-result\">未通过"), "{}", p.body);
    // The headline says why in plain words before the table, the hint under it.
    let reasons = between(&p.body, "id=\"reasons\"", "</ul>");
    assert!(
        reasons.contains("签章 1：签名证书不可信或已失效"),
        "{reasons}"
    );
    assert!(p.body.find("id=\"reasons\"") < p.body.find("<table class=\"steps\""));
    for step in [
        "parse",
        "integrity",
        "signature",
        "certificate",
        "seal",
        "registry",
        "timestamp",
        "coverage",
    ] {
        assert!(p.body.contains(&format!("step-{step}")), "{step}");
    }

    // Only the security administrator manages trust anchors, and only with the form token.
    let op_csrf = op.session_csrf().await;
    let p = op
        .post_multipart(
            "/console/trust",
            multipart(&op_csrf).part("cert", file_part("root.pem", root.clone())),
        )
        .await;
    assert_eq!(p.status, 403);
    let mut aud = Browser::new(&srv);
    aud.login("aud1", PASSWORD).await;
    let aud_csrf = aud.session_csrf().await;
    let p = aud
        .post_multipart(
            "/console/trust",
            multipart(&aud_csrf).text("pem", String::from_utf8(root.clone()).unwrap()),
        )
        .await;
    assert_eq!(p.status, 403);
    let mut sec = Browser::new(&srv);
    sec.login("sec1", PASSWORD).await;
    let p = sec
        .post_multipart(
            "/console/trust",
            multipart("forged").part("cert", file_part("root.pem", root.clone())),
        )
        .await;
    assert_eq!(p.status, 403, "missing CSRF token is refused");
    assert!(srv.state.store.trust_anchors().unwrap().is_empty());
    // Nor may the security administrator verify documents (operator's page).
    let sec_csrf = sec.session_csrf().await;
    let p = sec
        .post_multipart(
            "/console/verify",
            multipart(&sec_csrf).part("file", file_part("a.pdf", std::fs::read(PDF).unwrap())),
        )
        .await;
    assert_eq!(p.status, 403);

    // Garbage is refused with a message, then the real root goes in (PEM file upload).
    let p = sec
        .post_multipart(
            "/console/trust",
            multipart(&sec_csrf).part("cert", file_part("x.pem", b"not a cert".to_vec())),
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("id=\"error\""));
    let p = sec
        .post_multipart(
            "/console/trust",
            multipart(&sec_csrf).part("cert", file_part("root.pem", root.clone())),
        )
        .await;
    assert_eq!((p.status, p.location.as_str()), (303, "/console/trust"));
    let anchors = srv.state.store.trust_anchors().unwrap();
    assert_eq!(anchors.len(), 1);
    let id = anchors[0].0.clone();
    let subject = hutong::crypto::x509::CertInfo::parse(&anchors[0].1)
        .unwrap()
        .subject;
    let list = sec.get("/console/trust").await;
    assert!(list.body.contains(&subject) && list.body.contains(&id[..16]));

    // Now the document verifies, every step passed but the registry (not on file here).
    let p = verify_upload(&mut op, PDF).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("id=\"verify-result\">通过"), "{}", p.body);
    let row = |step: &str| {
        let start = p.body.find(&format!("step-{step}")).unwrap();
        let end = p.body[start..].find("</tr>").unwrap();
        p.body[start..start + end].to_string()
    };
    for step in ["parse", "integrity", "signature", "certificate", "coverage"] {
        assert!(row(step).contains(">通过<"), "{step}: {}", row(step));
    }
    // What does not decide the verdict is not red: a seal not on file is a notice (amber),
    // a plain digital signature has no seal and this file no time-stamp (grey).
    assert!(row("registry").contains("未在本平台备案"));
    assert!(
        row("registry").contains("state testing verdict\">提示<"),
        "{}",
        row("registry")
    );
    assert!(
        row("seal").contains("state na verdict\">不适用<"),
        "{}",
        row("seal")
    );
    assert!(
        row("timestamp").contains("state na verdict\">不适用<"),
        "{}",
        row("timestamp")
    );
    assert!(
        !p.body.contains("id=\"reasons\""),
        "a passing report has no failure headline"
    );
    // The same report as the API and CLI.
    let bytes = std::fs::read(PDF).unwrap();
    let direct = hutong::domain::documents::verify(
        &srv.state.store,
        &srv.state.config,
        &bytes,
        "sm2-cms-pkcs7oid-detached.pdf",
    )
    .unwrap();
    assert!(direct.verify_result);
    assert!(p.body.contains(&direct.details[0].cert_sn));
    // The report kept for a case: the API's own body bytes, signed by the platform.
    use base64::Engine;
    let href = between(&p.body, "id=\"signed-json\" href=\"", "\"");
    let dl = op.get(&href).await;
    assert_eq!(dl.status, 200);
    assert!(
        dl.headers
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("attachment"))
    );
    let bundle: serde_json::Value = serde_json::from_str(&dl.body).unwrap();
    // Another session cannot fetch it.
    let mut other = Browser::new(&srv);
    other.login("op1", PASSWORD).await;
    assert_eq!(other.get(&href).await.status, 404);
    let body = bundle["body"].as_str().unwrap();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(bundle["signature"].as_str().unwrap())
        .unwrap();
    let (_, cert) =
        hutong::crypto::sm::pem_decode(bundle["platformCertificate"].as_str().unwrap()).unwrap();
    assert_eq!(cert, srv.state.keys.platform_cert_der());
    let key = hutong::crypto::sm::sm2_public_key_from_cert_der(&cert).unwrap();
    hutong::crypto::sm::sm2_verify(&key, body.as_bytes(), &signature).unwrap();
    let mut altered = body.as_bytes().to_vec();
    let at = body.find("true").unwrap();
    altered[at..at + 4].copy_from_slice(b"null");
    assert!(hutong::crypto::sm::sm2_verify(&key, &altered, &signature).is_err());
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], "0");
    assert_eq!(body["data"], serde_json::to_value(&direct).unwrap());
    assert_eq!(body["data"]["details"][0]["flowVoList"][5]["level"], "warn");

    // Not a PDF or OFD: a readable error, no crash.
    let csrf = op.session_csrf().await;
    let p = op
        .post_multipart(
            "/console/verify",
            multipart(&csrf).part("file", file_part("x.txt", b"hello".to_vec())),
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("id=\"error\""));
    // Forged verification upload.
    let p = op
        .post_multipart(
            "/console/verify",
            multipart("forged").part("file", file_part("a.pdf", bytes.clone())),
        )
        .await;
    assert_eq!(p.status, 403);

    // Removal: the operator and a forged form cannot, the security administrator can.
    let path = format!("/console/trust/{id}/remove");
    assert_eq!(op.post(&path, &[("csrf", &op_csrf)]).await.status, 403);
    assert_eq!(sec.post(&path, &[("csrf", "forged")]).await.status, 403);
    assert_eq!(srv.state.store.trust_anchors().unwrap().len(), 1);
    let p = sec.post(&path, &[("csrf", &sec_csrf)]).await;
    assert_eq!((p.status, p.location.as_str()), (303, "/console/trust"));
    assert!(srv.state.store.trust_anchors().unwrap().is_empty());
    assert!(sec.get("/console/trust").await.body.contains("no-anchor"));
    let p = verify_upload(&mut op, PDF).await;
    assert!(p.body.contains("id=\"verify-result\">未通过"));

    // Everything is in the audit log.
    let events = aud.get("/console/events").await.body;
    for action in ["添加信任锚", "删除信任锚", "文档验真", "拒绝"] {
        assert!(events.contains(action), "{action}");
    }
    srv.stop().await;
}

fn test_seal(name: &str) -> Vec<u8> {
    use hutong::ses::kit::{SealKit, png_header};
    let kit = SealKit::generate("某某公司").unwrap();
    let mut picture = png_header(120, 80);
    picture.extend_from_slice(b"seal-picture-bytes");
    let params = kit.params(name, &format!("es-{}", common::now_ms()), 30, picture);
    kit.seal_v4(&params).unwrap()
}

#[tokio::test]
async fn operators_search_the_seal_registry() {
    use base64::Engine;
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    admin(&srv, "sec1", Role::Security);
    admin(&srv, "aud1", Role::Auditor);
    let member = srv.add_member("online");
    let system = srv.state.store.get_system(&member.app_id).unwrap().unwrap();
    let der = test_seal("某某科技有限公司合同专用章");
    // Files `der` as an organisation's seal of the member.
    let file = |der: &[u8], code: &str, name: &str| {
        hutong::domain::seals::file(
            &srv.state.store,
            srv.state.keys.provider(),
            &srv.state.config.region_code,
            &system,
            hutong::domain::seals::Filing {
                code: Some(code.into()),
                name: name.into(),
                seal_type: "04".into(),
                possessor: "某某科技有限公司".into(),
                possessor_cert_no: USCC.into(),
                possessor_type: 1,
                biz_type: 1,
                cert_type: 2,
                seal_data: Some(base64::engine::general_purpose::STANDARD.encode(der)),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let seal_code = file(&der, "biz-1", "某某科技有限公司合同专用章");

    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let empty = op.get("/console/seals").await;
    assert_eq!(empty.status, 200);
    assert!(!empty.body.contains("seal-results"));
    for (by, q) in [
        ("org", USCC.to_lowercase()),
        ("code", seal_code.clone()),
        ("name", "合同专用章".to_string()),
    ] {
        let p = op
            .get(&format!("/console/seals?by={by}&q={}", urlencode(&q)))
            .await;
        assert_eq!(p.status, 200, "{by}");
        assert!(
            p.body.contains(&seal_code) && p.body.contains("某某科技有限公司合同专用章"),
            "{by}: {}",
            p.body
        );
        assert!(p.body.contains(&member.app_id) && p.body.contains("启用"));
        assert!(
            p.body
                .contains(&format!("/console/seals/{seal_code}/picture"))
        );
    }
    let none = op.get("/console/seals?by=name&q=no-such-seal").await;
    assert!(none.body.contains("no-result"));
    let bad = op.get("/console/seals?by=other&q=x").await;
    assert_eq!(bad.status, 400);

    // The picture comes from the filed seal, with an image content type.
    let pic = op.get(&format!("/console/seals/{seal_code}/picture")).await;
    assert_eq!(pic.status, 200);
    assert_eq!(pic.headers["content-type"], "image/png");
    assert_eq!(pic.headers["x-content-type-options"], "nosniff");
    assert_eq!(
        op.get("/console/seals/340000019999999999/picture")
            .await
            .status,
        404
    );
    // A BMP picture (GB/T 38540 allows one) is served as PNG, so every browser draws it.
    let bmp: Vec<u8> = [
        &b"BM"[..],
        &58u32.to_le_bytes(),
        &[0; 4],
        &54u32.to_le_bytes(),
        &40u32.to_le_bytes(),
        &1i32.to_le_bytes(),
        &1i32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &24u16.to_le_bytes(),
        &[0; 24],
        &[0, 0, 255, 0], // one red pixel, the row padded to 4 bytes
    ]
    .concat();
    let kit = hutong::ses::kit::SealKit::generate("某某公司").unwrap();
    let mut params = kit.params("某某科技有限公司财务专用章", "es-bmp", 30, bmp);
    params.picture_kind = "bmp".into();
    let bmp_code = file(
        &kit.seal_v4(&params).unwrap(),
        "biz-bmp",
        "某某科技有限公司财务专用章",
    );
    let pic = op.get(&format!("/console/seals/{bmp_code}/picture")).await;
    assert_eq!(pic.status, 200);
    assert_eq!(pic.headers["content-type"], "image/png");
    assert!(pic.body.contains("IHDR") && pic.body.contains("IEND"));

    // Other roles are refused, the page and the picture alike.
    for user in ["sec1", "aud1"] {
        let mut b = Browser::new(&srv);
        b.login(user, PASSWORD).await;
        assert_eq!(
            b.get(&format!("/console/seals?by=code&q={seal_code}"))
                .await
                .status,
            403
        );
        assert_eq!(
            b.get(&format!("/console/seals/{seal_code}/picture"))
                .await
                .status,
            403
        );
    }
    // Searches are audited.
    let mut aud = Browser::new(&srv);
    aud.login("aud1", PASSWORD).await;
    assert!(
        aud.get("/console/events")
            .await
            .body
            .contains("查询印章登记库")
    );
    srv.stop().await;
}

/// A vendor with an approved application; returns its appId.
async fn approved_vendor(
    srv: &common::TestServer,
    op: &mut Browser,
    vendor: &mut Browser,
    user: &str,
    mobile: &str,
) -> String {
    assert_eq!(
        register_vendor(vendor, user, USCC, mobile).await.status,
        303
    );
    vendor.login(user, PASSWORD).await;
    apply(vendor, "甲印章系统").await;
    let csrf = op.session_csrf().await;
    let p = op
        .post(
            &format!("/console/applications/{user}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 303);
    srv.state
        .store
        .get_application(user)
        .unwrap()
        .unwrap()
        .app_id
        .unwrap()
}

#[tokio::test]
async fn usage_quota_and_settings_pages_keep_to_their_roles() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    admin(&srv, "sec1", Role::Security);
    admin(&srv, "aud1", Role::Auditor);
    let member = srv.add_member("online");
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let mut vendor = Browser::new(&srv);
    approved_vendor(&srv, &mut op, &mut vendor, "vendor1", "13812345678").await;

    let pages = [
        "/console/usage",
        "/console/usage.csv",
        "/console/settings",
        "/portal/usage",
        "/portal/usage.csv",
    ];
    let allowed: [(&str, &[&str]); 4] = [
        ("op1", &["/console/usage", "/console/usage.csv"]),
        ("aud1", &["/console/usage", "/console/usage.csv"]),
        ("sec1", &["/console/settings"]),
        ("vendor1", &["/portal/usage", "/portal/usage.csv"]),
    ];
    let quota_set = format!("/console/systems/{}/quota", member.app_id);
    let quota_clear = format!("/console/systems/{}/quota/clear", member.app_id);
    for (user, ok) in allowed {
        let mut b = Browser::new(&srv);
        assert_eq!(b.login(user, PASSWORD).await.status, 303);
        for page in pages {
            let p = b.get(page).await;
            let want = if ok.contains(&page) { 200 } else { 403 };
            assert_eq!(p.status, want, "{user} GET {page}");
        }
        // The menu offers exactly the pages the role may open.
        let home = if user == "vendor1" {
            "/portal/"
        } else {
            "/console/"
        };
        let menu = b.get(home).await.body;
        for page in ["/console/usage", "/console/settings", "/portal/usage"] {
            assert_eq!(
                menu.contains(&format!("href=\"{page}\"")),
                ok.contains(&page),
                "{user} menu {page}"
            );
        }
        if user == "op1" {
            continue;
        }
        let csrf = b.session_csrf().await;
        let p = post_quota(
            &mut b,
            &quota_set,
            &csrf,
            ["signatures", "10", "2026-01-01", "2027-12-31"],
        )
        .await;
        assert_eq!(p.status, 403, "{user} POST quota");
        let p = b.post(&quota_clear, &[("csrf", &csrf)]).await;
        assert_eq!(p.status, 403, "{user} POST quota clear");
    }
    assert!(srv.state.store.get_quota(&member.app_id).unwrap().is_none());
    // The refusals are recorded with the role that tried.
    let events = srv.state.store.recent_events(200).unwrap();
    for role in [Role::Security, Role::Auditor, Role::Vendor] {
        assert!(
            events.iter().any(|e| e.action == Act::QuotaSet
                && e.outcome == Outcome::Denied
                && e.actor.role == Some(role)),
            "{role:?}"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn operators_set_and_clear_quotas_on_the_system_page() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    let member = srv.add_member("online");
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let detail = format!("/console/systems/{}", member.app_id);
    let set = format!("{detail}/quota");
    let page = op.get(&detail).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"no-quota\""));
    let csrf = page.csrf();

    // Forged or missing tokens change nothing.
    for forged in ["", "0000", &"b".repeat(64)] {
        let p = post_quota(
            &mut op,
            &set,
            forged,
            ["signatures", "100", "2026-01-01", "2027-12-31"],
        )
        .await;
        assert_eq!(p.status, 403, "{forged:?}");
        let p = op.post(&format!("{set}/clear"), &[("csrf", forged)]).await;
        assert_eq!(p.status, 403, "{forged:?}");
    }
    assert!(srv.state.store.get_quota(&member.app_id).unwrap().is_none());

    // Each wrong field is named next to the field, in Chinese; the typed values come back.
    let p = post_quota(
        &mut op,
        &set,
        &csrf,
        ["bytes", "-5", "2026-02-30", "2026-12-31"],
    )
    .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("id=\"quota-kind-error\"") && p.body.contains("请选择配额类型"));
    assert!(p.body.contains("id=\"quota-limit-error\"") && p.body.contains("1 到 10^12"));
    assert!(p.body.contains("id=\"quota-from-error\"") && p.body.contains("起始日期"));
    assert!(!p.body.contains("id=\"quota-until-error\""));
    assert!(p.body.contains("value=\"-5\""));
    let p = post_quota(
        &mut op,
        &set,
        &csrf,
        ["users", "5", "2026-12-31", "2026-01-01"],
    )
    .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("截止日期不能早于起始日期"));
    assert!(srv.state.store.get_quota(&member.app_id).unwrap().is_none());

    // Set → shown.
    let p = post_quota(
        &mut op,
        &set,
        &csrf,
        ["signatures", "1000", "2026-01-01", "2030-12-31"],
    )
    .await;
    assert_eq!(p.status, 303);
    assert!(p.location.starts_with(&detail));
    let q = srv.state.store.get_quota(&member.app_id).unwrap().unwrap();
    assert_eq!(
        (q.kind, q.limit, q.set_by.as_str()),
        (hutong::domain::vocab::QuotaKind::Signatures, 1000, "op1")
    );
    let body = op.get(&detail).await.body;
    for shown in [
        "id=\"quota-kind\">签署次数<",
        "id=\"quota-limit\">1000<",
        "id=\"quota-used\">0<",
        "id=\"quota-remaining\">1000<",
        "id=\"quota-status\">有效<",
        "2026-01-01 00:00:00",
        "2030-12-31 23:59:59",
    ] {
        assert!(body.contains(shown), "{shown}");
    }

    // A quota that has not started yet says so.
    let p = post_quota(
        &mut op,
        &set,
        &csrf,
        ["users", "20", "2099-01-01", "2099-12-31"],
    )
    .await;
    assert_eq!(p.status, 303);
    let body = op.get(&detail).await.body;
    assert!(
        body.contains("id=\"quota-kind\">用户数<") && body.contains("id=\"quota-status\">未生效<")
    );

    // Clear → gone.
    let p = op.post(&format!("{set}/clear"), &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 303);
    assert!(srv.state.store.get_quota(&member.app_id).unwrap().is_none());
    assert!(op.get(&detail).await.body.contains("id=\"no-quota\""));
    // An unknown system is not given a quota.
    let p = post_quota(
        &mut op,
        "/console/systems/no-such-system/quota",
        &csrf,
        ["users", "5", "2026-01-01", "2026-12-31"],
    )
    .await;
    assert_eq!(p.status, 404);

    let events = srv.state.store.recent_events(200).unwrap();
    let find = |action: Act, result: Outcome| {
        events
            .iter()
            .filter(|e| {
                e.action == action
                    && e.outcome == result
                    && e.actor.id == "op1"
                    && e.target == member.app_id
            })
            .count()
    };
    assert_eq!(find(Act::QuotaSet, Outcome::Denied), 3);
    assert_eq!(find(Act::QuotaClear, Outcome::Denied), 3);
    assert_eq!(find(Act::QuotaSet, Outcome::Failed), 2);
    assert_eq!(find(Act::QuotaSet, Outcome::Ok), 2);
    assert_eq!(find(Act::QuotaClear, Outcome::Ok), 1);
    assert!(events.iter().any(|e| {
        e.action == Act::QuotaSet
            && e.outcome == Outcome::Ok
            && e.actor.role == Some(Role::Operator)
            && e.detail
                .as_str()
                .contains("类型=signatures; 数量=1000; 有效期=2026-01-01..2030-12-31")
    }));
    srv.stop().await;
}

#[tokio::test]
async fn usage_reports_count_real_calls_and_download_as_csv() {
    use serde_json::json;
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    admin(&srv, "aud1", Role::Auditor);
    let member = srv.add_member("online");
    let idle = srv.add_member("online");
    for _ in 0..3 {
        let (status, v) = srv
            .post("/api/v1/system/info", &member.request(json!({})))
            .await;
        assert_eq!((status, v["code"].as_str()), (200, Some("0")), "{v}");
    }
    // A request that fails authentication (stale time) is nobody's call and is not counted;
    // an authenticated call the handler refuses counts as a failed call.
    let mut stale = member.request(json!({}));
    stale.insert(
        "time".into(),
        (common::now_ms() - 3_600_000).to_string().into(),
    );
    member.resign(&mut stale);
    let (status, _) = srv.post("/api/v1/system/info", &stale).await;
    assert_ne!(status, 200);
    let (status, v) = srv
        .post("/api/v1/seal/query", &member.request(json!({})))
        .await;
    assert_ne!((status, v["code"].as_str()), (200, Some("0")), "{v}");
    let today = hutong::time::Day::today().to_string();
    let (calls, failed) = (3, 0);

    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    // The default report: last 30 days, all systems.
    let p = op.get("/console/usage").await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains(&member.app_id) && p.body.contains("system/info"));
    let row = format!(
        "<td class=\"mono\">system/info</td><td>{calls}</td><td>3</td><td>{failed}</td><td>0</td>"
    );
    assert!(p.body.contains(&row), "{row}\n{}", p.body);
    assert!(
        p.body
            .contains("<td class=\"mono\">seal/query</td><td>1</td><td>0</td><td>1</td><td>0</td>")
    );
    assert!(p.body.contains("<tr id=\"usage-totals\"><th colspan=\"3\">合计</th><th>4</th><th>3</th><th>1</th><th>0</th>"));
    // (askama writes `&` in attributes as `&#38;`.)
    assert!(p.body.contains("/console/usage.csv?appId=&#38;from="));
    // Filtered by system: the idle one has nothing.
    let p = op
        .get(&format!("/console/usage?appId={}", idle.app_id))
        .await;
    assert!(p.body.contains("id=\"no-usage\"") && !p.body.contains("system/info"));

    // The CSV of one system and one day.
    let csv_path = format!(
        "/console/usage.csv?appId={}&from={today}&to={today}",
        member.app_id
    );
    for user in ["op1", "aud1"] {
        let mut b = Browser::new(&srv);
        b.login(user, PASSWORD).await;
        let p = b.get(&csv_path).await;
        assert_eq!(p.status, 200, "{user}");
        assert_eq!(p.headers["content-type"], "text/csv; charset=utf-8");
        assert_eq!(
            p.headers["content-disposition"],
            format!("attachment; filename=\"hutong-usage-{today}-{today}.csv\"").as_str()
        );
        assert!(p.body.starts_with(
            "\u{feff}date,appId,systemName,interface,calls,succeeded,failed,signatures,distinctUsers\r\n"
        ));
        let line = format!(
            "{today},{},测试印章系统,system/info,{calls},3,{failed},0,0\r\n",
            member.app_id
        );
        assert!(p.body.contains(&line), "{line}\n{}", p.body);
        assert!(!p.body.contains(&idle.app_id));
    }
    // Exports are audited.
    let events = srv.state.store.recent_events(100).unwrap();
    assert!(events.iter().any(|e| e.action == Act::UsageExport
        && e.actor.id == "aud1"
        && e.target == member.app_id));

    // The system page shows the last 30 days and links to the filtered report.
    let detail = op
        .get(&format!("/console/systems/{}", member.app_id))
        .await
        .body;
    assert!(detail.contains("id=\"usage-calls\">4<"), "{detail}");
    assert!(detail.contains(&format!("/console/usage?appId={}&#38;from=", member.app_id)));

    // More than 366 days, reversed or malformed dates are refused with a reason.
    let p = op.get("/console/usage?from=2025-01-01&to=2026-01-02").await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("最多 366 天"));
    assert_eq!(
        op.get("/console/usage.csv?from=2025-01-01&to=2026-01-02")
            .await
            .status,
        400
    );
    let p = op.get("/console/usage?from=2026-11-02&to=2026-11-01").await;
    assert!(p.status == 400 && p.body.contains("起始日期不能晚于截止日期"));
    let p = op.get("/console/usage?from=2026-02-30").await;
    assert!(p.status == 400 && p.body.contains("YYYY-MM-DD"));
    let p = op.get("/console/usage?appId=%3Cscript%3E").await;
    assert!(p.status == 400 && !p.body.contains("<script>"));
    // A leap year fits.
    assert_eq!(
        op.get("/console/usage?from=2024-01-01&to=2024-12-31")
            .await
            .status,
        200
    );
    srv.stop().await;
}

#[tokio::test]
async fn vendors_see_only_their_own_usage_and_quota() {
    use hutong::domain::metering;
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let mut vendor = Browser::new(&srv);
    // Before approval there is nothing to show and nothing to download.
    assert_eq!(
        register_vendor(&mut vendor, "vendor0", USCC, "13912345678")
            .await
            .status,
        303
    );
    vendor.login("vendor0", PASSWORD).await;
    let p = vendor.get("/portal/usage").await;
    assert!(p.status == 200 && p.body.contains("id=\"no-system\""));
    assert_eq!(vendor.get("/portal/usage.csv").await.status, 404);

    let mut own = Browser::new(&srv);
    let app_id = approved_vendor(&srv, &mut op, &mut own, "vendor1", "13812345678").await;
    let other = srv.add_member("online");
    let now = hutong::time::now_ms();
    for _ in 0..2 {
        metering::record_call(&srv.state.store, &app_id, "seal/query", true, now);
    }
    for _ in 0..7 {
        metering::record_call(&srv.state.store, &other.app_id, "cloud/sign", true, now);
    }
    metering::set_quota(
        &srv.state.store,
        &app_id,
        hutong::domain::vocab::QuotaKind::Signatures,
        50,
        hutong::time::Day::of_ms(now).add_days(-1),
        hutong::time::Day::of_ms(now).add_days(30),
        &Actor::account("op1", Role::Operator),
    )
    .unwrap();

    let p = own.get("/portal/usage").await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains(&app_id) && p.body.contains("seal/query"));
    assert!(p.body.contains("id=\"quota-remaining\">50<") && p.body.contains("签署次数"));
    assert!(!p.body.contains(&other.app_id) && !p.body.contains("cloud/sign"));
    // A crafted appId is ignored: the page and the CSV stay with the vendor's own system.
    let crafted = own
        .get(&format!("/portal/usage?appId={}", other.app_id))
        .await;
    assert!(crafted.body.contains("seal/query") && !crafted.body.contains("cloud/sign"));
    let csv = own
        .get(&format!("/portal/usage.csv?appId={}", other.app_id))
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    assert!(csv.body.contains(&format!(",{app_id},")) && csv.body.contains(",seal/query,2,2,0,0,"));
    assert!(!csv.body.contains(&other.app_id) && !csv.body.contains("cloud/sign"));
    // The administrators' report and the other vendor's page are out of reach.
    assert_eq!(
        own.get(&format!("/console/usage.csv?appId={}", other.app_id))
            .await
            .status,
        403
    );
    let p = vendor.get("/portal/usage").await;
    assert!(!p.body.contains(&app_id) && !p.body.contains("seal/query"));
    srv.stop().await;
}

#[tokio::test]
async fn degraded_members_are_flagged_in_the_systems_pages() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    let failing = srv.add_member("online");
    let healthy = srv.add_member("online");
    let record = srv
        .state
        .store
        .get_system(&failing.app_id)
        .unwrap()
        .unwrap();
    // No callback address: every call fails at once, and enough of them open the breaker.
    for _ in 0..hutong::interop::client::BREAKER_THRESHOLD {
        let r = srv
            .state
            .interop
            .call(
                &srv.state.keys,
                &record,
                "/seal/sign",
                serde_json::Map::new(),
            )
            .await;
        assert!(r.is_err());
    }
    assert!(srv.state.interop.is_degraded(&failing.app_id));

    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let list = op.get("/console/systems").await.body;
    assert_eq!(list.matches("降级（熔断中）").count(), 1, "{list}");
    let row = list
        .split("<tr>")
        .find(|r| r.contains(&failing.app_id))
        .unwrap();
    assert!(row.contains("降级（熔断中）") && row.contains("已上线"));
    let detail = op
        .get(&format!("/console/systems/{}", failing.app_id))
        .await
        .body;
    assert!(detail.contains("id=\"degraded\">降级（熔断中）"));
    let detail = op
        .get(&format!("/console/systems/{}", healthy.app_id))
        .await
        .body;
    assert!(!detail.contains("降级"));
    srv.stop().await;
}

#[tokio::test]
async fn security_reads_the_effective_settings_but_never_the_pin() {
    let srv = common::start_with(|c| {
        c.keys.pkcs11.pin = Some("pin-never-shown-4711".into());
        c.region_code = "350100".into();
        c.interop.member_timeout_ms = 2500;
    })
    .await;
    admin(&srv, "sec1", Role::Security);
    let mut sec = Browser::new(&srv);
    sec.login("sec1", PASSWORD).await;
    let p = sec.get("/console/settings").await;
    assert_eq!(p.status, 200);
    for shown in [
        "350100",
        "127.0.0.1:0",
        "± 300 秒",
        "100 MiB",
        "1100 天",
        "2500 毫秒",
        "hutong.toml",
        "重启",
    ] {
        assert!(p.body.contains(shown), "{shown}");
    }
    assert!(!p.body.contains("pin-never-shown-4711"));
    srv.stop().await;
}

/// The recorded events of `action`, newest first.
fn events_of(
    srv: &common::TestServer,
    action: Act,
) -> Vec<hutong::domain::audit_event::AuditEvent> {
    let mut all = srv.state.store.recent_events(10_000).unwrap();
    all.retain(|e| e.action == action);
    all
}

fn control(
    srv: &common::TestServer,
    cmd: hutong::server::control::Command,
) -> Result<hutong::server::control::Response, hutong::server::control::ControlError> {
    hutong::server::control::execute(&srv.state.store, None, &srv.state.config, cmd)
}

#[tokio::test]
async fn console_and_control_plane_record_the_same_single_event_per_act() {
    use hutong::domain::audit_event::ActorKind;
    use hutong::server::control::{Command, ErrorCode};
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    admin(&srv, "sec1", Role::Security);
    let member = srv.add_member("online");
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let detail = format!("/console/systems/{}", member.app_id);
    let csrf = op.get(&detail).await.csrf();

    // quota.set: once from the console, once from the CLI, one event each, same name and detail.
    let p = post_quota(
        &mut op,
        &format!("{detail}/quota"),
        &csrf,
        ["signatures", "10", "2026-01-01", "2026-12-31"],
    )
    .await;
    assert_eq!(p.status, 303);
    let sets = events_of(&srv, Act::QuotaSet);
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(
        (sets[0].actor.kind, sets[0].actor.role, sets[0].outcome),
        (ActorKind::Admin, Some(Role::Operator), Outcome::Ok)
    );
    control(
        &srv,
        Command::QuotaSet {
            app_id: member.app_id.clone(),
            kind: hutong::domain::vocab::QuotaKind::Signatures,
            limit: 10,
            from: "2026-01-01".into(),
            until: "2026-12-31".into(),
        },
    )
    .unwrap();
    let sets = events_of(&srv, Act::QuotaSet);
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert_eq!(
        (sets[0].actor.kind, sets[0].outcome),
        (ActorKind::Cli, Outcome::Ok)
    );
    assert_eq!(sets[0].target, sets[1].target);
    assert_eq!(sets[0].detail, sets[1].detail);

    // quota.clear: each surface once; a second clear is the same not-found answer on both.
    let clear = format!("{detail}/quota/clear");
    assert_eq!(op.post(&clear, &[("csrf", &csrf)]).await.status, 303);
    let p = op.post(&clear, &[("csrf", &csrf)]).await;
    let missing = format!("系统 {} 没有配额", member.app_id);
    assert_eq!(p.status, 404);
    assert!(p.body.contains(&missing), "{}", p.body);
    let e = control(
        &srv,
        Command::QuotaClear {
            app_id: member.app_id.clone(),
        },
    )
    .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (ErrorCode::NotFound, missing.as_str())
    );
    let clears = events_of(&srv, Act::QuotaClear);
    let count = |o: Outcome| clears.iter().filter(|e| e.outcome == o).count();
    assert_eq!(
        (count(Outcome::Ok), count(Outcome::Failed)),
        (1, 2),
        "{clears:?}"
    );

    // trust.add: one event per addition, from either surface (it used to be two from the console).
    let root = std::fs::read(ROOT_PEM).unwrap();
    let mut sec = Browser::new(&srv);
    sec.login("sec1", PASSWORD).await;
    let sec_csrf = sec.session_csrf().await;
    let p = sec
        .post_multipart(
            "/console/trust",
            multipart(&sec_csrf).part("cert", file_part("root.pem", root.clone())),
        )
        .await;
    assert_eq!(p.status, 303);
    let adds = events_of(&srv, Act::TrustAdd);
    assert_eq!(adds.len(), 1, "{adds:?}");
    let id = adds[0].target.clone();
    assert_eq!(srv.state.store.trust_anchors().unwrap()[0].0, id);

    // trust.remove: the console and the CLI call one domain function with one answer.
    let p = sec
        .post(
            &format!("/console/trust/{id}/remove"),
            &[("csrf", &sec_csrf)],
        )
        .await;
    assert_eq!(p.status, 303);
    let e = control(&srv, Command::TrustRemove { id: id.clone() }).unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
    assert_eq!(e.message, format!("信任锚 {id} 不存在"));
    let removes = events_of(&srv, Act::TrustRemove);
    assert_eq!(
        removes
            .iter()
            .map(|e| (e.actor.kind, e.outcome))
            .collect::<Vec<_>>(),
        [
            (ActorKind::Cli, Outcome::Failed),
            (ActorKind::Admin, Outcome::Ok)
        ]
    );

    // The report period has one limit: the CLI is refused as the console is.
    let e = control(
        &srv,
        Command::UsageReport {
            app_id: None,
            from: "2025-01-01".into(),
            to: "2026-01-02".into(),
        },
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::Invalid);
    assert!(e.message.contains("最多 366 天"), "{}", e.message);
    let p = op.get("/console/usage?from=2025-01-01&to=2026-01-02").await;
    assert!(p.body.contains(&e.message));
    srv.stop().await;
}

#[tokio::test]
async fn a_reports_seal_pictures_are_served_to_its_own_session_only() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    admin(&srv, "op2", Role::Operator);
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    // A real producer's OFD whose seal carries a PNG picture.
    let p = verify_upload(&mut op, "tests/data/ofd/oesplugin-mixed-modified.ofd").await;
    assert_eq!(p.status, 200, "{}", p.body);
    let start = p
        .body
        .find("/console/verify/picture/")
        .expect("the report links its seal picture");
    let end = start + p.body[start..].find('"').unwrap();
    let url = p.body[start..end].to_string();
    // Several fetches, so more than one worker is likely to answer: the pictures are the
    // server's, not one worker's.
    for _ in 0..6 {
        let pic = op.get(&url).await;
        assert_eq!(pic.status, 200, "{url}");
        assert_eq!(
            pic.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("image/png")
        );
    }
    // Another operator's session does not see this session's report.
    let mut other = Browser::new(&srv);
    other.login("op2", PASSWORD).await;
    assert_eq!(other.get(&url).await.status, 404);
    // A new report replaces the session's previous pictures.
    verify_upload(&mut op, PDF).await;
    assert_eq!(op.get(&url).await.status, 404);
    srv.stop().await;
}

/// The recovery codes listed on the page shown after an enrolment.
fn recovery_codes(page: &Page) -> Vec<String> {
    let list = between(&page.body, "id=\"recovery-codes\">", "</ul>");
    list.split("<li>")
        .filter_map(|s| s.split("</li>").next())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A code of `user`'s authenticator that is certainly wrong now.
fn wrong_code(base: &str, user: &str) -> String {
    let map = AUTHENTICATORS.lock().unwrap();
    let (secret, _) = &map[&format!("{base}/{user}")];
    let now = unix_secs() / 30;
    let valid: Vec<String> = (now - 1..=now + 1).map(|s| totp(secret, s)).collect();
    (0..)
        .map(|i| format!("{:06}", (123_456 + i * 7_919) % 1_000_000))
        .find(|c| !valid.contains(c))
        .unwrap()
}

#[tokio::test]
async fn password_alone_opens_no_session_and_second_step_codes_are_checked() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);

    // First login: password, then enrolment (QR code and Base32 secret), recovery codes once.
    let mut b = Browser::new(&srv);
    let p = b.password_step("op1", PASSWORD).await;
    assert_eq!(p.location, "/console/second-factor");
    assert_eq!(b.get("/console/").await.location, "/console/second-factor");
    let page = b.get("/console/second-factor").await;
    assert!(page.body.contains("src=\"data:image/svg+xml;base64,"));
    let enrolled = b.enrol("op1").await;
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    let codes = recovery_codes(&enrolled);
    assert_eq!(codes.len(), 10, "{}", enrolled.body);
    assert_eq!(b.get("/console/").await.status, 200);
    let rec = srv.state.store.get_account("op1").unwrap().unwrap();
    let raw = serde_json::to_string(&rec).unwrap();
    let secret = between(&page.body, "id=\"secret\">", "<");
    assert!(!raw.contains(&secret), "the TOTP secret is stored sealed");
    assert!(!raw.contains(&codes[0].replace('-', "")));
    assert_eq!(events_of(&srv, Act::SecondFactorEnrol).len(), 1);

    // The password alone: a pending login, no session; every page sends back to login.
    let mut c = Browser::new(&srv);
    let p = c.password_step("op1", PASSWORD).await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/console/login/verify")
    );
    assert!(!c.cookies.contains_key("__Host-hutong_session"));
    let pending = c.cookies["__Host-hutong_login"].clone();
    for page in ["/console/", "/console/applications", "/console/password"] {
        assert_eq!(c.get(page).await.location, "/console/login", "{page}");
    }
    // The pending cookie is no session cookie either.
    let mut forged = Browser::new(&srv);
    forged
        .cookies
        .insert("__Host-hutong_session".into(), pending.clone());
    assert_eq!(forged.get("/console/").await.location, "/console/login");

    // A second-step post with another CSRF token is refused and changes nothing.
    let code = next_code(&srv.base, "op1").await;
    let p = c
        .post(
            "/console/login/verify",
            &[("csrf", &"0".repeat(64)), ("code", &code)],
        )
        .await;
    assert_eq!(p.status, 403);
    // A wrong code is refused and counts towards the lockout.
    let csrf = c.get("/console/login/verify").await.csrf();
    let bad = wrong_code(&srv.base, "op1");
    let p = c
        .post("/console/login/verify", &[("csrf", &csrf), ("code", &bad)])
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("动态口令错误"), "{}", p.body);
    let rec = srv.state.store.get_account("op1").unwrap().unwrap();
    assert_eq!(rec.failed_logins, 1);
    let denied = events_of(&srv, Act::ConsoleLogin);
    assert!(
        denied
            .iter()
            .any(|e| e.outcome == Outcome::Denied && e.detail.as_str() == "动态口令错误")
    );
    // The right code opens a session (and clears the count).
    let p = c
        .post("/console/login/verify", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/console/"),
        "{}",
        p.body
    );
    assert_eq!(c.get("/console/").await.status, 200);
    assert_eq!(
        srv.state
            .store
            .get_account("op1")
            .unwrap()
            .unwrap()
            .failed_logins,
        0
    );
    // The same code again (another browser, same time step): replay refused.
    let mut d = Browser::new(&srv);
    d.password_step("op1", PASSWORD).await;
    let csrf = d.get("/console/login/verify").await.csrf();
    let p = d
        .post("/console/login/verify", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(p.status, 400, "a used code is refused");

    // A recovery code works once.
    let p = d
        .post(
            "/console/login/verify",
            &[("csrf", &csrf), ("code", &codes[0])],
        )
        .await;
    assert_eq!((p.status, p.location.as_str()), (303, "/console/"));
    assert_eq!(events_of(&srv, Act::RecoveryCodeUse).len(), 1);
    let mut e = Browser::new(&srv);
    e.password_step("op1", PASSWORD).await;
    let csrf = e.get("/console/login/verify").await.csrf();
    let p = e
        .post(
            "/console/login/verify",
            &[("csrf", &csrf), ("code", &codes[0])],
        )
        .await;
    assert_eq!(p.status, 400, "a recovery code is single use");
    assert!(p.body.contains("恢复码错误"));

    // A pending login expires after five minutes.
    let token = e.cookies["__Host-hutong_login"].clone();
    let mut rec = srv.state.store.get_session(&token).unwrap().unwrap();
    rec.created_ms -= 6 * 60 * 1000;
    srv.state.store.put_session(&token, &rec).unwrap();
    assert_eq!(
        e.get("/console/login/verify").await.location,
        "/console/login"
    );
    let p = e
        .post(
            "/console/login/verify",
            &[("csrf", &rec.csrf), ("code", &codes[1])],
        )
        .await;
    assert!(p.body.contains("已超时"), "{}", p.body);
    srv.stop().await;
}

#[tokio::test]
async fn wrong_second_steps_end_the_pending_login_and_lock_the_account() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    let mut b = Browser::new(&srv);
    b.login("op1", PASSWORD).await;
    let mut c = Browser::new(&srv);
    c.password_step("op1", PASSWORD).await;
    let csrf = c.get("/console/login/verify").await.csrf();
    let bad = wrong_code(&srv.base, "op1");
    for left in (1..=4).rev() {
        let p = c
            .post("/console/login/verify", &[("csrf", &csrf), ("code", &bad)])
            .await;
        assert!(
            p.body.contains(&format!("还可尝试 {left} 次")),
            "{}",
            p.body
        );
    }
    // The fifth failure: the pending login is dropped and the account locked like after five
    // wrong passwords.
    let p = c
        .post("/console/login/verify", &[("csrf", &csrf), ("code", &bad)])
        .await;
    assert!(p.body.contains("已锁定"), "{}", p.body);
    assert!(!c.cookies.contains_key("__Host-hutong_login"));
    assert_eq!(events_of(&srv, Act::AccountLockout).len(), 1);
    let p = c.password_step("op1", PASSWORD).await;
    assert!(
        p.body.contains("已锁定"),
        "locked even with the right password"
    );
    srv.stop().await;
}

#[tokio::test]
async fn an_sm2_certificate_signs_the_login_challenge() {
    use base64::Engine;
    use hutong::crypto::certgen::{CertSpec, self_signed_sm2};
    use hutong::crypto::sm::{Sm2KeyPair, pem_encode};
    let srv = common::start().await;
    admin(&srv, "sec1", Role::Security);
    let mut b = Browser::new(&srv);
    assert_eq!(b.login("sec1", PASSWORD).await.location, "/console/");

    let key = Sm2KeyPair::generate();
    let now = hutong::time::now_ms();
    let spec = CertSpec {
        common_name: "sec1".into(),
        organization: None,
        not_before_ms: now - 60_000,
        not_after_ms: now + 86_400_000,
        is_ca: false,
        serial: None,
    };
    let pem = pem_encode("CERTIFICATE", &self_signed_sm2(&spec, &key).unwrap());
    let csrf = b.session_csrf().await;
    let p = b
        .post(
            "/console/second-factor/certificate",
            &[("csrf", &csrf), ("cert_pem", "not a certificate")],
        )
        .await;
    assert_eq!(p.status, 400);
    let p = b
        .post(
            "/console/second-factor/certificate",
            &[("csrf", &csrf), ("cert_pem", &pem)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(
        b.get("/console/second-factor")
            .await
            .body
            .contains("CN=sec1")
    );

    let mut c = Browser::new(&srv);
    c.password_step("sec1", PASSWORD).await;
    let page = c.get("/console/login/verify").await;
    let challenge = between(&page.body, "id=\"challenge\">", "<");
    let b64 = |sig: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(sig);
    // A signature of something else, or by another key, is refused.
    let p = c
        .post(
            "/console/login/verify",
            &[
                ("csrf", &page.csrf()),
                ("signature", &b64(key.sign(b"hutong-login:other"))),
            ],
        )
        .await;
    assert!(p.body.contains("SM2 签名验证失败"), "{}", p.body);
    let p = c
        .post(
            "/console/login/verify",
            &[
                ("csrf", &page.csrf()),
                (
                    "signature",
                    &b64(Sm2KeyPair::generate().sign(challenge.as_bytes())),
                ),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    let p = c
        .post(
            "/console/login/verify",
            &[
                ("csrf", &page.csrf()),
                ("signature", &b64(key.sign(challenge.as_bytes()))),
            ],
        )
        .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/console/"),
        "{}",
        p.body
    );
    assert_eq!(c.get("/console/accounts").await.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn a_reset_second_factor_must_be_enrolled_again() {
    use hutong::server::control::Command;
    let srv = common::start().await;
    admin(&srv, "sec1", Role::Security);
    admin(&srv, "op1", Role::Operator);
    let mut sec = Browser::new(&srv);
    sec.login("sec1", PASSWORD).await;
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    assert_eq!(op.get("/console/").await.status, 200);

    // Operators cannot reset anyone's second factor.
    let csrf = op.session_csrf().await;
    let p = op
        .post(
            "/console/accounts/sec1/second-factor/reset",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 403);

    let csrf = sec.session_csrf().await;
    let p = sec
        .post(
            "/console/accounts/op1/second-factor/reset",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!((p.status, p.location.as_str()), (303, "/console/accounts"));
    // The account's sessions end, and the next login goes to enrolment again.
    assert_eq!(op.get("/console/").await.location, "/console/login");
    let p = op.password_step("op1", PASSWORD).await;
    assert_eq!(p.location, "/console/second-factor");
    assert_eq!(op.get("/console/").await.location, "/console/second-factor");
    assert_eq!(op.enrol("op1").await.status, 200);
    assert_eq!(op.get("/console/").await.status, 200);

    // The CLI (control socket) resets too, audited as a CLI act.
    control(
        &srv,
        Command::AdminResetSecondFactor {
            username: "op1".into(),
        },
    )
    .unwrap();
    let mut resets = events_of(&srv, Act::SecondFactorReset);
    // The operator's refused attempt is recorded too.
    assert_eq!(
        resets
            .iter()
            .filter(|e| e.outcome == Outcome::Denied)
            .count(),
        1
    );
    resets.retain(|e| e.outcome == Outcome::Ok);
    assert_eq!(resets.len(), 2);
    assert!(
        resets
            .iter()
            .any(|e| e.actor.kind == hutong::domain::audit_event::ActorKind::Cli)
    );
    assert_eq!(op.get("/console/").await.location, "/console/login");
    srv.stop().await;
}

#[tokio::test]
async fn vendors_may_enable_totp_and_must_when_configured() {
    let srv = common::start().await;
    let mut v = Browser::new(&srv);
    register_vendor(&mut v, "vendor1", USCC, "13800000001").await;
    let p = v.login("vendor1", PASSWORD).await;
    assert_eq!(p.location, "/portal/", "optional by default");
    assert_eq!(v.get("/portal/").await.status, 200);
    let page = v.get("/console/second-factor").await;
    assert!(!page.body.contains("登记 SM2 证书"));
    assert_eq!(v.enrol("vendor1").await.status, 200);
    v.logout().await;
    let p = v.password_step("vendor1", PASSWORD).await;
    assert_eq!(p.location, "/console/login/verify", "enabled: asked for");
    let p = v.second_step("vendor1").await;
    assert_eq!(p.location, "/portal/");
    srv.stop().await;

    let srv = common::start_with(|c| c.portal.require_totp = true).await;
    let mut v = Browser::new(&srv);
    register_vendor(&mut v, "vendor2", USCC, "13800000002").await;
    let p = v.password_step("vendor2", PASSWORD).await;
    assert_eq!(p.location, "/console/second-factor");
    assert_eq!(v.get("/portal/").await.location, "/console/second-factor");
    assert_eq!(v.enrol("vendor2").await.status, 200);
    assert_eq!(v.get("/portal/").await.status, 200);
    srv.stop().await;
}

/// The audit entries of callback checks, asserting there is exactly one: passed, of `app_id`
/// by `actor`.
fn one_passed_check(
    srv: &common::TestServer,
    app_id: &str,
    actor: &str,
) -> Vec<hutong::domain::audit_event::AuditEvent> {
    let checks = events_of(srv, Act::SystemCheckCallback);
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0].outcome, Outcome::Ok);
    assert_eq!(
        (checks[0].target.as_str(), checks[0].actor.id.as_str()),
        (app_id, actor)
    );
    checks
}

/// A simulator member trusting this server's platform key, not yet registered.
fn start_simulator(srv: &common::TestServer) -> hutong::interop::simulator::RunningSimulator {
    use hutong::interop::simulator::{self, MemberIdentity, SimulatorConfig};
    simulator::start(SimulatorConfig {
        app_id: String::new(),
        platform_key: srv.state.keys.platform_public_key(),
        identity: MemberIdentity::generate("某某科技有限公司").unwrap(),
        confirm_delay: std::time::Duration::ZERO,
        time_window: std::time::Duration::from_secs(300),
        listen: "127.0.0.1:0".into(),
    })
    .unwrap()
}

/// A member whose callback is a running simulator (its address and TLS certificate
/// registered), in `state`.
async fn simulator_member(
    srv: &common::TestServer,
    state: hutong::domain::vocab::SystemState,
) -> (hutong::interop::simulator::RunningSimulator, String) {
    use hutong::server::control::{Command, Response};
    let sim = start_simulator(srv);
    let added = control(
        srv,
        Command::SystemAdd {
            name: "乙方印章系统".into(),
            plat_name: "乙方平台".into(),
            public_key_pem: public_key_pem(),
            callback_url: Some(sim.base_url.clone()),
            callback_ca_pem: Some(sim.tls_cert_pem.clone()),
            dest_host: None,
            state: Some(state),
        },
    )
    .unwrap();
    let Response::SystemAdd(added) = added else {
        panic!("system add answered {added:?}");
    };
    sim.set_app_id(&added.app_id);
    (sim, added.app_id)
}

/// The text of the element with `id` up to its closing `tag`.
fn element(body: &str, id: &str, tag: &str) -> String {
    between(body, &format!("id=\"{id}\""), &format!("</{tag}>"))
}

const CHECK_STAGES: [&str; 7] = [
    "域名解析",
    "TCP 连接",
    "TLS 握手",
    "HTTP 请求",
    "JSON 应答",
    "成员应答码",
    "应答签名",
];

/// 测试回调 on the system page: against the simulator every stage is listed as passed and the
/// act is audited ok; with the member gone the page names the connect stage and its cause,
/// the act is audited failed, and the system page's last callback failure shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_check_a_members_callback_from_the_system_page() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    let (sim, app_id) = simulator_member(&srv, hutong::domain::vocab::SystemState::Online).await;
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let page_path = format!("/console/systems/{app_id}");
    let check_path = format!("{page_path}/check-callback");

    let page = op.get(&page_path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("<button type=\"submit\" id=\"check-callback\">测试回调</button>")
    );
    assert!(element(&page.body, "last-failure", "dd").contains("本次启动以来没有失败的回调"));
    assert!(!page.body.contains("id=\"check-summary\""));

    let p = op.post(&check_path, &[("csrf", &page.csrf())]).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let summary = element(&p.body, "check-summary", "p");
    assert!(
        p.body.contains("class=\"ok\" id=\"check-summary\""),
        "{}",
        p.body
    );
    assert!(summary.contains("回调检查通过"), "{summary}");
    assert!(summary.contains(&sim.base_url), "{summary}");
    let table = element(&p.body, "check-stages", "table");
    let rows: Vec<&str> = table.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), CHECK_STAGES.len(), "{table}");
    for (row, stage) in rows.iter().zip(CHECK_STAGES) {
        assert!(
            row.starts_with(&format!("<td>{stage}</td><td>通过</td>")),
            "{row}"
        );
        assert!(row.contains(" 毫秒</td>"), "{row}");
    }
    assert!(table.contains("30006"), "the member's own refusal: {table}");
    assert!(!table.contains("失败</td>"), "{table}");
    // Still the system page, with its button, for another try.
    assert!(p.body.contains("id=\"check-callback\""));
    assert_eq!(sim.calls(), 1);

    let checks = one_passed_check(&srv, &app_id, "op1");
    assert!(checks[0].detail.as_str().contains("回调检查通过"));
    let history = element(&op.get(&page_path).await.body, "history", "table");
    assert!(history.contains("检查回调地址"), "{history}");

    // The member is gone: its port is closed.
    let port = sim.base_url.rsplit(':').next().unwrap().to_string();
    sim.stop().await;
    let csrf = op.session_csrf().await;
    let p = op.post(&check_path, &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        p.body.contains("class=\"error\" id=\"check-summary\""),
        "{}",
        p.body
    );
    let summary = element(&p.body, "check-summary", "p");
    assert!(summary.contains("回调检查失败于TCP 连接"), "{summary}");
    assert!(summary.contains(&format!(":{port} 被拒绝")), "{summary}");
    let table = element(&p.body, "check-stages", "table");
    let rows: Vec<&str> = table.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 2, "stops at the failing stage: {table}");
    assert!(
        rows[0].starts_with("<td>域名解析</td><td>通过</td>"),
        "{table}"
    );
    assert!(
        rows[1].starts_with("<td>TCP 连接</td><td>失败</td>"),
        "{table}"
    );
    assert!(rows[1].contains(&format!(":{port} 被拒绝")), "{table}");

    let checks = events_of(&srv, Act::SystemCheckCallback);
    assert_eq!(checks.len(), 2, "{checks:?}");
    let failed = checks
        .iter()
        .find(|e| e.outcome == Outcome::Failed)
        .unwrap();
    assert!(failed.detail.as_str().contains("TCP 连接"), "{failed:?}");

    let page = op.get(&page_path).await.body;
    assert!(!page.contains("id=\"check-summary\""));
    let last = element(&page, "last-failure", "dd");
    assert!(last.contains("回调检查失败于TCP 连接"), "{last}");
    assert!(last.contains(&format!(":{port} 被拒绝")), "{last}");
    srv.stop().await;
}

/// 测试回调 without the session's CSRF token is refused: no call reaches the member, no check
/// is recorded as run, the page keeps no failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_check_without_the_csrf_token_is_refused() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    let (sim, app_id) = simulator_member(&srv, hutong::domain::vocab::SystemState::Online).await;
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let csrf = op.session_csrf().await;
    let check_path = format!("/console/systems/{app_id}/check-callback");
    let wrong = format!("{}x", &csrf[..csrf.len() - 1]);
    for form in [vec![], vec![("csrf", "")], vec![("csrf", wrong.as_str())]] {
        let p = op.post(&check_path, &form).await;
        assert_eq!(p.status, 403, "{form:?}: {}", p.body);
        assert!(!p.body.contains("id=\"check-summary\""), "{}", p.body);
    }
    assert_eq!(sim.calls(), 0, "no call reached the member");
    let checks = events_of(&srv, Act::SystemCheckCallback);
    assert_eq!(checks.len(), 3, "{checks:?}");
    assert!(
        checks.iter().all(|e| e.outcome == Outcome::Denied),
        "{checks:?}"
    );
    let page = op.get(&format!("/console/systems/{app_id}")).await.body;
    assert!(element(&page, "last-failure", "dd").contains("本次启动以来没有失败的回调"));
    sim.stop().await;
    srv.stop().await;
}

/// The vendor portal offers 测试回调 while the vendor's system is in testing and runs the
/// check against its registered callback; once the operator puts the system online the button
/// is gone and a posted check is refused without calling the member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendors_check_their_callback_only_while_testing() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    let sim = start_simulator(&srv);
    let mut vendor = Browser::new(&srv);
    assert_eq!(
        register_vendor(&mut vendor, "vendor1", USCC, "13812345678")
            .await
            .status,
        303
    );
    vendor.login("vendor1", PASSWORD).await;
    let csrf = vendor.get("/portal/").await.csrf();
    let key = public_key_pem();
    let p = vendor
        .post(
            "/portal/apply",
            &[
                ("csrf", &csrf),
                ("system_name", "甲印章系统"),
                ("plat_name", "某某平台"),
                ("vendor", "某某科技"),
                ("public_key_pem", &key),
                ("callback_url", &sim.base_url),
                ("callback_ca_pem", &sim.tls_cert_pem),
                ("dest_host", ""),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    // Before approval there is no system to check.
    assert!(
        !vendor
            .get("/portal/")
            .await
            .body
            .contains("id=\"check-callback\"")
    );
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let ocsrf = op.session_csrf().await;
    let p = op
        .post("/console/applications/vendor1/approve", &[("csrf", &ocsrf)])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let app_id = srv
        .state
        .store
        .get_application("vendor1")
        .unwrap()
        .unwrap()
        .app_id
        .unwrap();
    sim.set_app_id(&app_id);

    let portal = vendor.get("/portal/").await;
    assert!(
        portal
            .body
            .contains("<button type=\"submit\" id=\"check-callback\">测试回调</button>"),
        "{}",
        portal.body
    );
    let p = vendor
        .post("/portal/check-callback", &[("csrf", &portal.csrf())])
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        p.body.contains("class=\"ok\" id=\"check-summary\""),
        "{}",
        p.body
    );
    assert!(element(&p.body, "check-summary", "p").contains("回调检查通过"));
    let table = element(&p.body, "check-stages", "table");
    for stage in CHECK_STAGES {
        assert!(
            table.contains(&format!("<td>{stage}</td><td>通过</td>")),
            "{table}"
        );
    }
    assert!(!p.body.contains("id=\"error\""), "{}", p.body);
    assert_eq!(sim.calls(), 1);
    one_passed_check(&srv, &app_id, "vendor1");

    // A wrong token is refused here too.
    let p = vendor
        .post("/portal/check-callback", &[("csrf", "forged")])
        .await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert_eq!(sim.calls(), 1);

    let p = op
        .post(
            &format!("/console/systems/{app_id}/state"),
            &[
                ("csrf", &ocsrf),
                ("to", "online"),
                ("reason", "联调测试通过"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let portal = vendor.get("/portal/").await;
    assert!(
        !portal.body.contains("id=\"check-callback\""),
        "{}",
        portal.body
    );
    assert!(!portal.body.contains("/portal/check-callback"));
    // The callback section (and its last failure line) stays.
    assert!(portal.body.contains("id=\"last-failure\""));
    let p = vendor
        .post("/portal/check-callback", &[("csrf", &portal.csrf())])
        .await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(!p.body.contains("id=\"check-summary\""), "{}", p.body);
    let error = element(&p.body, "error", "p");
    assert!(
        error.contains("只有测试状态的系统可以在门户中测试回调"),
        "{error}"
    );
    assert_eq!(sim.calls(), 1, "the online member was not called");
    let checks = events_of(&srv, Act::SystemCheckCallback);
    assert_eq!(checks.len(), 2, "{checks:?}");
    let refused = checks.iter().find(|e| e.outcome == Outcome::Failed);
    assert_eq!(refused.unwrap().target, "vendor1", "{checks:?}");
    sim.stop().await;
    srv.stop().await;
}

#[tokio::test]
async fn security_administrators_destroy_a_tenant_with_a_typed_confirmation() {
    let srv = common::start().await;
    admin(&srv, "sec1", Role::Security);
    let (mut vendor, mut op, csrf, app_id) = approved_system(&srv).await;
    let page = format!("/console/systems/{app_id}");
    let path = format!("{page}/destroy");
    let op_view = op.get(&page).await.body;
    assert!(!op_view.contains("id=\"destroy-tenant\"") && op_view.contains("id=\"set-state\""));
    let p = op
        .post(
            &path,
            &[("csrf", &csrf), ("confirm", &app_id), ("reason", "x")],
        )
        .await;
    assert_eq!(p.status, 403, "operators do not destroy");

    let mut sec = Browser::new(&srv);
    sec.login("sec1", PASSWORD).await;
    let view = sec.get(&page).await;
    assert_eq!(view.status, 200);
    assert!(view.body.contains("id=\"destroy-tenant\"") && !view.body.contains("id=\"set-quota\""));
    let scsrf = sec.session_csrf().await;
    let p = sec
        .post(
            &path,
            &[
                ("csrf", &scsrf),
                ("confirm", "HT0000"),
                ("reason", "合同终止"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("不一致"), "{}", p.body);
    let p = sec
        .post(
            &path,
            &[("csrf", &scsrf), ("confirm", &app_id), ("reason", " ")],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("销毁原因"), "{}", p.body);
    let vendor_key = srv.data_dir.path().join("keys/tenants").join(format!(
        "{}.key",
        hutong::keys::tenant_key_name("vendor:vendor1")
    ));
    assert!(
        vendor_key.exists(),
        "the vendor's tenant key is a file in the key store"
    );
    let p = sec
        .post(
            &path,
            &[
                ("csrf", &scsrf),
                ("confirm", &app_id),
                ("reason", "合同终止"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(!vendor_key.exists(), "deleted from the key store");
    let view = sec.get(&page).await.body;
    assert!(
        view.contains("id=\"destroyed\"") && view.contains("销毁租户数据"),
        "{view}"
    );
    let sys = srv.state.store.get_system(&app_id).unwrap().unwrap();
    assert_eq!(sys.state, hutong::domain::vocab::SystemState::Suspended);
    // The operator may not bring it back, neither from the page nor by posting the form;
    // the pages that listed its personal data still work.
    assert!(!op.get(&page).await.body.contains("id=\"set-state\""));
    let ocsrf = op.session_csrf().await;
    let p = op
        .post(
            &format!("/console/systems/{app_id}/state"),
            &[("csrf", &ocsrf), ("to", "online"), ("reason", "恢复")],
        )
        .await;
    assert_ne!(p.status, 303, "a destroyed system was moved: {}", p.body);
    let sys = srv.state.store.get_system(&app_id).unwrap().unwrap();
    assert_eq!(sys.state, hutong::domain::vocab::SystemState::Suspended);
    assert_eq!(op.get("/console/applications").await.status, 200);
    assert_eq!(vendor.get("/portal/").await.status, 200);
    srv.stop().await;
}

/// The overview's backup card: before any backup, then after a scheduled run that was read
/// back and checked, with the next run of `backup.schedule`.
#[tokio::test]
async fn the_overview_shows_the_last_backup_and_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().to_path_buf();
    let srv = common::start_with(move |c| {
        c.backup.dir = Some(backups);
        c.backup.schedule = "03:30".into();
    })
    .await;
    admin(&srv, "op1", Role::Operator);
    let mut op = Browser::new(&srv);
    op.login("op1", PASSWORD).await;
    let page = op.get("/console/").await.body;
    assert!(
        page.contains("尚无备份") && page.contains("03:30:00"),
        "{page}"
    );
    // The serving certificate's expiry, read from the certificate the server was given.
    let (cert, key) = hutong::server::tls::ensure_self_signed(&srv.state.config.data_dir).unwrap();
    let not_after = hutong::server::tls::ServerCert::open(&cert, &key)
        .unwrap()
        .summary()
        .not_after_ms;
    let days = (not_after - hutong::time::now_ms()) / 86_400_000;
    assert!(
        page.contains(&format!(
            "有效期至 {}",
            hutong::time::format_time_ms(not_after)
        )) && page.contains(&format!("剩余 {days} 天")),
        "{page}"
    );
    let ran = hutong::server::control::execute(
        &srv.state.store,
        Some(&srv.state.keys),
        &srv.state.config,
        hutong::server::control::Command::BackupScheduled,
    )
    .unwrap();
    let hutong::server::control::Response::BackupScheduled(status) = ran else {
        panic!("{ran:?}");
    };
    assert_eq!(status.verified, Some(true));
    let page = op.get("/console/").await.body;
    assert!(page.contains("id=\"backup-verified\">已校验通过"), "{page}");
    assert!(!page.contains("尚无备份"));
    srv.stop().await;
}
