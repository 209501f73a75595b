//! End to end in a real headless Chromium (Debian `chromium` + `chromium-driver`): a vendor
//! registers and applies, an operator approves, the vendor reads its appId, and a request signed
//! for that appId passes the API and shows in the vendor's and the operator's usage reports, and
//! the operator sets a quota; a security administrator uploads a trust anchor file, an
//! operator verifies a PDF and finds a filed seal with its picture. With `HUTONG_SCREENSHOTS=1`
//! the key pages are saved as PNG under `docs/screenshots/` (see docs/console.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;
#[path = "support/totp.rs"]
mod totp;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use totp::{AUTHENTICATORS, base32, next_code};

const USCC: &str = "91350100M000100Y43";
const PASSWORD: &str = "Vendor-Pass-1234";

struct Chromedriver(Child);

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_in_path(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(bin))
            .find(|f| f.is_file())
    })
}

async fn start_browser(profile: &std::path::Path) -> (Chromedriver, Client) {
    let (Some(driver), Some(chromium)) = (find_in_path("chromedriver"), find_in_path("chromium"))
    else {
        panic!(
            "the browser test needs Chromium and its WebDriver: apt-get install -y chromium chromium-driver"
        );
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let guard = Chromedriver(child);
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let caps = json!({
        "acceptInsecureCerts": true,
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--ignore-certificate-errors", "--window-size=1366,768",
                "--lang=zh-CN",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    // chromedriver accepts connections a moment before it serves them: a reset of the first
    // session request is retried, anything else fails the test.
    let mut attempt = 0;
    let client = loop {
        attempt += 1;
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => break c,
            Err(
                e @ (fantoccini::error::NewSessionError::Failed(_)
                | fantoccini::error::NewSessionError::FailedC(_)
                | fantoccini::error::NewSessionError::Lost(_)),
            ) if attempt < 5 => {
                eprintln!("WebDriver session attempt {attempt}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("WebDriver session: {e:?}"),
        }
    };
    (guard, client)
}

/// The element `#id`, waiting for it: a click returns before the page it leads to has loaded.
async fn element(c: &Client, id: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|_| panic!("#{id}"))
}

async fn fill(c: &Client, id: &str, value: &str) {
    let e = element(c, id).await;
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

/// Clicks a button or link of the console, each of which loads a page, and waits until the
/// page it was on is gone: the click returns before the next page arrives, and reading at once
/// would read the old page (a slow verification in CI read the last document's verdict).
async fn click(c: &Client, id: &str) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    element(c, id).await.click().await.unwrap();
    for _ in 0..400 {
        if old.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("#{id}: no page loaded within 20 s of the click");
}

async fn text(c: &Client, id: &str) -> String {
    // The element may belong to the page being replaced (a stale reference): look again.
    for _ in 0..20 {
        match c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id(id))
            .await
        {
            Ok(e) => match e.text().await {
                Ok(t) => return t,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            },
            Err(_) => panic!(
                "#{id} not found on {:?}:\n{}",
                c.current_url().await,
                c.source().await.unwrap_or_default()
            ),
        }
    }
    panic!("#{id} kept going stale");
}

async fn shot(c: &Client, name: &str) {
    if std::env::var_os("HUTONG_SCREENSHOTS").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Waits for the page after a submit: a signed-in page (logout button) or the second step.
async fn landed(c: &Client, user: &str) -> String {
    for _ in 0..100 {
        let url = c.current_url().await.unwrap();
        let path = url.path().to_string();
        let ready = match path.as_str() {
            "/console/login/verify" => c.find(Locator::Id("verify")).await.is_ok(),
            "/console/login" => false,
            _ => c.find(Locator::Id("logout")).await.is_ok(),
        };
        if ready {
            return path;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{user} is not signed in")
}

/// Enrols TOTP on the enrolment page the browser shows: reads the secret as a person would,
/// confirms with the first code, and continues past the recovery codes.
async fn enrol(c: &Client, base: &str, user: &str) {
    let secret = text(c, "secret").await;
    AUTHENTICATORS
        .lock()
        .unwrap()
        .insert(format!("{base}/{user}"), (base32(&secret), 0));
    fill(c, "code", &next_code(base, user).await).await;
    click(c, "enrol").await;
    assert_eq!(
        text(c, "recovery-codes").await.lines().count(),
        10,
        "ten recovery codes"
    );
    click(c, "continue").await;
    landed(c, user).await;
}

/// Signs in through both steps (enrolling first when the account is sent to enrolment).
async fn login(c: &Client, base: &str, user: &str, password: &str) {
    c.goto(&format!("{base}/console/login")).await.unwrap();
    fill(c, "username", user).await;
    fill(c, "password", password).await;
    click(c, "login").await;
    // The click returns before the next page loads; a navigation issued now would race the
    // cookies. Every signed-in page has the logout button.
    match landed(c, user).await.as_str() {
        "/console/login/verify" => {
            fill(c, "code", &next_code(base, user).await).await;
            click(c, "verify").await;
            let to = landed(c, user).await;
            assert_ne!(to, "/console/login/verify", "{user}: code refused");
        }
        "/console/second-factor" => enrol(c, base, user).await,
        _ => {}
    }
}

/// Signs out and waits for the login page: a sign-in started before the logout answer
/// arrives could have its fresh cookie cleared by that answer.
async fn logout(c: &Client) {
    click(c, "logout").await;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("username"))
        .await
        .unwrap_or_else(|_| panic!("the logout did not reach the login page"));
}

#[tokio::test]
async fn vendor_onboards_in_the_browser_and_its_app_id_signs_api_calls() {
    let srv = common::start().await;
    let profile = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(profile.path()).await;
    let base = srv.base.clone();

    // The vendor's own key pair; the browser uploads the public half.
    let key = sm2::SecretKey::from_slice(&hutong::crypto::sm::random_bytes::<32>()).unwrap();
    let pem = {
        use sm2::pkcs8::EncodePublicKey;
        key.public_key()
            .to_public_key_pem(Default::default())
            .unwrap()
    };

    // Registration: a wrong check digit is reported next to the field, in Chinese.
    c.goto(&format!("{base}/portal/register")).await.unwrap();
    for (id, v) in [
        ("username", "vendor1"),
        ("password", PASSWORD),
        ("org_name", "福州某某科技有限公司"),
        ("uscc", "91350100M000100Y44"),
        ("legal_rep", "张三"),
        ("contact_name", "李四"),
        ("mobile", "13812345678"),
        ("email", "ops@example.cn"),
    ] {
        fill(&c, id, v).await;
    }
    click(&c, "submit-register").await;
    // The fault is named: the check character and the one it should be.
    let why = text(&c, "uscc-error").await;
    assert!(why.contains("校验位错误：第 18 位应为“3”"), "{why}");
    shot(&c, "01-register-errors").await;
    fill(&c, "uscc", USCC).await;
    fill(&c, "password", PASSWORD).await;
    click(&c, "submit-register").await;
    assert!(text(&c, "notice").await.contains("注册成功"));

    // Application.
    fill(&c, "username", "vendor1").await;
    fill(&c, "password", PASSWORD).await;
    click(&c, "login").await;
    for (id, v) in [
        ("system_name", "某某电子印章系统"),
        ("plat_name", "某某印章平台"),
        ("vendor", "福州某某科技"),
        ("callback_url", "https://seal.example.cn/callback"),
    ] {
        fill(&c, id, v).await;
    }
    fill(&c, "public_key_pem", &pem).await;
    shot(&c, "02-portal-application").await;
    click(&c, "submit-application").await;
    assert!(text(&c, "notice").await.contains("已提交"));
    assert_eq!(text(&c, "app-state").await, "待审核");
    logout(&c).await;

    // The operator approves.
    hutong::domain::accounts::create_account(
        &srv.state.store,
        "op1",
        hutong::domain::vocab::Role::Operator,
        "Operator-Pass-12",
        false,
        &hutong::domain::audit_event::Actor::cli(),
    )
    .unwrap();
    login(&c, &base, "op1", "Operator-Pass-12").await;
    c.goto(&format!("{base}/console/applications"))
        .await
        .unwrap();
    text(&c, "approve-vendor1").await;
    shot(&c, "03-operator-queue").await;
    // The applicant's full real-name data, only with a reason (audited).
    fill(&c, "reveal-reason-vendor1", "核对法定代表人").await;
    click(&c, "reveal-vendor1").await;
    assert_eq!(text(&c, "legal-rep").await, "张三");
    assert!(text(&c, "reveal-note").await.contains("核对法定代表人"));
    assert!(srv.state.store.recent_events(50).unwrap().iter().any(|e| {
        e.action == hutong::domain::audit_event::Action::OnboardingReveal
            && e.detail.as_str().contains("核对法定代表人")
    }));
    c.goto(&format!("{base}/console/applications"))
        .await
        .unwrap();
    // Approving asks on a page of its own, then says what was done.
    click(&c, "approve-vendor1").await;
    assert!(text(&c, "question").await.contains("vendor1"));
    shot(&c, "03b-operator-confirm").await;
    click(&c, "confirm").await;
    assert!(text(&c, "notice").await.contains("已通过入驻申请"));
    c.goto(&format!("{base}/console/systems")).await.unwrap();
    shot(&c, "04-operator-systems").await;
    logout(&c).await;

    // The vendor sees its appId.
    login(&c, &base, "vendor1", PASSWORD).await;
    let app_id = text(&c, "app-id").await;
    assert!(app_id.starts_with("HT") && app_id.len() == 18, "{app_id}");
    assert_eq!(text(&c, "app-state").await, "已通过");
    shot(&c, "05-portal-approved").await;

    // A request signed with the vendor's key under that appId passes the gateway.
    let member = common::Member {
        app_id: app_id.clone(),
        key,
        nonce: std::sync::atomic::AtomicU32::new(1),
    };
    let (status, v) = srv
        .post("/api/v1/system/info", &member.request(json!({})))
        .await;
    assert_eq!((status, v["code"].as_str()), (200, Some("0")), "{v}");
    assert_eq!(v["data"]["appId"], app_id.as_str());
    assert_eq!(v["data"]["state"], "testing");

    // The vendor sees that call in its own usage.
    c.goto(&format!("{base}/portal/usage")).await.unwrap();
    assert_eq!(text(&c, "row-count").await, "1 行");
    // The operator sees it in the report and gives the system a quota with the form's dates.
    logout(&c).await;
    login(&c, &base, "op1", "Operator-Pass-12").await;
    shot(&c, "06-dashboard").await;
    c.goto(&format!("{base}/console/usage")).await.unwrap();
    assert_eq!(text(&c, "row-count").await, "1 行");
    shot(&c, "13-operator-usage").await;
    c.goto(&format!("{base}/console/systems/{app_id}"))
        .await
        .unwrap();
    assert_eq!(text(&c, "usage-calls").await, "1");
    fill(&c, "quota-limit", "10000").await;
    click(&c, "set-quota").await;
    assert_eq!(text(&c, "quota-status").await, "有效");
    assert_eq!(text(&c, "quota-remaining").await, "10000");
    if std::env::var_os("HUTONG_SCREENSHOTS").is_some() {
        let _ = c
            .execute("document.getElementById('usage').scrollIntoView()", vec![])
            .await;
        shot(&c, "14-operator-system-quota").await;
    }

    // A callback change: asked in the portal, approved in the queue, in force on the system.
    logout(&c).await;
    login(&c, &base, "vendor1", PASSWORD).await;
    fill(&c, "callback_url", "https://seal2.example.cn/callback").await;
    fill(&c, "dest_host", "https://ukey.example.cn").await;
    click(&c, "request-callback-change").await;
    assert!(text(&c, "notice").await.contains("回调配置变更已提交"));
    text(&c, "callback-pending").await;
    shot(&c, "18-portal-callback-change").await;
    logout(&c).await;
    login(&c, &base, "op1", "Operator-Pass-12").await;
    c.goto(&format!("{base}/console/applications"))
        .await
        .unwrap();
    text(&c, "callback-change-vendor1").await;
    shot(&c, "19-operator-callback-change").await;
    click(&c, "callback-approve-vendor1").await;
    assert!(text(&c, "notice").await.contains("已批准回调配置变更"));
    c.goto(&format!("{base}/console/systems/{app_id}"))
        .await
        .unwrap();
    assert_eq!(
        text(&c, "callback-url").await,
        "https://seal2.example.cn/callback"
    );
    assert_eq!(text(&c, "dest-host").await, "https://ukey.example.cn");
    let history = text(&c, "history").await;
    assert!(
        history.contains("申请变更回调配置") && history.contains("批准变更回调配置"),
        "{history}"
    );

    if std::env::var_os("HUTONG_SCREENSHOTS").is_some() {
        // The other roles' pages for the docs.
        logout(&c).await;
        for (user, role) in [
            ("sec1", hutong::domain::vocab::Role::Security),
            ("aud1", hutong::domain::vocab::Role::Auditor),
        ] {
            hutong::domain::accounts::create_account(
                &srv.state.store,
                user,
                role,
                "Admin-Pass-1234",
                false,
                &hutong::domain::audit_event::Actor::cli(),
            )
            .unwrap();
        }
        login(&c, &base, "sec1", "Admin-Pass-1234").await;
        c.goto(&format!("{base}/console/accounts")).await.unwrap();
        shot(&c, "07-security-accounts").await;
        c.goto(&format!("{base}/console/keys")).await.unwrap();
        shot(&c, "08-security-keys").await;
        c.goto(&format!("{base}/console/settings")).await.unwrap();
        shot(&c, "15-security-settings").await;
        logout(&c).await;
        login(&c, &base, "aud1", "Admin-Pass-1234").await;
        c.goto(&format!("{base}/console/events")).await.unwrap();
        shot(&c, "09-auditor-events").await;
        c.goto(&format!("{base}/console/login")).await.unwrap();
        shot(&c, "00-login").await;
    }
    c.close().await.unwrap();
    srv.stop().await;
}

/// A seal whose picture is an SVG: a red ring, a star and the name, like a real 印模.
fn svg_seal(name: &str, label: &str) -> Vec<u8> {
    let kit = hutong::ses::kit::SealKit::generate("某某公司").unwrap();
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200" width="200" height="200"><circle cx="100" cy="100" r="92" fill="none" stroke="#d0021b" stroke-width="8"/><polygon points="100,62 110,92 142,92 116,110 126,140 100,122 74,140 84,110 58,92 90,92" fill="#d0021b"/><text x="100" y="168" font-size="18" text-anchor="middle" fill="#d0021b">{label}</text></svg>"##
    );
    let mut params = kit.params(
        name,
        &format!("es-e2e-{}", common::now_ms()),
        365,
        svg.into_bytes(),
    );
    params.picture_kind = "svg".into();
    kit.seal_v4(&params).unwrap()
}

/// Trust anchor upload, document verification and seal search with real file inputs.
#[tokio::test]
async fn trust_anchor_verification_and_seal_search_in_the_browser() {
    use base64::Engine;
    let srv = common::start().await;
    let profile = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(profile.path()).await;
    let base = srv.base.clone();
    let root = |p: &str| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(p)
            .to_string_lossy()
            .into_owned()
    };
    for (user, role) in [
        ("sec1", hutong::domain::vocab::Role::Security),
        ("op1", hutong::domain::vocab::Role::Operator),
    ] {
        hutong::domain::accounts::create_account(
            &srv.state.store,
            user,
            role,
            "Admin-Pass-1234",
            false,
            &hutong::domain::audit_event::Actor::cli(),
        )
        .unwrap();
    }

    // 安全管理员 uploads the SM2 root as a file.
    login(&c, &base, "sec1", "Admin-Pass-1234").await;
    c.goto(&format!("{base}/console/trust")).await.unwrap();
    text(&c, "no-anchor").await;
    element(&c, "cert-file")
        .await
        .send_keys(&root("tests/data/pdf/generated/pki-sm2/root.pem"))
        .await
        .unwrap();
    click(&c, "add-anchor").await;
    assert_eq!(text(&c, "anchor-count").await, "1 个");
    shot(&c, "10-security-trust").await;
    logout(&c).await;

    // 系统管理员 verifies a document and sees the eight steps.
    login(&c, &base, "op1", "Admin-Pass-1234").await;
    c.goto(&format!("{base}/console/verify")).await.unwrap();
    element(&c, "doc-file")
        .await
        .send_keys(&root(
            "tests/data/pdf/generated/sm2-cms-pkcs7oid-detached.pdf",
        ))
        .await
        .unwrap();
    click(&c, "verify").await;
    assert_eq!(text(&c, "verify-result").await, "通过");
    assert_eq!(text(&c, "format").await, "PDF");
    let sig = text(&c, "sig-1").await;
    assert!(sig.contains("未在本平台备案"));
    // Not on file is a notice and a plain digital signature has no seal: neither is red.
    assert!(sig.contains("提示") && sig.contains("不适用"), "{sig}");
    // A document changed after signing: the headline says why, in plain words, first.
    element(&c, "doc-file")
        .await
        .send_keys(&root(
            "tests/data/pdf/generated/sm2-cms-pkcs7oid-detached-tampered.pdf",
        ))
        .await
        .unwrap();
    click(&c, "verify").await;
    assert_eq!(text(&c, "verify-result").await, "未通过");
    let reasons = text(&c, "reasons").await;
    assert!(
        reasons.contains("签章 1：签署后文档内容被改动"),
        "{reasons}"
    );
    shot(&c, "11-operator-verify-failed").await;
    // A document stamped with a GB/T 38540 seal shows the 印模 beside the steps.
    element(&c, "doc-file")
        .await
        .send_keys(&root("tests/data/pdf/generated/sm2-ses-v4-seal.pdf"))
        .await
        .unwrap();
    click(&c, "verify").await;
    assert_eq!(text(&c, "format").await, "PDF");
    if std::env::var_os("HUTONG_SCREENSHOTS").is_some() {
        let _ = c
            .execute("document.getElementById('sig-1').scrollIntoView()", vec![])
            .await;
        shot(&c, "11-operator-verify").await;
    }

    // A seal filed by a member is found by org code, with its picture.
    let member = srv.add_member("online");
    let system = srv.state.store.get_system(&member.app_id).unwrap().unwrap();
    let der = svg_seal("福州某某科技有限公司合同专用章", "合同专用章");
    hutong::domain::seals::file(
        &srv.state.store,
        srv.state.keys.provider(),
        &srv.state.config.region_code,
        &system,
        hutong::domain::seals::Filing {
            code: Some("e2e-1".into()),
            name: "福州某某科技有限公司合同专用章".into(),
            seal_type: "04".into(),
            possessor: "福州某某科技有限公司".into(),
            possessor_cert_no: USCC.into(),
            possessor_type: 1,
            biz_type: 1,
            cert_type: 2,
            seal_data: Some(base64::engine::general_purpose::STANDARD.encode(&der)),
            ..Default::default()
        },
    )
    .unwrap();
    c.goto(&format!("{base}/console/seals")).await.unwrap();
    fill(&c, "q", USCC).await;
    click(&c, "search").await;
    assert_eq!(text(&c, "count").await, "1 条");
    let img = c
        .find(Locator::Css("img.seal-pic"))
        .await
        .expect("seal picture shown");
    let src = img.attr("src").await.unwrap().unwrap_or_default();
    assert!(src.starts_with("/console/seals/"), "{src}");
    shot(&c, "12-operator-seals").await;
    c.close().await.unwrap();
    srv.stop().await;
}

#[tokio::test]
async fn administrators_enrol_totp_with_the_qr_code_and_sign_in_with_it() {
    let srv = common::start().await;
    let profile = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(profile.path()).await;
    let base = srv.base.clone();
    hutong::domain::accounts::create_account(
        &srv.state.store,
        "sec1",
        hutong::domain::vocab::Role::Security,
        "Admin-Pass-1234",
        false,
        &hutong::domain::audit_event::Actor::cli(),
    )
    .unwrap();

    c.goto(&format!("{base}/console/login")).await.unwrap();
    fill(&c, "username", "sec1").await;
    fill(&c, "password", "Admin-Pass-1234").await;
    click(&c, "login").await;
    // The password alone leads to the enrolment page, with the QR code drawn by the browser
    // from the inline image (allowed by the CSP).
    text(&c, "required").await;
    assert_eq!(
        c.current_url().await.unwrap().path(),
        "/console/second-factor"
    );
    let qr = element(&c, "qr").await;
    let width = c
        .execute(
            "return arguments[0].complete ? arguments[0].naturalWidth : 0;",
            vec![serde_json::to_value(&qr).unwrap()],
        )
        .await
        .unwrap();
    assert!(
        width.as_u64().unwrap_or(0) > 100,
        "QR image rendered: {width}"
    );
    shot(&c, "16-second-factor-enrol").await;
    c.goto(&format!("{base}/console/keys")).await.unwrap();
    assert_eq!(
        c.current_url().await.unwrap().path(),
        "/console/second-factor",
        "nothing opens before enrolment"
    );
    enrol(&c, &base, "sec1").await;
    c.goto(&format!("{base}/console/keys")).await.unwrap();
    text(&c, "logout").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/console/keys");
    logout(&c).await;

    // Password and code.
    c.goto(&format!("{base}/console/login")).await.unwrap();
    fill(&c, "username", "sec1").await;
    fill(&c, "password", "Admin-Pass-1234").await;
    click(&c, "login").await;
    assert_eq!(landed(&c, "sec1").await, "/console/login/verify");
    shot(&c, "17-second-step").await;
    fill(&c, "code", &next_code(&base, "sec1").await).await;
    click(&c, "verify").await;
    assert_eq!(landed(&c, "sec1").await, "/console/");
    c.close().await.unwrap();
    srv.stop().await;
}
