//! The seal registry (SPEC §3.1–3.3, §3.8, §3.9) over real HTTPS: members file GB/T 38540 v4
//! and GM/T 0031 v1 seals they made with their own keys, others find them, states change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;

use base64::Engine;
use common::{Member, TestServer};
use hutong::ses::kit::{SealKit, png_header};
use serde_json::{Value, json};

const ORG: &str = "91350100M000100Y43";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A PNG header declaring 120×80 pixels, then filler: enough for the registry's size read.
fn picture() -> Vec<u8> {
    let mut p = png_header(120, 80);
    p.extend_from_slice(b"seal-picture-bytes");
    p
}

struct Pki {
    kit: SealKit,
    signer_serial: String,
}

fn pki() -> Pki {
    let kit = SealKit::generate("某某公司").unwrap();
    let signer_serial = hutong::crypto::x509::CertInfo::parse(&kit.signer_cert)
        .unwrap()
        .serial_hex;
    Pki { kit, signer_serial }
}

fn seal(pki: &Pki, v1: bool, name: &str, es_id: &str, valid_days: i64) -> Vec<u8> {
    let params = pki.kit.params(name, es_id, valid_days, picture());
    if v1 {
        pki.kit.seal_v1(&params)
    } else {
        pki.kit.seal_v4(&params)
    }
    .unwrap()
}

fn filing(name: &str, seal_der: &[u8], pki: &Pki) -> Value {
    json!({
        "code": format!("biz-{name}"),
        "name": name,
        "sealType": "01",
        "certNumber": pki.signer_serial,
        "possessor": "某某科技有限公司",
        "possessorCertNo": ORG,
        "possessorType": 1,
        "bizType": 1,
        "certType": 2,
        "sealData": b64(seal_der),
        "userList": [{"userName": "张三", "mobilePhone": "13812345678"}],
    })
}

async fn call(srv: &TestServer, m: &Member, path: &str, extra: Value) -> (u16, Value) {
    srv.post(path, &m.request(extra)).await
}

async fn ok(srv: &TestServer, m: &Member, path: &str, extra: Value) -> Value {
    let (s, v) = call(srv, m, path, extra).await;
    assert_eq!((s, v["code"].as_str().unwrap()), (200, "0"), "{path}: {v}");
    v["data"].clone()
}

async fn fails(
    srv: &TestServer,
    m: &Member,
    path: &str,
    extra: Value,
    status: u16,
    code: &str,
) -> Value {
    let (s, v) = call(srv, m, path, extra).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap_or("")),
        (status, code),
        "{path}: {v}"
    );
    v
}

/// GB 11643 / ISO 7064 MOD 11-2, computed here independently of the platform.
fn check_char_ok(code: &str) -> bool {
    let w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let b = code.as_bytes();
    let sum: u32 = b[..17]
        .iter()
        .zip(w)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    b"10X98765432"[(sum % 11) as usize] == b[17]
}

