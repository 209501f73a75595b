//! Cross-system cloud signing (SPEC §3.4–3.7, §4) over real HTTPS: the platform and simulated
//! members on loopback. A finds B's seal, applies for intention authentication, polls the
//! result and has a digest signed by B; the platform routes every call to B's simulator and
//! verifies what comes back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;

use base64::Engine;
use common::{Member, TestServer};
use hutong::domain::vocab::SystemState;
use hutong::interop::simulator::{
    self, Behaviour, MemberIdentity, RunningSimulator, SimulatorConfig,
};
use hutong::server::control;
use serde_json::{Value, json};
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

const ORG: &str = "91350100M000100Y43";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn picture() -> Vec<u8> {
    let mut p = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    p.extend_from_slice(&120u32.to_be_bytes());
    p.extend_from_slice(&80u32.to_be_bytes());
    p.extend_from_slice(b"\x08\x06\x00\x00\x00seal-picture-bytes");
    p
}

struct Home {
    member: Member,
    sim: RunningSimulator,
    seal_code: String,
    /// Every seal filed, `seal_code` first.
    seal_codes: Vec<String>,
}

/// Starts a simulator, registers it as an online member with its callback address and TLS
/// certificate, and files one cloud seal (certType 2) carrying its signer certificate.
async fn home_system(srv: &TestServer, confirm_delay: Duration) -> Home {
    let identity = MemberIdentity::generate("某某科技有限公司").unwrap();
    home_system_with(srv, confirm_delay, identity).await
}

async fn home_system_with(
    srv: &TestServer,
    confirm_delay: Duration,
    identity: MemberIdentity,
) -> Home {
    home_system_as(srv, SystemState::Online, confirm_delay, identity, 1).await
}

/// A home system in `state` with `seals` cloud seals (the first is `seal_code`).
async fn home_system_as(
    srv: &TestServer,
    state: SystemState,
    confirm_delay: Duration,
    identity: MemberIdentity,
    seals: usize,
) -> Home {
    let ders: Vec<Vec<u8>> = (1..=seals)
        .map(|i| {
            identity
                .build_seal("合同专用章", &format!("sim-es-{i}"), picture(), 365)
                .unwrap()
        })
        .collect();
    let signer_cert = match &identity.rsa_signer {
        Some(rsa) => &rsa.cert,
        None => &identity.kit.signer_cert,
    };
    let signer_serial = hutong::crypto::x509::CertInfo::parse(signer_cert)
        .unwrap()
        .serial_hex;
    let sim = simulator::start(SimulatorConfig {
        app_id: String::new(),
        platform_key: srv.state.keys.platform_public_key(),
        identity,
        confirm_delay,
        time_window: Duration::from_secs(300),
        listen: "127.0.0.1:0".into(),
    })
    .unwrap();
    let key = sm2::SecretKey::from_slice(&hutong::crypto::sm::random_bytes::<32>()).unwrap();
    let pem = {
        use sm2::pkcs8::EncodePublicKey;
        key.public_key()
            .to_public_key_pem(Default::default())
            .unwrap()
    };
    let v = control::execute(
        &srv.state.store,
        None,
        &srv.state.config,
        control::Command::SystemAdd {
            name: "乙方印章系统".into(),
            plat_name: "乙方平台".into(),
            public_key_pem: pem,
            callback_url: Some(sim.base_url.clone()),
            callback_ca_pem: Some(sim.tls_cert_pem.clone()),
            dest_host: None,
            state: Some(state),
        },
    )
    .unwrap();
    let control::Response::SystemAdd(added) = v else {
        panic!("system add answered {v:?}");
    };
    let member = Member {
        app_id: added.app_id,
        key,
        nonce: AtomicU32::new(1),
    };
    sim.set_app_id(&member.app_id);
    let mut seal_codes = Vec::new();
    for (i, der) in ders.iter().enumerate() {
        let code = ok(
            srv,
            &member,
            "/api/v1/seal/filing",
            json!({
                "code": format!("biz-{}", i + 1),
                "name": "合同专用章",
                "sealType": "01",
                "certNumber": signer_serial,
                "possessor": "某某科技有限公司",
                "possessorCertNo": ORG,
                "possessorType": 1,
                "bizType": 1,
                "certType": 2,
                "sealData": b64(der),
            }),
        )
        .await;
        seal_codes.push(code.as_str().unwrap().to_string());
    }
    Home {
        member,
        sim,
        seal_code: seal_codes[0].clone(),
        seal_codes,
    }
}

async fn call(srv: &TestServer, m: &Member, path: &str, extra: Value) -> (u16, Value) {
    srv.post(path, &m.request(extra)).await
}

async fn ok(srv: &TestServer, m: &Member, path: &str, extra: Value) -> Value {
    let (s, v) = call(srv, m, path, extra).await;
    assert_eq!((s, v["code"].as_str().unwrap()), (200, "0"), "{path}: {v}");
    v["data"].clone()
}

