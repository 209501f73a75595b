//! Console and vendor portal over real HTTPS: role boundaries on every page and action, CSRF
//! refusal, session cookies and rotation, forced password change, tenant isolation; trust
//! anchors, document verification and seal registry search.

mod common;

use hutong::domain::accounts::create_account;
use hutong::store::accounts::Role;
use hutong::store::applications::ApplicationState;
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

    async fn login(&mut self, user: &str, password: &str) -> Page {
        let csrf = self.get("/console/login").await.csrf();
        self.post(
            "/console/login",
            &[("csrf", &csrf), ("username", user), ("password", password)],
        )
        .await
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
    create_account(&srv.state.store, name, role, PASSWORD, false, "test").unwrap();
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
        (303, "/console/applications")
    );
    let app = srv.state.store.get_application("vendor1").unwrap().unwrap();
    assert_eq!(app.state, ApplicationState::Approved);
    let events = srv.state.store.recent_events(100).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "onboarding.approve" && e.result == "denied")
    );
    assert!(
        events
            .iter()
            .any(|e| e.action == "console.approve" && e.result == "ok" && e.actor == "op1")
    );
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
        let actions: [Action; 4] = [
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
    assert!(events.contains("denied") && events.contains("角色=auditor"));
    // The keys page never shows key material.
    let mut sec = Browser::new(&srv);
    sec.login("sec1", PASSWORD).await;
    let keys = sec.get("/console/keys").await.body;
    assert!(keys.contains("密钥提供者") && !keys.contains("PRIVATE KEY"));
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
    assert_eq!((p.status, p.location.as_str()), (303, "/console/"));
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

#[tokio::test]
async fn vendors_get_field_errors_and_see_only_their_own_application() {
    let srv = common::start().await;
    let mut a = Browser::new(&srv);
    let p = register_vendor(&mut a, "vendor-a", "91350100M000100Y44", "2381234567").await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("id=\"uscc-error\"") && p.body.contains("统一社会信用代码无效"));
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
    srv.stop().await;
}

#[tokio::test]
async fn operators_move_systems_with_a_reason_and_rotate_vendor_keys() {
    let srv = common::start().await;
    admin(&srv, "op1", Role::Operator);
    let mut vendor = Browser::new(&srv);
    register_vendor(&mut vendor, "vendor1", USCC, "13812345678").await;
    vendor.login("vendor1", PASSWORD).await;
    apply(&mut vendor, "甲印章系统").await;
    let mut op = Browser::new(&srv);
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
    assert_eq!(sys.state, hutong::store::systems::SystemState::Suspended);

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
    for step in [
        "parse",
        "integrity",
        "signature",
        "certificate",
        "timestamp",
        "coverage",
    ] {
        assert!(row(step).contains("通过"), "{step}: {}", row(step));
    }
    assert!(row("registry").contains("未在本平台备案"));
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
    for action in [
        "console.trust_add",
        "trust.remove",
        "console.document_verify",
        "denied",
    ] {
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
    let seal_code = hutong::domain::seals::file(
        &srv.state.store,
        srv.state.keys.provider(),
        &srv.state.config.region_code,
        &system,
        hutong::domain::seals::Filing {
            code: Some("biz-1".into()),
            name: "某某科技有限公司合同专用章".into(),
            seal_type: "04".into(),
            possessor: "某某科技有限公司".into(),
            possessor_cert_no: USCC.into(),
            possessor_type: 1,
            biz_type: 1,
            cert_type: 2,
            seal_data: Some(base64::engine::general_purpose::STANDARD.encode(&der)),
            ..Default::default()
        },
    )
    .unwrap();

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
            .contains("console.seal_search")
    );
    srv.stop().await;
}