#[tokio::test]
async fn file_query_and_lifecycle_of_v4_and_v1_seals() {
    let srv = common::start().await;
    let a = srv.add_member("online");
    let b = srv.add_member("online");
    let pki = pki();
    let v4 = seal(&pki, false, "某某科技有限公司公章", "ES-V4-1", 365);
    let v1 = seal(&pki, true, "某某科技有限公司合同章", "ES-V1-1", 365);

    let code4 = ok(
        &srv,
        &a,
        "/api/v1/seal/filing",
        filing("某某科技有限公司公章", &v4, &pki),
    )
    .await;
    let code1 = ok(
        &srv,
        &a,
        "/api/v1/seal/filing",
        filing("某某科技有限公司合同章", &v1, &pki),
    )
    .await;
    for c in [&code4, &code1] {
        let c = c.as_str().unwrap();
        assert_eq!(c.len(), 18);
        assert!(
            c.starts_with("34000001"),
            "region and seal type lead the code: {c}"
        );
        assert!(check_char_ok(c), "check character of {c}");
    }

    // Another system finds both with every 表7 field.
    let list = ok(
        &srv,
        &b,
        "/api/v1/seal/query",
        json!({"orgCode": ORG, "sealType": "0"}),
    )
    .await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let e = list.iter().find(|e| e["sealCode"] == code4).unwrap();
    assert_eq!(e["signId"].as_str().unwrap().len(), 32);
    assert_eq!(e["sealType"], "01");
    assert_eq!(e["sealRelateType"], "1");
    assert_eq!(e["sealName"], "某某科技有限公司公章");
    assert_eq!(
        e["moulageData"],
        b64(&picture()).as_str(),
        "picture bytes equal the seal's"
    );
    assert_eq!(
        (e["width"].as_i64(), e["height"].as_i64()),
        (Some(42), Some(42))
    );
    assert_eq!(
        (e["dpiX"].as_i64(), e["dpiY"].as_i64()),
        (Some(120), Some(80))
    );
    assert_eq!(e["sealData"], b64(&v4).as_str());
    assert_eq!(e["sealInvalidTime"].as_str().unwrap().len(), 19);
    assert_eq!(e["certType"], 2);
    assert_eq!(e["platName"], "测试平台");
    assert_eq!(e["algorithm"], "2");
    assert_eq!(e["certList"][0]["certCode"], pki.signer_serial.as_str());
    assert_eq!(e["certList"][0]["subjectCn"], "某某公司");
    assert_eq!(
        e["certList"][0]["signPublicKey"],
        b64(&pki.kit.signer_cert).as_str()
    );
    assert_eq!(e["state"], 1, "not fetched before");
    assert_eq!(
        e["userList"],
        json!([{"userName": "张三", "mobilePhone": "13812345678"}])
    );
    let again = ok(
        &srv,
        &b,
        "/api/v1/seal/query",
        json!({"orgCode": ORG, "sealType": "01"}),
    )
    .await;
    assert!(
        again.as_array().unwrap().iter().all(|e| e["state"] == 2),
        "fetched before"
    );
    let none = ok(
        &srv,
        &b,
        "/api/v1/seal/query",
        json!({"orgCode": "91110000000000000X", "sealType": "0"}),
    )
    .await;
    assert_eq!(none, json!([]), "unknown orgCode is an empty array");

    // State: 1 → 4 → 1 → 3, idempotent, final.
    let st = |s: i64| json!({"sealCode": code4, "state": s});
    ok(&srv, &a, "/api/v1/seal/state", st(4)).await;
    ok(&srv, &a, "/api/v1/seal/state", st(4)).await;
    let visible = ok(
        &srv,
        &b,
        "/api/v1/seal/query",
        json!({"orgCode": ORG, "sealType": "0"}),
    )
    .await;
    assert_eq!(
        visible.as_array().unwrap().len(),
        1,
        "a disabled seal is not offered"
    );
    ok(&srv, &a, "/api/v1/seal/state", st(1)).await;
    fails(&srv, &b, "/api/v1/seal/state", st(4), 403, "20008").await;
    ok(&srv, &a, "/api/v1/seal/state", st(3)).await;
    fails(&srv, &a, "/api/v1/seal/state", st(1), 409, "30002").await;
    fails(
        &srv,
        &a,
        "/api/v1/seal/state",
        json!({"sealCode": code4, "state": 2}),
        400,
        "10001",
    )
    .await;
    let extend = json!({"sealCode": code4, "bizType": 2, "sealData": b64(&seal(&pki, false, "某某科技有限公司公章", "ES-V4-1b", 700))});
    let mut ext = filing("某某科技有限公司公章", &v4, &pki);
    ext.as_object_mut()
        .unwrap()
        .extend(extend.as_object().unwrap().clone());
    fails(&srv, &a, "/api/v1/seal/filing", ext, 409, "30002").await;

    // Filing errors.
    fails(
        &srv,
        &a,
        "/api/v1/seal/filing",
        filing("某某科技有限公司合同章", &v1, &pki),
        409,
        "30004",
    )
    .await;
    // The same business code for another seal.
    let mut same_code = filing(
        "另一枚章",
        &seal(&pki, false, "另一枚章", "ES-X", 365),
        &pki,
    );
    same_code["code"] = "biz-某某科技有限公司合同章".into();
    let v = fails(&srv, &a, "/api/v1/seal/filing", same_code, 409, "30004").await;
    assert!(v["message"].as_str().unwrap().contains("code"));
    let mut tampered = seal(&pki, false, "被篡改的章", "ES-T", 365);
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    fails(
        &srv,
        &a,
        "/api/v1/seal/filing",
        filing("被篡改的章", &tampered, &pki),
        422,
        "30003",
    )
    .await;
    fails(
        &srv,
        &a,
        "/api/v1/seal/filing",
        filing(
            "名称不一致",
            &seal(&pki, false, "另一个名称", "ES-N", 365),
            &pki,
        ),
        422,
        "30003",
    )
    .await;
    let mut bad_org = filing("校验位", &seal(&pki, false, "校验位", "ES-C", 365), &pki);
    bad_org["possessorCertNo"] = "91350100M000100Y44".into();
    let v = fails(&srv, &a, "/api/v1/seal/filing", bad_org, 400, "10001").await;
    assert!(v["message"].as_str().unwrap().contains("possessorCertNo"));
    let mut with_code = filing("带编码", &seal(&pki, false, "带编码", "ES-D", 365), &pki);
    with_code["sealCode"] = code1.clone();
    fails(&srv, &a, "/api/v1/seal/filing", with_code, 400, "10001").await;
    let mut bad_check = code1.as_str().unwrap().to_string();
    let c = bad_check.pop().unwrap();
    bad_check.push(if c == '0' { '1' } else { '0' });
    fails(
        &srv,
        &a,
        "/api/v1/seal/state",
        json!({"sealCode": bad_check, "state": 4}),
        400,
        "10001",
    )
    .await;
    let unknown = hutong::domain::codes::SealCode::new("340000", "01", 999_999).unwrap();
    fails(
        &srv,
        &a,
        "/api/v1/seal/state",
        json!({"sealCode": unknown.as_str(), "state": 4}),
        404,
        "30001",
    )
    .await;

    // Extension keeps the code and every version.
    let mut ext = filing("某某科技有限公司合同章", &v1, &pki);
    let longer = seal(&pki, true, "某某科技有限公司合同章", "ES-V1-2", 730);
    ext["bizType"] = 2.into();
    ext["sealCode"] = code1.clone();
    ext["sealData"] = b64(&longer).into();
    assert_eq!(
        ok(&srv, &a, "/api/v1/seal/filing", ext.clone()).await,
        code1
    );
    let rec = srv
        .state
        .store
        .get_seal(code1.as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(rec.versions.len(), 2);
    ext["sealData"] = b64(&seal(&pki, true, "某某科技有限公司合同章", "ES-V1-3", 365)).into();
    fails(&srv, &a, "/api/v1/seal/filing", ext.clone(), 422, "30003").await;
    fails(&srv, &b, "/api/v1/seal/filing", ext, 403, "20008").await;
    srv.stop().await;
}

#[tokio::test]
async fn test_data_is_seen_only_by_testing_systems_and_personal_data_is_encrypted() {
    let srv = common::start().await;
    let tester = srv.add_member("testing");
    let other_tester = srv.add_member("testing");
    let online = srv.add_member("online");
    let pki = pki();
    // The seal name is seal data (inside the SES and returned as sealName); the possessor,
    // ID number and authorised users are personal data.
    let mut f = filing(
        "个人名章",
        &seal(&pki, false, "个人名章", "ES-P", 365),
        &pki,
    );
    f["possessor"] = "李四".into();
    f["possessorCertNo"] = "11010519491231002X".into();
    f["possessorType"] = 2.into();
    f["sealType"] = "07".into();
    ok(&srv, &tester, "/api/v1/seal/filing", f).await;
    let q = json!({"orgCode": "11010519491231002X", "sealType": "0"});
    assert_eq!(
        ok(&srv, &online, "/api/v1/seal/query", q.clone()).await,
        json!([])
    );
    let seen = ok(&srv, &other_tester, "/api/v1/seal/query", q).await;
    assert_eq!(seen.as_array().unwrap().len(), 1);
    assert_eq!(seen[0]["sealRelateType"], "2");
    assert_eq!(seen[0]["userList"][0]["mobilePhone"], "13812345678");

    // Nothing personal is stored in clear: not the ID number, the mobile, nor the name.
    srv.state.store.flush_blocking().unwrap();
    let mut entries = 0;
    srv.state
        .store
        .snapshot(|space, k, v| {
            entries += 1;
            for bytes in [k, v] {
                let text = String::from_utf8_lossy(bytes);
                for secret in ["11010519491231002X", "13812345678", "张三", "李四"] {
                    assert!(
                        !text.contains(secret),
                        "{secret} stored in clear in keyspace {space}"
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(entries > 0, "the snapshot saw the filed seals");
    srv.stop().await;
}

#[tokio::test]
async fn a_sign_id_is_used_at_most_once_even_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let store = hutong::store::Store::open(dir.path()).unwrap();
    let far = common::now_ms() + 600_000;
    for _ in 0..20 {
        let id = hutong::domain::seals::issue_sign_id(&store, "REQ", "S", far).unwrap();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (store, id) = (store.clone(), id.clone());
                std::thread::spawn(move || {
                    hutong::domain::seals::consume_sign_id(&store, &id, "S", Some("REQ")).is_ok()
                })
            })
            .collect();
        let wins = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(wins, 1);
    }
    // Bound to requester and seal, and expiring.
    let id = hutong::domain::seals::issue_sign_id(&store, "REQ", "S", far).unwrap();
    assert!(hutong::domain::seals::consume_sign_id(&store, &id, "OTHER", Some("REQ")).is_err());
    let id = hutong::domain::seals::issue_sign_id(&store, "REQ", "S", far).unwrap();
    assert!(hutong::domain::seals::consume_sign_id(&store, &id, "S", Some("SOMEONE")).is_err());
    let id =
        hutong::domain::seals::issue_sign_id(&store, "REQ", "S", common::now_ms() - 1).unwrap();
    assert!(hutong::domain::seals::consume_sign_id(&store, &id, "S", Some("REQ")).is_err());
}