async fn fails(srv: &TestServer, m: &Member, path: &str, extra: Value, status: u16, code: &str) {
    let (s, v) = call(srv, m, path, extra).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap_or("")),
        (status, code),
        "{path}: {v}"
    );
    assert!(
        !v["message"].as_str().unwrap_or("").is_empty(),
        "a refusal explains itself: {v}"
    );
}

/// B's seal as A finds it in `seal/query`, with a fresh signId.
async fn seal_entry(srv: &TestServer, a: &Member, seal_code: &str) -> Value {
    let list = ok(
        srv,
        a,
        "/api/v1/seal/query",
        json!({"orgCode": ORG, "sealType": "0", "certType": 2}),
    )
    .await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["sealCode"] == seal_code)
        .expect("B's seal is listed")
        .clone()
}

/// The signer certificate (DER) of a seal entry.
fn signer_cert(seal: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(seal["certList"][0]["signPublicKey"].as_str().unwrap())
        .unwrap()
}

/// The seal as A finds it: (signId, SM2 signer public key from certList).
async fn find_seal(srv: &TestServer, a: &Member, seal_code: &str) -> (String, sm2::PublicKey) {
    let seal = seal_entry(srv, a, seal_code).await;
    let key = hutong::crypto::sm::sm2_public_key_from_cert_der(&signer_cert(&seal)).unwrap();
    (seal["signId"].as_str().unwrap().to_string(), key)
}

