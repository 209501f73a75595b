//! SPEC §2 request authentication and envelope, against the real server over HTTPS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;

use base64::Engine;
use common::{Member, canonical, now_ms};
use serde_json::{Value, json};

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn system_info_succeeds_and_the_response_is_signed_by_the_platform() {
    let srv = common::start().await;
    let m = srv.add_member("testing");
    let params = m.request(json!({}));
    let (status, headers, body) = srv
        .post_raw("/api/v1/system/info", serde_json::to_vec(&params).unwrap())
        .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(code(&v), "0", "{v}");
    assert_eq!(v["data"]["appId"], m.app_id.as_str());
    assert_eq!(v["data"]["state"], "testing");
    assert_eq!(v["data"]["platName"], "测试平台");
    assert!(headers.contains_key("x-request-id"));

    // The platform certificate (no authentication) verifies X-Hutong-Signature over the body.
    let pem = srv.platform_certificate().await;
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let key = hutong::crypto::sm::sm2_public_key_from_pem(&pem).unwrap();
    let sig = base64::engine::general_purpose::STANDARD
        .decode(headers["x-hutong-signature"].to_str().unwrap())
        .unwrap();
    use signature::Verifier;
    let vk = sm2::dsa::VerifyingKey::new("1234567812345678", key).unwrap();
    let sig = sm2::dsa::Signature::from_der(&sig).unwrap();
    vk.verify(&body, &sig).expect("response signature verifies");
    let mut tampered = body.clone();
    tampered[2] ^= 1;
    assert!(vk.verify(&tampered, &sig).is_err());
    srv.stop().await;
}

