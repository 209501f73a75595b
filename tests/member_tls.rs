//! Whom the platform trusts as a member's callback server (SPEC §4, issue 13 points 1–3), over
//! real HTTPS on loopback: members with certificates made here at test time (rcgen), checked
//! stage by stage with the callback check and through the routed-call client, each refusal
//! with its specific cause.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

use actix_web::{App, HttpResponse, HttpServer, web};
use hutong::domain::vocab::SystemState;
use hutong::interop::MemberClient;
use hutong::interop::check::{CheckReport, Stage, check_callback};
use hutong::keys::Keyring;
use hutong::store::systems::SystemRecord;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::sync::Arc;
use std::time::Duration;

/// What every test member answers: its own refusal of an authId it does not know.
const REFUSAL: &str = r#"{"code":"30006","message":"authId 不存在","data":""}"#;

struct Cert {
    der: Vec<u8>,
    pem: String,
    key: KeyPair,
    params: CertificateParams,
}

fn params(cn: &str, sans: &[&str], ca: bool, days: (i64, i64)) -> CertificateParams {
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = if ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now + time::Duration::days(days.0);
    p.not_after = now + time::Duration::days(days.1);
    p
}

fn self_signed(p: CertificateParams) -> Cert {
    let key = KeyPair::generate().unwrap();
    let c = p.self_signed(&key).unwrap();
    Cert {
        der: c.der().to_vec(),
        pem: c.pem(),
        key,
        params: p,
    }
}

fn issued_by(p: CertificateParams, ca: &Cert) -> Cert {
    let key = KeyPair::generate().unwrap();
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let c = p.signed_by(&key, &issuer).unwrap();
    Cert {
        der: c.der().to_vec(),
        pem: c.pem(),
        key,
        params: p,
    }
}

const HOST: &[&str] = &["127.0.0.1", "localhost"];
const VALID: (i64, i64) = (-1, 30);

/// A member on `127.0.0.1:0` presenting `chain` (leaf first) and refusing every call; its
/// base URL.
fn serve(chain: &[&Cert]) -> (String, actix_web::dev::ServerHandle) {
    serve_answering(chain, REFUSAL.as_bytes().to_vec())
}

/// As [`serve`], answering every call with `body`.
fn serve_answering(chain: &[&Cert], body: Vec<u8>) -> (String, actix_web::dev::ServerHandle) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let certs = chain
        .iter()
        .map(|c| CertificateDer::from(c.der.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain[0].key.serialize_der()));
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let body = web::Bytes::from(body);
    let server = HttpServer::new(move || {
        let body = body.clone();
        App::new().default_service(web::to(move || {
            let body = body.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(body)
            }
        }))
    })
    .workers(1)
    .shutdown_timeout(0)
    .bind_rustls_0_23("127.0.0.1:0", tls)
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("https://127.0.0.1:{port}"), handle)
}

fn member(base: &str, registered: Option<&Cert>) -> SystemRecord {
    SystemRecord {
        app_id: "HTTESTMEMBER".into(),
        name: "测试成员".into(),
        plat_name: "测试成员平台".into(),
        vendor: None,
        public_keys: Vec::new(),
        callback_url: Some(base.to_string()),
        callback_ca_pem: registered.map(|c| c.pem.clone()),
        dest_host: None,
        state: SystemState::Testing,
        created_ms: 0,
        history: Vec::new(),
    }
}

fn keyring() -> (Keyring, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = hutong::config::Config::load(None, Vec::<(String, String)>::new()).unwrap();
    config.data_dir = dir.path().to_path_buf();
    (Keyring::init(&config).unwrap(), dir)
}

async fn check(keys: &Arc<Keyring>, rec: SystemRecord) -> CheckReport {
    let keys = keys.clone();
    tokio::task::spawn_blocking(move || check_callback(&keys, &rec, Duration::from_secs(3)))
        .await
        .unwrap()
}

fn assert_passes(r: &CheckReport) {
    assert!(r.passed(), "{r:#?}");
    let stages: Vec<Stage> = r.stages.iter().map(|s| s.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::Resolve,
            Stage::Connect,
            Stage::Tls,
            Stage::Http,
            Stage::Envelope,
            Stage::MemberCode,
            Stage::Signature
        ]
    );
    assert!(r.stages[5].note.contains("30006"), "{r:#?}");
}

fn assert_fails_at(r: &CheckReport, stage: Stage, cause: &str) {
    let f = r
        .first_failure()
        .unwrap_or_else(|| panic!("passed: {r:#?}"));
    assert_eq!(f.stage, stage, "{r:#?}");
    assert!(f.note.contains(cause), "expected {cause:?}: {r:#?}");
    assert_eq!(r.stages.last().map(|s| s.stage), Some(stage), "stops there");
}