/// Applies and polls until the simulated signer confirmed: (authId, authCode).
async fn authorise(srv: &TestServer, a: &Member, seal_code: &str) -> (String, String) {
    let applied = ok(
        srv,
        a,
        "/api/v1/cloud/auth/apply",
        json!({"sealCode": seal_code, "mobile": "13812345678", "name": "张三", "orgCode": ORG}),
    )
    .await;
    assert_eq!(applied["clientType"], "H5");
    assert!(applied["authUrl"].as_str().unwrap().starts_with("https://"));
    let auth_id = applied["authId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (s, v) = call(
            srv,
            a,
            "/api/v1/cloud/auth/result",
            json!({"authId": auth_id, "sealCode": seal_code}),
        )
        .await;
        match v["code"].as_str().unwrap() {
            "0" => {
                assert_eq!(v["data"]["authId"], auth_id.as_str());
                return (auth_id, v["data"]["authCode"].as_str().unwrap().to_string());
            }
            "30007" => assert_eq!(s, 409),
            other => panic!("unexpected answer {other}: {v}"),
        }
        assert!(Instant::now() < deadline, "intention never confirmed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sign_request(seal_code: &str, auth: &(String, String), sign_id: &str, e: &[u8; 32]) -> Value {
    json!({
        "sealCode": seal_code,
        "authId": auth.0,
        "authCode": auth.1,
        "type": "P1",
        "docHash": b64(e),
        "credentNo": "11010519491231002X",
        "orgCode": ORG,
        "signId": sign_id,
        "hashType": 4,
    })
}

/// Signs `e` with a freshly fetched signId; the answer's `data` on success.
async fn sign_fresh(
    srv: &TestServer,
    a: &Member,
    seal_code: &str,
    auth: &(String, String),
    e: &[u8; 32],
) -> Value {
    let (sign_id, _) = find_seal(srv, a, seal_code).await;
    ok(
        srv,
        a,
        "/api/v1/cloud/sign",
        sign_request(seal_code, auth, &sign_id, e),
    )
    .await
}

/// Like [`sign_fresh`], expecting a refusal with `status` and `code`.
async fn sign_fails(
    srv: &TestServer,
    a: &Member,
    seal_code: &str,
    auth: &(String, String),
    e: &[u8; 32],
    status: u16,
    code: &str,
) {
    let (sign_id, _) = find_seal(srv, a, seal_code).await;
    let req = sign_request(seal_code, auth, &sign_id, e);
    fails(srv, a, "/api/v1/cloud/sign", req, status, code).await;
}

#[tokio::test]
async fn a_signs_with_bs_cloud_seal_and_the_platform_checks_every_answer() {
    let srv = common::start().await;
    let a = srv.add_member("online");
    let b = home_system(&srv, Duration::from_millis(300)).await;

    // Happy path: query → apply → poll (first "not yet") → sign; the signature verifies
    // under the seal's signer certificate over the data A wanted signed.
    let (sign_id, signer_key) = find_seal(&srv, &a, &b.seal_code).await;
    let auth = authorise(&srv, &a, &b.seal_code).await;
    let tbs = b"DER of an OFD TBS_Sign".as_slice();
    let e = hutong::crypto::sm::sm2_message_digest(&signer_key, tbs).unwrap();
    let signed = ok(
        &srv,
        &a,
        "/api/v1/cloud/sign",
        sign_request(&b.seal_code, &auth, &sign_id, &e),
    )
    .await;
    assert_eq!(signed["type"], "P1");
    let sig = base64::engine::general_purpose::STANDARD
        .decode(signed["signData"].as_str().unwrap())
        .unwrap();
    hutong::crypto::sm::sm2_verify(&signer_key, tbs, &sig).expect("signature by B's seal key");

    // The signId is single use.
    fails(
        &srv,
        &a,
        "/api/v1/cloud/sign",
        sign_request(&b.seal_code, &auth, &sign_id, &e),
        409,
        "30005",
    )
    .await;

    // A wrong authCode is refused before anything is routed.
    let (sign_id, _) = find_seal(&srv, &a, &b.seal_code).await;
    let calls = b.sim.calls();
    let forged = (auth.0.clone(), "0".repeat(32));
    fails(
        &srv,
        &a,
        "/api/v1/cloud/sign",
        sign_request(&b.seal_code, &forged, &sign_id, &e),
        409,
        "30007",
    )
    .await;
    // An authId that is not A's own is unknown.
    let (sign_id, _) = find_seal(&srv, &a, &b.seal_code).await;
    let other = (hex::encode([7u8; 16]), auth.1.clone());
    fails(
        &srv,
        &a,
        "/api/v1/cloud/sign",
        sign_request(&b.seal_code, &other, &sign_id, &e),
        409,
        "30006",
    )
    .await;
    assert_eq!(b.sim.calls(), calls, "refused requests never reach B");

    // B signs with a key that is not the seal's: nothing is returned.
    b.sim.set_behaviour(Behaviour::WrongKey);
    let (sign_id, _) = find_seal(&srv, &a, &b.seal_code).await;
    let (s, v) = call(
        &srv,
        &a,
        "/api/v1/cloud/sign",
        sign_request(&b.seal_code, &auth, &sign_id, &e),
    )
    .await;
    assert_eq!((s, v["code"].as_str().unwrap()), (502, "40003"), "{v}");
    assert_eq!(v["data"], "", "no signature data leaks on failure");

    // B answers garbage.
    b.sim.set_behaviour(Behaviour::Garbage);
    sign_fails(&srv, &a, &b.seal_code, &auth, &e, 502, "40003").await;

    // B hangs: 40002 within the 3 s budget (plus slack).
    b.sim.set_behaviour(Behaviour::Hang);
    let (sign_id, _) = find_seal(&srv, &a, &b.seal_code).await;
    let started = Instant::now();
    fails(
        &srv,
        &a,
        "/api/v1/cloud/sign",
        sign_request(&b.seal_code, &auth, &sign_id, &e),
        504,
        "40002",
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(3500), "took {took:?}");
    assert!(took >= Duration::from_millis(2900), "took {took:?}");

    // B is down.
    b.sim.stop().await;
    sign_fails(&srv, &a, &b.seal_code, &auth, &e, 502, "40001").await;
    srv.stop().await;
}

#[tokio::test]
async fn suspended_systems_revoked_seals_and_ukey_seals_are_refused_before_routing() {
    let srv = common::start().await;
    let a = srv.add_member("online");
    let b = home_system(&srv, Duration::ZERO).await;
    let apply = json!({"sealCode": b.seal_code, "mobile": "13812345678"});

    // Unknown seal.
    fails(
        &srv,
        &a,
        "/api/v1/cloud/auth/apply",
        json!({"sealCode": "NOSUCHSEAL", "mobile": "13812345678"}),
        404,
        "30001",
    )
    .await;
    // Missing mobile names the parameter.
    fails(
        &srv,
        &a,
        "/api/v1/cloud/auth/apply",
        json!({"sealCode": b.seal_code}),
        400,
        "10001",
    )
    .await;

    // B suspended.
    control::execute(
        &srv.state.store,
        None,
        &srv.state.config,
        control::Command::SystemSetState {
            app_id: b.member.app_id.clone(),
            state: hutong::domain::vocab::SystemState::Suspended,
            reason: "测试".into(),
        },
    )
    .unwrap();
    fails(
        &srv,
        &a,
        "/api/v1/cloud/auth/apply",
        apply.clone(),
        409,
        "30002",
    )
    .await;
    assert_eq!(b.sim.calls(), 0);

    // Back online, then the seal is revoked by its owner.
    control::execute(
        &srv.state.store,
        None,
        &srv.state.config,
        control::Command::SystemSetState {
            app_id: b.member.app_id.clone(),
            state: hutong::domain::vocab::SystemState::Online,
            reason: "恢复".into(),
        },
    )
    .unwrap();
    let (sign_id, _) = find_seal(&srv, &a, &b.seal_code).await;
    let auth = authorise(&srv, &a, &b.seal_code).await;
    let calls = b.sim.calls();
    ok(
        &srv,
        &b.member,
        "/api/v1/seal/state",
        json!({"sealCode": b.seal_code, "state": 3}),
    )
    .await;
    fails(
        &srv,
        &a,
        "/api/v1/cloud/auth/apply",
        apply.clone(),
        409,
        "30002",
    )
    .await;
    fails(
        &srv,
        &a,
        "/api/v1/cloud/sign",
        sign_request(&b.seal_code, &auth, &sign_id, &[1u8; 32]),
        409,
        "30002",
    )
    .await;
    assert_eq!(b.sim.calls(), calls, "nothing routed for a revoked seal");

    // A UKey seal (certType 1) is not a cloud seal.
    let other = MemberIdentity::generate("某某科技有限公司").unwrap();
    let ukey_seal = other
        .build_seal("财务专用章", "sim-es-2", picture(), 365)
        .unwrap();
    let ukey_code = ok(
        &srv,
        &b.member,
        "/api/v1/seal/filing",
        json!({
            "name": "财务专用章",
            "sealType": "02",
            "possessor": "某某科技有限公司",
            "possessorCertNo": ORG,
            "possessorType": 1,
            "bizType": 1,
            "certType": 1,
            "sealData": b64(&ukey_seal),
        }),
    )
    .await;
    fails(
        &srv,
        &a,
        "/api/v1/cloud/auth/apply",
        json!({"sealCode": ukey_code, "mobile": "13812345678"}),
        409,
        "30002",
    )
    .await;
    assert_eq!(b.sim.calls(), calls, "nothing routed for a UKey seal");
    b.sim.stop().await;
    srv.stop().await;
}

#[tokio::test]
async fn legacy_hashes_and_malformed_sign_requests_are_refused() {
    let srv = common::start().await;
    let a = srv.add_member("online");
    let b = home_system(&srv, Duration::ZERO).await;
    let (sign_id, _) = find_seal(&srv, &a, &b.seal_code).await;
    let auth = authorise(&srv, &a, &b.seal_code).await;
    let mut req = sign_request(&b.seal_code, &auth, &sign_id, &[1u8; 32]);
    req["hashType"] = json!(1);
    fails(&srv, &a, "/api/v1/cloud/sign", req.clone(), 400, "10001").await;
    req["hashType"] = json!(4);
    req["type"] = json!("P3");
    fails(&srv, &a, "/api/v1/cloud/sign", req.clone(), 400, "10001").await;
    req["type"] = json!("P1");
    req["docHash"] = json!(b64(b"short"));
    fails(&srv, &a, "/api/v1/cloud/sign", req.clone(), 400, "10001").await;
    // The signId survived the malformed requests.
    req["docHash"] = json!(b64(&[1u8; 32]));
    ok(&srv, &a, "/api/v1/cloud/sign", req).await;
    b.sim.stop().await;
    srv.stop().await;
}

#[tokio::test]
async fn p7_detached_signatures_are_verified_against_the_seal() {
    let srv = common::start().await;
    let a = srv.add_member("online");
    let b = home_system(&srv, Duration::ZERO).await;
    let auth = authorise(&srv, &a, &b.seal_code).await;
    let content = b"%PDF-1.7 the ByteRange bytes of a document".as_slice();
    let p7 = |sign_id: &str, digest: &[u8], hash_type: i64| {
        let mut r = sign_request(&b.seal_code, &auth, sign_id, &[0u8; 32]);
        r["type"] = json!("P7");
        r["docHash"] = json!(b64(digest));
        r["hashType"] = json!(hash_type);
        r
    };

    // SM3 and SHA-256 digests: the answer is a detached CMS that verifies over the content,
    // signed by the seal's signer certificate.
    let (sign_id, signer_key) = find_seal(&srv, &a, &b.seal_code).await;
    let sm3 = hutong::crypto::sm::sm3(content);
    let signed = ok(&srv, &a, "/api/v1/cloud/sign", p7(&sign_id, &sm3, 4)).await;
    assert_eq!(signed["type"], "P7");
    let cms_der = base64::engine::general_purpose::STANDARD
        .decode(signed["signData"].as_str().unwrap())
        .unwrap();
    let verified = hutong::crypto::cms::verify_detached(&cms_der, content, false).unwrap();
    assert_eq!(
        hutong::crypto::sm::sm2_public_key_from_cert_der(&verified.signer_cert_der).unwrap(),
        signer_key
    );
    assert!(hutong::crypto::cms::verify_detached(&cms_der, b"other content", false).is_err());

    let (sign_id, _) = find_seal(&srv, &a, &b.seal_code).await;
    let sha256 = hutong::crypto::x509::HashAlg::Sha256.digest(content);
    let signed = ok(&srv, &a, "/api/v1/cloud/sign", p7(&sign_id, &sha256, 3)).await;
    let cms_der = base64::engine::general_purpose::STANDARD
        .decode(signed["signData"].as_str().unwrap())
        .unwrap();
    hutong::crypto::cms::verify_detached(&cms_der, content, false).unwrap();

    // A docHash of the wrong length for its hashType never leaves the platform.
    let (sign_id, _) = find_seal(&srv, &a, &b.seal_code).await;
    fails(
        &srv,
        &a,
        "/api/v1/cloud/sign",
        p7(&sign_id, &sm3[..20], 4),
        400,
        "10001",
    )
    .await;

    // Signed with another key (the certificate still the seal's): refused.
    b.sim.set_behaviour(Behaviour::WrongKey);
    fails(
        &srv,
        &a,
        "/api/v1/cloud/sign",
        p7(&sign_id, &sm3, 4),
        502,
        "40003",
    )
    .await;
    b.sim.stop().await;
    srv.stop().await;
}

#[tokio::test]
async fn the_home_system_vouches_for_a_sign_id_once() {
    let srv = common::start().await;
    let a = srv.add_member("online");
    let b = home_system(&srv, Duration::ZERO).await;
    let (sign_id, _) = find_seal(&srv, &a, &b.seal_code).await;
    let voucher = json!({"signId": sign_id, "sealCode": b.seal_code, "hashType": 4});
    // Only the seal's home system may ask.
    fails(
        &srv,
        &a,
        "/api/v1/ukey/sign/verify",
        voucher.clone(),
        403,
        "20008",
    )
    .await;
    let v = ok(&srv, &b.member, "/api/v1/ukey/sign/verify", voucher.clone()).await;
    assert_eq!(v["requesterAppId"], a.app_id.as_str());
    assert_eq!(v["requesterPlatName"], "测试平台");
    assert_eq!(v["sealCode"], b.seal_code.as_str());
    assert_eq!(v["expiresAt"].as_str().unwrap().len(), 19);
    fails(
        &srv,
        &b.member,
        "/api/v1/ukey/sign/verify",
        voucher,
        409,
        "30005",
    )
    .await;
    b.sim.stop().await;
    srv.stop().await;
}

#[tokio::test]
async fn a_failing_member_trips_the_circuit_breaker() {
    let srv = common::start().await;
    let a = srv.add_member("online");
    let b = home_system(&srv, Duration::ZERO).await;
    b.sim.set_behaviour(Behaviour::Garbage);
    let apply = json!({"sealCode": b.seal_code, "mobile": "13812345678"});
    for _ in 0..hutong::interop::client::BREAKER_THRESHOLD {
        fails(
            &srv,
            &a,
            "/api/v1/cloud/auth/apply",
            apply.clone(),
            502,
            "40003",
        )
        .await;
    }
    let calls = b.sim.calls();
    b.sim.set_behaviour(Behaviour::Normal);
    fails(&srv, &a, "/api/v1/cloud/auth/apply", apply, 502, "40001").await;
    assert_eq!(b.sim.calls(), calls, "an open breaker answers at once");
    assert!(srv.state.interop.is_degraded(&b.member.app_id));
    // Monitoring sees it too, naming the member.
    let metrics = srv.monitoring_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("hutong_member_breakers_open 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "hutong_member_breaker_open{{app_id=\"{}\"}} 1\n",
            b.member.app_id
        )),
        "{metrics}"
    );
    b.sim.stop().await;
    srv.stop().await;
}

fn usage_of(srv: &TestServer, app_id: &str, interface: &str) -> hutong::store::usage::UsageCounts {
    let today = hutong::time::Day::today();
    let rows =
        hutong::domain::metering::report(&srv.state.store, Some(app_id), today, today).unwrap();
    let mut t = hutong::store::usage::UsageCounts::default();
    for r in rows.iter().filter(|r| r.interface == interface) {
        t.add(r.counts);
    }
    t
}

fn set_quota(srv: &TestServer, app_id: &str, kind: &str, limit: u64, from: &str, until: &str) {
    control::execute(
        &srv.state.store,
        None,
        &srv.state.config,
        control::Command::QuotaSet {
            app_id: app_id.into(),
            kind: hutong::domain::vocab::QuotaKind::parse(kind).unwrap(),
            limit,
            from: from.into(),
            until: until.into(),
        },
    )
    .unwrap();
}

#[tokio::test]
async fn routed_calls_are_metered_on_both_sides_and_quotas_refuse_with_20007() {
    let srv = common::start().await;
    let a = srv.add_member("online");
    let b = home_system(&srv, Duration::from_millis(0)).await;
    let today = hutong::time::Day::today().to_string();

    // A signatures quota of one: the first signature passes, the second is refused with
    // 20007 before anything reaches B, and system/info tells A where it stands.
    set_quota(&srv, &a.app_id, "signatures", 1, "2020-01-01", &today);
    let (sign_id, signer_key) = find_seal(&srv, &a, &b.seal_code).await;
    let auth = authorise(&srv, &a, &b.seal_code).await;
    let e = hutong::crypto::sm::sm2_message_digest(&signer_key, b"document").unwrap();
    ok(
        &srv,
        &a,
        "/api/v1/cloud/sign",
        sign_request(&b.seal_code, &auth, &sign_id, &e),
    )
    .await;
    let info = ok(&srv, &a, "/api/v1/system/info", json!({})).await;
    assert_eq!(info["quota"]["kind"], "signatures");
    assert_eq!(info["quota"]["used"], 1);
    assert_eq!(info["quota"]["status"], "exhausted");
    let calls = b.sim.calls();
    sign_fails(&srv, &a, &b.seal_code, &auth, &e, 429, "20007").await;
    assert_eq!(b.sim.calls(), calls, "a refused quota routes nothing");

    // A failed signature gives its unit back: with a fresh quota of one, a wrong-key answer
    // (40003) leaves the unit for the next, good signature.
    set_quota(&srv, &a.app_id, "signatures", 1, "2020-01-01", &today);
    b.sim.set_behaviour(Behaviour::WrongKey);
    sign_fails(&srv, &a, &b.seal_code, &auth, &e, 502, "40003").await;
    b.sim.set_behaviour(Behaviour::Normal);
    let auth = authorise(&srv, &a, &b.seal_code).await;
    sign_fresh(&srv, &a, &b.seal_code, &auth, &e).await;

    // An expired quota refuses too.
    set_quota(
        &srv,
        &a.app_id,
        "signatures",
        100,
        "2020-01-01",
        "2020-12-31",
    );
    sign_fails(&srv, &a, &b.seal_code, &auth, &e, 429, "20007").await;

    // Counters: A as requester, B as the home system that served the routed calls.
    let a_sign = usage_of(&srv, &a.app_id, "cloud/sign");
    assert_eq!(
        (a_sign.calls, a_sign.succeeded, a_sign.signatures),
        (5, 2, 2),
        "{a_sign:?}"
    );
    let b_sign = usage_of(&srv, &b.member.app_id, "routed:cloud/sign");
    assert_eq!(
        (
            b_sign.calls,
            b_sign.succeeded,
            b_sign.failed,
            b_sign.signatures
        ),
        (3, 2, 1, 2),
        "{b_sign:?}"
    );
    let b_apply = usage_of(&srv, &b.member.app_id, "routed:cloud/auth/apply");
    assert_eq!(b_apply.calls, 2);
    let a_query = usage_of(&srv, &a.app_id, "seal/query");
    assert_eq!((a_query.calls, a_query.succeeded), (5, 5));

    // A users quota of one: the same person again is free, a second person is refused.
    set_quota(&srv, &a.app_id, "users", 1, "2020-01-01", &today);
    let apply = |mobile: &str| json!({"sealCode": b.seal_code, "mobile": mobile, "name": "张三", "orgCode": ORG});
    ok(&srv, &a, "/api/v1/cloud/auth/apply", apply("13812345678")).await;
    ok(&srv, &a, "/api/v1/cloud/auth/apply", apply("13812345678")).await;
    fails(
        &srv,
        &a,
        "/api/v1/cloud/auth/apply",
        apply("13900000000"),
        429,
        "20007",
    )
    .await;
    let day = hutong::time::Day::today();
    assert_eq!(
        srv.state
            .store
            .usage_user_count(&a.app_id, day.yyyymmdd())
            .unwrap(),
        1
    );

    // The CSV export carries the same numbers.
    let rows = hutong::domain::metering::report(&srv.state.store, Some(&b.member.app_id), day, day)
        .unwrap();
    let csv = hutong::domain::metering::to_csv(&rows);
    assert!(
        csv.starts_with("\u{feff}date,appId,systemName,interface,"),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(
            "{today},{},乙方印章系统,routed:cloud/sign,3,2,1,2,1",
            b.member.app_id
        )),
        "{csv}"
    );
    b.sim.stop().await;
    srv.stop().await;
}