#[tokio::test]
async fn request_id_is_echoed_and_raw_signatures_are_accepted() {
    let srv = common::start().await;
    let m = srv.add_member("online");
    let mut params = m.request(json!({}));
    // Re-sign with the 64-byte r‖s form some SM2 libraries emit.
    let der = base64::engine::general_purpose::STANDARD
        .decode(params["sign"].as_str().unwrap())
        .unwrap();
    let raw = sm2::dsa::Signature::from_der(&der).unwrap().to_bytes();
    params.insert(
        "sign".into(),
        base64::engine::general_purpose::STANDARD.encode(raw).into(),
    );
    let resp = srv
        .client
        .post(format!("{}/api/v1/system/info", srv.base))
        .header("Content-Type", "application/json")
        .header("X-Request-Id", "trace-42")
        .body(serde_json::to_vec(&params).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-42");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(code(&v), "0", "{v}");
    assert_eq!(v["data"]["state"], "online");
    srv.stop().await;
}

async fn expect(
    srv: &common::TestServer,
    params: &serde_json::Map<String, Value>,
    status: u16,
    want: &str,
) -> Value {
    let (s, v) = srv.post("/api/v1/system/info", params).await;
    assert_eq!((s, code(&v)), (status, want), "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    v
}

#[tokio::test]
async fn every_authentication_failure_has_its_documented_code() {
    let srv = common::start().await;
    let m = srv.add_member("online");

    // 20003: signature over something else.
    let mut p = m.request(json!({}));
    p.insert("extra".into(), "added-after-signing".into());
    expect(&srv, &p, 401, "20003").await;
    // 20003: signed by another key.
    let other = srv.add_member("online");
    let mut p = m.request(json!({}));
    p.insert("sign".into(), other.sign(&canonical(&p)).into());
    let v = expect(&srv, &p, 401, "20003").await;
    assert_eq!(
        v["data"], "",
        "an online system is not shown the canonical string: {v}"
    );
    assert!(!v["message"].as_str().unwrap().contains("canonical"), "{v}");

    // A system in testing is shown what the platform computed, and reminded of the signer ID.
    let tester = srv.add_member("testing");
    let mut p = tester.request(json!({"sealCode": "S1", "empty": ""}));
    p.insert("sign".into(), other.sign(&canonical(&p)).into());
    let v = expect(&srv, &p, 401, "20003").await;
    assert_eq!(v["data"]["canonical"], canonical(&p).as_str(), "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("1234567812345678"),
        "{v}"
    );

    // 20001: unknown appId (correctly signed by someone).
    let ghost = Member {
        app_id: "HT0000000000000000".into(),
        ..other
    };
    expect(&srv, &ghost.request(json!({})), 401, "20001").await;

    // 20004: stale and future time.
    for skew in [-301_000i64, 301_000] {
        let mut p = m.request(json!({}));
        p.insert("time".into(), (now_ms() + skew).to_string().into());
        m.resign(&mut p);
        expect(&srv, &p, 401, "20004").await;
    }

    // 20005: the same nonce twice.
    let p = m.request(json!({}));
    expect(&srv, &p, 200, "0").await;
    let mut again = p.clone();
    again.insert("time".into(), now_ms().to_string().into());
    m.resign(&mut again);
    let v = expect(&srv, &again, 409, "20005").await;
    assert!(v["message"].as_str().unwrap().contains("nonce"));

    // 10001: each missing common parameter is named.
    for name in ["appId", "time", "nonce", "sign"] {
        let mut p = m.request(json!({}));
        p.remove(name);
        if name != "sign" {
            m.resign(&mut p);
        }
        let v = expect(&srv, &p, 400, "10001").await;
        assert!(v["message"].as_str().unwrap().contains(name), "{v}");
    }
    // 10001: wrong types and ranges.
    for (name, bad) in [
        ("nonce", json!("12")),
        ("nonce", json!(100_000_000)),
        ("time", json!("yesterday")),
    ] {
        let mut p = m.request(json!({}));
        p.insert(name.into(), bad);
        m.resign(&mut p);
        expect(&srv, &p, 400, "10001").await;
    }
    // 10002: unsupported version.
    let mut p = m.request(json!({}));
    p.insert("version".into(), "2.0".into());
    m.resign(&mut p);
    expect(&srv, &p, 400, "10002").await;
    // 10002: the version as the JSON number 1.0 is told to be the string "1.0", not that
    // version 1.0 is unsupported.
    let mut p = m.request(json!({}));
    p.insert("version".into(), json!(1.0));
    m.resign(&mut p);
    let v = expect(&srv, &p, 400, "10002").await;
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("字符串") && msg.contains("\"1.0\""), "{v}");
    assert!(!msg.contains("不支持"), "{v}");

    // 10001: not JSON / not an object.
    let (s, _, body) = srv
        .post_raw("/api/v1/system/info", b"{not json".to_vec())
        .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((s, code(&v)), (400, "10001"));
    let (s, _, body) = srv.post_raw("/api/v1/system/info", b"[1,2]".to_vec()).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((s, code(&v)), (400, "10001"));

    // 10003: body over the 1 MiB default.
    let p = m.request(json!({"padding": "x".repeat(1024 * 1024 + 10)}));
    expect(&srv, &p, 413, "10003").await;

    // 20002: suspended system.
    hutong::domain::systems::set_state(
        &srv.state.store,
        &m.app_id,
        hutong::domain::vocab::SystemState::Suspended,
        "测试暂停",
        &hutong::domain::audit_event::Actor::cli(),
    )
    .unwrap();
    expect(&srv, &m.request(json!({})), 401, "20002").await;
    srv.stop().await;
}

#[tokio::test]
async fn rate_limit_per_app_id() {
    let srv = common::start_with(|c| {
        c.api.rate_limit_per_sec = 1;
        c.api.rate_limit_burst = 3;
    })
    .await;
    let m = srv.add_member("online");
    let other = srv.add_member("online");
    for _ in 0..3 {
        expect(&srv, &m.request(json!({})), 200, "0").await;
    }
    expect(&srv, &m.request(json!({})), 429, "20006").await;
    // Another system has its own budget.
    expect(&srv, &other.request(json!({})), 200, "0").await;
    srv.stop().await;
}

#[tokio::test]
async fn probes_metrics_and_unknown_routes() {
    let srv = common::start().await;
    let m = srv.add_member("online");
    expect(&srv, &m.request(json!({})), 200, "0").await;
    let get = |p: &str| srv.client.get(format!("{}{}", srv.base, p)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    // Not on the public listener without a token: on the loopback monitoring listener.
    let public = get("/metrics").await.unwrap();
    assert_eq!(public.status(), 404);
    assert!(!public.text().await.unwrap().contains("hutong_api"));
    assert!(
        srv.metrics_base
            .as_deref()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{:?}",
        srv.metrics_base
    );
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(srv.monitoring_get(probe).await.status(), 200, "{probe}");
    }
    let metrics = srv.monitoring_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("hutong_api_requests_total{interface=\"system/info\",code=\"0\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("hutong_api_latency_seconds_count{interface=\"system/info\"} 1"));
    let (s, _, body) = srv.post_raw("/api/v1/no/such", b"{}".to_vec()).await;
    assert_eq!(s, 404);
    assert!(String::from_utf8_lossy(&body).contains("不存在"));
    srv.stop().await;
}

#[tokio::test]
async fn metrics_on_the_public_listener_need_the_bearer_token_and_the_separate_one_can_be_off() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, "s3cret-metrics-token-0123\n").unwrap();
    let srv = common::start_with(|c| {
        c.metrics.listen = String::new();
        c.metrics.token_file = Some(token_file.clone());
    })
    .await;
    assert_eq!(srv.metrics_base, None, "no monitoring listener");
    let url = format!("{}/metrics", srv.base);
    let r = srv.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    for wrong in [
        "Bearer s3cret-metrics-token-012",
        "Bearer nope",
        "Basic s3cret-metrics-token-0123",
    ] {
        let r = srv
            .client
            .get(&url)
            .header("Authorization", wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{wrong}");
    }
    let r = srv
        .client
        .get(&url)
        .header("Authorization", "Bearer s3cret-metrics-token-0123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("# TYPE hutong_api_requests_total counter")
    );
    srv.stop().await;

    // A short token is refused at start, naming the file.
    std::fs::write(&token_file, "short\n").unwrap();
    let mut config = hutong::config::Config::load(None, Vec::<(String, String)>::new()).unwrap();
    config.data_dir = dir.path().join("data");
    config.metrics.token_file = Some(token_file.clone());
    let Err(e) = hutong::server::prepare(config) else {
        panic!("a short token was accepted");
    };
    assert!(e.to_string().contains("metrics.token"), "{e}");
}

/// Issue 12 point 1: a member whose SM2 library drops the sign octet of a 32-byte r or s.
#[tokio::test]
async fn request_sign_without_sign_octet_is_accepted_and_still_verified() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let srv = common::start().await;
    let m = srv.add_member("online");
    // Each request has a fresh nonce, hence a fresh signature: 3 in 4 have a high bit set.
    let (mut params, quirky) = (0..64)
        .find_map(|_| {
            let p = m.request(json!({}));
            let der = b64.decode(p["sign"].as_str().unwrap()).unwrap();
            hutong::ses::kit::without_sign_octets(&der).map(|q| (p, q))
        })
        .unwrap();
    let mut tampered = quirky.clone();
    *tampered.last_mut().unwrap() ^= 1;
    params.insert("sign".into(), b64.encode(&tampered).into());
    expect(&srv, &params, 401, "20003").await;
    params.insert("sign".into(), b64.encode(&quirky).into());
    let v = expect(&srv, &params, 200, "0").await;
    assert_eq!(v["data"]["state"], "online");
    srv.stop().await;
}