/// A routed call through the process's member client: the same trust, the same causes.
async fn routed(keys: &Keyring, rec: &SystemRecord) -> Result<(), hutong::interop::InteropError> {
    let client = MemberClient::new(Duration::from_secs(3));
    let mut fields = serde_json::Map::new();
    fields.insert("authId".into(), "x".into());
    match client.call(keys, rec, "/cloud/auth/result", fields).await {
        Err(hutong::interop::InteropError::Refused { code, .. }) if code == "30006" => Ok(()),
        Err(e) => {
            let last = client.last_failure(&rec.app_id).expect("recorded");
            assert_eq!(last.detail, e.detail());
            Err(e)
        }
        Ok(v) => panic!("answered {v}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_pins_are_accepted_whatever_their_basic_constraints() {
    let (keys, _dir) = keyring();
    let keys = Arc::new(keys);
    for ca in [true, false] {
        let pin = self_signed(params("member", HOST, ca, VALID));
        let (base, h) = serve(&[&pin]);
        let rec = member(&base, Some(&pin));
        assert_passes(&check(&keys, rec.clone()).await);
        routed(&keys, &rec).await.unwrap();
        // The same member by name: the pin's subjectAltName covers it too.
        let by_name = member(&base.replace("127.0.0.1", "localhost"), Some(&pin));
        assert_passes(&check(&keys, by_name).await);
        h.stop(false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_issuing_the_members_leaf_keeps_working_as_a_ca() {
    let (keys, _dir) = keyring();
    let keys = Arc::new(keys);
    let ca = self_signed(params("成员私有 CA", &[], true, (-1, 365)));
    let leaf = issued_by(params("member", HOST, false, VALID), &ca);
    let (base, h) = serve(&[&leaf, &ca]);
    let rec = member(&base, Some(&ca));
    assert_passes(&check(&keys, rec.clone()).await);
    routed(&keys, &rec).await.unwrap();
    // A leaf of that CA for another host is refused for the host, not for trust.
    let other = issued_by(params("member", &["other.example"], false, VALID), &ca);
    let (base2, h2) = serve(&[&other, &ca]);
    let r = check(&keys, member(&base2, Some(&ca))).await;
    assert_fails_at(&r, Stage::Tls, "证书不包含回调主机名 127.0.0.1");
    h.stop(false).await;
    h2.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_foreign_and_substituted_pins_are_refused_with_their_cause() {
    let (keys, _dir) = keyring();
    let keys = Arc::new(keys);

    let expired = self_signed(params("member", HOST, true, (-30, -1)));
    let (base, h) = serve(&[&expired]);
    let rec = member(&base, Some(&expired));
    assert_fails_at(&check(&keys, rec.clone()).await, Stage::Tls, "证书已过期");
    let e = routed(&keys, &rec).await.unwrap_err();
    assert_eq!(e.code(), hutong::protocol::Code::HomeUnreachable);
    assert!(e.detail().contains("证书已过期"), "{}", e.detail());
    h.stop(false).await;

    let elsewhere = self_signed(params("member", &["member.example"], true, VALID));
    let (base, h) = serve(&[&elsewhere]);
    let rec = member(&base, Some(&elsewhere));
    assert_fails_at(
        &check(&keys, rec.clone()).await,
        Stage::Tls,
        "证书不包含回调主机名 127.0.0.1",
    );
    let e = routed(&keys, &rec).await.unwrap_err();
    assert!(e.detail().contains("127.0.0.1"), "{}", e.detail());
    assert!(!e.to_string().contains("127.0.0.1"), "requester: {e}");
    h.stop(false).await;

    // Same subject, another key: not the registered certificate.
    let registered = self_signed(params("member", HOST, true, VALID));
    let impostor = self_signed(params("member", HOST, true, VALID));
    let (base, h) = serve(&[&impostor]);
    let rec = member(&base, Some(&registered));
    assert_fails_at(
        &check(&keys, rec.clone()).await,
        Stage::Tls,
        "证书与登记的回调证书不一致",
    );
    let e = routed(&keys, &rec).await.unwrap_err();
    assert!(e.to_string().contains("证书与登记的回调证书不一致"), "{e}");
    h.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_leaves_unregistered_members_and_closed_ports_say_why() {
    let (keys, _dir) = keyring();
    let keys = Arc::new(keys);
    // A registered intermediate CA presented as the server certificate itself.
    let root = self_signed(params("根 CA", &[], true, (-1, 365)));
    let intermediate = issued_by(params("中间 CA", HOST, true, VALID), &root);
    let (base, h) = serve(&[&intermediate]);
    let r = check(&keys, member(&base, Some(&intermediate))).await;
    assert_fails_at(&r, Stage::Tls, "证书为 CA 证书，不能直接作为服务器证书");
    h.stop(false).await;

    // Nothing registered: a self-signed server is checked against the OS roots only.
    let lone = self_signed(params("member", HOST, false, VALID));
    let (base, h) = serve(&[&lone]);
    let r = check(&keys, member(&base, None)).await;
    assert_fails_at(&r, Stage::Tls, "证书不受信任：");
    h.stop(false).await;

    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let rec = member(&format!("https://127.0.0.1:{port}"), Some(&lone));
    let r = check(&keys, rec.clone()).await;
    assert_fails_at(&r, Stage::Connect, "被拒绝");
    let e = routed(&keys, &rec).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "印章所属系统 HTTESTMEMBER 无法访问：连接被拒绝"
    );
    assert!(
        e.detail().contains(&format!("127.0.0.1:{port}")),
        "{}",
        e.detail()
    );

    // An unresolvable host.
    let rec = member("https://no-such-member.invalid", Some(&lone));
    assert_fails_at(&check(&keys, rec.clone()).await, Stage::Resolve, "解析失败");
    let e = routed(&keys, &rec).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "印章所属系统 HTTESTMEMBER 无法访问：域名解析失败"
    );
}

/// A member answering more than the answer limit is refused as too large, with that cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_is_refused_as_too_large() {
    let (keys, _dir) = keyring();
    let pin = self_signed(params("member", HOST, true, VALID));
    let mut huge = vec![b' '; hutong::interop::client::MAX_ANSWER_BYTES + 4096];
    huge.extend_from_slice(REFUSAL.as_bytes());
    let (base, h) = serve_answering(&[&pin], huge);
    let e = routed(&keys, &member(&base, Some(&pin))).await.unwrap_err();
    assert!(
        matches!(e, hutong::interop::InteropError::BadAnswer(..)),
        "{e:?}"
    );
    assert!(e.detail().contains("应答过大"), "{}", e.detail());
    h.stop(false).await;
}