#[tokio::test]
async fn p1_with_an_rsa_seal_is_a_sha256_digest_signature_checked_like_sm2() {
    let srv = common::start().await;
    let a = srv.add_member("online");
    let identity = MemberIdentity::generate_rsa("某某科技有限公司").unwrap();
    let b = home_system_with(&srv, Duration::from_millis(0), identity).await;
    let seal = seal_entry(&srv, &a, &b.seal_code).await;
    let spki = hutong::crypto::x509::CertInfo::parse(&signer_cert(&seal))
        .unwrap()
        .spki_der;
    let sign_id = |seal: Value| seal["signId"].as_str().unwrap().to_string();
    assert!(hutong::crypto::x509::key_type_name(&spki).contains("RSA"));
    let auth = authorise(&srv, &a, &b.seal_code).await;
    let digest = hutong::crypto::x509::HashAlg::Sha256.digest(b"PDF byte ranges");
    let request = |sign_id: &str, hash_type: i64| {
        let mut r = sign_request(&b.seal_code, &auth, sign_id, &[0; 32]);
        r["docHash"] = b64(&digest).into();
        r["hashType"] = hash_type.into();
        r
    };

    // The SM2 rule does not apply to an RSA seal, and is refused before anything is routed.
    let calls = b.sim.calls();
    fails(
        &srv,
        &a,
        "/api/v1/cloud/sign",
        request(&sign_id(seal), 4),
        400,
        "10001",
    )
    .await;
    assert_eq!(b.sim.calls(), calls);

    // hashType 3: B signs the SHA-256 digest with its RSA key; the platform verifies it.
    let fresh = sign_id(seal_entry(&srv, &a, &b.seal_code).await);
    let signed = ok(&srv, &a, "/api/v1/cloud/sign", request(&fresh, 3)).await;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(signed["signData"].as_str().unwrap())
        .unwrap();
    hutong::crypto::x509::verify_digest(
        &spki,
        hutong::crypto::x509::HashAlg::Sha256,
        &digest,
        &sig,
    )
    .expect("PKCS#1 v1.5 signature by the seal's RSA key");

    // Another RSA key's signature is caught.
    b.sim.set_behaviour(Behaviour::WrongKey);
    let fresh = sign_id(seal_entry(&srv, &a, &b.seal_code).await);
    fails(
        &srv,
        &a,
        "/api/v1/cloud/sign",
        request(&fresh, 3),
        502,
        "40003",
    )
    .await;
    b.sim.stop().await;
    srv.stop().await;
}

