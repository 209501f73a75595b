//! The published request-signing test vectors (`docs/test-vectors/vectors.json`): their
//! canonical strings, SM3 digests, Z_A and signatures checked with the production code, the
//! requests replayed against the real gateway (a time window that covers the vectors' fixed
//! time) with the answers the vectors state, and the Python client example checking the same
//! file, so any client library can be tested offline against what the platform does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;

use hutong::audit::entry::{Actor, Draft, Kind, Result as AuditResult};
use hutong::crypto::sm;
use hutong::domain::vocab::SystemState;
use hutong::store::systems::{StateChange, SystemRecord};
use serde_json::{Map, Value};
use sm2::elliptic_curve::sec1::ToSec1Point;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/docs/test-vectors/vectors.json"
);

fn vectors() -> Value {
    serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap()
}

fn public_key(v: &Value, name: &str) -> sm2::PublicKey {
    let k = &v["keys"][name];
    let pair =
        sm::Sm2KeyPair::from_secret_bytes(&hex::decode(k["private"].as_str().unwrap()).unwrap())
            .unwrap();
    let public = pair.public_key();
    assert_eq!(
        hex::encode(public.to_sec1_point(false).as_bytes()),
        k["public"].as_str().unwrap(),
        "{name}: public key of the private key"
    );
    assert_eq!(
        sm::sm2_public_key_from_pem(k["publicKeyPem"].as_str().unwrap()).unwrap(),
        public,
        "{name}: PEM"
    );
    public
}

fn params(r: &Value) -> Map<String, Value> {
    r["params"].as_object().unwrap().clone()
}

#[test]
fn canonical_strings_digests_and_signatures_match_the_production_code() {
    let v = vectors();
    assert!(v["WARNING"].as_str().unwrap().contains("TEST-ONLY"));
    let system_key = v["system"]["key"].as_str().unwrap();
    for r in v["requests"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let p = params(r);
        let canonical = hutong::protocol::canonical_string(&p);
        assert_eq!(canonical, r["canonical"].as_str().unwrap(), "{name}");
        assert_eq!(
            hex::encode(canonical.as_bytes()),
            r["canonicalHex"],
            "{name}"
        );
        assert_eq!(
            sm::sm3_hex(canonical.as_bytes()),
            r["sm3OfCanonical"],
            "{name}"
        );

        let signer = public_key(&v, r["signedWith"].as_str().unwrap());
        assert_eq!(hex::encode(sm::sm2_z(&signer).unwrap()), r["zA"], "{name}");
        let e = sm::sm2_message_digest(&signer, canonical.as_bytes()).unwrap();
        assert_eq!(hex::encode(e), r["e"], "{name}");

        use base64::Engine;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(p["sign"].as_str().unwrap())
            .unwrap();
        sm::sm2_verify(&signer, canonical.as_bytes(), &sig).expect(name);
        sm::sm2_verify_prehashed(&signer, &e, &sig).expect(name);
        let under_system_key =
            sm::sm2_verify(&public_key(&v, system_key), canonical.as_bytes(), &sig);
        assert_eq!(
            under_system_key.is_ok(),
            r["answer"]["code"] != "20003",
            "{name}: only the wrong-key vector fails under the system's key"
        );
    }
}

/// Registers the vectors' system with its fixed appId, as the store holds an approved one.
fn insert_vector_system(srv: &common::TestServer, v: &Value) {
    let s = &v["system"];
    let state = SystemState::parse(s["state"].as_str().unwrap()).unwrap();
    let key_pem = v["keys"][s["key"].as_str().unwrap()]["publicKeyPem"]
        .as_str()
        .unwrap();
    let now = common::now_ms();
    let rec = SystemRecord {
        app_id: s["appId"].as_str().unwrap().into(),
        name: s["name"].as_str().unwrap().into(),
        plat_name: s["platName"].as_str().unwrap().into(),
        vendor: None,
        public_keys: vec![hutong::domain::systems::normalise_public_key(key_pem).unwrap()],
        callback_url: None,
        callback_ca_pem: None,
        dest_host: None,
        state,
        created_ms: now,
        history: vec![StateChange {
            from: None,
            to: state,
            reason: "test vectors".into(),
            actor: "cli".into(),
            at_ms: now,
        }],
    };
    let entry = Draft {
        at_ms: now,
        kind: Kind::Cli,
        action: "system.add".into(),
        actor: Actor {
            kind: "cli".into(),
            id: "cli".into(),
            role: None,
        },
        target: rec.app_id.clone(),
        result: AuditResult::Ok,
        code: None,
        request_id: None,
        client: None,
        latency_ms: None,
        params_digest: None,
        detail: rec.name.clone(),
    };
    srv.state.store.insert_system(&rec, &entry).unwrap();
}

#[tokio::test]
async fn the_gateway_answers_each_vector_as_published() {
    let v = vectors();
    let sent: i64 = v["time"].as_str().unwrap().parse().unwrap();
    // A window that reaches back to the vectors' fixed time (and a little beyond).
    let window = ((common::now_ms() - sent).abs() / 1000 + 86_400) as u64;
    let srv = common::start_with(|c| c.api.time_window_secs = window).await;
    insert_vector_system(&srv, &v);
    for r in v["requests"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let (status, answer) = srv.post(r["path"].as_str().unwrap(), &params(r)).await;
        let want = &r["answer"];
        assert_eq!(
            status,
            want["httpStatus"].as_u64().unwrap() as u16,
            "{name}: {answer}"
        );
        assert_eq!(answer["code"], want["code"], "{name}: {answer}");
        assert_eq!(answer["data"], want["data"], "{name}: {answer}");
    }
    srv.stop().await;
}

#[test]
fn the_python_client_example_agrees_with_the_vectors() {
    let out = std::process::Command::new("python3")
        .arg("-B")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/clients/python/hutong_client.py"
        ))
        .arg("check-vectors")
        .arg(VECTORS)
        .output()
        .expect("python3 with gmssl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("5 vectors ok"), "{stdout}");
}
