//! `hutong keys rotate platform` against the running server over real HTTPS: members verify
//! responses with the new certificate from the switch on, both certificates are published,
//! and the audit log — checkpoints by the old key before, the new key after — verifies with
//! `hutong audit verify`, with the independent Python verifier, and on a restored backup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::daemon::hutong;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the real CLI beside the in-process server (off the runtime, which serves it).
async fn cli(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run hutong"))
        .await
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "hutong failed: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// Whether `sig_b64` (X-Hutong-Signature) over `body` verifies with the certificate `pem`.
fn signed_by(pem: &str, body: &[u8], sig_b64: &str) -> bool {
    use signature::Verifier;
    let key = hutong::crypto::sm::sm2_public_key_from_pem(pem).unwrap();
    let vk = sm2::dsa::VerifyingKey::new("1234567812345678", key).unwrap();
    let sig = sm2::dsa::Signature::from_der(&B64.decode(sig_b64).unwrap()).unwrap();
    vk.verify(body, &sig).is_ok()
}

async fn signed_get(srv: &common::TestServer, path: &str) -> (Vec<u8>, String) {
    let resp = srv
        .client
        .get(format!("{}{path}", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let sig = resp.headers()["x-hutong-signature"]
        .to_str()
        .unwrap()
        .to_string();
    (resp.bytes().await.unwrap().to_vec(), sig)
}

async fn system_info(srv: &common::TestServer, m: &common::Member) -> (Vec<u8>, String) {
    let params = m.request(json!({}));
    let (status, headers, body) = srv
        .post_raw("/api/v1/system/info", serde_json::to_vec(&params).unwrap())
        .await;
    assert_eq!(status, 200);
    let sig = headers["x-hutong-signature"].to_str().unwrap().to_string();
    (body, sig)
}

fn python_verify(certs: &[&Path], export: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/verify_audit.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script);
    for c in certs {
        cmd.arg("--cert").arg(c);
    }
    let out = cmd.arg(export).output().expect("python3 runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "the verifier could not run (python3 -m pip install gmssl): {}",
        text(&out)
    );
    (out.status.success(), text(&out))
}

fn write_pem(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_platform_key_signs_at_once_and_the_log_verifies_across_the_switch() {
    let srv = common::start().await;
    let data = srv.data_dir.path().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    let m = srv.add_member("online");
    let old_pem = srv.platform_certificate().await;
    let (body, sig) = system_info(&srv, &m).await;
    assert!(signed_by(&old_pem, &body, &sig));
    let before = work.path().join("before.hbk");
    ok(cli({
        let mut c = hutong(&data);
        c.args(["backup", "--out"]).arg(&before);
        c
    })
    .await);

    let out = ok(cli({
        let mut c = hutong(&data);
        c.args(["keys", "rotate", "platform", "--json"]);
        c
    })
    .await);
    let rotation: Value = serde_json::from_str(&out).unwrap();
    let old_der = hutong::crypto::sm::pem_decode(&old_pem).unwrap().1;
    assert_eq!(
        rotation["previousSm3"],
        hutong::crypto::sm::sm3_hex(&old_der).as_str()
    );

    // From the switch on, the new key signs; the old certificate no longer verifies.
    let new_pem = srv.platform_certificate().await;
    assert_ne!(new_pem, old_pem);
    let (body, sig) = system_info(&srv, &m).await;
    assert!(signed_by(&new_pem, &body, &sig), "signed with the new key");
    assert!(!signed_by(&old_pem, &body, &sig));

    // A routed call to a member (SPEC §4) carries `sign` by the new key too.
    let routed = hutong::interop::client::envelope(
        &srv.state.keys,
        "HTMEMBER000000001",
        serde_json::Map::new(),
    );
    let routed: serde_json::Map<String, Value> = serde_json::from_slice(&routed).unwrap();
    let canonical = common::canonical(&routed);
    let routed_sig = routed["sign"].as_str().unwrap();
    assert!(signed_by(&new_pem, canonical.as_bytes(), routed_sig));
    assert!(!signed_by(&old_pem, canonical.as_bytes(), routed_sig));

    // Both certificates are published, the list itself signed by the new key.
    let (body, sig) = signed_get(&srv, "/api/v1/platform/certificates").await;
    assert!(signed_by(&new_pem, &body, &sig));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], "0", "{v}");
    assert_eq!(v["data"]["overlapDays"], 30);
    let certs = v["data"]["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2, "{v}");
    assert_eq!(certs[0]["status"], "current");
    assert_eq!(certs[0]["certificate"].as_str().unwrap(), new_pem);
    assert!(certs[0]["overlapEnd"].is_null());
    assert_eq!(certs[1]["status"], "previous");
    assert_eq!(certs[1]["certificate"].as_str().unwrap(), old_pem);
    assert_eq!(certs[1]["fingerprint"], rotation["previousSm3"]);
    assert_eq!(certs[1]["overlapEndMs"], rotation["overlapEndMs"]);
    for c in certs {
        assert!(c["notBeforeMs"].as_i64().unwrap() < c["notAfterMs"].as_i64().unwrap());
        assert_eq!(c["notAfter"].as_str().unwrap().len(), 19, "{c}");
    }

    // The log: the old key's checkpoints, the rotation entry, the new key's checkpoints.
    ok(cli({
        let mut c = hutong(&data);
        c.args(["audit", "verify"]);
        c
    })
    .await);
    let export = work.path().join("audit.jsonl");
    ok(cli({
        let mut c = hutong(&data);
        c.args(["audit", "export", "--out"]).arg(&export);
        c
    })
    .await);
    let lines = std::fs::read_to_string(&export).unwrap();
    let origins: std::collections::BTreeSet<String> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "checkpoint")
        .map(|v| {
            v["text"]
                .as_str()
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(origins.len(), 2, "checkpoints under both keys: {origins:?}");
    assert!(lines.lines().any(|l| {
        let v: Value = serde_json::from_str(l).unwrap();
        v["type"] == "entry"
            && String::from_utf8(B64.decode(v["leaf"].as_str().unwrap()).unwrap())
                .unwrap()
                .contains("\"action\":\"key.rotate_platform\"")
    }));
    let old_file = write_pem(work.path(), "old.crt", &old_pem);
    let new_file = write_pem(work.path(), "new.crt", &new_pem);
    let (passed, out) = python_verify(&[&new_file, &old_file], &export);
    assert!(passed, "{out}");
    // A directory: the data directory's keys/, as the runbook says.
    let (passed, out) = python_verify(&[&data.join("keys")], &export);
    assert!(passed, "{out}");
    let (passed, out) = python_verify(&[&new_file], &export);
    assert!(
        !passed && out.contains("names none of the given certificates"),
        "{out}"
    );
    let out = cli({
        let mut c = hutong(&data);
        c.args(["audit", "verify", "--from-export"])
            .arg(&export)
            .arg("--cert")
            .arg(&new_file);
        c
    })
    .await;
    assert!(
        !out.status.success(),
        "the old key's checkpoints need the old certificate"
    );
    ok(cli({
        let mut c = hutong(&data);
        c.args(["audit", "verify", "--from-export"])
            .arg(&export)
            .args(["--cert"])
            .arg(&new_file)
            .arg("--cert")
            .arg(&old_file);
        c
    })
    .await);

    // A backup of the rotated store restores with its certificate history.
    let backup = work.path().join("rotated.hbk");
    ok(cli({
        let mut c = hutong(&data);
        c.args(["backup", "--out"]).arg(&backup);
        c
    })
    .await);
    // The key store (the file provider's KEK) goes separately, as the runbook says.
    let restored = work.path().join("restored");
    std::fs::create_dir_all(restored.join("keys")).unwrap();
    std::fs::copy(data.join("keys/kek.key"), restored.join("keys/kek.key")).unwrap();
    srv.stop().await;
    ok(cli({
        let mut c = hutong(&restored);
        c.arg("restore").arg(&backup);
        c
    })
    .await);
    let verified = ok(cli({
        let mut c = hutong(&restored);
        c.args(["audit", "verify"]);
        c
    })
    .await);
    assert!(verified.contains("审计日志完整"), "{verified}");
    let restored_cert = std::fs::read_to_string(restored.join("keys/platform.crt")).unwrap();
    assert_eq!(restored_cert, new_pem);
    // A backup made before the rotation, signed by the old key, still checks out here.
    ok(cli({
        let mut c = hutong(&restored);
        c.args(["backup", "--verify"]).arg(&before);
        c
    })
    .await);

    // A second rotation, with no server running (directly on the data directory): the log
    // now spans three keys and still verifies, here and with the Python verifier.
    ok(cli({
        let mut c = hutong(&restored);
        c.args(["keys", "rotate", "platform"]);
        c
    })
    .await);
    let third = std::fs::read_to_string(restored.join("keys/platform.crt")).unwrap();
    assert!(third != new_pem && third != old_pem);
    ok(cli({
        let mut c = hutong(&restored);
        c.args(["audit", "verify"]);
        c
    })
    .await);
    let export = work.path().join("restored.jsonl");
    ok(cli({
        let mut c = hutong(&restored);
        c.args(["audit", "export", "--out"]).arg(&export);
        c
    })
    .await);
    let (passed, out) = python_verify(&[&restored.join("keys")], &export);
    assert!(passed, "{out}");
}

/// A retired key that signs a checkpoint after its successor took over is refused by both
/// verifiers, also in an export that starts after the switch, where nothing the old key
/// signed earlier is there to compare with: the new certificate (which signed the checkpoint
/// before it) is the later one. The anchor rules (a checkpoint signed after the anchor by an
/// older key) are not exercised here.
#[test]
fn a_retired_key_signing_after_the_switch_is_refused_in_an_export_from_after_it() {
    use hutong::audit::{checkpoint, export};
    use hutong::domain::audit_event::{Action, Actor, Outcome};
    let dir = tempfile::tempdir().unwrap();
    let cfg = hutong::config::Config {
        data_dir: dir.path().join("d"),
        ..Default::default()
    };
    let store = hutong::store::Store::open(&cfg.data_dir).unwrap();
    let keys = hutong::keys::Keyring::init(&cfg).unwrap();
    let entry = |i: u64| {
        hutong::domain::audit::record(
            &store,
            &Actor::cli(),
            Action::QuotaSet,
            Outcome::Ok,
            &format!("HT{i}"),
            "",
        )
        .unwrap()
    };
    for i in 0..3 {
        entry(i);
    }
    checkpoint::make(&store, &keys, "340000").unwrap();
    let old = keys.platform();
    // Certificate times have whole seconds: the successor's notBefore is a later one.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    keys.rotate_platform(&cfg).unwrap();
    checkpoint::make(&store, &keys, "340000").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let from = hutong::time::now_ms();
    for i in 3..6 {
        entry(i);
    }
    checkpoint::make(&store, &keys, "340000").unwrap();

    let work = tempfile::tempdir().unwrap();
    let certs = keys.platform_cert_ders();
    let cert_files: Vec<PathBuf> = certs
        .iter()
        .enumerate()
        .map(|(i, der)| {
            let p = work.path().join(format!("c{i}.crt"));
            std::fs::write(&p, der).unwrap();
            p
        })
        .collect();
    let cert_refs: Vec<&Path> = cert_files.iter().map(PathBuf::as_path).collect();
    let exported = |name: &str| {
        let mut out = Vec::new();
        export::export(&store, Some(from), None, &mut out).unwrap();
        let path = work.path().join(name);
        std::fs::write(&path, &out).unwrap();
        let lines: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        (path, lines)
    };
    let (path, lines) = exported("clean.jsonl");
    assert!(lines[0].contains("\"anchor\""), "{}", lines[0]);
    assert!(
        !lines
            .iter()
            .any(|l| l.contains(&checkpoint::origin("340000", old.cert_der())))
    );
    assert_eq!(export::verify(lines.into_iter(), &certs).problem, None);
    let (passed, out) = python_verify(&cert_refs, &path);
    assert!(passed, "{out}");

    // The old key signs the tree as it now stands.
    let f = store.audit_frontier().unwrap();
    let now = hutong::time::now_ms();
    let text = checkpoint::text(
        &checkpoint::origin("340000", old.cert_der()),
        f.size,
        &f.root(),
        now,
    );
    let forged = hutong::store::audit_log::SignedCheckpoint {
        signature: B64.encode(old.sign(text.as_bytes())),
        text,
    };
    store.put_audit_checkpoint(f.size, now, &forged).unwrap();
    let (path, lines) = exported("forged.jsonl");
    let problem = export::verify(lines.into_iter(), &certs).problem;
    assert!(problem.is_some(), "accepted");
    let (passed, out) = python_verify(&cert_refs, &path);
    assert!(!passed && out.contains("older certificate"), "{out}");
}