#[tokio::test]
async fn a_testing_systems_seal_does_not_exist_for_an_online_system_on_any_interface() {
    let srv = common::start().await;
    let a = srv.add_member("online");
    let tester = srv.add_member("testing");
    let identity = MemberIdentity::generate("某某科技有限公司").unwrap();
    let t = home_system_as(&srv, SystemState::Testing, Duration::ZERO, identity, 1).await;

    // On every interface the hidden seal is answered as a seal that does not exist: the
    // same status, code and message, and the testing system's appId is never named.
    let unknown = "340000019999999990";
    let fake_auth = (hex::encode([7u8; 16]), "0".repeat(32));
    let requests = |seal: &str| {
        [
            (
                "/api/v1/cloud/auth/apply",
                json!({"sealCode": seal, "mobile": "13812345678"}),
            ),
            (
                "/api/v1/cloud/auth/result",
                json!({"authId": fake_auth.0, "sealCode": seal}),
            ),
            (
                "/api/v1/cloud/sign",
                sign_request(seal, &fake_auth, &hex::encode([8u8; 16]), &[1; 32]),
            ),
        ]
    };
    for ((path, as_unknown), (_, as_hidden)) in
        requests(unknown).into_iter().zip(requests(&t.seal_code))
    {
        let (s1, v1) = call(&srv, &a, path, as_unknown).await;
        let (s2, v2) = call(&srv, &a, path, as_hidden).await;
        assert_eq!((s2, &v2["code"]), (s1, &v1["code"]), "{path}: {v2}");
        let message = v2["message"].as_str().unwrap();
        assert_eq!(
            message.replace(&t.seal_code, "<seal>"),
            v1["message"].as_str().unwrap().replace(unknown, "<seal>"),
            "{path}"
        );
        assert!(!message.contains(&t.member.app_id), "{path}: {message}");
    }
    let hidden = json!({"sealCode": t.seal_code, "mobile": "13812345678"});
    fails(
        &srv,
        &a,
        "/api/v1/cloud/auth/apply",
        hidden.clone(),
        404,
        "30001",
    )
    .await;
    let req = sign_request(&t.seal_code, &fake_auth, &hex::encode([8u8; 16]), &[1; 32]);
    fails(&srv, &a, "/api/v1/cloud/sign", req, 404, "30001").await;
    assert_eq!(t.sim.calls(), 0, "nothing reaches the testing system");
    // Nor does the query name it.
    let listed = ok(
        &srv,
        &a,
        "/api/v1/seal/query",
        json!({"orgCode": ORG, "sealType": "0"}),
    )
    .await;
    assert_eq!(listed, json!([]));

    // Another testing system may use it.
    ok(&srv, &tester, "/api/v1/cloud/auth/apply", hidden).await;
    assert_eq!(t.sim.calls(), 1);
    t.sim.stop().await;
    srv.stop().await;
}

#[tokio::test]
async fn a_sign_id_misused_by_another_system_or_for_another_seal_stays_valid_for_its_owner() {
    let srv = common::start().await;
    let a = srv.add_member("online");
    let c = srv.add_member("online");
    let identity = MemberIdentity::generate("某某科技有限公司").unwrap();
    let b = home_system_as(&srv, SystemState::Online, Duration::ZERO, identity, 2).await;
    let (first, second) = (&b.seal_codes[0], &b.seal_codes[1]);
    let (sign_id, _) = find_seal(&srv, &a, first).await;

    // C, with a confirmed intention of its own, cannot spend A's signId.
    let c_auth = authorise(&srv, &c, first).await;
    let calls = b.sim.calls();
    fails(
        &srv,
        &c,
        "/api/v1/cloud/sign",
        sign_request(first, &c_auth, &sign_id, &[1; 32]),
        409,
        "30005",
    )
    .await;
    // Nor can A spend it on its other seal.
    let a_auth = authorise(&srv, &a, second).await;
    let calls_after_auth = b.sim.calls();
    fails(
        &srv,
        &a,
        "/api/v1/cloud/sign",
        sign_request(second, &a_auth, &sign_id, &[1; 32]),
        409,
        "30005",
    )
    .await;
    assert_eq!(
        b.sim.calls(),
        calls_after_auth,
        "no refused signature reached B"
    );
    assert!(calls_after_auth > calls);

    // Nor the home system with a seal that is not the signId's.
    fails(
        &srv,
        &b.member,
        "/api/v1/ukey/sign/verify",
        json!({"signId": sign_id, "sealCode": second}),
        409,
        "30005",
    )
    .await;

    // The home system still vouches for it, once, naming A.
    let voucher = json!({"signId": sign_id, "sealCode": first, "hashType": 4});
    let v = ok(&srv, &b.member, "/api/v1/ukey/sign/verify", voucher.clone()).await;
    assert_eq!(v["requesterAppId"], a.app_id.as_str());
    fails(
        &srv,
        &b.member,
        "/api/v1/ukey/sign/verify",
        voucher,
        409,
        "30005",
    )
    .await;
    b.sim.stop().await;
    srv.stop().await;
}

/// The callback check (issue 13 point 3) against the simulator member: every stage passes and
/// the member refuses the random authId after verifying the platform's signature; once the
/// member is gone the check stops at the connect stage, and a routed call tells the requester
/// the kind of fault while the console and the audit entry get the full cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_check_passes_against_the_simulator_and_names_the_failing_stage() {
    use hutong::interop::check::Stage;
    let srv = common::start().await;
    let a = srv.add_member("online");
    let b = home_system(&srv, Duration::ZERO).await;
    let check = |app_id: String| {
        let state = srv.state.clone();
        tokio::task::spawn_blocking(move || {
            let cmd = control::Command::SystemCheckCallback { app_id };
            match control::execute(&state.store, Some(&state.keys), &state.config, cmd) {
                Ok(control::Response::SystemCheckCallback(r)) => r,
                other => panic!("check answered {other:?}"),
            }
        })
    };
    let r = check(b.member.app_id.clone()).await.unwrap();
    assert!(r.passed(), "{r:#?}");
    assert_eq!(r.stages.len(), 7);
    assert!(r.stages[5].note.contains("30006"), "{r:#?}");

    let port = b.sim.base_url.rsplit(':').next().unwrap().to_string();
    b.sim.stop().await;
    let r = check(b.member.app_id.clone()).await.unwrap();
    let failed = r.first_failure().unwrap();
    assert_eq!(failed.stage, Stage::Connect, "{r:#?}");
    assert!(failed.note.contains("被拒绝"), "{r:#?}");
    // Through the running server's control socket (as `hutong system check-callback` runs it),
    // the failed check becomes the member's last callback failure.
    assert!(srv.state.interop.last_failure(&b.member.app_id).is_none());
    let (dir, app_id) = (srv.state.config.data_dir.clone(), b.member.app_id.clone());
    let r = tokio::task::spawn_blocking(move || {
        control::call(&dir, &control::Command::SystemCheckCallback { app_id })
    })
    .await
    .unwrap()
    .unwrap()
    .expect("the test server serves its control socket");
    assert!(
        matches!(r, control::Response::SystemCheckCallback(ref r) if !r.passed()),
        "{r:?}"
    );
    let noted = srv.state.interop.last_failure(&b.member.app_id).unwrap();
    assert!(noted.detail.contains("被拒绝"), "{}", noted.detail);

    let apply = json!({"sealCode": b.seal_code, "mobile": "13812345678"});
    let (status, v) = call(&srv, &a, "/api/v1/cloud/auth/apply", apply).await;
    assert_eq!((status, v["code"].as_str().unwrap()), (502, "40001"), "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(message.ends_with("无法访问：连接被拒绝"), "{message}");
    assert!(
        !message.contains(&port),
        "no address for the requester: {message}"
    );
    let last = srv.state.interop.last_failure(&b.member.app_id).unwrap();
    assert!(
        last.detail.contains(&format!(":{port} 被拒绝")),
        "{}",
        last.detail
    );
    let leaves: Vec<Value> = srv
        .state
        .store
        .recent_audit_leaves(20)
        .unwrap()
        .into_iter()
        .map(|(_, leaf)| serde_json::from_slice(&leaf).unwrap())
        .collect();
    let routed = leaves
        .iter()
        .find(|e| e["action"] == "cloud.auth.apply" && e["code"] == 40001)
        .expect("the routed call's entry");
    assert!(
        routed["detail"]
            .as_str()
            .unwrap()
            .contains(&format!(":{port} 被拒绝")),
        "{routed}"
    );
    let checks: Vec<&str> = leaves
        .iter()
        .filter(|e| e["action"] == "system.check_callback")
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    // The passing check, the failing one, and the failing one through the socket.
    assert_eq!(checks, ["error", "error", "ok"], "{leaves:#?}");
    srv.stop().await;
}
